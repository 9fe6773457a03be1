"""INSEE StockUniteLegale: read a file by header name in batches, validate rows, normalise columns.

Memory stays bounded whatever the file's size: the file is read in batches of rows, each batch is
checked with column expressions, and the rows kept wait, typed, in Parquet files on disk, where
DuckDB resolves duplicates; the warehouse loads them from those files.

Outcomes, by input:
- a required column missing (or a whole header read as one column: the separator is named), an
  empty file, a file without data rows, a row with more fields than the header, a field that
  cannot be parsed (an unclosed quote), a truncated or fake gzip, a corrupt Parquet file, or a
  file whose every row is rejected: ``SireneFileError`` naming the file and the problem, with at
  most a short excerpt of the file (nothing is written);
- a Parquet file with typed columns (a SIREN or NIC stored as an integer, dates as dates): read
  back as INSEE writes them (leading zeros restored, ISO dates);
- a file that is not valid UTF-8: read as Windows-1252 (a Latin-1 superset) and reported;
- header names with stray spaces: stripped; values are stripped too;
- blank lines: skipped and counted;
- a CSV row with fewer or more fields than the header (a quoted separator is part of its field):
  rejected with the count and the file's line (``too_few_fields``, ``too_many_fields``);
- a row with a bad SIREN (format or check digit), a missing required value, an unknown
  ``etatAdministratif``, or an unparsable date or year: rejected with the reason;
- the same SIREN on several rows: the most recently processed row
  (``dateDernierTraitementUniteLegale``) is kept, the others are rejected as duplicates.
"""

import codecs
import csv
import gzip
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ma_pipeline.contracts.siren import siren_problem_expr
from ma_pipeline.contracts.sirene import (
    COLUMNS,
    INSEE_COLUMNS,
    OUTPUT_COLUMNS,
    REJECTED_SCHEMA,
    REQUIRED_COLUMNS,
    REQUIRED_VALUES,
    Column,
    Kind,
)
from ma_pipeline.warehouse.local import (
    BATCH_ROWS,
    LocalRows,
    local_duckdb,
    parquet_files,
    sql_text,
)

_DATE_FORMATS: dict[Kind, str] = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H:%M:%S%.f"}
_BLOCK = 16 * 1024 * 1024  # bytes read at a time to check or re-encode a file
_PROCESSED = "date_dernier_traitement"
# Codes that lose their leading zeros when a Parquet writer stores them as integers.
_WIDTHS = {"siren": 9, "nicSiegeUniteLegale": 5}
_SEPARATORS = {";": "';'", "\t": "a tab", "|": "'|'"}
_EXCERPT = 80  # characters of a file quoted in an error, at most
# Columns a CSV batch carries for its rows whose field count differs from the header's.
_FIELDS_REASON, _FIELDS_DETAIL = "_fields_reason", "_fields_detail"


class SireneFileError(ValueError):
    """A SIRENE file that cannot be used at all; the message names the file and the problem."""


@dataclass
class StockFile:
    """The rows of a stock as given (all text, INSEE headers), and how it was decoded."""

    name: str
    rows: pl.DataFrame
    encoding: str


@dataclass
class ValidatedStock:
    """A stock split into kept companies and rejected rows, with counts for metadata."""

    kept: pl.DataFrame
    rejected: pl.DataFrame
    rows_read: int
    blank_lines: int
    encoding: str

    def rejected_by_reason(self) -> dict[str, int]:
        return rejected_by_reason(self.rejected)


def rejected_by_reason(rejected: pl.DataFrame) -> dict[str, int]:
    counts = rejected.group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"], counts["len"].to_list(), strict=True))


# ----------------------------------------------------------------------------------- reading
@dataclass
class StockBatches:
    """A stock file as batches of text rows (INSEE headers), and how it was decoded."""

    name: str
    encoding: str
    batches: Iterator[pl.DataFrame]


