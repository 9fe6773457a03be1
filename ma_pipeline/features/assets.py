"""company_features, and the data-quality checks of the tables it reads and of itself."""

import sys
from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.personal import shareable
from ma_pipeline.features import compute
from ma_pipeline.features.compute import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    FeatureInputs,
    compute_features,
)
from ma_pipeline.features.quality import TABLES, coverage_outcome, table_checks
from ma_pipeline.features.schemas import FEATURE_COLUMNS
from ma_pipeline.lib import owners
from ma_pipeline.lib.checks import Outcome, by_partition, evaluations
from ma_pipeline.lib.drift import drift_outcome
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

DRIFT_FEATURES = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]

COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(
            name=name,
            type=str(column.dtype),
            description=column.description,
            constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
        )
        for name, column in FEATURE_COLUMNS.items()
    ]
)


@dg.asset(
    key=keys.COMPANY_FEATURES,
    group_name="features",
    owners=owners.DATA,
    code_version=source_version(sys.modules[__name__], compute),
    ins={
        "target_companies": dg.AssetIn(key=keys.TARGET_COMPANIES),
        **{key.path[-1]: dg.AssetIn(key=key) for key in keys.PAPPERS_TABLES},
    },
    deps=[keys.RAW_COMPANIES],  # the targets' rows only, looked up in the warehouse
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
)
def company_features(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    target_companies: pl.DataFrame,
    pappers_companies: pl.DataFrame,
    pappers_finances: pl.DataFrame,
    pappers_dirigeants: pl.DataFrame,
    pappers_procedures: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per target company of the day (``target_companies``), with features computed
    as of that day (``compute.compute_features``: only accounts, dirigeants and procedures known
    by then). Companies Pappers did not answer for keep their SIRENE features and nulls
    elsewhere."""
    days = list(context.partition_keys)
    keys_of_targets = target_companies.select(PARTITION_COLUMN, "siren")
    companies = by_partition(
        warehouse.backend().lookup(tables.RAW_COMPANIES, keys_of_targets), days
    )
    pappers = [
        by_partition(frame, days)
        for frame in (pappers_companies, pappers_finances, pappers_dirigeants, pappers_procedures)
    ]
    features = pl.concat(
        compute_features(
            FeatureInputs(companies[key], *(frames[key] for frames in pappers)),
            date.fromisoformat(key),
        )
        for key in days
    )
    unknown = features.filter(pl.col("nb_dirigeants").is_null()).height
    context.log.info(
        f"{features.height} companies over {len(days)} day(s); {unknown} unknown to Pappers"
    )
    # Over the run's partitions; the null_rates check gives each partition's.
    null_rates = features.select(pl.all().null_count() / max(features.height, 1)).row(0, named=True)
    return dg.Output(
        features,
        metadata={
            "null_rates": {column: round(rate, 4) for column, rate in null_rates.items()},
            "unknown_to_pappers": unknown,
            "preview": preview(shareable(features)),  # the UI shows no age, no person's name
        },
    )


quality_checks = [table_checks(contract) for contract in TABLES]


class DriftConfig(dg.Config):
    """PSI thresholds of the drift check (None: MA_FEATURE_DRIFT_PSI_WARN and _ERROR at launch)."""

    psi_warn: float | None = Field(
        default=None, description="PSI of a feature above which the drift check fails as a WARN"
    )
    psi_error: float | None = Field(
        default=None, description="PSI of a feature above which the drift check fails as an ERROR"
    )
    launch = settings.launch_defaults(
        psi_warn="MA_FEATURE_DRIFT_PSI_WARN", psi_error="MA_FEATURE_DRIFT_PSI_ERROR"
    )
    bins: int = Field(default=10, description="Quantile bins of the reference, per feature")


def _references(
    backend: Warehouse, loaded: dict[str, pl.DataFrame], days: list[str]
) -> dict[str, tuple[pl.DataFrame | None, str]]:
    """Each partition's drift reference and what it is: the champion's training sample when
    training has written one, else the previous materialized partition, else none."""
    if backend.columns(tables.FEATURE_REFERENCE):
        sample = backend.read(tables.FEATURE_REFERENCE)
        versions = ", ".join(sorted(map(str, sample["model_version"].unique())))
        return dict.fromkeys(
            days, (sample, f"{tables.FEATURE_REFERENCE}, model version {versions}")
        )
    table = tables.COMPANY_FEATURES
    stored = backend.partitions(table)
    references: dict[str, tuple[pl.DataFrame | None, str]] = {}
    for key in days:
        earlier = [day for day in stored if day < date.fromisoformat(key)]
        if not earlier:
            references[key] = (None, "no reference yet: no champion model, no earlier partition")
            continue
        previous = earlier[-1]
        rows = loaded.get(str(previous))
        if rows is None:
            rows = backend.read(table, start=previous, end=previous)
        references[key] = (rows, f"previous partition {previous}")
    return references


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "no_silent_drops",
            asset=keys.COMPANY_FEATURES,
            additional_deps=[keys.TARGET_COMPANIES],
            partitions_def=daily_partitions,
            description="Feature rows are exactly the day's target companies. ERROR.",
        ),
        dg.AssetCheckSpec(
            "drift",
            asset=keys.COMPANY_FEATURES,
            # The champion's training sample, written by ma_models when it promotes one.
            additional_deps=[keys.FEATURE_REFERENCE],
            partitions_def=daily_partitions,
            description="PSI of each model feature against the champion's training sample (or"
            " the previous partition). WARN over psi_warn, ERROR over psi_error.",
        ),
    ],
    ins={
        "company_features": dg.AssetIn(key=keys.COMPANY_FEATURES),
        "target_companies": dg.AssetIn(key=keys.TARGET_COMPANIES),
    },
    pool=WAREHOUSE_POOL,
)
def company_features_coverage_and_drift(
    context: dg.AssetCheckExecutionContext,
    config: DriftConfig,
    warehouse: WarehouseResource,
    company_features: pl.DataFrame,
    target_companies: pl.DataFrame,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    days = list(context.partition_keys)
    features = by_partition(company_features, days)
    targets = by_partition(target_companies, days)
    references = _references(warehouse.backend(), features, days)
    outcomes: dict[str, dict[str, Outcome]] = {}
    for key in days:
        reference, label = references[key]
        outcomes[key] = {
            "no_silent_drops": coverage_outcome(features[key], targets[key]),
            "drift": drift_outcome(
                reference,
                features[key],
                DRIFT_FEATURES,
                label,
                warn=config.psi_warn,
                error=config.psi_error,
                bins=config.bins,
            ),
        }
    yield from evaluations(context, outcomes)
