"""The point-in-time training set: features as of monthly dates, labels from the 12 months after.

One Pappers snapshot (the newest partition) keeps every fiscal year with its closing date, every
dirigeant with birth and start dates and every dated procedure, so ``compute_features``, the
function that computes ``company_features``, rebuilds what was known on any earlier as-of date D
(see its module's rules). Labels look only at the window (D, D + 12 months]:

- ``label_ma_12m``: an M&A event (``ma_events``) in the window;
- ``label_detresse_12m``: a collective procedure opened in the window;
- ``label_croissance_12m``: the fiscal year after the last one known on D (same filing rule as
  the features) shows annualised revenue up ``GROWTH_THRESHOLD`` or more; null when either year
  is missing from the snapshot (not filed yet, confidential) or the base revenue is not positive.

An as-of date is used only once its window has closed (D + 12 months <= snapshot day).

Companies of D: those of the snapshot's universe created on or before D and not ceased by D,
**and known to the snapshot's Pappers tables**: the models learn from the target universe
(``target_companies``), the companies they will score. Enrichment asks Pappers about active
targets only, so a company that ceased between D and the snapshot has no registry data: kept, it
would carry null features whose nullness comes from its future (an absorbed company ceases), and
a distress label of 0 whatever happened to it. Leaving it out is the honest choice; the cost,
stated in the model card, is a survivor bias (events that end a company are under-represented).
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import date

import polars as pl

from ma_pipeline.contracts.tables import PAPPERS_TABLES, PARTITION_COLUMN, RAW_COMPANIES
from ma_pipeline.features.compute import FeatureConfig, FeatureInputs, compute_features
from ma_pipeline.ml.scorer import LABELS
from ma_pipeline.warehouse import Warehouse

HORIZON_MONTHS = 12
# Growth label: next fiscal year's revenue up 10 % or more (the baseline's documented target).
GROWTH_THRESHOLD = 0.10
AS_OF = "as_of_date"


@dataclass(frozen=True)
class Snapshot:
    """The newest partition of raw_companies and of the four Pappers tables."""

    day: date
    companies: pl.DataFrame
    pappers_companies: pl.DataFrame
    finances: pl.DataFrame
    dirigeants: pl.DataFrame
    procedures: pl.DataFrame


def read_snapshot(warehouse: Warehouse) -> Snapshot:
    """The newest partition that both raw_companies and pappers_companies hold, read from the
    warehouse (one day of each table, not their history; of raw_companies, the rows of the
    companies Pappers knows)."""
    days = set(warehouse.partitions(RAW_COMPANIES)) & set(warehouse.partitions(PAPPERS_TABLES[0]))
    if not days:
        raise LookupError(
            f"no partition is in both {RAW_COMPANIES} and {PAPPERS_TABLES[0]}: materialize a day of"
            " raw_companies and its Pappers enrichment first"
        )
    day = max(days)
    pappers = [warehouse.read(table, start=day, end=day) for table in PAPPERS_TABLES]
    # Only the companies Pappers knows (the targets it enriched) are trained on: their SIRENE
    # rows are looked up, not the day's whole universe read.
    known = pappers[0].select(pl.lit(day).alias(PARTITION_COLUMN), "siren").unique()
    companies = warehouse.lookup(RAW_COMPANIES, known)
    return Snapshot(day, companies, *pappers)


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clipped to the end of a shorter month."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def as_of_dates(snapshot_day: date, lookback_months: int) -> list[date]:
    """The 1st of each month from ``lookback_months`` before the snapshot's month to 12 months
    before it: every window (D, D + 12 months] has closed by the snapshot day."""
    month = snapshot_day.replace(day=1)
    return [add_months(month, -k) for k in range(lookback_months, HORIZON_MONTHS - 1, -1)]


def companies_as_of(snapshot: Snapshot, day: date) -> pl.DataFrame:
    """The snapshot's companies that existed on ``day`` and that its Pappers tables know."""
    existed = pl.col("date_creation").is_null() | (pl.col("date_creation") <= day)
    active = (pl.col("etat_administratif") == "A") | (pl.col("date_debut") > day)
    known = snapshot.pappers_companies.select("siren").unique()
    return snapshot.companies.filter(existed & active).join(known, on="siren", how="semi")


def _within_window(column: str, day: date) -> pl.Expr:
    return (pl.col(column) > day) & (pl.col(column) <= add_months(day, HORIZON_MONTHS))


def _yearly_revenue(finances: pl.DataFrame) -> pl.DataFrame:
    """Per SIREN and fiscal year: closing day and revenue annualised by the year's length, the
    last closing kept when a year closes twice (as the features do)."""
    return (
        finances.with_columns(
            cloture=pl.coalesce("date_de_cloture_exercice", pl.date(pl.col("annee"), 12, 31)),
            ca_annuel=pl.col("chiffre_affaires")
            * 12.0
            / pl.col("duree_exercice").clip(1, 36).fill_null(12),
        )
        .sort("cloture")
        .unique(["siren", "annee"], keep="last")
        .select("siren", "annee", "cloture", "ca_annuel")
    )


def labels_as_of(
    snapshot: Snapshot, events: pl.DataFrame, day: date, config: FeatureConfig
) -> pl.DataFrame:
    """The three labels of every company known to the snapshot, for the window after ``day``."""
    sirens = snapshot.pappers_companies.select("siren").unique()
    sold = events.filter(_within_window("event_date", day)).select("siren").unique()
    distressed = (
        snapshot.procedures.filter(_within_window("date_debut", day)).select("siren").unique()
    )
    yearly = _yearly_revenue(snapshot.finances)
    known = yearly.filter(
        pl.col("cloture").dt.offset_by(f"{config.filing_lag_months}mo") <= day
    ).filter(pl.col("cloture") == pl.col("cloture").max().over("siren"))
    following = yearly.select(
        "siren", (pl.col("annee") - 1).alias("annee"), pl.col("ca_annuel").alias("ca_suivant")
    )
    growth = known.join(following, on=["siren", "annee"], how="inner").select(
        "siren",
        pl.when(pl.col("ca_annuel") > 0)
        .then(pl.col("ca_suivant") / pl.col("ca_annuel") - 1 >= GROWTH_THRESHOLD)
        .alias(LABELS["croissance"]),
    )
    return sirens.with_columns(
        pl.col("siren").is_in(sold["siren"].implode()).alias(LABELS["ma"]),
        pl.col("siren").is_in(distressed["siren"].implode()).alias(LABELS["stabilite"]),
    ).join(growth, on="siren", how="left")


def build_training_set(
    snapshot: Snapshot,
    events: pl.DataFrame,
    dates: list[date],
    config: FeatureConfig | None = None,
) -> pl.DataFrame:
    """One row per (as-of date, company): ``as_of_date``, the columns of ``company_features``
    computed as of that date, the three labels (``LABELS``) and ``snapshot_date``."""
    config = config or FeatureConfig()
    inputs = (snapshot.pappers_companies, snapshot.finances, snapshot.dirigeants)
    frames = []
    for day in dates:
        if add_months(day, HORIZON_MONTHS) > snapshot.day:
            raise ValueError(f"as-of date {day}: its window ends after the snapshot day")
        features = compute_features(
            FeatureInputs(companies_as_of(snapshot, day), *inputs, snapshot.procedures),
            day,
            config,
        )
        labels = labels_as_of(snapshot, events, day, config)
        frames.append(
            features.rename({"partition_date": AS_OF}).join(labels, on="siren", how="left")
        )
    return pl.concat(frames).with_columns(snapshot_date=pl.lit(snapshot.day)).sort(AS_OF, "siren")
