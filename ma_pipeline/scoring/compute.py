"""One day's scores, confidence and reasons, recomputed only for companies that changed.

Scores. Each scorer (a LightGBM champion or the rule baseline, ``ml.scorer``) gives the margin m
(log-odds) of its score's label, and the score is a probability on 0-100:

- ``score_ma`` = 100 × P(an M&A event within 12 months) = 100 × sigmoid(m_ma);
- ``score_croissance`` = 100 × P(revenue up 10 % or more the next fiscal year);
- ``score_stabilite`` = 100 × (1 − P(a collective procedure within 12 months)): its model
  predicts distress, so the score is the complement.

Each score also gets a rank (0-100) and a band (A-E) against its champion's reference population
(``ml.scale``), and no value at all where the company misses what the model needs to judge it
(``contracts.scores``: ``KEY_INPUTS``, ``MIN_COMPLETENESS``): the score, its rank, band and
reasons are null and ``unscored_{score}`` says why.

Reasons. The contributions of every feature to the margin (LightGBM's native SHAP values,
``pred_contrib``, or the baseline's exact rule terms) plus the base value add up to m. A score's
five reasons are its five features with the largest |contribution|, largest first (ties in feature
order), each with the feature's value as shown to users (``encoding.shown_value``) and its signed
contribution in log-odds *towards the score*: for ``stabilite`` the contributions to the distress
margin are negated, so a positive contribution always raises the score shown. A feature that
contributes nothing (|contribution| ≤ 1e-12, floating-point noise) is no reason: fewer than five
such features leave the last reason columns null (the rule baseline uses few features).

Confidence (0-100) = 100 × completeness × (0.5 + 0.5 × certainty), where completeness is the share
of the model's features known for the company (not null) and certainty the mean over the three
scores given of |2p − 1| (1 when a model is sure either way, 0 at a coin flip; 0 when no score
is given). All features known and
sure models give 100; all features known and coin flips give 50; half the features unknown cap it
at 50.

Carry-over. A company keeps its scores, confidence, reasons and ``calculated_at`` from the
reference partition when its ``feature_hash`` and the three model versions are unchanged, so a
day's SHAP cost follows what changed rather than the size of the universe. The hash is of the
feature vector *as the day's models see it* (``as_models_see_it``): a tree model only compares a
numeric feature with its split thresholds, so each value is replaced by its interval between the
champions' thresholds; values the models compare exactly (categories, the baseline's rules) stay
exact, missing stays missing. Without this, company and tenure ages, which grow every day, would
make every vector new every day. Two rows in the same intervals get bit-identical LightGBM
outputs and SHAP values (TreeSHAP reads a row only through its split decisions), hence identical
scores, confidence and reasons; only the reasons' displayed values can differ (``anciennete``
51.4 then 51.5). Those are rendered from the day's features, except the values of features that
grow with the day alone (``AGING``: company age, years since the last accounts, longest tenure),
which a carried-over row shows as they were when it was calculated, like its scores: rendered
again, they would rewrite most rows every day, and the partitions are stored by change. A
carried-over row therefore equals the row scored from scratch in every column but
``calculated_at`` and those values. The hash
(``feature_hashes``) is deterministic across processes and includes ``SCORING_VERSION``, so a
change to the formulas here recomputes every company once.
"""

import hashlib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import pyarrow as pa

from ma_pipeline.contracts.personal import PERSONAL_FEATURES, shareable
from ma_pipeline.contracts.scores import (
    KEY_INPUTS,
    MIN_COMPLETENESS,
    ML_SCORES_SCHEMA,
    NEEDS_KEY_INPUTS,
    PROFILE,
    SCORES,
    TOP_REASONS,
)
from ma_pipeline.contracts.tables import COMPANY_FEATURES
from ma_pipeline.ml.baseline import RULES, RuleBaseline
from ma_pipeline.ml.encoding import FEATURE_NAMES, encode
from ma_pipeline.ml.scale import bands
from ma_pipeline.ml.scorer import BASELINE_VERSION, LightGBMScorer, Scorer, probability
from ma_pipeline.scoring.display import shown_values
from ma_pipeline.warehouse import PARTITION_COLUMN

