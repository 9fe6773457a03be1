"""An API over published partitions on each backend, with keys made on demand.

Settings make the tests deterministic: the background refresh waits an hour (tests call
``Api.refresh()`` after publishing), keys are never cached (a revocation shows at once) and the
default rate limit is out of reach.
"""

import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import ML_SCORES
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import Warehouse, connect_warehouse
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.app import create_app
from serving.config import ApiSettings
from serving.published import Served
from serving.store import ApiStore

D1, D2, D3 = date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)
COMPANIES = sirens(240)
TESTING: dict[str, Any] = {
    "refresh_seconds": 3600.0,
    "key_cache_seconds": 0.0,
    "rate_per_second": 10_000.0,
    "rate_burst": 10_000.0,
}
SPARSE = COMPANIES[1]  # three reasons for score_ma, no region, no confidence


def partition(day: date, seed: int) -> pl.DataFrame:
    """A partition whose first 60 companies tie on score_ma, to page across ties, and with
    missing values for SPARSE."""
    missing = [
        "region",
        "confidence",
        *(f"ma_reason_{k}_{part}" for k in (4, 5) for part in ("feature", "value", "contribution")),
    ]
    return ml_scores(day, COMPANIES, seed=seed).with_columns(
        pl.when(pl.int_range(pl.len()) < 60).then(50.0).otherwise("score_ma").alias("score_ma"),
        *(pl.when(pl.col("siren") != SPARSE).then(pl.col(c)).alias(c) for c in missing),
    )


def publish_day(warehouse: Warehouse, data_dir: Path, frame: pl.DataFrame) -> None:
    """Write a partition of ml_scores and publish it, with the snapshot on DuckDB."""
    day = frame["partition_date"][0]
    warehouse.replace_partitions(ML_SCORES, frame, [day])
    snapshot = snapshot_paths(data_dir) if warehouse.dialect == "duckdb" else None
    publish(warehouse, day, run_id=f"run-{day}", snapshot=snapshot)


@dataclass
class Api:
    app: FastAPI
    client: TestClient

    @property
    def store(self) -> ApiStore:
        return self.app.state.api_store

    @property
    def served(self) -> Served:
        return self.app.state.served

    def key(self, *scopes: str, rate: float | None = None) -> dict[str, str]:
        """Headers carrying a new key with ``scopes``."""
        _, token = self.store.create_key("test", list(scopes), rate)
        return {"X-API-Key": token}

    def get(self, path: str, *scopes: str, **params: Any) -> Any:
        """GET with a new key holding ``scopes`` (default scores:read); 200 expected."""
        response = self.client.get(
            path, params=params, headers=self.key(*scopes or ["scores:read"])
        )
        assert response.status_code == 200, response.text
        return response.json()

    def refresh(self) -> None:
        self.served.refresh()


@contextmanager
def served_in_thread(app: FastAPI, **config: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread, on a free port of 127.0.0.1; its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, **config)
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            thread.join(0.05)
        [listening] = server.servers[0].sockets
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def serve(warehouse_url: str, data_dir: Path) -> Iterator[Callable[..., Api]]:
    """Start an API over the test's warehouse; keyword arguments override settings."""
    with ExitStack() as stack:

        def start(**settings: Any) -> Api:
            config = ApiSettings(
                data_dir=data_dir, warehouse_url=warehouse_url, **TESTING | settings
            )
            app = create_app(config)
            return Api(app, stack.enter_context(TestClient(app)))

        yield start


def two_days() -> dict[date, pl.DataFrame]:
    return {D1: partition(D1, seed=1), D2: partition(D2, seed=2)}


@pytest.fixture(scope="session")
def duckdb_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """D1 and D2 published on DuckDB once: a test copies the files (milliseconds) rather than
    writing and publishing again (a second)."""
    root = tmp_path_factory.mktemp("published")
    warehouse = connect_warehouse(f"duckdb:///{root / 'warehouse.duckdb'}", root)
    for frame in two_days().values():
        publish_day(warehouse, root, frame)
    return root


@pytest.fixture
def published(
    warehouse: Warehouse, data_dir: Path, request: pytest.FixtureRequest
) -> dict[date, pl.DataFrame]:
    """Two published days, D1 and D2."""
    frames = two_days()
    if warehouse.dialect == "duckdb":
        template = request.getfixturevalue("duckdb_published")
        shutil.copyfile(template / "warehouse.duckdb", warehouse.path)  # type: ignore[attr-defined]
        shutil.copytree(snapshot_paths(template).root, snapshot_paths(data_dir).root)
    else:
        for frame in frames.values():
            publish_day(warehouse, data_dir, frame)
    return frames


@pytest.fixture
def api(serve: Callable[..., Api], published: dict[date, pl.DataFrame]) -> Api:
    return serve()
