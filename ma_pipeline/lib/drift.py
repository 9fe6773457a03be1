"""Population stability index (PSI) of each feature between a reference and a partition.

PSI = sum over bins of (current share - reference share) * ln(current share / reference share).
Numbers are binned on the reference's quantiles (deciles by default); categories and flags are
their own bins; missing values are a bin of their own, so a jump in nulls is drift too. Empty bins
count as ``EPSILON`` so that the logarithm stays finite.
"""

import polars as pl

from ma_pipeline.lib.checks import ERROR, WARN, Outcome
from ma_pipeline.lib.metadata import preview

EPSILON = 1e-4
NULL_BIN = "null"


def _labels(values: pl.Series, edges: list[float] | None) -> pl.Series:
    """Each value's bin: the number of edges below it (numbers) or itself (categories)."""
    if edges is None:
        return values.cast(pl.String).fill_null(NULL_BIN)
    number = pl.col("value").cast(pl.Float64).fill_nan(None)
    below = pl.sum_horizontal(pl.lit(0), *(number > edge for edge in edges))
    label = pl.when(number.is_null()).then(pl.lit(NULL_BIN)).otherwise(below.cast(pl.String))
    return values.rename("value").to_frame().select(label).to_series()


def _edges(reference: pl.Series, bins: int) -> list[float]:
    """Bin edges at the reference's quantiles, each moved halfway to the next value seen.

    Features such as years since the last accounts pile up on a few values (most fiscal years
    close on 31 December); an edge right on such a value would send the whole pile to the next
    bin when it moves by a day, and read as drift.
    """
    known = reference.cast(pl.Float64).fill_nan(None).drop_nulls()
    if known.is_empty():
        return []
    quantiles = sorted({known.quantile(k / bins, "lower") for k in range(1, bins)} - {None})
    values = known.unique().sort()
    following = values.search_sorted(pl.Series(quantiles, dtype=pl.Float64), side="right")
    return [
        (q + values[i]) / 2
        for q, i in zip(quantiles, following.to_list(), strict=True)
        if i < values.len()
    ]


def _shares(labels: pl.Series) -> pl.DataFrame:
    return labels.rename("bin").value_counts(normalize=True, name="share")


def psi(reference: pl.Series, current: pl.Series, *, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` (0 when either side has no rows)."""
    if reference.is_empty() or current.is_empty():
        return 0.0
    edges = _edges(reference, bins) if reference.dtype.is_numeric() else None
    both = (
        _shares(_labels(reference, edges))
        .join(_shares(_labels(current, edges)), on="bin", how="full", coalesce=True, suffix="_now")
        .select(
            pl.col("share").fill_null(0).clip(EPSILON),
            pl.col("share_now").fill_null(0).clip(EPSILON),
        )
    )
    change = pl.col("share_now") - pl.col("share")
    return float(both.select((change * (pl.col("share_now") / pl.col("share")).log()).sum()).item())


def drift_table(
    reference: pl.DataFrame, current: pl.DataFrame, features: list[str], *, bins: int = 10
) -> pl.DataFrame:
    """One row per feature: its PSI and null rates on both sides, largest PSI first."""
    rows = [
        {
            "feature": name,
            "psi": round(psi(reference[name], current[name], bins=bins), 4),
            "null_rate_reference": round(
                reference[name].null_count() / max(reference.height, 1), 4
            ),
            "null_rate_partition": round(current[name].null_count() / max(current.height, 1), 4),
        }
        for name in features
    ]
    return pl.DataFrame(rows).sort("psi", descending=True)


def drift_outcome(
    reference: pl.DataFrame | None,
    current: pl.DataFrame,
    features: list[str],
    reference_label: str,
    *,
    warn: float,
    error: float,
    bins: int = 10,
) -> Outcome:
    """PSI of every feature (WARN above ``warn``, ERROR above ``error``), with the per-feature
    table in the metadata; passes when there is no reference yet."""
    metadata: dict[str, object] = {"reference": reference_label}
    if reference is None or reference.is_empty() or current.is_empty():
        return Outcome(True, WARN, f"no drift measured: {reference_label}", metadata)
    compared = [f for f in features if f in reference.columns]
    table = drift_table(reference, current, compared, bins=bins).with_columns(
        status=pl.when(pl.col("psi") > error)
        .then(pl.lit("ERROR"))
        .when(pl.col("psi") > warn)
        .then(pl.lit("WARN"))
        .otherwise(pl.lit("ok"))
    )
    drifted = table.filter(pl.col("status") != "ok")
    worst = float(table["psi"].max() or 0.0)
    metadata |= {
        "reference_rows": reference.height,
        "max_psi": worst,
        "drifted_features": drifted["feature"].to_list(),
        "psi_by_feature": preview(table, table.height),
        "thresholds": {"warn": warn, "error": error},
    }
    if missing := [f for f in features if f not in reference.columns]:
        metadata["not_in_reference"] = missing
    severity = ERROR if worst > error else WARN
    if drifted.is_empty():
        return Outcome(True, severity, f"max PSI {worst:.3f} vs {reference_label}", metadata)
    shown = ", ".join(f"{f} {p:.2f}" for f, p in drifted.select("feature", "psi").iter_rows())
    return Outcome(False, severity, f"PSI over {warn} vs {reference_label}: {shown}", metadata)