@contextmanager
def stock_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[StockBatches]:
    """Read a StockUniteLegale CSV, gzipped CSV or Parquet file in batches of text rows. A
    gzipped or non-UTF-8 file is first written out as UTF-8 to a temporary file, in blocks."""
    name = path.name
    if name.lower().endswith(".parquet"):
        try:
            schema = pl.read_parquet_schema(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise SireneFileError(f"{name}: not a readable Parquet file ({_short(exc)})") from exc
        scan = pl.scan_parquet(path).select(_as_text(c, t) for c, t in schema.items())
        yield StockBatches(name, "parquet", _batches(name, scan, batch_rows))
        return
    with tempfile.TemporaryDirectory(prefix="sirene-") as scratch:
        csv = path
        if name.lower().endswith(".gz"):
            csv = Path(scratch) / "stock.csv"
            try:
                with gzip.open(path, "rb") as source, csv.open("wb") as target:
                    shutil.copyfileobj(source, target, _BLOCK)
            except (OSError, EOFError) as exc:  # BadGzipFile is an OSError
                raise SireneFileError(
                    f"{name}: not a complete gzip file ({_short(exc)}); download it again, or"
                    " drop the .gz from a plain CSV's name"
                ) from exc
        if not _has_content(csv):
            raise SireneFileError(f"{name}: the file is empty")
        encoding = _encoding(csv)
        if encoding != "utf-8":
            utf8 = Path(scratch) / "stock.utf8.csv"
            _reencode(csv, utf8, encoding)
            csv = utf8
        ragged = _ragged_rows(csv)
        # Rows longer than the header are cut to its width here; _ragged_rows has named them.
        scan = pl.scan_csv(
            csv, infer_schema=False, empty_string_is_null=False, truncate_ragged_lines=True
        )
        batches = _with_field_problems(_batches(name, scan, batch_rows), ragged)
        yield StockBatches(name, encoding, batches)


def _short(exc: BaseException) -> str:
    """An error's first line, cut to ``_EXCERPT`` characters: a parser's message can quote the
    rest of the file."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= _EXCERPT else f"{text[:_EXCERPT]}…"


def _as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as the text INSEE writes: integer codes with their leading zeros,
    dates and times in ISO form."""
    col = pl.col(column)
    if dtype.is_integer():
        width = _WIDTHS.get(column.strip())
        text = col.cast(pl.String)
        return (text.str.zfill(width) if width else text).alias(column)
    if dtype == pl.Date:
        return col.dt.to_string("%Y-%m-%d").alias(column)
    if isinstance(dtype, pl.Datetime):
        return col.dt.to_string("%Y-%m-%dT%H:%M:%S").alias(column)
    return col.cast(pl.String).alias(column)


def _batches(name: str, scan: pl.LazyFrame, batch_rows: int) -> Iterator[pl.DataFrame]:
    try:
        yield from scan.collect_batches(chunk_size=batch_rows)
    except (pl.exceptions.PolarsError, OSError) as exc:
        if "could not parse" in str(exc):
            raise SireneFileError(
                f"{name}: a field cannot be parsed, often an unclosed quote, near:"
                f" {_short(exc).removeprefix('could not parse ')}"
            ) from exc
        raise SireneFileError(f"{name}: cannot be read ({_short(exc)})") from exc


def _ragged_rows(path: Path) -> pl.DataFrame:
    """The records of a UTF-8 CSV whose field count differs from the header's: their index
    among the data records (blank lines included, as the batches count them), the reason and a
    detail with the count and the file's line. One streaming pass (``csv`` reads a record at a
    time, quoted separators and line breaks inside one field); memory holds only these rows.
    A record ``csv`` cannot read (an unclosed quote) ends the pass: polars then names it."""
    found: list[tuple[int, str, str]] = []
    with path.open(encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(text)
        try:
            width = len(next(reader, []))
            line = reader.line_num + 1
            for record, fields in enumerate(reader):
                count = len(fields)
                blank = count == 0 or (count == 1 and not fields[0].strip())
                if count != width and not blank:
                    found.append(
                        (
                            record,
                            "too_few_fields" if count < width else "too_many_fields",
                            f"{count} fields where the header has {width} (line {line})",
                        )
                    )
                line = reader.line_num + 1
        except csv.Error:
            pass
    return pl.DataFrame(
        found,
        schema={"_record": pl.UInt32, _FIELDS_REASON: pl.String, _FIELDS_DETAIL: pl.String},
        orient="row",
    )


def _with_field_problems(
    batches: Iterator[pl.DataFrame], ragged: pl.DataFrame
) -> Iterator[pl.DataFrame]:
    """``batches`` with the reason and detail of their ragged rows (null for the others)."""
    offset = 0
    for batch in batches:
        here = ragged.filter(pl.col("_record").is_between(offset, offset + batch.height - 1))
        yield (
            batch.with_row_index("_record", offset)
            .join(here, on="_record", how="left", maintain_order="left")
            .drop("_record")
        )
        offset += batch.height


def _has_content(path: Path) -> bool:
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            if block.strip():
                return True
    return False


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as file:
            while block := file.read(_BLOCK):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _encoding(path: Path) -> str:
    """UTF-8, else Windows-1252, else Latin-1 (which decodes any byte)."""
    for encoding in ("utf-8", "cp1252"):
        if _decodes(path, encoding):
            return encoding
    return "latin-1"


def _reencode(source: Path, target: Path, encoding: str) -> None:
    with (
        source.open("r", encoding=encoding, newline="") as text,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        shutil.copyfileobj(text, out, _BLOCK)


def read_stock_file(path: Path) -> StockFile:
    """A whole (small) stock file as text rows: for tests and samples."""
    with stock_batches(path) as stock:
        return StockFile(stock.name, pl.concat(list(stock.batches)), stock.encoding)


# -------------------------------------------------------------------------------- validation
@dataclass
class StockLoad:
    """One stock's validation, batch by batch: rejected rows are kept in memory (few), valid
    rows wait, as they will be stored, in Parquet files under ``scratch`` until ``finish``
    resolves the duplicate SIRENs (DuckDB, bounded memory, spilling to ``scratch``); ``kept``
    then names the companies for the warehouse to load."""

    name: str
    encoding: str
    scratch: Path
    rows_read: int = 0
    blank_lines: int = 0
    _rejected: list[pl.DataFrame] = field(default_factory=list)
    _columns_checked: bool = False
    _files: int = 0
    _finished: bool = False

    @property
    def _staged(self) -> str:
        return parquet_files(str(self.scratch / "staged" / "*.parquet"))

    @property
    def _duplicates_file(self) -> Path:
        return self.scratch / "duplicates.parquet"

    @property
    def _duplicates(self) -> str:
        return parquet_files(str(self._duplicates_file))

    def add(self, batch: pl.DataFrame) -> None:
        """Check one batch of text rows: reject the bad ones, stage the valid ones."""
        problems = [
            batch[c] if c in batch.columns else pl.Series(c, [None] * batch.height, pl.String)
            for c in (_FIELDS_REASON, _FIELDS_DETAIL)
        ]
        batch = batch.drop(_FIELDS_REASON, _FIELDS_DETAIL, strict=False)
        raw = batch.rename({c: c.strip() for c in batch.columns})
        if not self._columns_checked:
            missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
            separator = next((s for s in _SEPARATORS if s in raw.columns[0]), None)
            if missing and raw.width == 1 and separator is not None:
                raise SireneFileError(
                    f"{self.name}: the header is read as one column: its fields are separated"
                    f" by {_SEPARATORS[separator]}, not by ',' as INSEE's files are"
                )
            if missing:
                raise SireneFileError(
                    f"{self.name}: missing required column(s): {', '.join(missing)}"
                )
            self._columns_checked = True
        present = [c for c in INSEE_COLUMNS if c in raw.columns]
        raw = raw.select(
            *(pl.col(c).str.strip_chars().replace("", None) for c in present),
            *(pl.lit(None, pl.String).alias(c) for c in INSEE_COLUMNS if c not in raw.columns),
        ).select(INSEE_COLUMNS)
        blank = raw.select(pl.all_horizontal(pl.all().is_null())).to_series()
        offset = self.rows_read - self.blank_lines + 1
        self.rows_read += blank.len()
        self.blank_lines += int(blank.sum())
        raw = raw.with_columns(problems).filter(~blank).with_row_index("row_number", offset=offset)
        checked = raw.with_columns(
            *(_typed(c) for c in COLUMNS if c.kind != "text"),
            *(pl.col(c.insee).alias(f"_given_{c.name}") for c in COLUMNS if c.kind != "text"),
            pl.col("etatAdministratifUniteLegale").alias("etat_administratif"),
            pl.col("categorieJuridiqueUniteLegale").alias("categorie_juridique"),
            siren_problem_expr("siren").alias("_siren_problem"),
        ).with_columns(_rejection_reasons())
        self._reject(checked.filter(pl.col("reason").is_not_null()))
        # Staged as stored: the warehouse can then take the rows as they are.
        valid = (
            checked.filter(pl.col("reason").is_null())
            .select(
                "row_number",
                *(pl.col(c.name) if c.kind != "text" else _typed(c) for c in COLUMNS),
                pl.lit(self.name).alias("source"),
            )
            .with_columns(_nom_entreprise())
            .select("row_number", *OUTPUT_COLUMNS)
        )
        # Every batch gets a file, even empty: the staged rows always have their columns.
        staged = self.scratch / "staged" / f"{self._files:06d}.parquet"
        staged.parent.mkdir(exist_ok=True)
        valid.write_parquet(staged, compression="lz4", statistics=False)
        self._files += 1

    def finish(self) -> None:
        """Resolve duplicates: per SIREN, the latest processed row is kept (the first in the
        file on a tie), the others are rejected."""
        if self.rows_read - self.blank_lines == 0:
            raise SireneFileError(f"{self.name}: the file has no data rows")
        if self.rejected.height == self.rows_read - self.blank_lines:
            reasons = ", ".join(f"{r} {n}" for r, n in rejected_by_reason(self.rejected).items())
            raise SireneFileError(
                f"{self.name}: every one of its {self.rejected.height} rows was rejected"
                f" ({reasons}); nothing is kept. Check the columns' format (SIREN as 9 digits,"
                " ISO dates) against INSEE's"
            )
        # Ranked on three columns, not the whole rows: only the duplicates' row numbers are kept.
        with local_duckdb(spill=str(self.scratch / "spill")) as db:
            db.execute(
                f"""COPY (SELECT row_number FROM (
                    SELECT row_number, row_number() OVER (
                        PARTITION BY siren ORDER BY "{_PROCESSED}" DESC NULLS LAST, row_number
                    ) AS rank FROM {self._staged}
                ) WHERE rank > 1) TO {sql_text(str(self._duplicates_file))} (FORMAT parquet)"""
            )
            duplicates = db.execute(
                f"SELECT * FROM {self._staged}"
                f" WHERE row_number IN (SELECT row_number FROM {self._duplicates})"
                " ORDER BY row_number"
            ).pl()
        # A duplicate's values are shown as staged (valid, typed), under the INSEE names.
        self._reject(
            duplicates.select(
                "row_number",
                *(_as_given(c) for c in COLUMNS),
                reason=pl.lit("duplicate_siren"),
                detail=pl.format(
                    "siren {} appears on several rows; the latest processed is kept", "siren"
                ),
            )
        )
        self._finished = True

    def _reject(self, rows: pl.DataFrame) -> None:
        """Keep ``rows`` (with their ``reason`` and ``detail``) as rejected, with the values as
        given in JSON."""
        if rows.height:
            self._rejected.append(
                rows.select(
                    pl.lit(self.name).alias("source"),
                    "row_number",
                    "siren",
                    "reason",
                    "detail",
                    pl.struct(INSEE_COLUMNS).struct.json_encode().alias("raw"),
                )
            )

    @property
    def rejected(self) -> pl.DataFrame:
        if not self._rejected:
            return pl.DataFrame(schema=REJECTED_SCHEMA)
        rows = pl.concat(self._rejected).sort("row_number")
        return rows.select(list(REJECTED_SCHEMA)).cast(REJECTED_SCHEMA)  # type: ignore[arg-type]

    @property
    def kept_rows(self) -> int:
        """How many companies ``kept`` names, once ``finish`` has run."""
        if not self._finished:
            raise RuntimeError("StockLoad.kept_rows is read before finish")
        return self.rows_read - self.blank_lines - self.rejected.height

    def kept(self) -> LocalRows:
        """The companies kept (``OUTPUT_COLUMNS``), in file order, once ``finish`` has run."""
        if not self._finished:
            raise RuntimeError("StockLoad.kept is read before finish")
        columns = ", ".join(f'"{c}"' for c in OUTPUT_COLUMNS)
        # The staged files are named in file order: a filtered scan keeps it without a sort.
        return LocalRows(
            f"SELECT {columns} FROM {self._staged}"
            f" WHERE row_number NOT IN (SELECT row_number FROM {self._duplicates})"
        )


@contextmanager
def stock_load(name: str, encoding: str, batches: Iterable[pl.DataFrame]) -> Iterator[StockLoad]:
    """Validate ``batches`` (one stock's text rows); the load is readable inside the block."""
    with tempfile.TemporaryDirectory(prefix="sirene-load-") as scratch:
        load = StockLoad(name, encoding, Path(scratch))
        for batch in batches:
            load.add(batch)
        load.finish()
        yield load


def validate(stock: StockFile) -> ValidatedStock:
    """Check columns, reject bad rows with their reason, and normalise the kept ones (a stock
    held in memory: the sandbox's, or a test's)."""
    with stock_load(stock.name, stock.encoding, [stock.rows]) as load:
        return ValidatedStock(
            kept=pl.concat(load.kept().batches()),
            rejected=load.rejected,
            rows_read=load.rows_read,
            blank_lines=load.blank_lines,
            encoding=stock.encoding,
        )


def _typed(column: Column) -> pl.Expr:
    expr = pl.col(column.insee)
    if column.kind in _DATE_FORMATS:
        converter = expr.str.to_date if column.kind == "date" else expr.str.to_datetime
        expr = converter(_DATE_FORMATS[column.kind], strict=False)
    elif column.kind == "int":
        expr = expr.cast(pl.Int32, strict=False)
    elif column.name == "activite_principale":
        # NAF sous-classes come with or without the dot (6201Z); store them as 62.01Z.
        expr = expr.str.replace(r"^(\d{2})\.?(\d{2})([A-Z])$", "$1.$2$3")
    return expr.alias(column.name)


def _as_given(column: Column) -> pl.Expr:
    """A typed column back as text under its INSEE name, in the file's formats."""
    expr = pl.col(column.name)
    if column.kind == "datetime":
        expr = expr.dt.to_string("%Y-%m-%dT%H:%M:%S")
    return expr.cast(pl.String).alias(column.insee)


def _rejection_reasons() -> list[pl.Expr]:
    """``reason`` and ``detail`` of the first rule each row breaks (null when it breaks none)."""
    rules: list[tuple[pl.Expr, str | pl.Expr, pl.Expr]] = [
        # A row with too few or too many fields: its values are not where the header says.
        (pl.col(_FIELDS_REASON).is_not_null(), pl.col(_FIELDS_REASON), pl.col(_FIELDS_DETAIL)),
        (pl.col("siren").is_null(), "missing_siren", pl.lit("siren is empty")),
        (
            pl.col("_siren_problem").is_not_null(),
            "invalid_siren",
            pl.format("siren '{}' {}", "siren", "_siren_problem"),
        ),
    ]
    for name in REQUIRED_VALUES[1:]:
        rules.append((pl.col(name).is_null(), f"missing_{name}", pl.lit(f"{name} is empty")))
    rules.append(
        (
            ~pl.col("etat_administratif").is_in(["A", "C"]),
            "invalid_etat_administratif",
            pl.format("etat_administratif '{}' is not A or C", "etat_administratif"),
        )
    )
    for column in COLUMNS:
        if column.kind != "text":
            given = f"_given_{column.name}"
            rules.append(
                (
                    pl.col(column.name).is_null() & pl.col(given).is_not_null(),
                    f"invalid_{column.name}",
                    pl.format(f"{column.insee} '{{}}' is not a valid {column.kind}", given),
                )
            )

    def code_of(code: str | pl.Expr) -> pl.Expr:
        return pl.lit(code) if isinstance(code, str) else code

    reason = pl.when(rules[0][0]).then(code_of(rules[0][1]))
    detail = pl.when(rules[0][0]).then(rules[0][2])
    for condition, code, text in rules[1:]:
        reason = reason.when(condition).then(code_of(code))
        detail = detail.when(condition).then(text)
    return [reason.otherwise(None).alias("reason"), detail.otherwise(None).alias("detail")]


def _nom_entreprise() -> pl.Expr:
    """Display name: the denomination, or ``NOM Prénom`` for an individual entrepreneur."""
    person = pl.concat_str(
        [pl.coalesce("nom_usage", "nom"), pl.coalesce("prenom_usuel", "prenom1")],
        separator=" ",
        ignore_nulls=True,
    ).replace("", None)
    return pl.coalesce("denomination", person).alias("nom_entreprise")
