"""ml_scores, its blocking checks and published_scores as Dagster runs them: backfills in one
run, champions from MLflow, carry-over from the checked partition, bad days never served."""

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from ma_pipeline.bootstrap import top_targets
from ma_pipeline.contracts import keys
from ma_pipeline.contracts.keys import COMPANY_FEATURES
from ma_pipeline.contracts.scores import ML_SCORES_SCHEMA, SCORES
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import KASPR_CONTACTS, ML_SCORES, PUBLISHED_SCORES
from ma_pipeline.definitions import defs
from ma_pipeline.ml.encoding import FEATURE_NAMES
from ma_pipeline.ml.registry import MODEL_NAMES, MlflowResource
from ma_pipeline.ml.scorer import LightGBMScorer, Scorer
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.assets import ml_scores, ml_scores_blocking_checks
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.scoring.publication import publication, publications, publish
from ma_pipeline.warehouse import (
    TableRef,
    Warehouse,
    WarehouseIOManager,
    WarehouseResource,
    WarehouseViewIOManager,
    connect_warehouse,
)
from ma_pipeline_tests.conftest import SANDBOX_DAY, make_resources, sandbox_features
from ma_pipeline_tests.factories import ml_scores as ml_scores_rows
from ma_pipeline_tests.factories import sirens

FEATURES = TableRef("features", "company_features")
D1, D2, D3, D4 = (SANDBOX_DAY + timedelta(days=i) for i in range(4))
CHECKS = {"scores_in_range", "one_row_per_company", "no_null_scores", "score_distribution"}
NOT_CALCULATED_AT = [c for c in ML_SCORES_SCHEMA if c != "calculated_at"]


def backfill_tags(first: date, last: date) -> dict[str, str]:
    """The tags a single-run backfill launched from the UI puts on its one run."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {(e.check_name, e.partition): e.passed for e in result.get_asset_check_evaluations()}


def test_a_backfill_runs_the_whole_day_chain_once_and_publishes_each_day(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """raw_companies to kaspr_contacts for three days: one run, three partitions everywhere."""
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("daily_job")

    result = job.execute_in_process(
        instance=instance,
        resources=make_resources(data_dir, warehouse_url),
        tags=backfill_tags(D1, D3),
    )

    assert result.success
    assert len(instance.get_runs()) == 1
    days = [D1, D2, D3]
    for table in (ML_SCORES, PUBLISHED_SCORES, KASPR_CONTACTS):
        assert warehouse.partitions(table) == days
    for day in days:
        features = warehouse.read(FEATURES, start=day, end=day)
        scores = warehouse.read(ML_SCORES, start=day, end=day)
        assert scores["siren"].sort().equals(features["siren"].sort())
        assert set(scores["scorer"]) == {"rule_baseline"}  # no champion in this MLflow yet
    assert publications(warehouse)["partition_date"].to_list() == days[::-1]
    assert set(publications(warehouse)["run_id"]) == {result.run_id}
    checks = {k: v for k, v in evaluations(result).items() if k[0] in CHECKS}
    assert checks == {(c, d.isoformat()): True for c in CHECKS for d in days}
    contacts = warehouse.read(KASPR_CONTACTS)
    assert set(contacts["partition_date"]) == set(days) and contacts["personal_data"].all()
    snapshot = snapshot_paths(data_dir)
    if warehouse.dialect == "duckdb":  # the API's read-only copy
        assert pl.read_parquet(snapshot.publications).height == 3
        assert pl.read_parquet(snapshot.contacts).height == contacts.height
    else:
        assert not snapshot.root.exists()
    served = {
        e.partition: e.materialization.metadata["served_date"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "published_scores"
    }
    assert served == {d.isoformat(): D3.isoformat() for d in days}


class Broken:
    """A scorer whose model outputs nothing usable (NaN)."""

    def __init__(self, score: str) -> None:
        self.score, self.version = score, f"{MODEL_NAMES[score]}/1"
        self.reference = None

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return np.full((matrix.shape[0], len(FEATURE_NAMES) + 1), np.nan)

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        return self.contributions(matrix).sum(axis=1)


class BrokenRegistry(MlflowResource):
    def scorers(self) -> dict[str, Scorer]:
        return {s: Broken(s) for s in SCORES}


class Champions(MlflowResource):
    """The registry with a champion for every score: these LightGBM models (as text), version 1.
    The registry's own tests cover loading them from MLflow by alias."""

    models: dict[str, str]

    def scorers(self) -> dict[str, Scorer]:
        return {
            s: LightGBMScorer(s, f"{MODEL_NAMES[s]}/1", lgb.Booster(model_str=text))
            for s, text in self.models.items()
        }


