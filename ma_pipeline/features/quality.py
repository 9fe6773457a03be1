"""Data-quality checks of the tables feeding company_features, run per partition.

The rules are pure functions from a partition's rows to an ``Outcome``; ``table_checks`` turns a
table's rules into one multi-asset check that reads the run's partitions once and reports an
evaluation per rule and per partition (``lib.checks``). The checks are their own steps rather
than ``check_specs`` of the assets: most of the tables they guard belong to other assets, and a
data engineer can re-run a partition's checks without recomputing it.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from ma_pipeline.contracts import keys
from ma_pipeline.contracts.personal import MASKED, PERSONAL_COLUMNS
from ma_pipeline.features.schemas import (
    CompanyFeatures,
    CompanyFeaturesPlausible,
    PappersCompanies,
    PappersDirigeants,
    PappersFinances,
    PappersProcedures,
    RawCompanies,
    null_rate_ceilings,
)
from ma_pipeline.lib.checks import (
    ERROR,
    SAMPLE_ROWS,
    WARN,
    Coverage,
    Outcome,
    by_partition,
    evaluations,
)
from ma_pipeline.lib.metadata import preview
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL


# ------------------------------------------------------------------------------------ rules
def _rule() -> pl.Expr:
    """A readable name for a pandera failure: ``column: check``, or the frame-level check."""
    column_check = pl.format("{}: {}", "column", "check")
    missing_column = pl.format("{}: {}", "failure_case", "check")
    return (
        pl.when(pl.col("schema_context") == "Column")
        .then(column_check)
        .when(pl.col("check").is_in(["column_in_dataframe", "column_in_schema"]))
        .then(missing_column)
        .otherwise(pl.col("check"))
        .alias("rule")
    )


def pandera_outcome(
    schema: type[pa.DataFrameModel] | pa.DataFrameSchema,
    frame: pl.DataFrame,
    key: list[str],
    severity: dg.AssetCheckSeverity,
) -> Outcome:
    """Validate ``frame`` lazily; on failure, count the failures per rule and show a sample of
    the failing rows by their ``key``, with the offending value."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases.with_columns(_rule())
    else:
        return Outcome(True, severity, f"{frame.height} rows: every rule holds")
    by_rule = cases.group_by("rule").len().sort("len", descending=True)
    named = [k for k in key if k in frame.columns]
    rows = (
        cases.filter(pl.col("index").is_not_null())
        .join(
            frame.with_row_index("index").select(pl.col("index").cast(pl.Int32), *named),
            on="index",
        )
        .sort("index")
    )
    failing = rows["index"].n_unique()
    rules = dict(zip(by_rule["rule"], by_rule["len"].to_list(), strict=True))
    return Outcome(
        False,
        severity,
        f"{failing} of {frame.height} rows fail; rules broken: {', '.join(rules)}",
        {
            "failing_rows": failing,
            "failures_by_rule": rules,
            "failing_rows_sample": preview(
                rows.select(*named, "rule", _shown_value().alias("value")), SAMPLE_ROWS
            ),
        },
    )


def _shown_value() -> pl.Expr:
    """A failing value as the metadata shows it: never a personal one (an age, a name)."""
    personal = pl.col("column").is_in(list(PERSONAL_COLUMNS))
    return pl.when(personal).then(pl.lit(MASKED)).otherwise(pl.col("failure_case").cast(pl.String))


def unique_outcome(frame: pl.DataFrame, key: list[str]) -> Outcome:
    """One row per ``key`` (ERROR): the duplicated rows are named."""
    schema = pa.DataFrameSchema(unique=key, report_duplicates="all")
    return pandera_outcome(schema, frame, key, ERROR)


def null_rate_outcome(frame: pl.DataFrame, ceilings: Mapping[str, float]) -> Outcome:
    """Share of nulls under each column's ceiling (WARN); every rate is in the metadata."""
    if frame.is_empty():
        return Outcome(True, WARN, "no rows: no null rates")
    rates = (
        frame.select(pl.col(c).null_count() / frame.height for c in ceilings)
        .transpose(include_header=True, header_name="column", column_names=["null_rate"])
        .with_columns(ceiling=pl.Series(list(ceilings.values())))
        .with_columns(over=pl.col("null_rate") > pl.col("ceiling"))
        .sort("null_rate", descending=True)
    )
    over = rates.filter("over")["column"].to_list()
    metadata = {
        "null_rates": preview(rates.with_columns(pl.col("null_rate").round(4)), rates.height),
        "columns_over_ceiling": over,
    }
    if over:
        return Outcome(False, WARN, f"null rate over its ceiling: {', '.join(over)}", metadata)
    return Outcome(True, WARN, f"{len(ceilings)} columns under their null-rate ceiling", metadata)


