"""Fixtures shared by every test: data folders, warehouses on both backends, resources.

PostgreSQL tests use the server named by ``MA_TEST_POSTGRES_URL`` (each test gets a database of
its own, dropped afterwards). Without it they skip with a reason, except under ``CI=true``, where
a missing server fails the run and any skipped test fails the session.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
import psycopg
import pytest

from ma_pipeline.analytics.project import dbt_project
from ma_pipeline.contracts.sirene import OUTPUT_COLUMNS
from ma_pipeline.enrichment.pappers import parse_entreprise
from ma_pipeline.enrichment.records import partition_tables
from ma_pipeline.features.compute import FeatureInputs, compute_features
from ma_pipeline.ingestion.sirene import StockFile, validate
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.ingestion.targets import TargetRules, select_targets
from ma_pipeline.ml.encoding import CATEGORICAL_INDICES, FEATURE_NAMES, encode
from ma_pipeline.resources import build_resources
from ma_pipeline.sandbox import universe
from ma_pipeline.sandbox.pappers_api import entreprise
from ma_pipeline.sandbox.world import world
from ma_pipeline.settings import LaunchSettings
from ma_pipeline.warehouse import PARTITION_COLUMN, connect_warehouse
from ma_pipeline.warehouse.base import Warehouse

TEST_DATA = Path(__file__).parent / "data"
SIRENE_SAMPLE = TEST_DATA / "StockUniteLegale_echantillon_2026.csv"
PAPPERS_SAMPLE = TEST_DATA / "pappers_v2_entreprise_443061841.json"
SANDBOX_SEED = SireneSource.model_fields["sandbox_seed"].default
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SANDBOX_AS_OF = date(2026, 1, 1)  # the day the API sandboxes answer as of, in tests
FAST_API: dict[str, Any] = {
    "rate_per_second": 100_000.0,
    "backoff_base_s": 0.001,
    "backoff_max_s": 0.01,
}


def _server_url() -> str:
    url = os.environ.get("MA_TEST_POSTGRES_URL", "")
    if not url:
        message = "MA_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    server = _server_url()
    name = f"ma_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The warehouse URL of each backend in turn: a DuckDB file, then a PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    (path / "landing").mkdir(parents=True)
    monkeypatch.setenv("MA_DATA_DIR", str(path))
    return path


@pytest.fixture
def warehouse(warehouse_url: str, data_dir: Path) -> Warehouse:
    return connect_warehouse(warehouse_url, data_dir)


def make_resources(
    data_dir: Path,
    warehouse_url: str = "",
    *,
    pappers: dict[str, Any] | None = None,
    recherche_entreprises: dict[str, Any] | None = None,
    **sandbox: Any,
) -> dict[str, Any]:
    """The resources of the code location, pointed at a test's folders.

    Built by the code location's ``build_resources``, the other fields read from the environment
    now, as a launch would. The API resources run on their sandboxes (no key, whatever the
    shell holds), answering as of a fixed day, with no effective rate limit and millisecond
    backoffs (``FAST_API``), so tests stay fast and deterministic; MLflow is SQLite under the
    test's data_dir; ``pappers`` and ``recherche_entreprises`` override fields of those registry
    providers (a ``transport``...); Pappers is the provider unless MA_REGISTRY_PROVIDER says.
    """
    population = {"sandbox_companies": SANDBOX_UNITS, "sandbox_seed": SANDBOX_SEED, **sandbox}
    resources = build_resources(
        str(data_dir),
        warehouse_url,
        sirene=population,
        pappers={
            **population,
            "api_key": "",
            "sandbox_as_of": SANDBOX_AS_OF.isoformat(),
            **FAST_API,
            **(pappers or {}),
        },
        recherche_entreprises={
            **population,
            "sandbox": True,
            "sandbox_as_of": SANDBOX_AS_OF.isoformat(),
            **FAST_API,
            **(recherche_entreprises or {}),
        },
        kaspr={"api_key": "", **FAST_API},
        mlflow={"tracking_uri": ""},
        alerts={"url": ""},
    )
    return {k: r.resolved() if isinstance(r, LaunchSettings) else r for k, r in resources.items()}


@pytest.fixture
def resources(data_dir: Path, warehouse_url: str) -> dict[str, Any]:
    return make_resources(data_dir, warehouse_url)


SANDBOX_DAY = date(2025, 6, 2)  # the partition of ``sandbox_partition``
SANDBOX_UNITS = 1_500  # legal units of the test sandbox: about 300 target companies


@cache
def sandbox_tables(units: int, day: date, as_of: date | None = None) -> dict[str, pl.DataFrame]:
    """raw_companies and the four Pappers tables of the partition ``day``, as daily_job writes
    them for the sandbox of ``units`` legal units: Pappers asked for the day's target companies,
    answering as of ``as_of`` (default: the day)."""
    stock = universe.stock(day, units, SANDBOX_SEED)
    raw = validate(StockFile("sandbox", stock, "utf-8")).kept.select(
        pl.lit(day).alias(PARTITION_COLUMN), *OUTPUT_COLUMNS
    )
    targets = select_targets(raw, day, TargetRules()).targets
    truth = world(units, SANDBOX_SEED)
    answers = (entreprise(truth, siren, as_of or day) for siren in targets["siren"])
    records = [parse_entreprise(answer) for answer in answers if answer is not None]
    return {"raw_companies": raw, **partition_tables(records, targets, source="pappers_sandbox")}


@pytest.fixture(scope="session")
def sandbox_partition() -> dict[str, pl.DataFrame]:
    """One day (``SANDBOX_DAY``) of raw_companies and of the four Pappers tables as the pipeline
    writes them, built in process from the sandbox. Pappers answers as of ``SANDBOX_AS_OF``,
    months later, so its snapshot holds accounts filed after the day, as in a backfill."""
    return sandbox_tables(SANDBOX_UNITS, SANDBOX_DAY, SANDBOX_AS_OF)


def sandbox_features(partition: dict[str, pl.DataFrame], day: date) -> pl.DataFrame:
    """company_features of ``sandbox_partition``'s target companies as of ``day``."""
    targets = partition["pappers_companies"].select("siren")
    companies = partition["raw_companies"].join(targets, on="siren", how="semi")
    pappers = ("pappers_companies", "pappers_finances", "pappers_dirigeants", "pappers_procedures")
    return compute_features(FeatureInputs(companies, *(partition[t] for t in pappers)), day)