def test_champions_carry_over_and_a_failed_check_never_replaces_the_served_day(
    data_dir: Path, sandbox_partition: dict[str, pl.DataFrame], boosters: dict[str, lgb.Booster]
) -> None:
    """On DuckDB only: the backfill test above runs the chain on both backends."""
    warehouse_url = f"duckdb:///{data_dir / 'warehouse.duckdb'}"
    warehouse = connect_warehouse(warehouse_url, data_dir)
    for day in (D1, D2, D3, D4):
        warehouse.replace_partitions(FEATURES, sandbox_features(sandbox_partition, day), [day])
    resource = WarehouseResource(url=warehouse_url, data_dir=str(data_dir))
    baseline = MlflowResource(data_dir=str(data_dir))  # no champion registered
    registry = Champions(models={s: b.model_to_string() for s, b in boosters.items()})
    instance = dg.DagsterInstance.ephemeral()

    def run(
        day: date, last: date | None = None, mlflow: MlflowResource = registry
    ) -> dg.ExecuteInProcessResult:
        """Score, check and publish ``day`` (to ``last``) in one run, as a backfill would."""
        job = dg.Definitions(
            assets=[
                dg.AssetSpec(COMPANY_FEATURES, partitions_def=daily_partitions),
                dg.AssetSpec(keys.MA_MODELS),
                dg.AssetSpec(keys.MODEL_VERSIONS),
                dg.AssetSpec(keys.KASPR_CONTACTS, partitions_def=daily_partitions),
                ml_scores,
                publication,
            ],
            asset_checks=[ml_scores_blocking_checks],
            resources={
                "warehouse": resource,
                "io_manager": WarehouseIOManager(warehouse=resource),
                "view_io_manager": WarehouseViewIOManager(warehouse=resource),
                "mlflow": mlflow,
            },
        ).resolve_implicit_global_asset_job_def()
        return job.execute_in_process(
            instance=instance, tags=backfill_tags(day, last or day), raise_on_error=False
        )

    def metadata(result: dg.ExecuteInProcessResult, key: str) -> Any:
        """A value of the run's ml_scores metadata (one partition: one materialization)."""
        [event] = [
            e for e in result.get_asset_materialization_events() if e.asset_key == keys.ML_SCORES
        ]
        return event.materialization.metadata[key].value

    # Before any champion: the baseline, published.
    assert run(D1, D2, mlflow=baseline).success

    # A new champion: every company is recomputed, and re-scoring the day is idempotent.
    first = run(D2)
    assert (
        first.success
        and metadata(first, "recomputed") == warehouse.read(FEATURES, start=D2, end=D2).height
    )
    scored = warehouse.read(ML_SCORES, start=D2, end=D2)
    assert set(scored["scorer"]) == {"champion"}
    assert set(scored["model_version_ma"]) == {"ma_pipeline_ma/1"}
    again = run(D2)
    assert again.success
    rescored = warehouse.read(ML_SCORES, start=D2, end=D2)
    assert (
        rescored.select(NOT_CALCULATED_AT)
        .sort("siren")
        .equals(scored.select(NOT_CALCULATED_AT).sort("siren"))
    )

    # The next day carries most companies over from the published D2, exactly.
    third = run(D3)
    assert third.success and 0 < metadata(third, "recomputed") < metadata(third, "carried_over")
    incremental = warehouse.read(ML_SCORES, start=D3, end=D3)
    scratch = score_day(
        warehouse.read(FEATURES, start=D3, end=D3),
        registry.scorers(),
        None,
        incremental["calculated_at"][0],
    ).frame
    assert (
        incremental.select(NOT_CALCULATED_AT)
        .sort("siren")
        .equals(scratch.select(NOT_CALCULATED_AT))
    )
    good = warehouse.read(PUBLISHED_SCORES, start=D3, end=D3)

    # A broken re-run of D3 fails its blocking checks: D3 stays as it was published.
    broken = run(D3, mlflow=BrokenRegistry(data_dir=str(data_dir)))
    assert not broken.success
    failed = {k for k, passed in evaluations(broken).items() if not passed}
    assert ("no_null_scores", D3.isoformat()) in failed
    assert ("scores_in_range", D3.isoformat()) in failed
    assert not [
        e
        for e in broken.get_asset_materialization_events()
        if e.asset_key.path[-1] == "published_scores"
    ]
    assert warehouse.read(ML_SCORES, start=D3, end=D3)["score_ma"].is_nan().all()
    assert warehouse.read(PUBLISHED_SCORES, start=D3, end=D3).equals(good)
    assert publications(warehouse).filter(pl.col("partition_date") == D3)["run_id"].to_list() == [
        third.run_id
    ]
    # Publishing D3 on its own (the UI's Materialize button) is refused too.
    alone = dg.materialize(
        [publication],
        partition_key=D3.isoformat(),
        instance=instance,
        resources={"warehouse": resource},
        raise_on_error=False,
    )
    assert not alone.success
    assert "blocking checks" in str(alone.get_step_failure_events()[0].step_failure_data.error)
    assert warehouse.read(PUBLISHED_SCORES, start=D3, end=D3).equals(good)

    # The next day starts from the newest day that passed its checks (D2), never the broken D3.
    fourth = run(D4)
    assert fourth.success and metadata(fourth, "carried_over") > 0


