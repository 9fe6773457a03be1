"""ml_scores and its blocking checks.

A day goes ml_scores → blocking checks → kaspr_contacts → publication. The checks are blocking,
so a failed one stops the run before anything downstream; ``publication`` also refuses, on its
own, a partition whose latest ml_scores materialization has not passed every blocking check.

A day is compared with (carry-over, score drift) the newest earlier partition of ml_scores whose
latest materialization passed its blocking checks: the scores readers saw, read from ml_scores
itself (a self-dependency), never from its published copy downstream.
"""

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.scores import COLUMN_DESCRIPTIONS, KEY_INPUTS, ML_SCORES_SCHEMA
from ma_pipeline.contracts.siren import siren_blocks
from ma_pipeline.lib import owners
from ma_pipeline.lib.checks import Outcome, by_partition, evaluations, passed_partitions
from ma_pipeline.lib.metadata import declared_schema, preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.ml import scorer
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.ml.scorer import BASELINE_VERSION, Scorer
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring import compute
from ma_pipeline.scoring.checks import (
    SCORE_COLUMNS,
    coverage_outcome,
    distribution_outcome,
    in_range_outcome,
    key_inputs_outcome,
    no_nulls_outcome,
)
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

GROUP = "scoring"
# Companies scored at a time: the step's memory follows it, not the universe.
BLOCK_ROWS = 500_000
TOP_ROWS = 10
TOP_COLUMNS = ["partition_date", "siren", "nom_entreprise", "score_ma", "ma_reason_1_feature"]
# Days before a partition searched for its reference (the newest one that passed its checks).
REFERENCE_SEARCH_DAYS = 62

COLUMN_SCHEMA = declared_schema(ML_SCORES_SCHEMA, COLUMN_DESCRIPTIONS)


@dataclass(frozen=True)
class Reference:
    """The partition a day is compared with (carry-over, score drift)."""

    day: date
    label: str

    def rows(self, warehouse: Warehouse, sirens: tuple[str, str] | None = None) -> pl.DataFrame:
        """Its ml_scores rows (only SIRENs in [first, last] with ``sirens``)."""
        return warehouse.read(tables.ML_SCORES, start=self.day, end=self.day, sirens=sirens)


def checked_before(
    warehouse: Warehouse, instance: dg.DagsterInstance, day: date
) -> Reference | None:
    """The newest ml_scores partition before ``day`` whose latest materialization passed every
    blocking check: the scores readers saw."""
    # The days before, from Dagster's check records: no scan of ml_scores for its partitions.
    candidates = [
        (day - timedelta(days=k)).isoformat() for k in range(1, REFERENCE_SEARCH_DAYS + 1)
    ]
    passed = passed_partitions(instance, BLOCKING_CHECKS, candidates)
    if not passed:
        return None
    previous = date.fromisoformat(max(passed))
    return Reference(previous, f"checked partition {previous}")


def in_run(day: date) -> Reference:
    """A previous day of the same single-run backfill: the reference of the next day."""
    return Reference(day, f"partition {day} of this run")


class ScoringConfig(dg.Config):
    """How many companies are scored at a time."""

    block_rows: int = Field(
        default=BLOCK_ROWS,
        gt=0,
        description="Companies read, scored and written at a time, in SIREN order: the step's"
        " memory follows this, not the universe",
    )


@dataclass
class DayScores:
    """What a day's blocks add up to, for the metadata, without holding the day."""

    companies: int = 0
    recomputed: int = 0
    carried_over: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SCORE_COLUMNS, 0.0))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCORE_COLUMNS, 0))
    top: pl.DataFrame | None = None

    def add(self, scored: compute.ScoredDay) -> None:
        """Count a scored block in."""
        frame = scored.frame
        self.merge(
            DayScores(
                frame.height,
                scored.recomputed,
                scored.carried_over,
                {c: frame[c].sum() or 0.0 for c in SCORE_COLUMNS},
                {c: frame[c].count() for c in SCORE_COLUMNS},
                frame.select(TOP_COLUMNS),
            )
        )

    def merge(self, other: "DayScores") -> None:
        self.companies += other.companies
        self.recomputed += other.recomputed
        self.carried_over += other.carried_over
        for column in SCORE_COLUMNS:
            self.sums[column] += other.sums[column]
            self.counts[column] += other.counts[column]
        tops = [t for t in (self.top, other.top) if t is not None]
        if tops:
            ranked = pl.concat(tops).sort("score_ma", descending=True, nulls_last=True)
            self.top = ranked.head(TOP_ROWS)

    def means(self) -> dict[str, float]:
        return {c: self.sums[c] / self.counts[c] if self.counts[c] else 0.0 for c in SCORE_COLUMNS}


