"""deploy/dagster.yaml: a Dagster instance whose runs and events live in PostgreSQL."""

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest

from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline_tests.conftest import make_resources

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

pytestmark = pytest.mark.postgres


def test_an_asset_materializes_on_the_postgres_instance(
    pg_url: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    url = urlsplit(pg_url)
    for name, value in {
        "HOST": url.hostname,
        "PORT": str(url.port or 5432),
        "DB": url.path[1:],
        "USER": url.username,
        "PASSWORD": url.password or "",
    }.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize(
            [raw_companies],
            instance=instance,
            resources=make_resources(data_dir),
            partition_key="2026-01-05",
        )
        assert result.success
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.pool_config.default_pool_limit == 4
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["ingestion", "raw_companies"])
        )
        assert event.asset_materialization.partition == "2026-01-05"

    with psycopg.connect(pg_url) as conn:
        [(runs,)] = conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'").fetchall()
    assert runs == 1
