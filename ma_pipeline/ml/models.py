"""One training of the three scores, inside one MLflow run.

For each score: fit (``train.fit``), evaluate the new model, the current champion and the rule
baseline on the same holdout, decide (``promotion.decide``), then log and register the version,
its model card, SHAP importance plot and metrics, and move the aliases. The warehouse tables that
follow the registry (``ml.model_versions``, ``ml.feature_reference``) are rebuilt from it after.
"""

import json
from dataclasses import dataclass, replace
from datetime import date

import lightgbm as lgb
import mlflow
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.models import infer_signature

from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.ml.backtest import backtest as run_backtest
from ma_pipeline.ml.backtest import figure as backtest_figure
from ma_pipeline.ml.backtest import summary
from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.dataset import AS_OF
from ma_pipeline.ml.encoding import FEATURE_NAMES, VOCABULARIES, encode
from ma_pipeline.ml.metrics import calibration_table
from ma_pipeline.ml.model_card import ScoreReport, model_card
from ma_pipeline.ml.promotion import decide
from ma_pipeline.ml.registry import (
    BASELINE_REFERENCE_TAG,
    CHALLENGER,
    CHAMPION,
    REFERENCE_TAG,
    MlflowResource,
)
from ma_pipeline.ml.scale import RankReference
from ma_pipeline.ml.scorer import LABELS, LightGBMScorer, Scorer
from ma_pipeline.ml.train import (
    Splits,
    TrainingConfig,
    evaluate,
    explain,
    fit,
    matrices,
    sample_rows,
)

FEATURE_REFERENCE_ROWS = 20_000


@dataclass(frozen=True)
class Candidate:
    """A score's new model before it is registered."""

    booster: lgb.Booster
    report: ScoreReport  # model_version still empty
    sample: np.ndarray  # holdout rows explained, also the model signature's example
    reference: RankReference  # what its scores are ranked against (ml.scale)
    baseline_reference: RankReference  # the rule baseline's, on the same population


def candidate(
    score: str,
    training_set: pl.DataFrame,
    splits: Splits,
    config: TrainingConfig,
    serving: Scorer,
) -> Candidate:
    """Train ``score``'s model and compare it, on the same holdout, with the baseline and with
    what serves today (``serving``: the champion, or the baseline when there is none)."""
    data = matrices(training_set, score, splits, config)
    booster, rounds = fit(data, config)
    holdout = data["holdout"]
    challenger, probabilities = evaluate(LightGBMScorer(score, "", booster), holdout)
    floor, floor_probabilities = evaluate(RuleBaseline(score), holdout)
    metrics = {"challenger": challenger, "baseline": floor}
    labelled = training_set.filter(pl.col(LABELS[score]).is_not_null())  # as ``matrices`` does
    months = labelled.filter(pl.col(AS_OF).is_in(splits.holdout))[AS_OF]
    backtest = run_backtest(months, holdout[1], probabilities, floor_probabilities)
    champion = serving if isinstance(serving, LightGBMScorer) else None
    note = ""
    if champion is not None and champion.booster.feature_name() == FEATURE_NAMES:
        metrics["champion"] = evaluate(champion, holdout)[0]
    elif champion is not None:
        note = f"champion {champion.version} was trained on other features: not re-scored"
    decision = decide(
        challenger,
        metrics["baseline"],
        metrics.get("champion"),
        margin=config.promotion_margin,
        champion_version=champion.version if champion else None,
        champion_note=note,
    )
    sample = sample_rows(holdout[0], config.seed)
    importance, cost = explain(booster, sample)
    report = ScoreReport(
        score=score,
        model_version="",
        rounds=rounds,
        rows={name: len(labels) for name, (_, labels) in data.items()},
        positives={name: int(labels.sum()) for name, (_, labels) in data.items()},
        metrics=metrics,
        calibration=calibration_table(holdout[1], probabilities),
        importance=importance,
        cost=cost,
        decision=decision,
        backtest=backtest,
    )
    newest = encode(training_set.filter(pl.col(AS_OF) == pl.col(AS_OF).max()))
    reference = RankReference.of(booster.predict(newest, raw_score=True))
    baseline_reference = RankReference.of(RuleBaseline(score).margin(newest))
    return Candidate(booster, report, sample, reference, baseline_reference)


