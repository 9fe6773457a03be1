"""ml_scores, its blocking checks, and published_scores: what the API and the marts serve.

A day goes ml_scores → blocking checks → published_scores. The checks are blocking, so a failed
one stops the run before published_scores; published_scores also refuses, on its own, a partition
whose latest ml_scores materialization has not passed every blocking check (the case of a UI user
materializing it alone after a failed run). Readers only ever see published partitions.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,  # not exported by dagster 1.13
)
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.features.assets import FEATURES_KEY
from ma_pipeline.features.quality import Outcome, by_partition, evaluations
from ma_pipeline.lib.metadata import preview
from ma_pipeline.ml.assets import MODELS_KEY
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.ml.scorer import BASELINE_VERSION, Scorer
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.checks import (
    SCORE_COLUMNS,
    coverage_outcome,
    distribution_outcome,
    in_range_outcome,
    no_nulls_outcome,
)
from ma_pipeline.scoring.columns import ML_SCORES_SCHEMA
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.scoring.publication import (
    PUBLISHED_SCORES,
    latest_published,
    publications,
    publish,
    snapshot_paths,
)
from ma_pipeline.warehouse import (
    PARTITION_COLUMN,
    WAREHOUSE_POOL,
    Warehouse,
    WarehouseResource,
    table_for,
)

GROUP = "scoring"
ML_SCORES_KEY = dg.AssetKey([GROUP, "ml_scores"])
PUBLISHED_SCORES_KEY = dg.AssetKey([GROUP, "published_scores"])

COLUMN_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(name=name, type=str(dtype)) for name, dtype in ML_SCORES_SCHEMA.items()]
)


@dataclass(frozen=True)
class Reference:
    """The partition a day is compared with (carry-over, score drift)."""

    rows: pl.DataFrame
    label: str


def published_before(warehouse: Warehouse, day: date) -> Reference | None:
    """The newest published partition before ``day``, as readers saw it."""
    earlier = publications(warehouse).filter(pl.col("partition_date") < day)
    if earlier.is_empty():
        return None
    previous = earlier["partition_date"][0]
    rows = warehouse.read(PUBLISHED_SCORES, start=previous, end=previous)
    return Reference(rows, f"published partition {previous}")


def in_run(day: date, rows: pl.DataFrame) -> Reference:
    """A previous day of the same single-run backfill: the reference of the next day."""
    return Reference(rows, f"partition {day} of this run")


def _models(scorers: dict[str, Scorer]) -> dict[str, str]:
    """Score -> its model version, and whether it is a champion or the rule baseline."""
    kind = {True: "rule baseline", False: "champion"}
    return {s: f"{v.version} ({kind[v.version == BASELINE_VERSION]})" for s, v in scorers.items()}


@dg.asset(
    key=ML_SCORES_KEY,
    group_name=GROUP,
    ins={"company_features": dg.AssetIn(key=FEATURES_KEY)},
    deps=[MODELS_KEY],  # the champions, read from MLflow by alias
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars", "lightgbm"},
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
)
def ml_scores(
    context: dg.AssetExecutionContext,
    company_features: pl.DataFrame,
    mlflow: MlflowResource,
    warehouse: WarehouseResource,
) -> dg.Output[pl.DataFrame]:
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
    interval between the champions' split thresholds) or whose champion changed since the newest
    published partition before the day are recomputed; the others keep that partition's scores,
    reasons and ``calculated_at``, exactly as a recomputation would give them. In a single-run
    backfill, each day's reference is the previous day of the run once scored. Champions are
    loaded once per run.
    """
    scorers = mlflow.scorers()
    backend = warehouse.backend()
    keys = sorted(context.partition_keys)
    features = by_partition(company_features, keys)
    reference = published_before(backend, date.fromisoformat(keys[0]))
    now = datetime.now(UTC)
    frames, per_day = [], []
    for key in keys:
        scored = score_day(features[key], scorers, reference.rows if reference else None, now)
        frames.append(scored.frame)
        per_day.append(
            {
                "partition": key,
                "companies": scored.frame.height,
                "recomputed": scored.recomputed,
                "carried_over": scored.carried_over,
                "reference": reference.label if reference else "none: scored from scratch",
            }
        )
        reference = in_run(date.fromisoformat(key), scored.frame)
    scores = pl.concat(frames)
    labels = _models(scorers)
    if all(s.version == BASELINE_VERSION for s in scorers.values()):
        context.log.warning("no champion model yet: the rule baseline scores every company")
    context.log.info(
        f"{scores.height} scores over {len(keys)} day(s):"
        f" {sum(d['recomputed'] for d in per_day)} recomputed,"
        f" {sum(d['carried_over'] for d in per_day)} carried over; models {labels}"
    )
    top = scores.sort("score_ma", descending=True).select(
        "partition_date", "siren", "nom_entreprise", "score_ma", "ma_reason_1_feature"
    )
    return dg.Output(
        scores,
        metadata={
            "models": labels,
            "by_partition": preview(pl.DataFrame(per_day), len(per_day)),
            "recomputed": sum(d["recomputed"] for d in per_day),
            "carried_over": sum(d["carried_over"] for d in per_day),
            "score_means": {c: round(scores[c].mean() or 0.0, 2) for c in SCORE_COLUMNS},
            "top_targets": preview(top),
        },
    )


