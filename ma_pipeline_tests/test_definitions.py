"""The code location: it loads, and its assets are partitioned and grouped as designed."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from ma_pipeline import settings
from ma_pipeline.definitions import defs
from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline.resources import build_resources
from ma_pipeline.warehouse import WAREHOUSE_POOL, TableRef, connect_warehouse

RAW = dg.AssetKey(["ingestion", "raw_companies"])
RAW_TABLE = TableRef("ingestion", "raw_companies")


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("daily_job")


def test_raw_companies_is_daily_in_paris_with_single_run_backfills() -> None:
    assets_def = defs.resolve_assets_def(RAW)

    assert assets_def.partitions_def.timezone == "Europe/Paris"
    assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
    assert assets_def.group_names_by_key[RAW] == "ingestion"
    assert assets_def.op.pool == WAREHOUSE_POOL


def test_environment_variables_configure_the_resources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MA_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MA_SANDBOX_COMPANIES", "200")
    monkeypatch.delenv("MA_WAREHOUSE_URL", raising=False)
    resources = build_resources()
    assert isinstance(settings.env("MA_DATA_DIR"), dg.EnvVar)

    result = dg.materialize([raw_companies], resources=resources, partition_key="2026-01-05")

    assert result.success
    warehouse = connect_warehouse("", tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "warehouse.duckdb").exists()
    active = warehouse.read(RAW_TABLE).filter(pl.col("etat_administratif") == "A").height
    assert 180 <= active <= 220


def test_unset_variables_fall_back_to_the_embedded_defaults(monkeypatch) -> None:
    for name in settings.DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    assert settings.env("MA_DATA_DIR") == "data"
    assert settings.env_int("MA_SANDBOX_COMPANIES") == 20_000
    assert settings.value("MA_WAREHOUSE_URL") == ""


def test_the_partition_start_date_is_configurable() -> None:
    code = (
        "from ma_pipeline.partitions import daily_partitions; print(daily_partitions.start.date())"
    )
    env = {**os.environ, "MA_PARTITIONS_START": "2024-06-01"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2024-06-01", out.stderr
