"""MlflowResource: the scorers it serves, and MLflow runs that always end."""

from pathlib import Path

import dagster as dg
import lightgbm as lgb
import numpy as np
import pytest
from mlflow.entities import ViewType

from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.encoding import FEATURE_NAMES
from ma_pipeline.ml.registry import CHALLENGER, CHAMPION, MODEL_NAMES, MlflowResource
from ma_pipeline.ml.scorer import BASELINE_VERSION, LightGBMScorer


def booster(seed: int) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(300, len(FEATURE_NAMES)))
    labels = (matrix[:, seed % 5] > 0).astype(int)
    return lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": seed},
        lgb.Dataset(matrix, labels, feature_name=FEATURE_NAMES),
        num_boost_round=5,
    )


@dg.asset
def tracked(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    with mlflow.start_run(context):
        pass


@dg.asset
def tracked_then_fails(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
    with mlflow.start_run(context):
        raise RuntimeError("training broke")


def test_without_a_champion_every_score_falls_back_to_the_rule_baseline(data_dir: Path) -> None:
    scorers = MlflowResource(data_dir=str(data_dir)).scorers()

    assert set(scorers) == {"ma", "croissance", "stabilite"}
    assert all(isinstance(s, RuleBaseline) for s in scorers.values())
    assert {s.version for s in scorers.values()} == {BASELINE_VERSION}
    assert (data_dir / "mlflow" / "mlflow.db").exists()  # the embedded store, under MA_DATA_DIR


def test_each_score_is_served_by_the_version_its_champion_alias_points_at(data_dir: Path) -> None:
    resource = MlflowResource(data_dir=str(data_dir))
    first, second = booster(1), booster(2)

    @dg.asset
    def register_two(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> None:
        with mlflow.start_run(context):
            v1, v2 = mlflow.register(first, "ma"), mlflow.register(second, "ma")
        client = mlflow.client()
        client.set_registered_model_alias(MODEL_NAMES["ma"], CHAMPION, v1.version)
        client.set_registered_model_alias(MODEL_NAMES["ma"], CHALLENGER, v2.version)

    assert dg.materialize([register_two], resources={"mlflow": resource}).success
    scorers = resource.scorers()

    champion = scorers["ma"]
    assert isinstance(champion, LightGBMScorer)
    assert champion.version == "ma_pipeline_ma/1"  # the champion, not the newer challenger
    matrix = np.random.default_rng(0).normal(size=(50, len(FEATURE_NAMES)))
    assert np.allclose(champion.margin(matrix), first.predict(matrix, raw_score=True))
    assert isinstance(scorers["croissance"], RuleBaseline)
    assert isinstance(scorers["stabilite"], RuleBaseline)
    artifacts = data_dir / "mlflow" / "artifacts"
    assert any(artifacts.rglob("MLmodel"))  # artifacts under MA_DATA_DIR, not the cwd


@pytest.mark.parametrize("launch", ["materialize", "job"])
def test_runs_end_finished_or_failed_however_the_step_was_launched(
    data_dir: Path, launch: str
) -> None:
    resource = MlflowResource(data_dir=str(data_dir))
    if launch == "materialize":
        ok = dg.materialize([tracked], resources={"mlflow": resource})
        failed = dg.materialize(
            [tracked_then_fails], resources={"mlflow": resource}, raise_on_error=False
        )
    else:
        defs = dg.Definitions(
            assets=[tracked, tracked_then_fails],
            jobs=[
                dg.define_asset_job("ok_job", [tracked]),
                dg.define_asset_job("failing_job", [tracked_then_fails]),
            ],
            resources={"mlflow": resource},
        )
        ok = defs.resolve_job_def("ok_job").execute_in_process()
        failed = defs.resolve_job_def("failing_job").execute_in_process(raise_on_error=False)
    assert ok.success and not failed.success

    client = resource.client()
    runs = client.search_runs(
        [resource.experiment_id(client)], run_view_type=ViewType.ALL, max_results=10
    )
    status = {run.data.tags["dagster_run_id"]: run.info.status for run in runs}
    assert status == {ok.run_id: "FINISHED", failed.run_id: "FAILED"}
    tags = next(r.data.tags for r in runs if r.data.tags["dagster_run_id"] == failed.run_id)
    assert tags["dagster_asset_key"] == "tracked_then_fails"
