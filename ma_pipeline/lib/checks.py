"""Per-partition asset checks: rules give an ``Outcome`` per partition, and ``evaluations``
reports them to Dagster, one evaluation per check and per partition.

Why per-partition evaluations are built by hand: Dagster 1.13 runs a check with a
``partitions_def`` as one step for the whole range of a single-run backfill, and its
``AssetCheckResult`` only carries a partition when the run has a single partition key. A result
yielded for a 30-day backfill would mark no partition, and the 30 per-partition rows the run
planned would stay "in progress" in the UI. So each check yields one ``AssetCheckEvaluation`` per
partition, pointing at that partition's materialization (without that pointer the UI treats the
result as stale), then the empty outputs Dagster expects of the step.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
import polars as pl

# No public constructor in 1.13; partitioned checks are still being built (dagster#17005).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from ma_pipeline.contracts.tables import PARTITION_COLUMN

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
SAMPLE_ROWS = 20


@dataclass(frozen=True)
class Outcome:
    """The result of one rule on one partition."""

    passed: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Coverage:
    """Rows against the SIRENs expected, one row each: the expected SIRENs without a row, the
    SIRENs with a row that were not expected, and the duplicate rows."""

    missing: pl.Series
    unexpected: pl.Series
    duplicated: int

    @classmethod
    def of(cls, rows: pl.DataFrame, expected: pl.DataFrame) -> "Coverage":
        return cls(
            missing=expected.join(rows, on="siren", how="anti")["siren"],
            unexpected=rows.join(expected, on="siren", how="anti")["siren"].unique(
                maintain_order=True
            ),
            duplicated=rows.height - rows["siren"].n_unique(),
        )

    @property
    def exact(self) -> bool:
        return self.missing.is_empty() and self.unexpected.is_empty() and self.duplicated == 0

    def counts(self) -> dict[str, int]:
        return {
            "missing": self.missing.len(),
            "unexpected": self.unexpected.len(),
            "duplicated": self.duplicated,
        }

    def samples(self) -> dict[str, list[str]]:
        """The first SIRENs of each kind, for the check's metadata."""
        return {
            "missing_sirens": self.missing.head(SAMPLE_ROWS).to_list(),
            "unexpected_sirens": self.unexpected.head(SAMPLE_ROWS).to_list(),
        }


def by_partition(frame: pl.DataFrame, keys: list[str]) -> dict[str, pl.DataFrame]:
    """The rows of each partition key (an empty frame for a partition without rows)."""
    if PARTITION_COLUMN not in frame.columns:  # nothing was loaded
        return dict.fromkeys(keys, frame)
    parts = frame.partition_by(PARTITION_COLUMN, as_dict=True, include_key=True)
    return {key: parts.get((date.fromisoformat(key),), frame.clear()) for key in keys}


def _target(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The partition's latest materialization, which the evaluation is about."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id,
        run_id=records[0].run_id,
        timestamp=records[0].timestamp,
    )


def evaluations(
    context: dg.AssetCheckExecutionContext, outcomes: Mapping[str, Mapping[str, Outcome]]
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """One evaluation per partition of the run and per check of the step (``outcomes`` is keyed
    by partition key, then check name), then the step's outputs."""
    assets_def = context.op_execution_context.assets_def
    specs = list(assets_def.check_specs)
    for partition in context.partition_keys:
        targets = {key: _target(context, key, partition) for key in {s.asset_key for s in specs}}
        for spec in specs:
            outcome = outcomes[partition][spec.name]
            yield dg.AssetCheckEvaluation(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=outcome.passed,
                metadata=outcome.metadata,
                severity=outcome.severity,
                description=outcome.description,
                blocking=spec.blocking,
                partition=partition,
                target_materialization_data=targets[spec.asset_key],
            )
    for spec in specs:
        yield dg.Output(None, output_name=assets_def.get_output_name_for_asset_check_key(spec.key))


def passed_partitions(
    instance: dg.DagsterInstance, checks: Sequence[dg.AssetCheckKey], partitions: Sequence[str]
) -> set[str]:
    """The partitions whose latest materialization passed every one of ``checks``."""
    # No public read of per-partition check status in 1.13 (dagster#17005).
    infos = instance.event_log_storage.get_asset_check_partition_info(
        list(checks), partition_keys=list(partitions)
    )
    passed = {
        (info.check_key, info.partition_key)
        for info in infos
        if info.latest_execution_status.value == "SUCCEEDED" and info.is_current
    }
    return {p for p in partitions if all((check, p) in passed for check in checks)}
