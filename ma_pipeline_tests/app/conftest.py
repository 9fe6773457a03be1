"""A real API over three published days, served by uvicorn on a free port for the whole
session, and keys with chosen scopes: the web app's tests talk to it over HTTP, as users do."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ma_pipeline.contracts.tables import MODEL_VERSIONS
from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline_tests.serving.conftest import (
    COMPANIES,
    D1,
    D2,
    D3,
    TESTING,
    partition,
    publish_day,
    served_in_thread,
)
from ma_pipeline_tests.serving.test_api_routes import SIREN, write_contacts
from serving.app import create_app
from serving.config import ApiSettings
from serving.store import ApiStore

__all__ = ["COMPANIES", "D3", "SIREN"]


@dataclass
class LiveApi:
    url: str
    settings: ApiSettings
    store: ApiStore
    days: dict[date, pl.DataFrame]

    def key(self, *scopes: str) -> str:
        """The token of a new key with ``scopes``."""
        return self.store.create_key("app test", list(scopes))[1]


def published_days() -> dict[date, pl.DataFrame]:
    """Three days; the M&A model changes on the third (a marker on the history chart)."""
    return {
        D1: partition(D1, seed=1),
        D2: partition(D2, seed=2),
        D3: partition(D3, seed=3).with_columns(model_version_ma=pl.lit("ma_pipeline_ma/4")),
    }


def write_models(root: Path) -> None:
    """Champion versions with their metrics, as training writes them."""
    versions = pl.DataFrame(
        {
            "score": ["ma", "croissance"],
            "model_name": ["ma_pipeline_ma", "ma_pipeline_croissance"],
            "version": ["4", "3"],
            "alias": ["champion", "champion"],
            "run_id": ["r4", "r3"],
            "created_at": pl.Series([D3, D1]).cast(pl.Datetime("us", "UTC")),
            "metrics_json": ['{"auc": 0.81, "average_precision": 0.34}', '{"rmse": 4.2}'],
            "decision": ["promoted: auc +0.012 over the previous champion", "promoted"],
        }
    )
    connect_warehouse(f"duckdb:///{root / 'warehouse.duckdb'}", root).replace_table(
        MODEL_VERSIONS, versions
    )


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The API over D1-D3 on DuckDB, with contacts for SIREN and champion models."""
    root = tmp_path_factory.mktemp("app_api")
    warehouse = connect_warehouse(f"duckdb:///{root / 'warehouse.duckdb'}", root)
    days = published_days()
    write_models(root)
    for frame in days.values():
        publish_day(warehouse, root, frame)
    write_contacts(warehouse, root)  # republishes D1 and D2: D3 stays the newest
    # A key's burst is the larger of this and its rate: keys made with a low rate run out.
    settings = ApiSettings(data_dir=root, **TESTING | {"rate_burst": 3})
    store = ApiStore(settings.api_database)
    store.create_tables()
    with served_in_thread(create_app(settings)) as url:
        yield LiveApi(url, settings, store, days)
