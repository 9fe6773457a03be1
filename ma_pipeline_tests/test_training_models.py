"""ma_models on the sandbox: champions that beat the rule baseline on the holdout, promotion by
MLflow aliases, reproducible metrics, the tables that follow the registry, and MLflow runs that
always end.

One 10,000-company sandbox (60 months of look-back: 49 as-of dates, 6 held out) is built once;
a history of three trainings runs on it: a challenger trained on 2 % of the companies (the
first version, nothing to beat but the baseline), the full model through ``training_job`` (it
must beat that and the baseline), then the 2 % model again (it must not replace the champion).
The sandbox's rule baseline mirrors its latent truth closely, so the M&A model's edge over it is
small (about +0.01 ROC-AUC): 10,000 companies is the size at which it clears the margin.
"""

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
from mlflow.entities import ViewType

from ma_pipeline.contracts.keys import MA_MODELS
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import FEATURE_REFERENCE, ML_SCORES, MODEL_VERSIONS
from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.jobs import training_job
from ma_pipeline.ml import models
from ma_pipeline.ml.assets import ma_events, ma_models, training_set
from ma_pipeline.ml.backtest import backtest, summary
from ma_pipeline.ml.dataset import AS_OF
from ma_pipeline.ml.registry import MODEL_NAMES, SCORES, MlflowResource, model_versions
from ma_pipeline.ml.scorer import LABELS, LightGBMScorer
from ma_pipeline.ml.train import TrainingConfig, evaluate, fit, matrices, split_dates
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import TableRef, connect_warehouse
from ma_pipeline_tests.conftest import SANDBOX_AS_OF, make_resources
from ma_pipeline_tests.factories import ml_scores, sirens
from ma_pipeline_tests.test_training_set import sandbox_tables, write_tables

COMPANIES = 50_000  # legal units: about 10,000 target companies
LOOKBACK = {"ops": {"ml__training_set": {"config": {"lookback_months": 60}}}}
TINY = {"ops": {"ma_models": {"config": {"train_fraction": 0.02}}}}
MARGIN = TrainingConfig().promotion_margin