@pytest.fixture(scope="session")
def boosters(sandbox_partition: dict[str, pl.DataFrame]) -> dict[str, lgb.Booster]:
    """A small LightGBM model per score, trained on the sandbox day's features against labels
    the features explain (old owner; growing revenue; losses), as a champion would be."""
    matrix = encode(sandbox_features(sandbox_partition, SANDBOX_DAY))
    column = {name: np.nan_to_num(matrix[:, FEATURE_NAMES.index(name)]) for name in FEATURE_NAMES}
    labels = {
        "ma": column["age_dirigeant_max"] >= 60,
        "croissance": column["croissance_ca_1an"] > 0.02,
        "stabilite": column["marge_nette"] < 0.0,
    }
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "verbose": -1}
    return {
        score: lgb.train(
            {**params, "seed": seed},
            lgb.Dataset(
                matrix,
                label.astype(int),
                feature_name=FEATURE_NAMES,
                categorical_feature=CATEGORICAL_INDICES,
            ),
            num_boost_round=15,
        )
        for seed, (score, label) in enumerate(labels.items())
    }


def pytest_configure(config: pytest.Config) -> None:
    """The dbt manifest (``dbt parse``), before collection imports the definitions, which load
    it; under xdist, once, in the controller, before the workers start."""
    if not hasattr(config, "workerinput"):
        dbt_project.preparer.prepare(dbt_project)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI nothing may skip: a skipped test fails the session."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped and session.exitstatus == 0:
        reporter.write_line(
            f"CI=true: {skipped} test(s) skipped; nothing may skip under CI", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