def coverage_outcome(features: pl.DataFrame, targets: pl.DataFrame) -> Outcome:
    """No silent drops (ERROR): the feature rows of a day are exactly its target companies
    (``target_companies``, whose metadata says which rule dropped the others)."""
    coverage = Coverage.of(features, targets.select("siren"))
    metadata: dict[str, Any] = {
        "target_companies": targets.height,
        "feature_rows": features.height,
        **coverage.counts(),
    }
    if coverage.exact:
        return Outcome(
            True, ERROR, f"{features.height} feature rows = the target companies", metadata
        )
    return Outcome(
        False,
        ERROR,
        f"{coverage.missing.len()} target companies have no features,"
        f" {coverage.unexpected.len()} feature rows are not target companies of the day,"
        f" {coverage.duplicated} are duplicates",
        metadata | coverage.samples(),
    )


# ---------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class TableContract:
    """What is checked on each partition of a table."""

    asset_key: dg.AssetKey
    model: type[pa.DataFrameModel]
    key: list[str]
    plausible: type[pa.DataFrameModel] | None = None

    @property
    def name(self) -> str:
        return self.asset_key.path[-1]

    def outcomes(self, frame: pl.DataFrame) -> dict[str, Outcome]:
        outcomes = {
            "schema": pandera_outcome(self.model, frame, self.key, ERROR),
            "unique_key": unique_outcome(frame, self.key),
            "null_rates": null_rate_outcome(frame, null_rate_ceilings(self.model)),
        }
        if self.plausible is not None:
            outcomes["plausible_values"] = pandera_outcome(self.plausible, frame, self.key, WARN)
        return outcomes

    def specs(self) -> list[dg.AssetCheckSpec]:
        descriptions = {
            "schema": f"Types, required values and impossible values ({self.model.__name__})."
            " ERROR.",
            "unique_key": f"One row per ({', '.join(self.key)}). ERROR.",
            "null_rates": "Share of nulls of each column under its ceiling. WARN.",
        }
        if self.plausible is not None:
            descriptions["plausible_values"] = "Values within plausible bounds. WARN."
        return [
            dg.AssetCheckSpec(
                name,
                asset=self.asset_key,
                description=description,
                partitions_def=daily_partitions,
            )
            for name, description in descriptions.items()
        ]


BY_COMPANY = [PARTITION_COLUMN, "siren"]
TABLES = [
    TableContract(keys.RAW_COMPANIES, RawCompanies, BY_COMPANY),
    TableContract(keys.PAPPERS_TABLES[0], PappersCompanies, BY_COMPANY),
    TableContract(
        keys.PAPPERS_TABLES[1], PappersFinances, [*BY_COMPANY, "annee", "date_de_cloture_exercice"]
    ),
    TableContract(keys.PAPPERS_TABLES[2], PappersDirigeants, [*BY_COMPANY, "rang"]),
    TableContract(keys.PAPPERS_TABLES[3], PappersProcedures, [*BY_COMPANY, "rang"]),
    TableContract(
        keys.COMPANY_FEATURES,
        CompanyFeatures,
        BY_COMPANY,
        plausible=CompanyFeaturesPlausible,
    ),
]


# ------------------------------------------------------------------------------ Dagster side
def table_checks(contract: TableContract) -> dg.AssetChecksDefinition:
    """The schema, key and null-rate checks (and plausibility, if any) of one table, per
    partition, in one step that reads the run's partitions once."""

    @dg.multi_asset_check(
        name=f"{contract.name}_quality",
        specs=contract.specs(),
        ins={"table": dg.AssetIn(key=contract.asset_key)},
        pool=WAREHOUSE_POOL,
    )
    def _quality(
        context: dg.AssetCheckExecutionContext, table: pl.DataFrame
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        parts = by_partition(table, list(context.partition_keys))
        yield from evaluations(context, {k: contract.outcomes(rows) for k, rows in parts.items()})

    return _quality
