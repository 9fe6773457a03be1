"""INSEE StockUniteLegale: read a file by header name, validate rows, normalise columns.

Outcomes, by input:
- a required column missing, an empty file, a file without data rows, or a row with more fields
  than the header: ``SireneFileError`` naming the file and the problem (nothing is written);
- a file that is not valid UTF-8: read as Windows-1252 (a Latin-1 superset) and reported;
- header names with stray spaces: stripped; values are stripped too;
- blank lines: skipped and counted;
- a row with a bad SIREN (format or check digit), a missing required value, an unknown
  ``etatAdministratif``, or an unparsable date or year: rejected with the reason;
- the same SIREN on several rows: the most recently processed row
  (``dateDernierTraitementUniteLegale``) is kept, the others are rejected as duplicates.
"""

import gzip
from dataclasses import dataclass
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

_DATE_FORMATS: dict[Kind, str] = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H:%M:%S%.f"}


class SireneFileError(ValueError):
    """A SIRENE file that cannot be used at all; the message names the file and the problem."""


@dataclass
class StockFile:
    """The rows of a file as given (all text, INSEE headers), and how it was decoded."""

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
        counts = self.rejected.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"], counts["len"].to_list(), strict=True))


def read_stock_file(path: Path) -> StockFile:
    """Read a StockUniteLegale CSV, gzipped CSV or Parquet file as text columns."""
    name = path.name
    if name.lower().endswith(".parquet"):
        rows = pl.read_parquet(path)
        return StockFile(name, rows.select(pl.all().cast(pl.String)), "parquet")
    data = gzip.decompress(path.read_bytes()) if name.lower().endswith(".gz") else path.read_bytes()
    if not data.strip():
        raise SireneFileError(f"{name}: the file is empty")
    encoding = "utf-8"
    try:
        rows = _parse_csv(name, data)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower():
            raise
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
        rows = _parse_csv(name, text.encode("utf-8"))
    return StockFile(name, rows, encoding)


def _parse_csv(name: str, data: bytes) -> pl.DataFrame:
    try:
        return pl.read_csv(data, infer_schema=False)
    except pl.exceptions.ComputeError as exc:
        if "more fields" in str(exc):
            raise SireneFileError(f"{name}: a row has more fields than the header") from exc
        raise


def validate(stock: StockFile) -> ValidatedStock:
    """Check columns, reject bad rows with their reason, and normalise the kept ones."""
    raw = stock.rows.rename({c: c.strip() for c in stock.rows.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SireneFileError(f"{stock.name}: missing required column(s): {', '.join(missing)}")
    present = [c for c in INSEE_COLUMNS if c in raw.columns]
    raw = raw.select(
        *(pl.col(c).str.strip_chars().replace("", None) for c in present),
        *(pl.lit(None, pl.String).alias(c) for c in INSEE_COLUMNS if c not in raw.columns),
    ).select(INSEE_COLUMNS)
    blank = raw.select(pl.all_horizontal(pl.all().is_null())).to_series()
    raw = raw.filter(~blank).with_row_index("row_number", offset=1)
    if raw.is_empty():
        raise SireneFileError(f"{stock.name}: the file has no data rows")

    typed = raw.select(
        "row_number",
        *(_typed(c) for c in COLUMNS),
        *(pl.col(c.insee).alias(f"_given_{c.name}") for c in COLUMNS if c.kind != "text"),
    ).with_columns(siren_problem_expr("siren").alias("_siren_problem"))
    checked = typed.with_columns(_rejection_reasons()).with_columns(
        pl.lit(stock.name).alias("source")
    )

    valid = checked.filter(pl.col("reason").is_null())
    latest_first = valid.sort(
        ["date_dernier_traitement", "row_number"], descending=[True, False], nulls_last=True
    )
    duplicate = latest_first.select(
        pl.col("siren").is_duplicated() & ~pl.col("siren").is_first_distinct()
    )
    duplicates = latest_first.filter(duplicate.to_series()).with_columns(
        reason=pl.lit("duplicate_siren"),
        detail=pl.format("siren {} appears on several rows; the latest processed is kept", "siren"),
    )
    kept = latest_first.filter(~duplicate.to_series()).sort("row_number")
    rejected = pl.concat(
        [checked.filter(pl.col("reason").is_not_null()), duplicates], how="vertical_relaxed"
    ).sort("row_number")
    rejected = rejected.join(_as_given(raw, rejected["row_number"]), on="row_number")
    return ValidatedStock(
        kept=kept.with_columns(_nom_entreprise()).select(OUTPUT_COLUMNS),
        rejected=rejected.select(list(REJECTED_SCHEMA)).cast(REJECTED_SCHEMA),  # type: ignore[arg-type]
        rows_read=int(blank.len()),
        blank_lines=int(blank.sum()),
        encoding=stock.encoding,
    )


def _as_given(raw: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """The values of ``rows`` as given, in JSON (``raw`` of raw_companies_rejected): only for
    the rejected rows, as a national stock's every row in JSON would double its memory."""
    return raw.filter(pl.col("row_number").is_in(rows.implode())).select(
        "row_number", pl.struct(INSEE_COLUMNS).struct.json_encode().alias("raw")
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


def _rejection_reasons() -> list[pl.Expr]:
    """``reason`` and ``detail`` of the first rule each row breaks (null when it breaks none)."""
    rules: list[tuple[pl.Expr, str, pl.Expr]] = [
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
    reason = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
    detail = pl.when(rules[0][0]).then(rules[0][2])
    for condition, code, text in rules[1:]:
        reason = reason.when(condition).then(pl.lit(code))
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
