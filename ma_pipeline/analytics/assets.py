"""The marts as Dagster assets: ``dbt build`` over the run's daily partitions.

Every model and seed is an asset ``["analytics", name]`` in group ``analytics`` (the schema dbt
writes them to, as every warehouse table is keyed ``[schema, table]``); the sources keep the keys
of the pipeline assets that write them (``meta.dagster.asset_key``), so the marts hang under
the published tables and the company tables in one graph. dbt tests are the assets' checks.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from ma_pipeline.analytics.profile import dbt_environment
from ma_pipeline.analytics.project import dbt_project
from ma_pipeline.lib import owners
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import WAREHOUSE_POOL, WarehouseResource

GROUP = "analytics"


class AnalyticsTranslator(DagsterDbtTranslator):
    """Models and seeds keyed ``[schema, name]`` in group ``analytics``; sources as declared."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec
        return spec.replace_attributes(
            key=dg.AssetKey([props["schema"], props["name"]]),
            group_name=GROUP,
            owners=owners.ANALYTICS,
        )


translator = AnalyticsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def partition_vars(partitions: dg.PartitionKeyRange) -> dict[str, str]:
    """The dbt vars of a run: its first and last daily partitions, inclusive."""
    return {"min_date": partitions.start, "max_date": partitions.end}


# The shipped references (NAF, COG) and their views change with a release, not with days: they
# are built unpartitioned, the rest of the project per day.
REFERENCE = "resource_type:seed path:models/staging/reference"


def _build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, *args: str
) -> Iterator[Any]:
    with dbt_environment(warehouse.url, warehouse.data_dir):
        invocation = dbt.cli(["build", *args], context=context)
    yield from invocation.stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=REFERENCE,
    name="analytics_reference",
    backfill_policy=dg.BackfillPolicy.single_run(),  # built once by a daily range's one run
    pool=WAREHOUSE_POOL,
)
def analytics_reference(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """``dbt build`` of the reference seeds, their views and tests; not the tests that join them
    to the daily models (``cautious``), which run with those models."""
    yield from _build(context, dbt, warehouse, "--indirect-selection", "cautious")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    exclude=REFERENCE,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,  # dbt holds the DuckDB file, as a writer, while it runs
)
def analytics_marts(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """``dbt build`` of the selected models and their tests, for the run's partitions (a
    backfill is one run, one dbt invocation), in the pipeline's warehouse."""
    yield from _build(
        context, dbt, warehouse, "--vars", json.dumps(partition_vars(context.partition_key_range))
    )