class ScoreChecksConfig(dg.Config):
    """The score-drift threshold of the blocking checks (None: MA_SCORE_PSI_MAX at launch)."""

    psi_max: float | None = Field(
        default=None,
        description="PSI of a score against the reference partition above which it is not"
        " published (only when the score's model is the reference's)",
    )
    launch = settings.launch_defaults(psi_max="MA_SCORE_PSI_MAX")
    bins: int = Field(default=10, description="Quantile bins of the reference, per score")


CHECKS = {
    "scores_in_range": "Every score and the confidence within 0-100.",
    "one_row_per_company": "Exactly the SIRENs of the day's company_features, once each.",
    "no_null_scores": "No missing score, confidence, scorer, model version or feature hash.",
    "score_distribution": "PSI of each score against the newest published partition before"
    " the day (or the run's previous day), over psi_max blocks when the model is unchanged.",
}


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name,
            asset=ML_SCORES_KEY,
            additional_deps=[FEATURES_KEY] if name == "one_row_per_company" else None,
            partitions_def=daily_partitions,
            blocking=True,
            description=f"{description} ERROR, blocking: the partition is not published.",
        )
        for name, description in CHECKS.items()
    ],
    ins={"ml_scores": dg.AssetIn(key=ML_SCORES_KEY)},
    pool=WAREHOUSE_POOL,
)
def ml_scores_blocking_checks(
    context: dg.AssetCheckExecutionContext,
    config: ScoreChecksConfig,
    warehouse: WarehouseResource,
    ml_scores: pl.DataFrame,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """The four rules of ``scoring.checks`` on each partition of the run, one evaluation each;
    company_features is read for its SIRENs only."""
    keys = sorted(context.partition_keys)
    first, last = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    backend = warehouse.backend()
    scores = by_partition(ml_scores, keys)
    sirens = backend.read(
        table_for(FEATURES_KEY), start=first, end=last, columns=[PARTITION_COLUMN, "siren"]
    )
    features = by_partition(sirens, keys)
    reference = published_before(backend, first)
    outcomes: dict[str, dict[str, Outcome]] = {}
    for key in keys:
        rows = scores[key]
        outcomes[key] = {
            "scores_in_range": in_range_outcome(rows),
            "one_row_per_company": coverage_outcome(rows, features[key]),
            "no_null_scores": no_nulls_outcome(rows),
            "score_distribution": distribution_outcome(
                rows,
                reference.rows if reference else None,
                reference.label if reference else "no published partition before the day",
                threshold=config.psi_max,
                bins=config.bins,
            ),
        }
        reference = in_run(date.fromisoformat(key), rows)
    yield from evaluations(context, outcomes)


def _not_passed(context: dg.AssetExecutionContext, keys: list[str]) -> dict[str, list[str]]:
    """Partition -> the blocking checks its latest ml_scores materialization has not passed."""
    check_keys = list(ml_scores_blocking_checks.check_keys)
    infos = context.instance.event_log_storage.get_asset_check_partition_info(
        check_keys, partition_keys=keys
    )
    passed = {
        (i.check_key, i.partition_key)
        for i in infos
        if i.latest_execution_status == AssetCheckExecutionRecordStatus.SUCCEEDED and i.is_current
    }
    missing = {key: [c.name for c in check_keys if (c, key) not in passed] for key in keys}
    return {key: names for key, names in missing.items() if names}


@dg.asset(
    key=PUBLISHED_SCORES_KEY,
    group_name="serving",
    deps=[ML_SCORES_KEY],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
)
def published_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The checked ml_scores partitions, copied to ``scoring.published_scores`` and recorded in
    ``scoring.score_publications`` (plus the Parquet snapshot the API reads on DuckDB): what
    every reader serves. The newest published partition is the served date."""
    keys = sorted(context.partition_keys)
    unchecked = _not_passed(context, keys)
    if unchecked:
        raise dg.Failure(
            description="not published: these ml_scores partitions have not passed their"
            f" blocking checks on their latest materialization: {unchecked}",
            allow_retries=False,
        )
    backend = warehouse.backend()
    snapshot = snapshot_paths(warehouse.data_dir) if backend.dialect == "duckdb" else None
    records = pl.concat(
        publish(backend, date.fromisoformat(key), context.run.run_id, snapshot) for key in keys
    )
    served = latest_published(backend)
    context.log.info(f"published {', '.join(keys)}; readers now serve {served}")
    metadata: dict[str, Any] = {
        "publications": preview(records, records.height),
        "served_date": str(served),
    }
    if snapshot is not None:
        metadata["snapshot"] = dg.MetadataValue.path(str(snapshot.root))
    return dg.MaterializeResult(metadata=metadata)
