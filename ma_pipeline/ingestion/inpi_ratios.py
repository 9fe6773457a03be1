"""INPI's financial ratios per company and fiscal year (the ``ratios_inpi_bce`` dataset): the free
source of the revenue history growth features need.

Read from files dropped in the landing folder as ``ratios_inpi*.csv`` (the data.gouv.fr bulk file:
``;``, UTF-8 with a BOM, columns whose case differs from the API's, ``Chiffre_d_affaires``) or
``ratios_inpi*.json`` (an ODS v1 ``records/1.0/search`` answer). Every value is read as text and
converted here, so a malformed number is null, never a failed file. The rules (``OPEN_DATA.md``
§4.1):

- one row per (SIREN, closing date, ``type_bilan``): a repeat keeps the last one read, as the
  annuaire's ETL does;
- a company may publish, for the same year, consolidated (``K``: the group), full (``C``) and
  simplified (``S``) accounts; the row that describes the legal entity is ``chosen``: C, else S,
  else K (then only the group's figures are known, and ``type_bilan`` says so);
- values that cannot be right are flagged in ``implausible``, not dropped: revenue a thousand
  times off the same series' years before and after (a unit slip: 25,287,000 between two years
  near 25e9; at either end of a series, off its one neighbour), and a net income of exactly 0
  beside a revenue.
"""

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ma_pipeline.ingestion.landing import Download

RATIOS_FILE = re.compile(r"^ratios_inpi.*\.(csv|json)$", re.IGNORECASE)
SOURCE = "inpi_ratios"
PREFERENCE = {"C": 0, "S": 1, "K": 2}  # the legal entity's own accounts first
AMOUNTS = ("chiffre_d_affaires", "resultat_net", "ebe", "marge_brute")
RATIOS = (
    "marge_ebe",
    "taux_d_endettement",
    "ratio_de_liquidite",
    "autonomie_financiere",
    "capacite_de_remboursement",
)
RATIOS_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "date_cloture_exercice": pl.Date(),
    "annee": pl.Int32(),
    "type_bilan": pl.String(),
    "confidentiality": pl.String(),
    **{name: pl.Float64() for name in (*AMOUNTS, *RATIOS)},
    "chosen": pl.Boolean(),
    "implausible": pl.String(),
    "source": pl.String(),
    "reference": pl.String(),
}
JUMP = 500.0  # a ratio this far from the neighbouring year is a unit slip, not a business


class RatiosFileError(ValueError):
    """A ratios file that cannot be read: names the file and the problem."""


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                for line, row in enumerate(csv.DictReader(handle, delimiter=";"), start=2):
                    yield {k.lower(): v for k, v in row.items()} | {"_ref": f"{path.name}:{line}"}
        else:
            for record in json.loads(path.read_text(encoding="utf-8")).get("records", []):
                yield record["fields"] | {"_ref": record.get("recordid", path.name)}
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error, KeyError) as exc:
        raise RatiosFileError(f"{path.name}: not an INPI ratios file ({exc})") from exc


def read_ratios(paths: list[Path]) -> pl.DataFrame:
    """The rows of ``paths`` in ``RATIOS_SCHEMA``, deduplicated, chosen and flagged."""
    read = [row for path in paths for row in _rows(path)]
    if not read:
        return pl.DataFrame(schema=RATIOS_SCHEMA)
    # Every value as text first: the JSON's numbers and the CSV's strings convert alike below.
    raw = pl.DataFrame(read, infer_schema_length=None).with_columns(pl.all().cast(pl.String))
    missing = [c for c in ("siren", "date_cloture_exercice", "type_bilan") if c not in raw.columns]
    if missing:
        raise RatiosFileError(f"{', '.join(p.name for p in paths)}: no column {', '.join(missing)}")
    number = {c: pl.col(c).cast(pl.Float64, strict=False) for c in (*AMOUNTS, *RATIOS)}
    rows = (
        raw.select(
            pl.col("siren").str.replace_all(" ", ""),
            pl.col("date_cloture_exercice").str.to_date("%Y-%m-%d", strict=False),
            pl.col("type_bilan").str.to_uppercase(),
            pl.col("confidentiality")
            if "confidentiality" in raw.columns
            else pl.lit(None, pl.String).alias("confidentiality"),
            *(number[c] if c in raw.columns else pl.lit(None, pl.Float64).alias(c) for c in number),
            pl.col("_ref").alias("reference"),
        )
        .drop_nulls(["siren", "date_cloture_exercice", "type_bilan"])
        .unique(["siren", "date_cloture_exercice", "type_bilan"], keep="last", maintain_order=True)
        .sort("siren", "type_bilan", "date_cloture_exercice")
    )
    revenue = pl.col("chiffre_d_affaires")
    series = ["siren", "type_bilan"]
    before, after = revenue.shift(1).over(series), revenue.shift(-1).over(series)

    def off(other: pl.Expr) -> pl.Expr:
        ratio = (revenue / other).abs()
        return (ratio >= JUMP) | (ratio <= 1 / JUMP)

    # The outlier is off both neighbours (or its only one): its neighbours are off it alone.
    jump = (off(before) & (off(after) | after.is_null())) | (off(after) & before.is_null())
    flags = pl.concat_str(
        pl.when(jump).then(pl.lit("chiffre_d_affaires x1000 off its neighbour years")),
        pl.when((pl.col("resultat_net") == 0) & (revenue > 0)).then(pl.lit("resultat_net 0")),
        separator="; ",
        ignore_nulls=True,
    )
    rank = pl.col("type_bilan").replace_strict(PREFERENCE, default=9, return_dtype=pl.Int32)
    return (
        rows.with_columns(
            annee=pl.col("date_cloture_exercice").dt.year().cast(pl.Int32),
            implausible=pl.when(flags != "").then(flags),
            chosen=rank == rank.min().over("siren", "date_cloture_exercice"),
            source=pl.lit(SOURCE),
        )
        .select(list(RATIOS_SCHEMA))
        .sort("siren", "date_cloture_exercice", "type_bilan")
    )


DOWNLOAD = Download(
    RATIOS_FILE, "ratios_inpi*.csv or ratios_inpi*.json", read_ratios, RatiosFileError
)
