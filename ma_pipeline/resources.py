"""The resources of the code location, configured from the environment (see settings.py)."""

from typing import Any

from ma_pipeline import settings
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.warehouse import WarehouseIOManager, WarehouseResource


def build_resources() -> dict[str, Any]:
    data_dir = settings.env("MA_DATA_DIR")
    warehouse = WarehouseResource(url=settings.env("MA_WAREHOUSE_URL"), data_dir=data_dir)
    return {
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
        "sirene": SireneSource(
            data_dir=data_dir, sandbox_companies=settings.env_int("MA_SANDBOX_COMPANIES")
        ),
    }
