"""IO manager storing each asset's polars frame in the table ``<group>.<asset>``.

Asset keys are ``[schema, table]``: the key prefix is the asset's group, so the Dagster graph and
the warehouse read the same. Partitioned assets replace exactly the partitions of the run (a
single-run backfill replaces its whole range in one transaction); others replace their table.
"""

from datetime import date
from typing import Any

import dagster as dg
import polars as pl

from ma_pipeline.contracts.tables import declared
from ma_pipeline.lib.metadata import column_schema
from ma_pipeline.warehouse.base import TableRef, WriteReport
from ma_pipeline.warehouse.resource import WarehouseResource


def table_for(asset_key: dg.AssetKey) -> TableRef:
    """The table of an asset, key ``[schema, name]``, as ``contracts.tables`` declares it."""
    if len(asset_key.path) != 2:
        raise ValueError(
            f"asset {asset_key.to_user_string()} needs a key [schema, table] to be stored in the"
            " warehouse (set key_prefix to its group)"
        )
    return declared(TableRef(*asset_key.path))


def partition_dates(keys: list[str]) -> list[date]:
    return [date.fromisoformat(k) for k in keys]


def write_metadata(
    report: WriteReport, frame: pl.DataFrame, described: dg.TableSchema | None = None
) -> dict[str, Any]:
    """Metadata of a write; ``described`` (the asset's declared column schema) lends its column
    descriptions to the schema of what was actually written."""
    metadata: dict[str, Any] = {
        "dagster/table_name": str(report.table),
        "dagster/column_schema": column_schema(frame, described),
    }
    if len(report.partitions) > 1:
        # One event per partition carries this metadata, so a total would mislead every one of them.
        counts = frame.group_by("partition_date").len().sort("partition_date")
        metadata["rows_by_partition"] = dict(
            zip(map(str, counts["partition_date"]), counts["len"].to_list(), strict=True)
        )
        metadata["partitions_written"] = len(report.partitions)
    else:
        metadata["dagster/row_count"] = report.rows
    if report.changes:
        # Stored by change: the rows the write added to the disk, against the rows it holds.
        stored = {str(day): counts["rows_stored"] for day, counts in report.changes.items()}
        if len(stored) > 1:
            metadata["rows_stored_by_partition"] = stored
        else:
            (counts,) = report.changes.values()
            metadata["rows_stored"] = counts["rows_stored"]
            metadata["companies_changed"] = counts["keys_changed"]
    if report.columns_added:
        metadata["columns_added"] = report.columns_added
    return metadata


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Reads and writes polars frames in the warehouse, partition by partition."""

    warehouse: dg.ResourceDependency[WarehouseResource]

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got"
                f" {type(obj).__name__}"
            )
        table = table_for(context.asset_key)
        backend = self.warehouse.backend()
        if context.has_asset_partitions:
            report = backend.replace_partitions(
                table, obj, partition_dates(context.asset_partition_keys)
            )
        else:
            report = backend.replace_table(table, obj)
        if report.columns_added:
            context.log.warning(f"{table}: added column(s) {', '.join(report.columns_added)}")
        described = context.definition_metadata.get("dagster/column_schema")
        context.add_output_metadata(write_metadata(report, obj, described))

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        table = table_for(context.asset_key)
        backend = self.warehouse.backend()
        if context.has_asset_partitions:
            days = partition_dates(context.asset_partition_keys)
            if not days:
                return pl.DataFrame()
            return backend.read(table, start=min(days), end=max(days))
        return backend.read(table)


class WarehouseViewIOManager(WarehouseIOManager):
    """For assets stored as a view the asset itself creates: nothing to write, read like any
    table (partitions by their ``partition_date``)."""

    def handle_output(self, context: dg.OutputContext, obj: None) -> None:
        context.add_output_metadata({"dagster/table_name": str(table_for(context.asset_key))})