def test_the_quick_start_ends_with_the_served_days_top_targets_and_their_reasons(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MA_WAREHOUSE_URL", raising=False)
    warehouse = connect_warehouse("", data_dir)
    assert top_targets() == "No published partition yet."
    scores = ml_scores_rows(D1, sirens(30), scorer="rule_baseline")
    warehouse.replace_partitions(ML_SCORES, scores, [D1])
    publish(warehouse, D1, run_id="run")

    summary = top_targets(3).splitlines()

    best = scores.sort("score_ma", descending=True).row(0, named=True)
    assert summary[0].startswith(f"Top 3 M&A targets of {D1} (30 scored by the rule baseline")
    shown = f"M&A {best['band_ma']} (rank {best['rank_ma']:.0f}), {best['score_ma']:.1f} %"
    assert best["siren"] in summary[1] and shown in summary[1]
    assert summary[2].startswith("    why: age_dirigeant_max = (personal data) (")
    assert len(summary) == 1 + 3 * 2


def test_scoring_in_siren_blocks_gives_the_rows_of_one_pass(
    tmp_path: Path, sandbox_partition: dict[str, pl.DataFrame], boosters: dict[str, lgb.Booster]
) -> None:
    """Three days in one run, each scored in blocks of 37 companies (the features and the
    previous day read by SIREN block) and in one block: the same rows, the same carry-over."""
    registry = Champions(models={s: b.model_to_string() for s, b in boosters.items()})

    def scored(block_rows: int) -> tuple[pl.DataFrame, list[Any]]:
        data_dir = tmp_path / str(block_rows)
        url = f"duckdb:///{data_dir / 'warehouse.duckdb'}"
        warehouse = connect_warehouse(url, data_dir)
        for day in (D1, D2, D3):
            warehouse.replace_partitions(FEATURES, sandbox_features(sandbox_partition, day), [day])
        resource = WarehouseResource(url=url, data_dir=str(data_dir))
        job = dg.Definitions(
            assets=[
                dg.AssetSpec(COMPANY_FEATURES, partitions_def=daily_partitions),
                dg.AssetSpec(keys.MA_MODELS),
                ml_scores,
            ],
            resources={
                "warehouse": resource,
                "view_io_manager": WarehouseViewIOManager(warehouse=resource),
                "mlflow": registry,
            },
        ).resolve_implicit_global_asset_job_def()
        config = {"ops": {ml_scores.op.name: {"config": {"block_rows": block_rows}}}}
        result = job.execute_in_process(run_config=config, tags=backfill_tags(D1, D3))
        assert result.success
        event = result.get_asset_materialization_events()[0]  # one per day, the same metadata
        by_day = event.materialization.metadata["by_partition"].value
        rows = warehouse.read(ML_SCORES).select(NOT_CALCULATED_AT)
        return rows.sort("partition_date", "siren"), [by_day, event.materialization.metadata]

    blocks, (blocks_by_day, blocks_meta) = scored(37)
    whole, (whole_by_day, whole_meta) = scored(1_000_000)

    assert blocks.height == 3 * sandbox_features(sandbox_partition, D1).height > 37 * 3
    assert blocks.equals(whole)
    assert blocks_by_day == whole_by_day  # recomputed and carried over, per day
    assert blocks_meta["carried_over"].value > 0
    for key in ("score_means", "top_targets", "dagster/row_count"):
        assert blocks_meta[key] == whole_meta[key]


def test_every_ml_scores_column_is_described_in_the_ui() -> None:
    """The column schema the Dagster UI shows: each column with its type and what it holds."""
    schema = ml_scores.specs_by_key[ml_scores.key].metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == list(ML_SCORES_SCHEMA)
    assert all(c.description for c in schema.columns)
    described = {c.name: c.description for c in schema.columns}
    assert "null for personal data" in described["ma_reason_1_value"]
    assert "A top 5 %" in described["band_ma"]
