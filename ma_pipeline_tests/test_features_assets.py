"""company_features and the quality checks as Dagster runs them: raw_companies -> Pappers
(sandbox) -> features, on DuckDB and PostgreSQL, one evaluation per check and per partition."""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from ma_pipeline.contracts.keys import COMPANY_FEATURES
from ma_pipeline.enrichment.assets import pappers_enrichment
from ma_pipeline.features.assets import (
    company_features,
    company_features_coverage_and_drift,
    quality_checks,
)
from ma_pipeline.features.schemas import FEATURE_COLUMNS
from ma_pipeline.ingestion.assets import raw_companies, target_companies
from ma_pipeline.warehouse import TableRef, Warehouse
from ma_pipeline_tests.conftest import make_resources

DAY_1, DAY_2, DAY_3 = "2025-06-01", "2025-06-02", "2025-06-03"
FEATURES = TableRef("features", "company_features")
RAW = TableRef("ingestion", "raw_companies")
TARGETS = TableRef("ingestion", "target_companies")


def definitions(resources: dict[str, Any]) -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_companies, target_companies, pappers_enrichment, company_features],
        asset_checks=[*quality_checks, company_features_coverage_and_drift],
        jobs=[dg.define_asset_job("checks_only", selection=dg.AssetSelection.all_asset_checks())],
        resources=resources,
    )


