"""SIRENE's succession links between establishments (``StockEtablissementLiensSuccession``), read
as candidate transfers of a business from one legal unit to another.

Read from ``StockEtablissementLiensSuccession*.csv`` in the landing folder (INSEE's file, comma
separated, UTF-8; ``OPEN_DATA.md`` §3). A link is a candidate transfer when the predecessor
establishment's SIREN (the first 9 digits of its SIRET) differs from the successor's, the
activity continues (``continuiteEconomique``) and it is not a move of the head office
(``transfertSiege``). INSEE's flags are read as ``true``/``false`` or ``O``/``N``: the files seen
by the code this is built from use the first, and the encoding is not documented.

A candidate is weaker evidence than a BODACC sale (an establishment can pass to another unit in
a group reorganisation, or by a lease), so candidates are kept in their own table, dated by
``dateLienSuccession``, the predecessor's SIREN as the company that handed the business over,
and are not M&A labels by themselves.
"""

import re
from pathlib import Path

import polars as pl

from ma_pipeline.contracts.siren import siren_problem_expr
from ma_pipeline.ingestion.landing import Download

LINKS_FILE = re.compile(r"^StockEtablissementLiensSuccession.*\.csv$", re.IGNORECASE)
SOURCE = "sirene_succession"
COLUMNS = (
    "siretEtablissementPredecesseur",
    "siretEtablissementSuccesseur",
    "dateLienSuccession",
    "transfertSiege",
    "continuiteEconomique",
)
CANDIDATE_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),  # the predecessor's unit: it handed the business over
    "successor_siren": pl.String(),
    "event_date": pl.Date(),
    "source": pl.String(),
    "reference": pl.String(),  # predecessor SIRET > successor SIRET
}
_TRUE, _FALSE = ("true", "o", "oui", "1"), ("false", "n", "non", "0")


class SuccessionFileError(ValueError):
    """A succession file that cannot be read: names the file and the problem."""


def _flag(column: str) -> pl.Expr:
    value = pl.col(column).str.to_lowercase().str.strip_chars()
    return pl.when(value.is_in(_TRUE)).then(True).when(value.is_in(_FALSE)).then(False)


def candidates(paths: list[Path]) -> pl.DataFrame:
    """The candidate transfers of ``paths`` (``CANDIDATE_SCHEMA``), each link once."""
    frames = []
    for path in paths:
        try:
            links = pl.scan_csv(path, infer_schema=False).select(COLUMNS).collect()
        except (pl.exceptions.ColumnNotFoundError, pl.exceptions.ComputeError) as exc:
            raise SuccessionFileError(
                f"{path.name}: not a succession file, it needs {', '.join(COLUMNS)} ({exc})"
            ) from exc
        frames.append(links)
    if not frames:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    before, after = "siretEtablissementPredecesseur", "siretEtablissementSuccesseur"
    links = pl.concat(frames).unique(maintain_order=True)
    return (
        links.with_columns(
            siren=pl.col(before).str.slice(0, 9),
            successor_siren=pl.col(after).str.slice(0, 9),
            event_date=pl.col("dateLienSuccession").str.to_date("%Y-%m-%d", strict=False),
        )
        .filter(
            (pl.col("siren") != pl.col("successor_siren"))
            & _flag("continuiteEconomique").fill_null(False)
            & ~_flag("transfertSiege").fill_null(True)
            & siren_problem_expr("siren").is_null()
            & siren_problem_expr("successor_siren").is_null()
            & pl.col("event_date").is_not_null()
        )
        .select(
            "siren",
            "successor_siren",
            "event_date",
            pl.lit(SOURCE).alias("source"),
            pl.format("{} > {}", before, after).alias("reference"),
        )
        .sort("siren", "event_date")
    )


DOWNLOAD = Download(
    LINKS_FILE, "StockEtablissementLiensSuccession*.csv", candidates, SuccessionFileError
)
