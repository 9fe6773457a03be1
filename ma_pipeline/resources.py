"""The resources of the code location, configured from the environment (see settings.py)."""

from collections.abc import Mapping
from typing import Any

from dagster_dbt import DbtCliResource

from ma_pipeline.analytics.project import dbt_project
from ma_pipeline.automation.alerts import AlertWebhook
from ma_pipeline.enrichment.kaspr import KasprResource
from ma_pipeline.enrichment.pappers import PappersResource
from ma_pipeline.enrichment.recherche_entreprises import RechercheEntreprisesResource
from ma_pipeline.enrichment.registry import RegistryResource
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.scoring.on_demand import ApiStoreResource
from ma_pipeline.settings import LaunchSettings
from ma_pipeline.warehouse import WarehouseIOManager, WarehouseResource, WarehouseViewIOManager


def build_resources(
    data_dir: str | None = None,
    warehouse_url: str | None = None,
    **overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Each resource's setting-backed fields are None, read from the environment when a run
    launches (settings.LaunchSettings); ``data_dir``, ``warehouse_url`` and ``overrides`` (fields
    by resource key) pin values instead, as the tests do."""
    pinned = {"data_dir": data_dir, "url": warehouse_url, "warehouse_url": warehouse_url}

    def configured(key: str, resource: type[LaunchSettings]) -> Any:
        fields = {field: pinned.get(field) for field in resource.from_settings}
        return resource(**{**fields, **overrides.get(key, {})})

    warehouse = configured("warehouse", WarehouseResource)
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "view_io_manager": WarehouseViewIOManager(warehouse=warehouse),
        # The marts' target and connection come from `warehouse` (analytics/profile.py).
        "dbt": DbtCliResource(project_dir=dbt_project),
        "sirene": configured("sirene", SireneSource),
        # The registry provider (MA_REGISTRY_PROVIDER), each configured under its own key.
        "registry": RegistryResource(
            pappers=configured("pappers", PappersResource),
            recherche_entreprises=configured("recherche_entreprises", RechercheEntreprisesResource),
            **overrides.get("registry", {}),
        ),
        "kaspr": configured("kaspr", KasprResource),
        "mlflow": configured("mlflow", MlflowResource),
        "alerts": configured("alerts", AlertWebhook),
        # The API's database, where score requests wait (serving/config.py resolves it).
        "api_store": configured("api_store", ApiStoreResource),
    }
