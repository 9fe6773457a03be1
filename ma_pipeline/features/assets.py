"""company_features, and the data-quality checks of the tables it reads and of itself."""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.features.compute import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    FeatureInputs,
    compute_features,
)
from ma_pipeline.features.drift import drift_outcome
from ma_pipeline.features.quality import (
    TABLES,
    Outcome,
    by_partition,
    coverage_outcome,
    evaluations,
    table_checks,
)
from ma_pipeline.features.schemas import FEATURE_COLUMNS
from ma_pipeline.lib.metadata import preview
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import WAREHOUSE_POOL, TableRef, Warehouse, WarehouseResource
from ma_pipeline.warehouse.io_manager import table_for

GROUP = "features"
FEATURES_KEY = dg.AssetKey([GROUP, "company_features"])
RAW_COMPANIES_KEY = dg.AssetKey(["ingestion", "raw_companies"])
PAPPERS = ("pappers_companies", "pappers_finances", "pappers_dirigeants", "pappers_procedures")
# Written by training: a sample of the champion's training features, plus model_version.
FEATURE_REFERENCE = TableRef("ml", "feature_reference")
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
    key=FEATURES_KEY,
    group_name=GROUP,
    ins={
        "raw_companies": dg.AssetIn(key=RAW_COMPANIES_KEY),
        **{name: dg.AssetIn(key=["enrichment", name]) for name in PAPPERS},
    },
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
)
def company_features(
    context: dg.AssetExecutionContext,
    raw_companies: pl.DataFrame,
    pappers_companies: pl.DataFrame,
    pappers_finances: pl.DataFrame,
    pappers_dirigeants: pl.DataFrame,
    pappers_procedures: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per active company (etat A) of the day, with features computed as of that day
    (``compute.compute_features``: only accounts, dirigeants and procedures known by then).
    Ceased companies are not scored; companies Pappers did not answer for keep their SIRENE
    features and nulls elsewhere."""
    keys = list(context.partition_keys)
    companies = by_partition(raw_companies.filter(pl.col("etat_administratif") == "A"), keys)
    pappers = [
        by_partition(frame, keys)
        for frame in (pappers_companies, pappers_finances, pappers_dirigeants, pappers_procedures)
    ]
    features = pl.concat(
        compute_features(
            FeatureInputs(companies[key], *(frames[key] for frames in pappers)),
            date.fromisoformat(key),
        )
        for key in keys
    )
    unknown = features.filter(pl.col("nb_dirigeants").is_null()).height
    context.log.info(
        f"{features.height} companies over {len(keys)} day(s); {unknown} unknown to Pappers"
    )
    # Over the run's partitions; the null_rates check gives each partition's.
    null_rates = features.select(pl.all().null_count() / max(features.height, 1)).row(0, named=True)
    return dg.Output(
        features,
        metadata={
            "null_rates": {column: round(rate, 4) for column, rate in null_rates.items()},
            "unknown_to_pappers": unknown,
            "preview": preview(features),
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
    backend: Warehouse, loaded: dict[str, pl.DataFrame], keys: list[str]
) -> dict[str, tuple[pl.DataFrame | None, str]]:
    """Each partition's drift reference and what it is: the champion's training sample when
    training has written one, else the previous materialized partition, else none."""
    if backend.columns(FEATURE_REFERENCE):
        sample = backend.read(FEATURE_REFERENCE)
        versions = ", ".join(sorted(map(str, sample["model_version"].unique())))
        return dict.fromkeys(keys, (sample, f"{FEATURE_REFERENCE}, model version {versions}"))
    table = table_for(FEATURES_KEY)
    stored = backend.partitions(table)
    references: dict[str, tuple[pl.DataFrame | None, str]] = {}
    for key in keys:
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
            asset=FEATURES_KEY,
            additional_deps=[RAW_COMPANIES_KEY],
            partitions_def=daily_partitions,
            description="Feature rows are the active companies of the day's raw_companies,"
            " with the difference (ceased, created later) counted. ERROR.",
        ),
        dg.AssetCheckSpec(
            "drift",
            asset=FEATURES_KEY,
            partitions_def=daily_partitions,
            description="PSI of each model feature against the champion's training sample (or"
            " the previous partition). WARN over psi_warn, ERROR over psi_error.",
        ),
    ],
    ins={
        "company_features": dg.AssetIn(key=FEATURES_KEY),
        "raw_companies": dg.AssetIn(key=RAW_COMPANIES_KEY),
    },
    pool=WAREHOUSE_POOL,
)
def company_features_coverage_and_drift(
    context: dg.AssetCheckExecutionContext,
    config: DriftConfig,
    warehouse: WarehouseResource,
    company_features: pl.DataFrame,
    raw_companies: pl.DataFrame,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    keys = list(context.partition_keys)
    features = by_partition(company_features, keys)
    companies = by_partition(raw_companies, keys)
    references = _references(warehouse.backend(), features, keys)
    outcomes: dict[str, dict[str, Outcome]] = {}
    for key in keys:
        reference, label = references[key]
        outcomes[key] = {
            "no_silent_drops": coverage_outcome(
                features[key], companies[key], date.fromisoformat(key)
            ),
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
