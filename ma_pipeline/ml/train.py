"""LightGBM models of the three scores: time-based splits, seeded training, evaluation, SHAP.

**Splits, by as-of date.** The holdout is the newest ``holdout_months`` as-of dates. A row of
as-of date D is labelled by what happens in (D, D + 12 months], so a training date within 12
months before the first holdout date shares events with the holdout (the same sale labels a
training row and a holdout row of the same company, whose features barely move in a year): those
dates are **purged**. What remains is the *refit* set. Early stopping needs its own honest
split: the newest ``validation_months`` dates of the refit set validate, and training for early
stopping uses the refit dates whose windows close before the first validation date (a second
purge; without it, validation loss kept falling for 2,000 rounds while the holdout got worse).
The number of rounds found that way is then used to refit on the whole refit set, so the purged
gap between train and validation still serves the final model. The holdout, on which every
reported number and the promotion decision rest, is never seen by training or early stopping.

**Complexity.** Scoring explains every score with ``pred_contrib`` (TreeSHAP), whose cost grows
with trees × leaves × depth²: trees are kept shallow (depth 2, 4 leaves), which also suits the
labels (risk factors that mostly add up in log-odds), and the number of trees comes from early
stopping. ``min_child_fraction`` sets the smallest leaf as a share of the rows, because each
company appears once per as-of date and a leaf of a few dozen rows can be one company's history.
"""

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.ml.dataset import AS_OF, HORIZON_MONTHS, add_months
from ma_pipeline.ml.encoding import CATEGORICAL_INDICES, FEATURE_NAMES, encode
from ma_pipeline.ml.metrics import holdout_metrics
from ma_pipeline.ml.scorer import LABELS, Scorer, probability

SAMPLE_ROWS = 20_000  # holdout rows explained for the SHAP importance and the cost measure


class TrainingConfig(dg.Config):
    """How ``ma_models`` splits, trains and promotes (defaults: the module's reasoning)."""

    holdout_months: int = Field(default=6, description="Newest as-of dates held out")
    validation_months: int = Field(default=4, description="As-of dates for early stopping")
    train_fraction: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of companies (seeded draw) whose rows train the models; the holdout"
        " keeps every company. Below 1 only to train a deliberately weaker challenger.",
    )
    promotion_margin: float | None = Field(
        default=None,
        description="Holdout ROC-AUC a challenger must gain over the champion and the baseline;"
        " None: MA_PROMOTION_MARGIN at launch",
    )
    learning_rate: float = 0.1
    num_leaves: int = 4
    max_depth: int = 2
    min_child_fraction: float = Field(
        default=0.005, description="Smallest leaf, as a share of the training rows"
    )
    max_rounds: int = 1000
    early_stopping_rounds: int = 50
    num_threads: int = Field(
        default=1,
        description="LightGBM threads; 1 is as fast on these sizes, and stays fast on a busy"
        " machine, where OpenMP threads spin against other processes",
    )
    seed: int = 2026
    launch = settings.launch_defaults(promotion_margin="MA_PROMOTION_MARGIN")

    def lightgbm_params(self, rows: int) -> dict[str, Any]:
        leaf = max(20, round(self.min_child_fraction * rows))
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": leaf,
            "min_data_per_group": leaf,
            # NAF division has 88 codes and the region 18: coarse, smoothed category splits keep
            # the models from fitting noise there (holdout ROC-AUC +0.003 on the sandbox).
            "max_cat_threshold": 4,
            "cat_smooth": 200.0,
            "cat_l2": 100.0,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 10.0,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "verbose": -1,
        }


@dataclass(frozen=True)
class Splits:
    train: list[date]  # fits the early-stopping model
    validation: list[date]  # picks the number of rounds
    refit: list[date]  # fits the final model: every date whose window closes before the holdout
    holdout: list[date]
    purged: list[date]  # windows reaching into the holdout: used by no model