def resources(data_dir: Path) -> dict[str, Any]:
    """The test resources on ``data_dir``'s DuckDB file, for the 10,000-company sandbox."""
    found = make_resources(data_dir, f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    found["sirene"] = SireneSource(data_dir=str(data_dir), sandbox_companies=COMPANIES)
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose warehouse holds the sandbox's newest partition (raw_companies and
    Pappers), its events and its training set."""
    data_dir = tmp_path_factory.mktemp("sandbox")
    (data_dir / "landing").mkdir()
    warehouse = connect_warehouse("", data_dir)
    write_tables(warehouse, sandbox_tables(COMPANIES, SANDBOX_AS_OF), SANDBOX_AS_OF)
    assert dg.materialize(
        [ma_events, training_set], resources=resources(data_dir), run_config=LOOKBACK
    ).success
    return data_dir


def copy_of(sandbox: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(sandbox / "warehouse.duckdb", target / "warehouse.duckdb")
    return target


@dataclass(frozen=True)
class Step:
    run_id: str
    metadata: dict[str, Any]  # ma_models' materialization
    aliases: dict[str, dict[str, str]]  # score -> alias -> version, after the step


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [event] = [
        e for e in result.asset_materializations_for_node("ma_models") if e.asset_key == MA_MODELS
    ]
    return {key: value.value for key, value in event.metadata.items()}


def aliases(mlflow: MlflowResource) -> dict[str, dict[str, str]]:
    client = mlflow.client()
    return {
        s: {a: str(v) for a, v in client.get_registered_model(MODEL_NAMES[s]).aliases.items()}
        for s in SCORES
    }


@pytest.fixture(scope="module")
def history(sandbox: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Step], Path]:
    """Tiny challenger (materialize), full model (training_job), tiny again (materialize)."""
    data_dir = copy_of(sandbox, tmp_path_factory.mktemp("history"))
    found = resources(data_dir)
    defs = dg.Definitions(
        assets=[ma_events, training_set, ma_models], jobs=[training_job], resources=found
    )
    steps = []
    for launch in ("tiny", "full", "tiny"):
        if launch == "full":
            result = defs.resolve_job_def("training_job").execute_in_process(run_config=LOOKBACK)
        else:
            result = dg.materialize(
                [ma_events, training_set, ma_models],
                resources=found,
                run_config=TINY,
                selection=[ma_models],
            )
        assert result.success
        steps.append(Step(result.run_id, materialized(result), aliases(found["mlflow"])))
    return steps, data_dir


def test_on_the_sandbox_every_champion_beats_the_rule_baseline_on_the_holdout(
    history: tuple[list[Step], Path],
) -> None:
    full = history[0][1]
    for score in SCORES:
        metrics = full.metadata[f"{score}_metrics"]
        challenger, baseline = metrics["challenger"], metrics["baseline"]
        assert challenger["roc_auc"] >= baseline["roc_auc"] + MARGIN, score
        assert challenger["rows"] == baseline["rows"] > 30_000  # the same holdout rows
        assert full.metadata[f"{score}_promoted"], full.metadata[f"{score}_decision"]
        assert full.aliases[score] == {"champion": "2"}
    assert full.metadata["champions"] == {s: f"{MODEL_NAMES[s]}/2" for s in SCORES}


def test_a_worse_challenger_stays_challenger_and_a_better_one_becomes_champion(
    history: tuple[list[Step], Path],
) -> None:
    (first, full, last), data_dir = history
    for score in SCORES:
        # The full model beat the champion of the first training (or the baseline alone when
        # that one never got promoted), on the same holdout.
        compared = full.metadata[f"{score}_metrics"]
        if first.metadata[f"{score}_promoted"]:
            assert first.aliases[score] == {"champion": "1"}
            assert compared["champion"]["roc_auc"] + MARGIN <= compared["challenger"]["roc_auc"]
        else:
            assert first.aliases[score] == {"challenger": "1"}
            assert "champion" not in compared
        # The tiny model trained again is worse than the champion: it stays challenger.
        assert not last.metadata[f"{score}_promoted"]
        assert f"champion {MODEL_NAMES[score]}/2" in last.metadata[f"{score}_decision"]
        assert last.aliases[score] == {"champion": "2", "challenger": "3"}
    scorers = MlflowResource(data_dir=str(data_dir)).scorers()
    assert {s: scorers[s].version for s in SCORES} == {s: f"{MODEL_NAMES[s]}/2" for s in SCORES}


def test_the_same_data_and_seed_give_the_same_metrics(history: tuple[list[Step], Path]) -> None:
    (first, _, last), _ = history
    for score in SCORES:
        again = last.metadata[f"{score}_metrics"]
        assert again["challenger"] == first.metadata[f"{score}_metrics"]["challenger"]
        assert again["baseline"] == first.metadata[f"{score}_metrics"]["baseline"]


def test_the_warehouse_tables_follow_the_registry(history: tuple[list[Step], Path]) -> None:
    steps, data_dir = history
    warehouse = connect_warehouse("", data_dir)
    client = MlflowResource(data_dir=str(data_dir)).client()

    table = warehouse.read(MODEL_VERSIONS).sort("score", "version")
    assert table.equals(model_versions(client).sort("score", "version"))
    assert table.height == 9
    champions = table.filter(pl.col("alias") == "champion")
    assert sorted(champions["score"] + "/" + champions["version"]) == [
        f"{s}/2" for s in sorted(SCORES)
    ]
    assert set(table["run_id"]) == {steps[k].metadata["mlflow_run_id"] for k in range(3)}
    last = table.filter(pl.col("version") == "3", pl.col("score") == "ma").row(0, named=True)
    assert json.loads(last["metrics_json"]) == steps[2].metadata["ma_metrics"]["challenger"]
    assert last["alias"] == "challenger" and last["decision"].startswith("stays challenger")
    # The next publication gives the API (its DuckDB snapshot) the same rows.
    day = date(2026, 1, 2)
    warehouse.replace_partitions(ML_SCORES, ml_scores(day, sirens(3)), [day])
    publish(warehouse, day, run_id="after-training", snapshot=snapshot_paths(data_dir))
    exported = pl.read_parquet(snapshot_paths(data_dir).model_versions)
    assert exported.sort("score", "version").equals(table)

    reference = warehouse.read(FEATURE_REFERENCE)
    assert reference.columns == [*MODEL_FEATURES, *CATEGORICAL_FEATURES, "model_version"]
    assert set(reference["model_version"]) == {"ma_pipeline_ma/2"}
    assert reference.height == 20_000


def test_each_version_has_its_model_card_in_mlflow_and_in_the_materialization(
    history: tuple[list[Step], Path],
) -> None:
    steps, data_dir = history
    full = steps[1]
    client = MlflowResource(data_dir=str(data_dir)).client()
    run_id = full.metadata["mlflow_run_id"]

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    for score in SCORES:
        files = {a.path for a in client.list_artifacts(run_id, score)}
        assert files == {
            f"{score}/model_card.md",
            f"{score}/shap_importance.png",
            f"{score}/backtest.png",
        }
        card = Path(client.download_artifacts(run_id, f"{score}/model_card.md")).read_text()
        assert card == full.metadata[f"{score}_model_card"]
        assert card.startswith(f"# Model card: {MODEL_NAMES[score]}/2")
        for section in (
            "Data window",
            "Holdout metrics",
            "Backtest",
            "Calibration",
            "Global SHAP",
            "Known limits",
        ):
            assert f"## {section}" in card
        assert "pred_contrib" in card and "rows/s" in card
        assert "M&A events behind `label_ma_12m`: sandbox" in card
        assert "simulated by the sandbox, not real events" in card
        version = client.get_model_version(MODEL_NAMES[score], "2")
        assert version.run_id == run_id and version.tags["score"] == score
        # What the version's scores and the rule baseline's are ranked against.
        assert len(json.loads(version.tags["rank_reference"])) == 101
        baseline = MlflowResource(data_dir=str(data_dir)).baseline_reference(score)
        assert baseline is not None and len(baseline.quantiles) == 101
        # The backtest: one row per holdout month, the model against the baseline on them.
        backtested = full.metadata[f"{score}_backtest"]
        assert set(backtested) >= {"model_precision_top_1pct", "baseline_lift_top_1pct"}
        logged = client.get_run(run_id).data.metrics
        assert logged[f"{score}.backtest.model_precision_top_1pct"] == pytest.approx(
            backtested["model_precision_top_1pct"]
        )
    assert "features.json" in artifacts
    params = client.get_run(run_id).data.params
    assert params["snapshot_date"] == str(SANDBOX_AS_OF) and params["holdout_months"] == "6"


def test_no_mlflow_run_is_left_running_and_a_failed_training_ends_failed(
    history: tuple[list[Step], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps, data_dir = history
    found = resources(data_dir)

    def broken(*_: Any) -> None:
        raise RuntimeError("explanation failed")

    monkeypatch.setattr(models, "explain", broken)
    failed = dg.materialize(
        [ma_events, training_set, ma_models],
        selection=[ma_models],
        resources=found,
        run_config=TINY,
        raise_on_error=False,
    )

    assert not failed.success
    mlflow = found["mlflow"]
    client = mlflow.client()
    runs = client.search_runs([mlflow.experiment_id(client)], run_view_type=ViewType.ALL)
    status = {run.data.tags["dagster_run_id"]: run.info.status for run in runs}
    assert status == {
        **{step.run_id: "FINISHED" for step in steps},
        failed.run_id: "FAILED",
    }
    assert aliases(mlflow) == steps[-1].aliases  # a failed training moves no alias


def test_a_model_trained_on_shuffled_labels_ranks_the_holdout_at_chance(sandbox: Path) -> None:
    """The whole pipeline (splits, purges, early stopping, refit, evaluation) on labels
    shuffled across every row: anything but chance would mean the labels reach the model some
    other way. Under the null the holdout ROC-AUC has a standard error of
    sqrt((n1 + n0 + 1) / (12 n1 n0)) ≈ 0.006 here (about 2,800 positives among 56,000 rows), so
    0.45-0.55 is over 8 standard errors wide."""
    frame = connect_warehouse("", sandbox).read(TableRef("ml", "training_set"))
    frame = frame.sort(AS_OF, "siren")
    label = LABELS["ma"]
    shuffled = frame.with_columns(pl.col(label).shuffle(seed=7))
    config = TrainingConfig()
    splits = split_dates(frame[AS_OF].unique().to_list(), 6, 4)

    real = matrices(frame, "ma", splits, config)
    noise = matrices(shuffled, "ma", splits, config)
    booster, _ = fit(noise, config)
    metrics, _ = evaluate(LightGBMScorer("ma", "", booster), noise["holdout"])

    assert noise["holdout"][1].sum() > 2_500
    assert 0.45 <= metrics["roc_auc"] <= 0.55
    trained, _ = fit(real, config)  # the same pipeline on the real labels does learn
    assert evaluate(LightGBMScorer("ma", "", trained), real["holdout"])[0]["roc_auc"] > 0.65
    assert np.isclose(noise["holdout"][1].mean(), real["holdout"][1].mean(), atol=0.01)


@pytest.mark.postgres
def test_on_postgresql_the_tables_follow_the_registry_and_no_snapshot_is_written(
    sandbox: Path, data_dir: Path, pg_url: str
) -> None:
    frame = connect_warehouse("", sandbox).read(TableRef("ml", "training_set"))
    some = frame.select("siren").unique().sort("siren").gather_every(4)
    warehouse = connect_warehouse(pg_url, data_dir)
    warehouse.replace_table(TableRef("ml", "training_set"), frame.join(some, on="siren"))
    events = connect_warehouse("", sandbox).read(TableRef("ml", "ma_events"))
    warehouse.replace_table(TableRef("ml", "ma_events"), events)  # the model cards' label sources
    # A negative margin promotes whatever is trained: this test is about where things land.
    config = {"ops": {"ma_models": {"config": {"promotion_margin": -1.0}}}}

    result = dg.materialize(
        [ma_events, training_set, ma_models],
        selection=[ma_models],
        resources=make_resources(data_dir, pg_url),
        run_config=config,
    )

    assert result.success
    client = MlflowResource(data_dir=str(data_dir)).client()
    table = warehouse.read(MODEL_VERSIONS)
    assert table.sort("score").equals(model_versions(client).sort("score"))
    assert table["alias"].to_list() == ["champion"] * 3
    assert table.schema["created_at"] == pl.Datetime("us", "UTC")
    reference = warehouse.read(FEATURE_REFERENCE)
    assert set(reference["model_version"]) == {"ma_pipeline_ma/1"}
    assert not snapshot_paths(data_dir).model_versions.exists()  # the API reads PostgreSQL


def test_the_backtest_ranks_each_month_and_measures_what_followed() -> None:
    """Constructed: in month 1 the model puts the only two positives of 200 companies on top
    and the baseline puts them last; month 2 has no positive."""
    months = [date(2024, 1, 1)] * 200 + [date(2024, 2, 1)] * 150
    labels = np.zeros(350)
    labels[[0, 1]] = 1
    model = np.linspace(1.0, 0.0, 350)  # rows 0 and 1 first in month 1
    baseline = np.linspace(0.0, 1.0, 350)
    table = backtest(pl.Series(AS_OF, months), labels, model, baseline)

    first, second = table.rows(named=True)
    assert (first["companies"], first["positives"], first["rate"]) == (200, 2, 0.01)
    assert first["model_precision_top_1pct"] == 1.0  # top 2 of 200: both positives
    assert first["model_lift_top_1pct"] == pytest.approx(100.0)
    assert first["baseline_precision_top_1pct"] == 0.0
    assert first["model_precision_top_100"] == pytest.approx(0.02)
    assert (second["positives"], second["model_precision_top_1pct"]) == (0, 0.0)
    assert summary(table)["model_precision_top_1pct"] == pytest.approx(0.5)