def backfill(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """DAY_1 and DAY_2 as one run, the way a single-run backfill launches them."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAY_1,
            "dagster/asset_partition_range_end": DAY_2,
        },
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str, str], Any]:
    return {
        (e.asset_key.path[-1], e.check_name, e.partition): e
        for e in result.get_asset_check_evaluations()
    }


def test_a_backfill_computes_each_days_features_and_every_check_passes_per_partition(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    defs = definitions(make_resources(data_dir, warehouse_url))
    instance = dg.DagsterInstance.ephemeral()
    result = backfill(defs, instance)
    assert result.success

    stored = warehouse.read(FEATURES)
    for day in (DAY_1, DAY_2):
        on = date.fromisoformat(day)
        targets = warehouse.read(TARGETS, start=on, end=on)
        assert (
            stored.filter(pl.col("partition_date") == on)["siren"]
            .sort()
            .equals(targets["siren"].sort())
        )
    check_keys = defs.resolve_asset_graph().asset_check_keys
    assert len(check_keys) == 5 * 3 + 4 + 2  # pappers and raw tables, features, drift/coverage
    evaluated = evaluations(result)
    assert set(evaluated) == {
        (k.asset_key.path[-1], k.name, day) for k in check_keys for day in (DAY_1, DAY_2)
    }
    assert [key for key, e in evaluated.items() if not e.passed] == []
    # What the UI shows per partition: each one checked, against its own materialization.
    statuses = instance.event_log_storage.get_asset_check_partition_info(list(check_keys))
    assert {(s.partition_key, s.latest_execution_status.value, s.is_current) for s in statuses} == {
        (DAY_1, "SUCCEEDED", True),
        (DAY_2, "SUCCEEDED", True),
    }
    drift = evaluated[("company_features", "drift", DAY_2)]
    assert drift.metadata["reference"].value == f"previous partition {DAY_1}"

    single = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, partition_key=DAY_3
    )
    assert single.success
    [event] = [
        e for e in single.get_asset_materialization_events() if e.asset_key == COMPANY_FEATURES
    ]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["dagster/row_count"] == warehouse.read(FEATURES).height - stored.height
    assert set(metadata["null_rates"]) == set(FEATURE_COLUMNS)
    assert "| siren" in metadata["preview"]
    assert "age_dirigeant_max" not in metadata["preview"]  # personal data: never in the UI
    described = {c.name: c.description for c in metadata["dagster/column_schema"].columns}
    assert list(described) == list(FEATURE_COLUMNS) and all(described.values())
    drift = evaluations(single)[("company_features", "drift", DAY_3)]
    assert drift.passed and drift.metadata["reference"].value == f"previous partition {DAY_2}"


def corrupt(
    warehouse: Warehouse,
    table: TableRef,
    column: str,
    value: pl.Expr,
    *,
    every_row: bool = False,
) -> str:
    """Rewrite DAY_2's partition of ``table`` with ``column`` set to ``value`` on the first row
    where it is filled (or on every row); returns that first row's SIREN."""
    day = date.fromisoformat(DAY_2)
    rows = warehouse.read(table, start=day, end=day).with_row_index("_i")
    first = rows.filter(pl.col(column).is_not_null()).row(0, named=True)
    hit = pl.lit(every_row) | (pl.col("_i") == first["_i"])
    changed = rows.with_columns(pl.when(hit).then(value).otherwise(pl.col(column)).alias(column))
    warehouse.replace_partitions(table, changed.drop("_i"), [day])
    return first["siren"]


def test_checks_fail_on_a_corrupted_partition_and_name_the_rows(
    data_dir: Path, tmp_path: Path
) -> None:
    """Negative revenue, an age of 180, a duplicate SIREN and a shifted distribution, written
    into DAY_2's partitions; the checks, run alone, then fail for DAY_2 and DAY_2 only."""
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    resources = make_resources(data_dir, url)
    defs = definitions(resources)
    instance = dg.DagsterInstance.ephemeral()
    assert backfill(defs, instance).success
    warehouse = resources["warehouse"].backend()
    finances = TableRef("enrichment", "pappers_finances")
    negative = corrupt(warehouse, finances, "chiffre_affaires", -pl.col("chiffre_affaires") - 1)
    aged = corrupt(warehouse, TableRef("enrichment", "pappers_dirigeants"), "age", pl.lit(180))
    too_old = corrupt(warehouse, FEATURES, "age_dirigeant_max", pl.lit(180))
    corrupt(warehouse, FEATURES, "log_ca", pl.col("log_ca") + 3, every_row=True)
    day = date.fromisoformat(DAY_2)
    # raw_companies is a view of the day's stock (the sandbox's is stored under the day itself).
    stocks = TableRef("ingestion", "sirene_stocks")
    raw = warehouse.read(stocks, start=day, end=day)
    warehouse.replace_partitions(stocks, pl.concat([raw, raw.head(1)]), [day])
    checks = defs.resolve_job_def("checks_only")

    result = checks.execute_in_process(instance=instance, tags={"dagster/partition": DAY_2})

    failed = {key[:2]: e for key, e in evaluations(result).items() if not e.passed}
    assert set(failed) == {
        ("pappers_finances", "schema"),
        ("pappers_dirigeants", "schema"),
        ("raw_companies", "unique_key"),
        ("company_features", "schema"),
        ("company_features", "plausible_values"),
        ("company_features", "drift"),
    }
    named = {
        ("pappers_finances", "schema"): negative,
        ("pappers_dirigeants", "schema"): aged,
        ("raw_companies", "unique_key"): raw["siren"][0],
        ("company_features", "schema"): too_old,
    }
    for key, siren in named.items():
        assert failed[key].severity == dg.AssetCheckSeverity.ERROR
        assert siren in failed[key].metadata["failing_rows_sample"].value
    drift = failed[("company_features", "drift")]
    assert drift.severity == dg.AssetCheckSeverity.ERROR
    assert drift.metadata["drifted_features"].value == ["log_ca"]
    statuses = instance.event_log_storage.get_asset_check_partition_info(
        [dg.AssetCheckKey(COMPANY_FEATURES, "schema")]
    )
    assert {(s.partition_key, s.latest_execution_status.value) for s in statuses} == {
        (DAY_1, "SUCCEEDED"),
        (DAY_2, "FAILED"),
    }

    # The drift thresholds are run config (defaults: MA_FEATURE_DRIFT_PSI_WARN and _ERROR).
    lenient = {"psi_warn": 50.0, "psi_error": 100.0}
    again = checks.execute_in_process(
        instance=instance,
        tags={"dagster/partition": DAY_2},
        run_config={"ops": {"company_features_coverage_and_drift": {"config": lenient}}},
    )
    assert evaluations(again)[("company_features", "drift", DAY_2)].passed