def split_dates(dates: list[date], holdout_months: int, validation_months: int) -> Splits:
    """The splits of the as-of dates (see the module's reasoning); raises when a split would be
    empty, naming the look-back needed."""
    ordered = sorted(set(dates))
    needed = holdout_months + validation_months + 2 * (HORIZON_MONTHS - 1) + 1
    if len(ordered) < needed:
        raise ValueError(
            f"{len(ordered)} as-of dates; the splits need at least {needed} ({holdout_months}"
            f" holdout, {validation_months} validation, two purges of {HORIZON_MONTHS - 1} and"
            " one to train): lengthen the look-back"
        )
    holdout = ordered[-holdout_months:]
    refit = [d for d in ordered if add_months(d, HORIZON_MONTHS) <= holdout[0]]
    validation = refit[-validation_months:]
    train = [d for d in refit if add_months(d, HORIZON_MONTHS) <= validation[0]]
    purged = [d for d in ordered if d not in refit and d not in holdout]
    return Splits(train, validation, refit, holdout, purged)


Matrix = tuple[np.ndarray, np.ndarray]  # features (encode), labels 0/1


def matrices(
    training_set: pl.DataFrame, score: str, splits: Splits, config: TrainingConfig
) -> dict[str, Matrix]:
    """The encoded rows and labels of each split for one score; rows without a label are left
    out. With ``train_fraction`` < 1, the training splits keep a seeded draw of companies."""
    label = LABELS[score]
    rows = training_set.filter(pl.col(label).is_not_null())
    companies = rows.select("siren").unique().sort("siren")
    kept = companies.sample(fraction=config.train_fraction, seed=config.seed)
    out: dict[str, Matrix] = {}
    for name in ("train", "validation", "refit", "holdout"):
        part = rows.filter(pl.col(AS_OF).is_in(getattr(splits, name)))
        if name != "holdout":
            part = part.join(kept, on="siren", how="semi")
        out[name] = (encode(part), part[label].cast(pl.Int8).to_numpy())
    return out


def _dataset(matrix: Matrix) -> lgb.Dataset:
    features, labels = matrix
    return lgb.Dataset(
        features, labels, feature_name=FEATURE_NAMES, categorical_feature=CATEGORICAL_INDICES
    )


def fit(data: dict[str, Matrix], config: TrainingConfig) -> tuple[lgb.Booster, int]:
    """Early stopping on (train, validation), then a refit of that many rounds on the refit
    set; returns the refit booster and the number of rounds."""
    for name in ("train", "validation", "refit"):
        if data[name][1].sum() == 0:
            raise ValueError(f"no positive label in the {name} rows: lengthen the look-back")
    early = lgb.train(
        config.lightgbm_params(len(data["train"][1])),
        _dataset(data["train"]),
        num_boost_round=config.max_rounds,
        valid_sets=[_dataset(data["validation"])],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    rounds = max(1, early.best_iteration)
    booster = lgb.train(
        config.lightgbm_params(len(data["refit"][1])), _dataset(data["refit"]), rounds
    )
    return booster, rounds


def evaluate(scorer: Scorer, holdout: Matrix) -> tuple[dict[str, float], np.ndarray]:
    """The holdout metrics of any scorer (model, champion or baseline), and its probabilities."""
    features, labels = holdout
    probabilities = probability(scorer.margin(features))
    return holdout_metrics(labels, probabilities), probabilities


def sample_rows(features: np.ndarray, seed: int, rows: int = SAMPLE_ROWS) -> np.ndarray:
    if len(features) <= rows:
        return features
    pick = np.random.default_rng(seed).choice(len(features), size=rows, replace=False)
    return features[np.sort(pick)]


def explain(booster: lgb.Booster, features: np.ndarray) -> tuple[pl.DataFrame, dict[str, float]]:
    """Global SHAP importance (the mean absolute ``pred_contrib`` of each feature, largest
    first: the contributions scoring turns into reasons) and what explaining costs: rows per
    second of ``pred_contrib`` and of ``predict`` on ``features``, measured here and now (only
    indicative on a busy machine)."""
    start = time.perf_counter()
    contributions = booster.predict(features, pred_contrib=True)[:, :-1]
    explained = time.perf_counter()
    booster.predict(features)
    predicted = time.perf_counter()
    importance = pl.DataFrame(
        {"feature": FEATURE_NAMES, "mean_abs_shap": np.abs(contributions).mean(axis=0)}
    ).sort("mean_abs_shap", descending=True)
    contrib_rate = len(features) / max(explained - start, 1e-9)
    predict_rate = len(features) / max(predicted - explained, 1e-9)
    return importance, {
        "pred_contrib_rows_per_s": round(contrib_rate),
        "predict_rows_per_s": round(predict_rate),
        "pred_contrib_slowdown": round(predict_rate / contrib_rate, 1),
    }
