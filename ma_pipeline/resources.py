"""The resources of the code location, configured from the environment (see settings.py)."""

from typing import Any

from dagster_dbt import DbtCliResource

from ma_pipeline import settings
from ma_pipeline.analytics.project import dbt_project
from ma_pipeline.automation.alerts import AlertWebhook
from ma_pipeline.enrichment.kaspr import KasprResource
from ma_pipeline.enrichment.pappers import PappersResource
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.scoring.on_demand import ApiStoreResource
from ma_pipeline.warehouse import WarehouseIOManager, WarehouseResource


def build_resources() -> dict[str, Any]:
    data_dir = settings.env("MA_DATA_DIR")
    warehouse = WarehouseResource(url=settings.env("MA_WAREHOUSE_URL"), data_dir=data_dir)
    sandbox_companies = settings.env_int("MA_SANDBOX_COMPANIES")
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        # The marts' target and connection come from `warehouse` (analytics/profile.py).
        "dbt": DbtCliResource(project_dir=dbt_project),
        "sirene": SireneSource(data_dir=data_dir, sandbox_companies=sandbox_companies),
        "pappers": PappersResource(
            api_key=settings.secret("MA_PAPPERS_API_KEY"),
            concurrency=settings.env_int("MA_PAPPERS_CONCURRENCY"),
            rate_per_second=settings.env_float("MA_PAPPERS_RATE_PER_SECOND"),
            rate_per_minute=settings.env_float("MA_PAPPERS_RATE_PER_MINUTE"),
            cache_ttl_hours=settings.env_float("MA_PAPPERS_CACHE_TTL_HOURS"),
            max_failure_rate=settings.env_float("MA_PAPPERS_MAX_FAILURE_RATE"),
            sandbox_companies=sandbox_companies,
            sandbox_as_of=settings.env("MA_SANDBOX_AS_OF"),
        ),
        "kaspr": KasprResource(
            api_key=settings.secret("MA_KASPR_API_KEY"),
            daily_credit_budget=settings.env_int("MA_KASPR_DAILY_CREDITS"),
        ),
        "mlflow": MlflowResource(
            tracking_uri=settings.env("MLFLOW_TRACKING_URI"),
            data_dir=data_dir,
            experiment_name=settings.env("MA_MLFLOW_EXPERIMENT"),
        ),
        "alerts": AlertWebhook(
            url=settings.secret("MA_ALERT_WEBHOOK_URL"), ui_url=settings.env("MA_DAGSTER_UI_URL")
        ),
        # The API's database, where score requests wait (serving/config.py resolves it).
        "api_store": ApiStoreResource(
            data_dir=data_dir,
            warehouse_url=settings.env("MA_WAREHOUSE_URL"),
            api_db_url=settings.env("MA_API_DB_URL"),
            batch=settings.env_int("MA_SCORE_REQUESTS_BATCH"),
        ),
    }