# Bump when a formula of this module changes: every feature_hash changes with it.
SCORING_VERSION = "2"
# Scores whose label is bad news for the score: shown as 100 × (1 − P), contributions negated.
COMPLEMENTED = frozenset({"stabilite"})
CHAMPION, RULE_BASELINE = "champion", "rule_baseline"
# Rows per pred_contrib call: bounds the contributions held in memory at once.
CHUNK_ROWS = 200_000
NAMES = dict(enumerate(FEATURE_NAMES))
# A reason on one of these keeps its contribution, not its value (contracts.personal).
PERSONAL = np.array([FEATURE_NAMES.index(f) for f in sorted(PERSONAL_FEATURES)])
# A contribution this small is floating-point noise (TreeSHAP leaves ~1e-18 on unused features).
NEGLIGIBLE = 1e-12
# LightGBM's kZeroThreshold: a value this close to 0 is zero (and missing, for missing_type Zero).
ZERO = 1e-35
# What a company keeps from the reference when carried over: everything but the day, the
# profile and the reasons' values, which are always the day's.
CARRIED: dict[str, pl.DataType] = {
    c: t
    for c, t in ML_SCORES_SCHEMA.items()
    if c != PARTITION_COLUMN and c not in PROFILE and not c.endswith("_value")
}


# Features whose value moves with the day alone (stored as their anchor date in company_features).
AGING = frozenset(column for column, _ in COMPANY_FEATURES.by_change.years_since)
# Each reason's displayed value and the column naming its feature.
REASON_VALUES = {
    f"{score}_reason_{k}_value": f"{score}_reason_{k}_feature"
    for score in SCORES
    for k in range(1, TOP_REASONS + 1)
}


def _seed(lane: int) -> np.uint64:
    text = f"{SCORING_VERSION}|{lane}|{','.join(FEATURE_NAMES)}".encode()
    return np.uint64(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big"))


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: every input bit flips each output bit with probability 1/2."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def decision_edges(scorers: Iterable[Scorer]) -> list[np.ndarray | None]:
    """Per feature column, the sorted thresholds the scorers compare it with, or None when the
    exact value matters.

    A LightGBM tree only asks ``value <= threshold`` of a numeric feature, so two values with
    the same thresholds below them take the same path in every tree: same leaves, same SHAP
    values (TreeSHAP reads a row only through those decisions). A categorical split, a rule of
    the baseline (its terms are functions of the value) or any other scorer needs the exact value.
    """
    thresholds: list[set[float]] = [set() for _ in FEATURE_NAMES]
    exact = [False] * len(FEATURE_NAMES)
    for scorer in scorers:
        if isinstance(scorer, LightGBMScorer):
            nodes = [t["tree_structure"] for t in scorer.booster.dump_model()["tree_info"]]
            while nodes:
                node = nodes.pop()
                if "leaf_coeff" in node:  # a linear tree: its leaves read the values
                    exact = [True] * len(FEATURE_NAMES)
                if "split_feature" not in node:
                    continue
                column = node["split_feature"]
                if node["decision_type"] == "<=":
                    thresholds[column].add(float(node["threshold"]))
                else:
                    exact[column] = True
                nodes += [node["left_child"], node["right_child"]]
        elif isinstance(scorer, RuleBaseline):
            for feature, _ in RULES[scorer.score][1]:
                exact[FEATURE_NAMES.index(feature)] = True
        else:
            exact = [True] * len(FEATURE_NAMES)
    return [None if e else np.array(sorted(t)) for e, t in zip(exact, thresholds, strict=True)]


def as_models_see_it(matrix: np.ndarray, edges: list[np.ndarray | None]) -> np.ndarray:
    """``matrix`` with each numeric value replaced by its interval between ``edges`` (kept exact
    where an edge list is None). Missing stays missing and zero keeps a code of its own (LightGBM
    can treat zero as missing), so the completeness that confidence reads is unchanged too."""
    seen = matrix.copy()
    for column, cuts in enumerate(edges):
        if cuts is None:
            continue
        values = matrix[:, column]
        interval = 2.0 * np.searchsorted(cuts, values, side="left") + (np.abs(values) <= ZERO)
        seen[:, column] = np.where(np.isnan(values), np.nan, interval)
    return seen


def feature_hashes(matrix: np.ndarray) -> pl.Series:
    """A 128-bit hex digest of each row, the same in every process and on every machine.

    Each value is canonicalised (every NaN the same, -0.0 as 0.0) and read as its 64-bit IEEE
    pattern; two lanes, seeded from ``SCORING_VERSION`` and the feature names, fold the row's
    columns in order through the splitmix64 finaliser. Vectorised: a million rows take well
    under a second, where hashing each row in Python would take seconds.
    """
    canonical = np.ascontiguousarray(np.where(np.isnan(matrix), np.nan, matrix + 0.0))
    bits = canonical.view(np.uint64)
    lanes = []
    for lane in (0, 1):
        h = np.full(matrix.shape[0], _seed(lane), dtype=np.uint64)
        for column in range(matrix.shape[1]):
            h = _mix(h ^ bits[:, column])
        lanes.append(h)
    digest = np.stack(lanes, axis=1).astype(">u8").tobytes()
    raw = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), matrix.shape[0], [None, pa.py_buffer(digest)]
    )
    return pl.Series("feature_hash", raw).bin.encode("hex")


