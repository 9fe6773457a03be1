"""The code location: it loads, and its assets are partitioned and grouped as designed."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from ma_pipeline import settings
from ma_pipeline.definitions import defs
from ma_pipeline.enrichment.registry import RegistryResource
from ma_pipeline.features.assets import DriftConfig
from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.ml.assets import EventsConfig, TrainingSetConfig
from ma_pipeline.ml.train import TrainingConfig
from ma_pipeline.resources import build_resources
from ma_pipeline.scoring.assets import ScoreChecksConfig
from ma_pipeline.scoring.contacts import KasprContactsConfig
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


def test_environment_variables_configure_the_resources_when_a_run_launches(
    tmp_path: Path, monkeypatch
) -> None:
    """The definitions (imported above) and the resources are built first; the variables set
    afterwards are the ones the run uses."""
    resources = build_resources()
    assert resources["sirene"].data_dir is None  # nothing read when the resources are built
    monkeypatch.setenv("MA_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MA_SANDBOX_COMPANIES", "200")
    monkeypatch.delenv("MA_WAREHOUSE_URL", raising=False)

    result = dg.materialize([raw_companies], resources=resources, partition_key="2026-01-05")

    assert result.success
    warehouse = connect_warehouse("", tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "warehouse.duckdb").exists()
    active = warehouse.read(RAW_TABLE).filter(pl.col("etat_administratif") == "A").height
    assert 180 <= active <= 220


def test_the_code_locations_resources_read_a_variable_set_after_the_import(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MA_DATA_DIR", str(tmp_path / "later"))
    monkeypatch.setenv("MA_SANDBOX_COMPANIES", "300")
    monkeypatch.setenv("MA_SANDBOX_AS_OF", "2026-01-01")

    @dg.asset
    def seen(sirene: SireneSource, registry: RegistryResource) -> tuple:
        pappers = registry.api()
        return sirene.data_dir, sirene.sandbox_companies, pappers.sandbox_as_of, pappers.concurrency

    resources = {key: defs.resources[key] for key in ("sirene", "registry")}
    result = dg.materialize([seen], resources=resources)

    assert result.output_for_node("seen") == (str(tmp_path / "later"), 300, "2026-01-01", 8)


def test_unset_variables_fall_back_to_the_embedded_defaults(monkeypatch) -> None:
    for name in settings.Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    assert settings.value("MA_DATA_DIR") == "data"
    assert settings.current("MA_SANDBOX_COMPANIES") == settings.SANDBOX_UNITS
    assert settings.value("MA_WAREHOUSE_URL") == ""
    assert settings.current("MA_PAPPERS_API_KEY") is None
    monkeypatch.setenv("MA_SANDBOX_COMPANIES", "")  # empty: unset
    assert settings.current("MA_SANDBOX_COMPANIES") == settings.SANDBOX_UNITS


def test_run_config_defaults_are_read_when_the_config_is_built(monkeypatch) -> None:
    """Left None in the schema (nothing read at import), the setting at launch, or the run's."""
    assert DriftConfig.model_fields["psi_warn"].default is None
    monkeypatch.setenv("MA_FEATURE_DRIFT_PSI_WARN", "0.3")
    monkeypatch.setenv("MA_PROMOTION_MARGIN", "0.02")
    monkeypatch.setenv("MA_KASPR_TOP_N", "7")
    assert (DriftConfig().psi_warn, DriftConfig().psi_error) == (0.3, 0.25)
    assert DriftConfig(psi_warn=0.5).psi_warn == 0.5  # the launchpad's value wins
    assert TrainingConfig().promotion_margin == 0.02
    assert KasprContactsConfig().top_n == 7
    assert (ScoreChecksConfig().psi_max, EventsConfig().history_months) == (0.25, 72)
    assert TrainingSetConfig().lookback_months == 60


def test_secrets_are_read_at_launch_and_never_shown(monkeypatch) -> None:
    resources = build_resources()
    monkeypatch.setenv("MA_PAPPERS_API_KEY", "pappers-secret")
    monkeypatch.setenv("MA_ALERT_WEBHOOK_URL", "https://hooks.example/secret")
    monkeypatch.setenv("MA_SCORE_REQUESTS_BATCH", "3")
    pappers = resources["registry"].api()
    alerts = resources["alerts"].resolved()

    assert (pappers.api_key, pappers.mode) == ("pappers-secret", "live")
    assert alerts.url == "https://hooks.example/secret"
    assert resources["api_store"].resolved().batch_size == 3  # the score-request sensor's
    shown = repr(pappers) + repr(alerts) + repr(settings.Settings()) + str(settings.Settings())
    assert "secret" not in shown


def test_only_the_partitions_start_is_read_when_the_definitions_load() -> None:
    code = (
        "import traceback, ma_pipeline.settings as s\n"
        "built = []\n"
        "init = s.Settings.__init__\n"
        "def counted(self, **values):\n"
        "    built.append(traceback.extract_stack(limit=4)[0].filename)\n"
        "    init(self, **values)\n"
        "s.Settings.__init__ = counted\n"
        "import ma_pipeline.definitions\n"
        "print([path.rsplit('/', 1)[-1] for path in built])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "['partitions.py']", out.stderr


def test_the_partition_start_date_is_configurable() -> None:
    code = (
        "from ma_pipeline.partitions import daily_partitions; print(daily_partitions.start.date())"
    )
    env = {**os.environ, "MA_PARTITIONS_START": "2024-06-01"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "2024-06-01", out.stderr
