"""The model card of a registered version, in Markdown: what it was trained on, how good it is
against the champion and the rule baseline on the same holdout, what drives it, what it costs to
explain, and what it cannot know."""

from dataclasses import dataclass
from datetime import date

import polars as pl

from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.ml.dataset import GROWTH_THRESHOLD, HORIZON_MONTHS
from ma_pipeline.ml.promotion import Decision
from ma_pipeline.ml.scorer import LABELS
from ma_pipeline.ml.train import Splits, TrainingConfig

METRIC_ORDER = ("roc_auc", "pr_auc", "brier", "log_loss", "precision_top_1pct", "positive_rate")
TARGETS = {
    "ma": "an M&A event (cession, change of control, merger) within 12 months",
    "croissance": f"next fiscal year's revenue up {GROWTH_THRESHOLD:.0%} or more",
    "stabilite": "a collective procedure opened within 12 months (score = 1 - P)",
}
KNOWN_LIMITS = (
    "Survivor bias: a company that ceased between an as-of date and the snapshot has no Pappers"
    " data (enrichment asks about active target companies only) and is left out, so events that"
    " end a company (absorption, liquidation) are under-represented.",
    "Pappers lists current representatives only: an owner who left before the snapshot is"
    " missing on every earlier as-of date (dirigeant ages and counts lean to today's team).",
    "Undated attributes are taken as of the snapshot for every as-of date: NAF code, legal form,"
    " capital, headcount band and head office.",
    "M&A labels are as good as their source: BODACC does not publish share deals, so a"
    " BODACC-only file under-counts changes of control; sandbox events are simulated.",
    "The growth label is missing when the next accounts were not filed by the snapshot (late"
    " filers, often distressed companies, are under-represented in the growth model).",
    "One holdout period (the newest as-of dates): its metrics carry the sampling noise of its"
    " positives, and months in a row share companies and events.",
    "The explanation cost is measured on the training machine at training time.",
)


@dataclass(frozen=True)
class ScoreReport:
    """Everything one training learned about one score's new version."""

    score: str
    model_version: str  # "<registered model>/<version>"
    rounds: int
    rows: dict[str, int]  # per split
    positives: dict[str, int]
    metrics: dict[str, dict[str, float]]  # "challenger", "baseline", and "champion" if any
    calibration: pl.DataFrame
    importance: pl.DataFrame
    cost: dict[str, float]
    decision: Decision
    backtest: pl.DataFrame  # per holdout month (ml.backtest)


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def metrics_table(metrics: dict[str, dict[str, float]]) -> pl.DataFrame:
    """One row per metric, one column per scorer compared on the holdout."""
    return pl.DataFrame(
        {"metric": list(METRIC_ORDER)}
        | {who: [values[m] for m in METRIC_ORDER] for who, values in metrics.items()}
    )


def _sources(counts: dict[str, int]) -> str:
    """Where the M&A labels come from, and whether they are real."""
    listed = ", ".join(f"{source} {n:,}" for source, n in counts.items()) or "none"
    real = [source for source in counts if source != "sandbox"]
    return f"{listed} ({'real events' if real else 'simulated by the sandbox, not real events'})"


def _span(dates: list[date]) -> str:
    return f"{dates[0]} → {dates[-1]} ({len(dates)})" if dates else "none"


def model_card(
    report: ScoreReport,
    *,
    splits: Splits,
    config: TrainingConfig,
    snapshot_day: date,
    run_id: str,
    label_sources: dict[str, int],
) -> str:
    """The Markdown card of ``report``'s version; ``label_sources`` counts the M&A events behind
    ``label_ma_12m`` by source."""
    rows = pl.DataFrame(
        {
            "split": list(report.rows),
            "rows": list(report.rows.values()),
            "positives": [report.positives[s] for s in report.rows],
        }
    )
    early = [d for d in splits.refit if d not in splits.train and d not in splits.validation]
    sections = [
        f"# Model card: {report.model_version}",
        f"Score `score_{report.score}`: P({TARGETS[report.score]}), label `{LABELS[report.score]}`."
        f" MLflow run `{run_id}`.",
        f"**Decision**: {report.decision.reason}.",
        "## Data window",
        "\n".join(
            [
                f"- Snapshot (newest raw_companies and Pappers partition): {snapshot_day}; labels"
                f" look {HORIZON_MONTHS} months past each monthly as-of date, windows closed by"
                " the snapshot.",
                f"- Final model (refit): {_span(splits.refit)}; early stopping trained on"
                f" {_span(splits.train)} and validated on {_span(splits.validation)}"
                f" ({len(early)} dates between them purged for early stopping only).",
                f"- Purged (label window reaches into the holdout): {_span(splits.purged)}.",
                f"- Holdout: {_span(splits.holdout)}; the champion and the rule baseline are"
                " scored on the same rows.",
                f"- Companies used for training: {config.train_fraction:.0%} (seeded draw).",
                f"- M&A events behind `{LABELS['ma']}`: {_sources(label_sources)}.",
            ]
        ),
        markdown_table(rows),
        "## Features",
        f"{len(MODEL_FEATURES)} numeric and flags: {', '.join(MODEL_FEATURES)}; categorical"
        f" (fixed vocabularies): {', '.join(CATEGORICAL_FEATURES)}. Computed by"
        " `compute_features`, the function behind `company_features`.",
        "## Model and explanation cost",
        f"LightGBM binary classifier, {report.rounds} trees of at most {config.num_leaves} leaves"
        f" (depth ≤ {config.max_depth}), learning rate {config.learning_rate}, smallest leaf"
        f" {config.min_child_fraction:.1%} of the rows, seed {config.seed}. TreeSHAP"
        " (`pred_contrib`) cost grows with trees × leaves × depth²: measured"
        f" {report.cost['pred_contrib_rows_per_s']:,.0f} rows/s against"
        f" {report.cost['predict_rows_per_s']:,.0f} rows/s for `predict`"
        f" ({report.cost['pred_contrib_slowdown']}× slower), {config.num_threads} thread(s).",
        "## Holdout metrics",
        markdown_table(metrics_table(report.metrics)),
        "## Backtest (each holdout month, out of sample)",
        "Each month the universe ranked by the model as it would have scored then (features"
        " point in time), against what happened in the 12 months after; the rule baseline"
        " ranked the same rows. Precision of the top 1 % and of the top 100, and the lift of the"
        " top 1 % over the month's rate"
        + (" (ranked by the probability of distress)." if report.score == "stabilite" else "."),
        markdown_table(report.backtest),
        "## Calibration (holdout, deciles of the predicted probability)",
        markdown_table(report.calibration),
        "## Global SHAP importance (mean |contribution| to the log-odds, holdout sample)",
        markdown_table(report.importance),
        "## Known limits",
        "\n".join(f"- {limit}" for limit in KNOWN_LIMITS),
    ]
    return "\n\n".join(sections) + "\n"