@dataclass(frozen=True)
class Explained:
    """One score for a block of companies."""

    margin: np.ndarray  # log-odds of the model's label, as the model outputs it
    score: np.ndarray  # 0-100
    rank: np.ndarray  # 0-100 against the scorer's reference population, NaN without one
    reasons: np.ndarray  # (rows × TOP_REASONS) feature indices, -1 where no reason
    contributions: np.ndarray  # signed towards the score


def top_reasons(contributions: np.ndarray, k: int = TOP_REASONS) -> np.ndarray:
    """Indices of the ``k`` largest |contribution| per row (base value excluded), largest first,
    ties in feature order; -1 for a negligible one. Vectorised: a partial sort per row."""
    magnitude = np.abs(contributions[:, :-1])
    chosen = np.sort(np.argpartition(-magnitude, k - 1, axis=1)[:, :k], axis=1)
    order = np.argsort(-np.take_along_axis(magnitude, chosen, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(chosen, order, axis=1)
    return np.where(np.take_along_axis(magnitude, best, axis=1) > NEGLIGIBLE, best, -1)


def explain(scorer: Scorer, matrix: np.ndarray) -> Explained:
    """Score, margin and top reasons of ``matrix``'s rows, ``CHUNK_ROWS`` at a time.

    The margin is the sum of the contributions (base value included), which equals the model's
    raw output: one ``pred_contrib`` pass gives both, with no separate ``predict``.
    """
    n = matrix.shape[0]
    margin = np.empty(n)
    reasons = np.empty((n, TOP_REASONS), dtype=np.int64)
    towards = np.empty((n, TOP_REASONS))
    sign = -1.0 if scorer.score in COMPLEMENTED else 1.0
    for start in range(0, n, CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, n))
        block = scorer.contributions(matrix[rows])
        margin[rows] = block.sum(axis=1)
        best = top_reasons(block)
        reasons[rows] = best
        chosen = np.take_along_axis(block, np.maximum(best, 0), axis=1)
        towards[rows] = np.where(best >= 0, sign * chosen, np.nan)
    p = probability(margin)
    complemented = scorer.score in COMPLEMENTED
    score = 100.0 * (1.0 - p if complemented else p)
    rank = np.full(n, np.nan)
    if scorer.reference is not None:
        ranked = scorer.reference.rank(margin)
        rank = 100.0 - ranked if complemented else ranked
    return Explained(margin, score, rank, reasons, towards)


def unscored(matrix: np.ndarray) -> dict[str, pl.Series]:
    """Per score, why each row gets no score on it (null where it is scored): too few features
    known for any score, or none of a ``NEEDS_KEY_INPUTS`` score's key inputs."""
    known = ~np.isnan(matrix)
    completeness = known.mean(axis=1) if matrix.shape[0] else np.empty(0)
    sparse = completeness < MIN_COMPLETENESS
    out = {}
    for score in SCORES:
        columns = [FEATURE_NAMES.index(f) for f in KEY_INPUTS[score]]
        blind = (
            ~known[:, columns].any(axis=1)
            if score in NEEDS_KEY_INPUTS
            else np.zeros(len(matrix), dtype=bool)
        )
        why = np.where(
            sparse,
            f"too little data: fewer than {MIN_COMPLETENESS:.0%} of the model's features known",
            np.where(blind, f"not scored without {', '.join(KEY_INPUTS[score])} (no accounts)", ""),
        )
        out[score] = pl.Series(f"unscored_{score}", why, dtype=pl.String).replace("", None)
    return out


def score_matrix(
    matrix: np.ndarray, scorers: Mapping[str, Scorer], calculated_at: datetime
) -> pl.DataFrame:
    """The ``CARRIED`` columns but ``siren`` and ``feature_hash``, for each row of ``matrix``."""
    n = matrix.shape[0]
    explained = {s: explain(scorers[s], matrix) for s in SCORES}
    why = unscored(matrix)
    given = {s: why[s].is_null().to_numpy() for s in SCORES}
    completeness = 1.0 - np.isnan(matrix).mean(axis=1) if n else np.empty(0)
    certainty = np.stack(
        [
            np.where(given[s], np.abs(2 * probability(explained[s].margin) - 1), np.nan)
            for s in SCORES
        ]
    )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no score: NaN, as meant
        certainty = np.nanmean(certainty, axis=0) if n else np.empty(0)
    on_baseline = all(scorers[s].version == BASELINE_VERSION for s in SCORES)
    columns: dict[str, object] = {"confidence": 100.0 * completeness * (0.5 + 0.5 * certainty)}
    for s in SCORES:
        rank = np.where(given[s], explained[s].rank, np.nan)
        # Null where unscored; a NaN the model itself gives stays NaN, for the checks to see.
        columns[f"score_{s}"] = pl.select(
            pl.when(pl.Series(given[s])).then(pl.Series(explained[s].score))
        ).to_series()
        columns[f"rank_{s}"] = pl.Series(rank, nan_to_null=True)
        columns[f"band_{s}"] = pl.Series(bands(rank).tolist(), dtype=pl.String)
        columns[f"unscored_{s}"] = why[s]
        for k in range(TOP_REASONS):
            reasons = np.where(given[s], explained[s].reasons[:, k], -1)
            columns[f"{s}_reason_{k + 1}_feature"] = pl.Series(reasons).replace_strict(
                NAMES, default=None, return_dtype=pl.String
            )
            columns[f"{s}_reason_{k + 1}_contribution"] = pl.Series(
                np.where(given[s], explained[s].contributions[:, k], np.nan), nan_to_null=True
            )
    constants = {
        "scorer": RULE_BASELINE if on_baseline else CHAMPION,
        **{f"model_version_{s}": scorers[s].version for s in SCORES},
        "calculated_at": calculated_at,
    }
    typed = {c: t for c, t in CARRIED.items() if c not in ("siren", "feature_hash")}
    return (
        pl.DataFrame(columns)
        .with_columns(pl.lit(value, typed[name]).alias(name) for name, value in constants.items())
        .select(list(typed))
        .cast(typed)
    )


def reason_values(scored: pl.DataFrame, matrix: np.ndarray) -> pl.DataFrame:
    """The ``{score}_reason_{k}_value`` columns: each reason's feature value in ``matrix`` (the
    row's features of the day), as ``encoding.shown_value`` shows it, null for a personal one
    (``PERSONAL_FEATURES``); one score at a time, which bounds the memory of a million
    companies' 5 million values."""
    index = {name: i for i, name in NAMES.items()}
    columns: list[pl.Series] = []
    for score in SCORES:
        features = [f"{score}_reason_{k}_feature" for k in range(1, TOP_REASONS + 1)]
        chosen = scored.select(
            pl.col(c).replace_strict(index, default=-1, return_dtype=pl.Int64) for c in features
        ).to_numpy()
        values = np.take_along_axis(matrix, np.maximum(chosen, 0), axis=1)
        personal = pl.Series(np.isin(chosen.ravel(), PERSONAL))
        shown = pl.select(
            pl.when(personal).then(None).otherwise(shown_values(chosen.ravel(), values.ravel()))
        ).to_series()
        columns += [
            shown.gather_every(TOP_REASONS, offset=i).alias(c.replace("_feature", "_value"))
            for i, c in enumerate(features)
        ]
    return pl.DataFrame(columns)


@dataclass(frozen=True)
class ScoredDay:
    frame: pl.DataFrame  # ML_SCORES_SCHEMA, sorted by SIREN
    recomputed: int
    carried_over: int


def score_day(
    features: pl.DataFrame,
    scorers: Mapping[str, Scorer],
    reference: pl.DataFrame | None,
    calculated_at: datetime,
) -> ScoredDay:
    """The ml_scores rows of one day's ``features`` (company_features rows).

    Companies of ``reference`` (an earlier day's ml_scores rows) with the same ``feature_hash``
    and the same three model versions as ``scorers`` keep their scores, confidence, reasons and
    ``calculated_at``; the others are scored now, stamped ``calculated_at``. Every company's
    reason values and profile are the day's.
    """
    features = features.sort("siren")
    matrix = encode(features)
    hashes = feature_hashes(as_models_see_it(matrix, decision_edges(scorers.values())))
    keys = pl.DataFrame({"siren": features["siren"], "feature_hash": hashes})
    carried = pl.DataFrame(schema=CARRIED)
    if reference is not None and not reference.is_empty():
        same_models = pl.all_horizontal(
            pl.col(f"model_version_{s}") == scorers[s].version for s in SCORES
        )
        carried = (
            keys.join(
                reference.filter(same_models).select(list(CARRIED)),
                on=["siren", "feature_hash"],
                how="inner",
            )
            .select(list(CARRIED))
            .cast(CARRIED)
        )
    todo = ~keys["siren"].is_in(carried["siren"].implode()).to_numpy()
    fresh = pl.concat(
        [
            keys.filter(todo),
            score_matrix(matrix if todo.all() else matrix[todo], scorers, calculated_at),
        ],
        how="horizontal",
    ).select(list(CARRIED))
    scored = keys.select("siren").join(
        pl.concat([fresh, carried]), on="siren", how="left", maintain_order="left"
    )
    values = reason_values(scored, matrix)
    if reference is not None and carried.height:
        values = _aging_as_calculated(scored, values, reference, carried["siren"])
    profile = shareable(features).select(PARTITION_COLUMN, *PROFILE)  # no sole trader's name
    frame = pl.concat([profile, scored, values], how="horizontal").select(list(ML_SCORES_SCHEMA))
    return ScoredDay(frame, recomputed=fresh.height, carried_over=carried.height)


def _aging_as_calculated(
    scored: pl.DataFrame, values: pl.DataFrame, reference: pl.DataFrame, carried: pl.Series
) -> pl.DataFrame:
    """``values`` where the carried-over companies show their ``AGING`` reasons' values from
    ``reference``, as they were calculated."""
    kept = scored.select("siren").join(
        reference.select("siren", *(pl.col(c).alias(f"kept_{c}") for c in REASON_VALUES)),
        on="siren",
        how="left",
        maintain_order="left",
    )
    aging = pl.Series(scored["siren"].is_in(carried.implode()))
    return values.with_columns(
        pl.when(aging & scored[feature].is_in(list(AGING)))
        .then(kept[f"kept_{value}"])
        .otherwise(pl.col(value))
        .alias(value)
        for value, feature in REASON_VALUES.items()
    )


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without what a carried-over row keeps from when it was calculated
    (``calculated_at``, the ``AGING`` reasons' values): what equals a recomputation."""
    return frame.with_columns(
        pl.when(pl.col(feature).is_in(list(AGING))).then(None).otherwise(pl.col(value)).alias(value)
        for value, feature in REASON_VALUES.items()
    ).drop("calculated_at")
