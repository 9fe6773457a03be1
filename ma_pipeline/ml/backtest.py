"""The backtest of a model: each holdout month, the universe ranked as the model ranks it, against
what happened in the 12 months after.

The holdout months are out of sample (the model never saw them, nor the months whose label window
reaches into them: ``train.split_dates`` purges those), and their features are point in time
(``ml.dataset``), so each month reads as "had we used this model then". Per month: companies,
positives and their rate, then for the model and for the rule baseline the precision of the top
1 % and of the top 100 by probability, and the lift of the top 1 % (its precision over the
month's rate). For ``stabilite`` the ranking is by the probability of distress: the companies the
score puts at the bottom.
"""

import math

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from ma_pipeline.ml.dataset import AS_OF

TOP_SHARE, TOP_N = 0.01, 100
SCORERS = ("model", "baseline")


def backtest(
    as_of: pl.Series, labels: np.ndarray, model: np.ndarray, baseline: np.ndarray
) -> pl.DataFrame:
    """One row per as-of date of the rows (``as_of``), with their ``labels`` and the model's and
    the baseline's probabilities; ties in a ranking are broken by row order."""
    frame = pl.DataFrame(
        {AS_OF: as_of, "label": labels.astype(np.float64), "model": model, "baseline": baseline}
    )
    size = pl.len().over(AS_OF)
    top_share = (size * TOP_SHARE).ceil()

    def top(who: str, limit: pl.Expr) -> pl.Expr:
        ranked = pl.col(who).rank("ordinal", descending=True).over(AS_OF)
        return pl.col("label").filter(ranked <= limit).mean()

    out = frame.group_by(AS_OF).agg(
        pl.len().alias("companies"),
        pl.col("label").sum().cast(pl.Int64).alias("positives"),
        pl.col("label").mean().alias("rate"),
        *(top(who, top_share).alias(f"{who}_precision_top_1pct") for who in SCORERS),
        *(top(who, pl.lit(TOP_N)).alias(f"{who}_precision_top_{TOP_N}") for who in SCORERS),
    )
    return out.with_columns(
        (pl.col(f"{who}_precision_top_1pct") / pl.col("rate")).alias(f"{who}_lift_top_1pct")
        for who in SCORERS
    ).sort(AS_OF)


def summary(table: pl.DataFrame) -> dict[str, float]:
    """The months' means, for the run's metrics and the asset's metadata."""
    columns = [c for c in table.columns if c.startswith(SCORERS)]
    means = table.select(pl.col(columns).mean()).row(0, named=True)
    return {name: float(value) for name, value in means.items() if not _missing(value)}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def figure(table: pl.DataFrame, title: str) -> Figure:
    """Precision of the top 1 % per month, model against baseline, beside the month's rate."""
    plot = Figure(figsize=(7, 4), layout="constrained")
    axes = plot.add_subplot()
    months = [str(d) for d in table[AS_OF]]
    for column, label in (
        ("model_precision_top_1pct", "model, top 1 %"),
        ("baseline_precision_top_1pct", "rule baseline, top 1 %"),
        ("rate", "all companies"),
    ):
        axes.plot(months, table[column].to_list(), marker="o", label=label)
    axes.set_ylabel("share with the event in the next 12 months")
    axes.set_title(f"Backtest: {title}")
    axes.tick_params(axis="x", labelrotation=45)
    axes.legend()
    return plot
