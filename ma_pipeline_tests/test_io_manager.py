"""WarehouseIOManager through Dagster: partitions, single-run backfills, reads downstream."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import TableRef, WarehouseIOManager, WarehouseResource


@dg.asset(
    key_prefix="demo",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily_counts(context: dg.AssetExecutionContext) -> pl.DataFrame:
    days = [date.fromisoformat(k) for k in context.partition_keys]
    return pl.DataFrame(
        {
            "partition_date": [d for d in days for _ in range(d.day)],
            "n": [d.day for d in days for _ in range(d.day)],
        }
    )


@dg.asset(
    key_prefix="demo",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily_totals(daily_counts: pl.DataFrame) -> pl.DataFrame:
    return daily_counts.group_by("partition_date").agg(total=pl.col("n").sum())


@dg.asset(key_prefix="demo")
def all_days(daily_counts: pl.DataFrame) -> pl.DataFrame:
    return daily_counts.select(days=pl.col("partition_date").n_unique())


@dg.asset
def unprefixed() -> pl.DataFrame:
    return pl.DataFrame({"a": [1]})


def io(warehouse_url: str, data_dir: Path) -> dict:
    warehouse = WarehouseResource(url=warehouse_url, data_dir=str(data_dir))
    return {"io_manager": WarehouseIOManager(warehouse=warehouse), "warehouse": warehouse}


def test_a_three_day_backfill_is_one_run_writing_three_partitions(
    warehouse_url: str, data_dir: Path
) -> None:
    job = dg.Definitions(
        assets=[daily_counts, daily_totals], resources=io(warehouse_url, data_dir)
    ).resolve_implicit_global_asset_job_def()

    result = job.execute_in_process(
        tags={
            "dagster/asset_partition_range_start": "2025-03-01",
            "dagster/asset_partition_range_end": "2025-03-03",
        }
    )

    assert result.success
    assert len(result.get_step_success_events()) == 2  # one step per asset, not per day
    backend = WarehouseResource(url=warehouse_url, data_dir=str(data_dir)).backend()
    assert backend.partitions(TableRef("demo", "daily_counts")) == [
        date(2025, 3, 1),
        date(2025, 3, 2),
        date(2025, 3, 3),
    ]
    totals = backend.read(TableRef("demo", "daily_totals")).sort("partition_date")
    assert totals["total"].to_list() == [1, 4, 9]
    [event, *_] = result.get_asset_materialization_events()
    assert event.materialization.metadata["rows_by_partition"].value == {
        "2025-03-01": 1,
        "2025-03-02": 2,
        "2025-03-03": 3,
    }


def test_a_downstream_partition_reads_only_its_day(warehouse_url: str, data_dir: Path) -> None:
    resources = io(warehouse_url, data_dir)
    for day in ("2025-03-01", "2025-03-02"):
        dg.materialize([daily_counts], resources=resources, partition_key=day)

    result = dg.materialize(
        [daily_counts.to_source_asset(), daily_totals],
        resources=resources,
        partition_key="2025-03-02",
    )

    assert result.output_for_node("demo__daily_totals")["total"].to_list() == [4]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 1
    assert metadata["dagster/table_name"].value == "demo.daily_totals"
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == [
        "partition_date",
        "total",
    ]


def test_an_unpartitioned_asset_reads_every_partition(warehouse_url: str, data_dir: Path) -> None:
    resources = io(warehouse_url, data_dir)
    for day in ("2025-03-01", "2025-03-02", "2025-03-05"):
        dg.materialize([daily_counts], resources=resources, partition_key=day)

    result = dg.materialize([daily_counts.to_source_asset(), all_days], resources=resources)

    assert result.output_for_node("demo__all_days")["days"].to_list() == [3]


def test_an_asset_key_without_a_schema_is_refused_clearly(data_dir: Path) -> None:
    result = dg.materialize([unprefixed], resources=io("", data_dir), raise_on_error=False)

    [failure] = result.get_step_failure_events()
    assert "needs a key [schema, table]" in str(failure.step_failure_data.error)
