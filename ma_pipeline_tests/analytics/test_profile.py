"""dbt's target and connection come from the warehouse URL, as the pipeline reads it."""

import os
from pathlib import Path

import dagster as dg
import pytest

from ma_pipeline.analytics.assets import partition_vars
from ma_pipeline.analytics.profile import (
    DUCKDB_PATH,
    PG_PASSWORD,
    PG_SSLMODE,
    TARGET,
    dbt_env,
    dbt_environment,
)
from ma_pipeline.warehouse import connect_warehouse


def test_duckdb_is_the_pipelines_own_file(tmp_path: Path) -> None:
    default = dbt_env("", tmp_path / "data")
    assert default == {TARGET: "duckdb", DUCKDB_PATH: str(tmp_path / "data" / "warehouse.duckdb")}
    assert default[DUCKDB_PATH] == str(connect_warehouse("", tmp_path / "data").path)

    named = dbt_env(f"duckdb:///{tmp_path / 'ma.duckdb'}", tmp_path / "data")
    assert named == {TARGET: "duckdb", DUCKDB_PATH: str(tmp_path / "ma.duckdb")}


def test_postgresql_urls_give_every_connection_field(tmp_path: Path) -> None:
    env = dbt_env("postgresql+psycopg://ana:p%40ss%2Fw@db.internal:6543/ma?sslmode=require", ".")
    assert env == {
        TARGET: "postgres",
        "MA_DBT_PG_HOST": "db.internal",
        "MA_DBT_PG_PORT": "6543",
        "MA_DBT_PG_USER": "ana",
        PG_PASSWORD: "p@ss/w",
        "MA_DBT_PG_DBNAME": "ma",
        PG_SSLMODE: "require",
    }
    short = dbt_env("postgres://ana@127.0.0.1", ".")
    assert (short["MA_DBT_PG_PORT"], short["MA_DBT_PG_DBNAME"], short[PG_PASSWORD]) == (
        "5432",
        "ana",
        "",
    )
    assert PG_SSLMODE not in short


def test_unsupported_urls_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"only the sslmode option.*connect_timeout"):
        dbt_env("postgresql://ana@db/ma?connect_timeout=3", ".")
    with pytest.raises(ValueError, match="unsupported scheme 'mysql'"):
        dbt_env("mysql://ana@db/ma", ".")


def test_the_environment_is_set_for_the_block_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PG_SSLMODE, "verify-full")  # from the shell: must not reach a DuckDB run
    monkeypatch.delenv(DUCKDB_PATH, raising=False)

    with dbt_environment("", tmp_path) as values:
        assert os.environ[TARGET] == "duckdb"
        assert os.environ[DUCKDB_PATH] == values[DUCKDB_PATH]
        assert PG_SSLMODE not in os.environ

    assert os.environ[PG_SSLMODE] == "verify-full"
    assert DUCKDB_PATH not in os.environ


def test_a_run_passes_its_first_and_last_partitions_as_vars() -> None:
    window = dg.PartitionKeyRange("2026-01-30", "2026-02-02")
    assert partition_vars(window) == {"min_date": "2026-01-30", "max_date": "2026-02-02"}