def importance_figure(importance: pl.DataFrame, title: str) -> Figure:
    shown = importance.head(15).reverse()
    figure = Figure(figsize=(7, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(shown["feature"].to_list(), shown["mean_abs_shap"].to_list(), color="#3a6ea5")
    axes.set_xlabel("mean |SHAP| (log-odds)")
    axes.set_title(f"Global SHAP importance: {title}")
    return figure


def register(
    found: Candidate,
    resource: MlflowResource,
    client: MlflowClient,
    *,
    splits: Splits,
    config: TrainingConfig,
    snapshot_day: date,
    run_id: str,
    label_sources: dict[str, int],
) -> tuple[ScoreReport, str]:
    """Log and register ``found`` in the active run, set its aliases; its report and card."""
    score = found.report.score
    signature = infer_signature(found.sample[:5], found.booster.predict(found.sample[:5]))
    version = resource.register(found.booster, score, signature)
    report = replace(found.report, model_version=f"{version.name}/{version.version}")
    card = model_card(
        report,
        splits=splits,
        config=config,
        snapshot_day=snapshot_day,
        run_id=run_id,
        label_sources=label_sources,
    )
    mlflow.log_text(card, f"{score}/model_card.md")
    mlflow.log_figure(
        importance_figure(report.importance, report.model_version), f"{score}/shap_importance.png"
    )
    mlflow.log_figure(
        backtest_figure(report.backtest, report.model_version), f"{score}/backtest.png"
    )
    mlflow.log_metrics(
        {
            f"{score}.{who}.{name}": value
            for who, values in report.metrics.items()
            for name, value in values.items()
        }
        | {f"{score}.{name}": value for name, value in report.cost.items()}
        | {f"{score}.backtest.{name}": value for name, value in summary(report.backtest).items()}
    )
    mlflow.log_param(f"{score}.rounds", report.rounds)
    tags = {
        "score": score,
        "holdout_metrics": json.dumps(report.metrics["challenger"]),
        "decision": report.decision.reason,
        REFERENCE_TAG: found.reference.to_json(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    client.set_registered_model_tag(
        version.name, BASELINE_REFERENCE_TAG, found.baseline_reference.to_json()
    )
    client.set_registered_model_alias(version.name, CHALLENGER, version.version)
    if report.decision.promote:
        client.set_registered_model_alias(version.name, CHAMPION, version.version)
        client.delete_registered_model_alias(version.name, CHALLENGER)
    return report, card


def log_run_context(splits: Splits, config: TrainingConfig, snapshot_day: date) -> None:
    """What every model of the run shares: configuration, data window, feature list."""
    mlflow.log_params(
        config.model_dump()
        | {
            "snapshot_date": snapshot_day.isoformat(),
            "refit_dates": f"{splits.refit[0]}..{splits.refit[-1]}",
            "holdout_dates": f"{splits.holdout[0]}..{splits.holdout[-1]}",
            "purged_dates": len(splits.purged),
        }
    )
    mlflow.log_dict(
        {
            "features": FEATURE_NAMES,
            "categorical": CATEGORICAL_FEATURES,
            "vocabularies": VOCABULARIES,
        },
        "features.json",
    )


def feature_reference(
    training_set: pl.DataFrame, splits: Splits, model_version: str, seed: int
) -> pl.DataFrame:
    """A seeded sample of the rows the model was refit on, for the drift check."""
    rows = training_set.filter(pl.col(AS_OF).is_in(splits.refit))
    sample = rows.sample(min(FEATURE_REFERENCE_ROWS, rows.height), seed=seed)
    return sample.select(*MODEL_FEATURES, *CATEGORICAL_FEATURES).with_columns(
        model_version=pl.lit(model_version)
    )