def _models(scorers: dict[str, Scorer]) -> dict[str, str]:
    """Score -> its model version, and whether it is a champion or the rule baseline."""
    kind = {True: "rule baseline", False: "champion"}
    return {s: f"{v.version} ({kind[v.version == BASELINE_VERSION]})" for s, v in scorers.items()}


CHECKS = {
    "scores_in_range": "Every score and the confidence within 0-100.",
    "one_row_per_company": "Exactly the SIRENs of the day's company_features, once each.",
    "no_null_scores": "No missing confidence, scorer, model version or feature hash; a missing"
    " score only with its reason (unscored_{score}).",
    "top_not_blind": "No score's top 1 % made for more than half of companies missing its key"
    " inputs (contracts.scores.KEY_INPUTS: a model artefact, not targets).",
    "score_distribution": "PSI of each score against the newest earlier partition that passed"
    " its checks (or the run's previous day), over psi_max blocks when the model is unchanged.",
}
BLOCKING_CHECKS = [dg.AssetCheckKey(keys.ML_SCORES, name) for name in CHECKS]
FEATURE_CHECKS = ("one_row_per_company", "top_not_blind")  # they read company_features


@dg.asset(
    key=keys.ML_SCORES,
    group_name=GROUP,
    owners=owners.ML,
    code_version=source_version(sys.modules[__name__], compute, scorer),
    io_manager_key="view_io_manager",  # written here, block by block
    deps=[
        keys.COMPANY_FEATURES,
        keys.MA_MODELS,  # the champions, read from MLflow by alias
        dg.AssetDep(  # the reference: an earlier partition, carried over
            keys.ML_SCORES,
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars", "lightgbm"},
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
)
def ml_scores(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    mlflow: MlflowResource,
    warehouse: WarehouseResource,
) -> dg.Output[None]:
    """Per company and day: ``score_ma``, ``score_croissance``, ``score_stabilite`` (0-100),
    ``confidence``, the model versions, ``calculated_at`` and the top 5 reasons per score.

    Score = 100 × P(label) from the champion of each score (MLflow alias ``champion``), and
    ``score_stabilite`` = 100 × (1 − P(distress)); before any champion, the rule baseline scores
    and ``scorer`` says ``rule_baseline`` (``champion`` as soon as one score has a champion; the
    ``model_version_*`` columns tell which). Reasons are the five largest LightGBM SHAP
    contributions (``pred_contrib``) in log-odds towards the score. Confidence = 100 ×
    completeness × (0.5 + 0.5 × certainty): the share of known features, and how far the
    probabilities are from 0.5. See ``scoring.compute``.

    Only companies whose feature vector as the models see it (``feature_hash``: each value's
    interval between the champions' split thresholds) or whose champion changed since the
    reference partition (see the module) are recomputed; the others keep that partition's scores,
    reasons and ``calculated_at``, exactly as a recomputation would give them. In a single-run
    backfill, each day's reference is the previous day of the run once scored. Champions are
    loaded once per run.

    Each day is read, scored and written in blocks of ``block_rows`` companies in SIREN order
    (company_features and the reference read by SIREN range, the blocks loaded into the
    partition in one transaction), so the step's memory does not grow with the universe; every
    company is scored on its own, so the blocks give the rows one pass would.
    """
    scorers = mlflow.scorers()
    backend = warehouse.backend()
    days = [date.fromisoformat(key) for key in sorted(context.partition_keys)]
    reference = checked_before(backend, context.instance, days[0])
    now = datetime.now(UTC)
    per_day, totals = [], DayScores()
    for day in days:
        scored = DayScores()
        report = backend.replace_partitions(
            tables.ML_SCORES,
            scored_blocks(backend, day, scorers, reference, now, config.block_rows, scored),
            [day],
        )
        per_day.append(
            {
                "partition": day.isoformat(),
                "companies": scored.companies,
                "recomputed": scored.recomputed,
                "carried_over": scored.carried_over,
                # Stored by change: the rows the day added to the disk.
                "rows_stored": report.changes[day]["rows_stored"],
                "reference": reference.label if reference else "none: scored from scratch",
            }
        )
        totals.merge(scored)
        reference = in_run(day)
    labels = _models(scorers)
    if all(s.version == BASELINE_VERSION for s in scorers.values()):
        context.log.warning("no champion model yet: the rule baseline scores every company")
    context.log.info(
        f"{totals.companies} scores over {len(days)} day(s): {totals.recomputed} recomputed,"
        f" {totals.carried_over} carried over; models {labels}"
    )
    return dg.Output(
        None,
        metadata={
            "models": labels,
            "by_partition": preview(pl.DataFrame(per_day), len(per_day)),
            "recomputed": totals.recomputed,
            "carried_over": totals.carried_over,
            "score_means": {c: round(m, 2) for c, m in totals.means().items()},
            "top_targets": preview(
                totals.top if totals.top is not None else pl.DataFrame(schema=TOP_COLUMNS)
            ),
            "block_rows": config.block_rows,
            "dagster/row_count": totals.companies,
        },
    )


def scored_blocks(
    backend: Warehouse,
    day: date,
    scorers: dict[str, Scorer],
    reference: Reference | None,
    now: datetime,
    block_rows: int,
    scored: DayScores,
) -> Iterator[pl.DataFrame]:
    """The day's ml_scores rows, one block of SIRENs at a time (``siren_blocks``: at least one,
    maybe empty), adding each block's figures to ``scored``."""
    sirens = backend.read(tables.COMPANY_FEATURES, start=day, end=day, columns=["siren"])
    for block in siren_blocks(sirens["siren"], block_rows):
        features = backend.read(tables.COMPANY_FEATURES, start=day, end=day, sirens=block)
        if features.is_empty():  # a day without companies: its one block is empty
            yield pl.DataFrame(schema=ML_SCORES_SCHEMA)
            continue
        rows = reference.rows(backend, block) if reference else None
        day_block = score_day(features, scorers, rows, now)
        scored.add(day_block)
        yield day_block.frame


class ScoreChecksConfig(dg.Config):
    """The score-drift threshold of the blocking checks (None: MA_SCORE_PSI_MAX at launch)."""

    psi_max: float | None = Field(
        default=None,
        description="PSI of a score against the reference partition above which it is not"
        " published (only when the score's model is the reference's)",
    )
    launch = settings.launch_defaults(psi_max="MA_SCORE_PSI_MAX")
    bins: int = Field(default=10, description="Quantile bins of the reference, per score")


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name,
            asset=keys.ML_SCORES,
            additional_deps=[keys.COMPANY_FEATURES] if name in FEATURE_CHECKS else None,
            partitions_def=daily_partitions,
            blocking=True,
            description=f"{description} ERROR, blocking: the partition is not published.",
        )
        for name, description in CHECKS.items()
    ],
    ins={"ml_scores": dg.AssetIn(key=keys.ML_SCORES)},
    pool=WAREHOUSE_POOL,
)
def ml_scores_blocking_checks(
    context: dg.AssetCheckExecutionContext,
    config: ScoreChecksConfig,
    warehouse: WarehouseResource,
    ml_scores: pl.DataFrame,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """The rules of ``scoring.checks`` on each partition of the run, one evaluation each;
    company_features is read for its SIRENs and the scores' key inputs only."""
    days = sorted(context.partition_keys)
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    backend = warehouse.backend()
    scores = by_partition(ml_scores, days)
    inputs = sorted({c for columns in KEY_INPUTS.values() for c in columns})
    read = backend.read(
        tables.COMPANY_FEATURES,
        start=first,
        end=last,
        columns=[PARTITION_COLUMN, "siren", *inputs],
    )
    features = by_partition(read, days)
    reference = checked_before(backend, context.instance, first)
    previous = reference.rows(backend) if reference else None
    label = reference.label if reference else "no checked partition before the day"
    outcomes: dict[str, dict[str, Outcome]] = {}
    for key in days:
        rows = scores[key]
        outcomes[key] = {
            "scores_in_range": in_range_outcome(rows),
            "one_row_per_company": coverage_outcome(rows, features[key]),
            "no_null_scores": no_nulls_outcome(rows),
            "top_not_blind": key_inputs_outcome(rows, features[key].drop(PARTITION_COLUMN)),
            "score_distribution": distribution_outcome(
                rows, previous, label, threshold=config.psi_max, bins=config.bins
            ),
        }
        previous, label = rows, in_run(date.fromisoformat(key)).label
    yield from evaluations(context, outcomes)
