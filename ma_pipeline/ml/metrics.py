"""Holdout metrics of a probability, the same for a model, the champion and the rule baseline."""

import math

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

TOP_SHARE = 0.01  # precision_top_1pct: the share of companies a deal team would look at
CALIBRATION_BINS = 10


def precision_at_top(labels: np.ndarray, probabilities: np.ndarray, share: float) -> float:
    """The share of positives among the ``share`` highest probabilities (ties broken by row)."""
    top = max(1, math.ceil(share * len(labels)))
    order = np.argsort(-probabilities, kind="stable")[:top]
    return float(labels[order].mean())


def holdout_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score, log loss, precision in the top 1 %, positives and rows."""
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
        "precision_top_1pct": precision_at_top(labels, probabilities, TOP_SHARE),
        "positive_rate": float(labels.mean()),
        "rows": float(len(labels)),
    }


def calibration_table(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> pl.DataFrame:
    """Mean predicted probability against the observed rate, per decile of the prediction."""
    frame = pl.DataFrame({"p": probabilities, "y": labels.astype(np.float64)})
    decile = (pl.col("p").rank("ordinal") - 1) * bins // frame.height
    return (
        frame.with_columns(bin=decile + 1)
        .group_by("bin")
        .agg(
            pl.len().alias("rows"),
            pl.col("p").min().alias("p_min"),
            pl.col("p").max().alias("p_max"),
            pl.col("p").mean().alias("predicted"),
            pl.col("y").mean().alias("observed"),
        )
        .sort("bin")
    )
