"""The blocking rules of an ml_scores partition: what must hold before readers may see it.

Each rule is a pure function from a partition's rows to an ``Outcome`` of ERROR severity; the
asset check in ``scoring.assets`` runs them per partition. A partition that fails any of them is
not published (``publication``), so the API and the marts keep serving the previous good day.
"""

import polars as pl

from ma_pipeline.contracts.scores import KEY_INPUTS, SCORES
from ma_pipeline.lib.checks import ERROR, SAMPLE_ROWS, Coverage, Outcome
from ma_pipeline.lib.drift import psi
from ma_pipeline.lib.metadata import preview

SCORE_COLUMNS = [f"score_{s}" for s in SCORES]
BOUNDED = [*SCORE_COLUMNS, "confidence"]
REQUIRED = ["confidence", "scorer", *(f"model_version_{s}" for s in SCORES), "feature_hash"]
TOP_SHARE = 0.01  # the top a deal team looks at
DOMINATED = 0.5  # share of that top missing a score's key inputs that blocks


def _missing(column: str) -> pl.Expr:
    """Null, or NaN for a float column: both mean no score."""
    col = pl.col(column)
    return col.is_null() | (col.is_nan() if column in BOUNDED else pl.lit(False))


def in_range_outcome(scores: pl.DataFrame) -> Outcome:
    """Every score and the confidence within [0, 100] (NaN counts as outside)."""
    outside = {
        c: scores.filter(~pl.col(c).is_between(0, 100) | pl.col(c).is_nan()).height for c in BOUNDED
    }
    bad = {c: n for c, n in outside.items() if n}
    metadata = {
        "outside_0_100": outside,
        **{f"{c}_min_max": [scores[c].min(), scores[c].max()] for c in BOUNDED},
    }
    if bad:
        return Outcome(False, ERROR, f"values outside 0-100: {bad}", metadata)
    return Outcome(True, ERROR, f"{scores.height} rows: every score within 0-100", metadata)


def no_nulls_outcome(scores: pl.DataFrame) -> Outcome:
    """No company without a confidence, a scorer, model versions or a feature hash, nor without
    a score that does not say why (``unscored_{score}``)."""
    unexplained = {
        f"score_{s}": scores.filter(_missing(f"score_{s}") & pl.col(f"unscored_{s}").is_null())
        for s in SCORES
    }
    counts = {c: scores.filter(_missing(c)).height for c in REQUIRED}
    counts |= {c: rows.height for c, rows in unexplained.items()}
    bad = {c: n for c, n in counts.items() if n}
    metadata: dict[str, object] = {
        "missing_by_column": counts,
        "unscored_with_reason": {s: scores[f"unscored_{s}"].is_not_null().sum() for s in SCORES},
    }
    if bad:
        failing = pl.concat(
            [scores.filter(_missing(c)) for c in bad if c in REQUIRED]
            + [unexplained[c] for c in bad if c in unexplained]
        ).unique("siren")
        metadata["failing_sirens"] = failing["siren"].head(SAMPLE_ROWS).to_list()
        return Outcome(False, ERROR, f"{failing.height} rows miss a value: {bad}", metadata)
    return Outcome(True, ERROR, f"{scores.height} rows: no missing score", metadata)


def key_inputs_outcome(scores: pl.DataFrame, features: pl.DataFrame) -> Outcome:
    """No score whose top 1 % is dominated (more than half) by companies missing all of its key
    inputs (``contracts.scores.KEY_INPUTS``): a top made of what the model cannot see is an
    artefact of the model, not a list of targets. ``features`` has ``siren`` and the key input
    columns of the day."""
    rows = []
    for score in SCORES:
        column = f"score_{score}"
        given = scores.filter(~_missing(column))
        top = given.sort([column, "siren"], descending=[True, False]).head(
            max(1, round(TOP_SHARE * given.height))
        )
        blind = (
            top.select("siren")
            .join(features, on="siren", how="left")
            .select(pl.all_horizontal(pl.col(c).is_null() for c in KEY_INPUTS[score]).mean())
            .item()
        )
        share = float(blind or 0.0)
        rows.append({"score": column, "top": top.height, "share_blind": round(share, 4)})
    table = pl.DataFrame(rows)
    metadata: dict[str, object] = {"top_share": TOP_SHARE, "by_score": preview(table, 3)}
    dominated = table.filter(pl.col("share_blind") > DOMINATED)
    if dominated.is_empty():
        return Outcome(True, ERROR, "no score's top 1 % is made of blind rows", metadata)
    shown = ", ".join(
        f"{s} {p:.0%}" for s, p in dominated.select("score", "share_blind").iter_rows()
    )
    return Outcome(
        False,
        ERROR,
        f"top 1 % dominated by companies missing the score's key inputs: {shown}",
        metadata,
    )


def coverage_outcome(scores: pl.DataFrame, features: pl.DataFrame) -> Outcome:
    """Exactly one row per company of the day's company_features."""
    coverage = Coverage.of(scores, features)
    metadata: dict[str, object] = {
        "feature_rows": features.height,
        "score_rows": scores.height,
        **coverage.counts(),
    }
    if coverage.exact:
        return Outcome(True, ERROR, f"{scores.height} rows = the day's companies", metadata)
    return Outcome(
        False,
        ERROR,
        f"{coverage.missing.len()} companies unscored, {coverage.unexpected.len()} rows for"
        f" companies without features, {coverage.duplicated} duplicates",
        metadata | coverage.samples(),
    )


def distribution_outcome(
    scores: pl.DataFrame,
    reference: pl.DataFrame | None,
    reference_label: str,
    *,
    threshold: float,
    bins: int = 10,
) -> Outcome:
    """PSI of each score against the reference partition; over ``threshold`` blocks.

    Only a score whose model version is the reference's can block: a new champion is expected to
    move its score's distribution (its promotion was decided on the holdout), so its PSI is
    reported and does not block.
    """
    metadata: dict[str, object] = {"reference": reference_label, "threshold": threshold}
    if reference is None or reference.is_empty() or scores.is_empty():
        return Outcome(True, ERROR, f"no distribution check: {reference_label}", metadata)
    rows = []
    for score in SCORES:
        column, version = f"score_{score}", f"model_version_{score}"
        same_model = set(scores[version].unique()) == set(reference[version].unique())
        value = psi(reference[column], scores[column], bins=bins)
        rows.append(
            {
                "score": column,
                "psi": round(value, 4),
                "same_model": same_model,
                "blocks": same_model and value > threshold,
            }
        )
    table = pl.DataFrame(rows)
    blocking = table.filter("blocks")
    metadata |= {"psi_by_score": preview(table, table.height), "max_psi": table["psi"].max()}
    if blocking.is_empty():
        return Outcome(True, ERROR, f"PSI within {threshold} vs {reference_label}", metadata)
    shown = ", ".join(f"{s} {p:.3f}" for s, p in blocking.select("score", "psi").iter_rows())
    return Outcome(False, ERROR, f"PSI over {threshold} vs {reference_label}: {shown}", metadata)
