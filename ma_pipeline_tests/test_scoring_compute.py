"""Scores, reasons and carry-over, computed on the sandbox's features without Dagster."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from ma_pipeline.contracts.scores import ML_SCORES_SCHEMA, SCORES, TOP_REASONS
from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.encoding import CATEGORICAL_INDICES, FEATURE_NAMES, encode, shown_value
from ma_pipeline.ml.scale import RankReference, bands
from ma_pipeline.ml.scorer import BASELINE_VERSION, LightGBMScorer, Scorer, probability
from ma_pipeline.scoring.compute import (
    as_models_see_it,
    comparable,
    decision_edges,
    explain,
    feature_hashes,
    score_day,
    top_reasons,
)
from ma_pipeline.scoring.display import shown_values
from ma_pipeline_tests.conftest import SANDBOX_DAY, sandbox_features

NOW = datetime(2026, 11, 21, 2, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


@pytest.fixture(scope="module")
def day_1(sandbox_partition: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return sandbox_features(sandbox_partition, SANDBOX_DAY)


@pytest.fixture(scope="module")
def day_2(sandbox_partition: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The next day: the same companies, a day older (ages and tenures have all moved)."""
    return sandbox_features(sandbox_partition, SANDBOX_DAY + timedelta(days=1))


def champions(boosters: dict[str, lgb.Booster], version: int = 1) -> dict[str, Scorer]:
    return {s: LightGBMScorer(s, f"ma_pipeline_{s}/{version}", b) for s, b in boosters.items()}


def baseline() -> dict[str, Scorer]:
    return {s: RuleBaseline(s) for s in SCORES}


def test_shap_reasons_add_up_to_the_model_output(
    day_1: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    matrix = encode(day_1.sort("siren"))
    scored = score_day(day_1, champions(boosters), None, NOW).frame

    for score, booster in boosters.items():
        explained = explain(LightGBMScorer(score, "v", booster), matrix)
        raw = booster.predict(matrix, raw_score=True)
        contributions = booster.predict(matrix, pred_contrib=True)
        # base value (last column) + every feature's contribution = the raw margin
        assert np.allclose(contributions.sum(axis=1), raw, rtol=0, atol=1e-6)
        assert np.allclose(explained.margin, raw, rtol=0, atol=1e-6)
        p = probability(raw)
        expected = 100 * (1 - p) if score == "stabilite" else 100 * p
        given = scored[f"unscored_{score}"].is_null().to_numpy()
        assert np.allclose(scored[f"score_{score}"].to_numpy()[given], expected[given])

        # The stored reasons are the largest |contributions|, signed towards the score.
        sign = -1.0 if score == "stabilite" else 1.0
        top = np.argsort(-np.abs(contributions[:, :-1]), axis=1, kind="stable")[:, :TOP_REASONS]
        for rank in range(TOP_REASONS):
            chosen = np.take_along_axis(contributions, top[:, rank : rank + 1], 1)[:, 0]
            reason = np.abs(chosen) > 1e-12  # below: floating-point noise, no reason
            stored = scored[f"{score}_reason_{rank + 1}_contribution"].to_numpy()
            shown = np.where(reason & given, sign * chosen, np.nan)
            assert np.array_equal(stored, shown, equal_nan=True)
            names = scored[f"{score}_reason_{rank + 1}_feature"].to_list()
            shown = zip(top[:, rank], reason & given, strict=True)
            assert names == [FEATURE_NAMES[i] if r else None for i, r in shown]


def test_the_rule_baseline_scores_with_reasons_and_says_so(day_1: pl.DataFrame) -> None:
    scored = score_day(day_1, baseline(), None, NOW).frame

    assert scored.schema == pl.Schema(ML_SCORES_SCHEMA)
    assert set(scored["scorer"]) == {"rule_baseline"}
    assert {scored[f"model_version_{s}"][0] for s in SCORES} == {BASELINE_VERSION}
    by_age = (
        scored.filter(pl.col("ma_reason_1_feature") == "age_dirigeant_max")
        .join(day_1.select("siren", age=pl.col("age_dirigeant_max").floor()), on="siren")
        .select("age", weight="ma_reason_1_contribution")
    )
    # The documented rule weights: +1.2 from 65, +0.5 from 60 to 64.
    assert set(by_age.filter(pl.col("age") >= 65)["weight"]) == {1.2}
    assert set(by_age.filter(pl.col("age").is_between(60, 64))["weight"]) == {0.5}
    # A feature that contributes nothing is no reason: the baseline's ma uses 4 features.
    assert scored["ma_reason_5_feature"].null_count() == scored.height
    assert scored["ma_reason_5_value"].null_count() == scored.height


def test_reasons_are_ranked_by_magnitude_with_ties_in_feature_order() -> None:
    contributions = np.array(
        [
            [0.1, -0.9, 0.0, 0.5, -0.5, 0.2, 0.0, 7.0],  # last column: the base value
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, -2.0],
        ]
    )
    assert top_reasons(contributions).tolist() == [[1, 3, 4, 5, 0], [6, -1, -1, -1, -1]]


def test_confidence_grows_with_known_features_and_model_certainty(day_1: pl.DataFrame) -> None:
    known = day_1.sort("siren").head(1)
    unknown = known.with_columns(
        pl.lit(None, pl.Float64).alias(c)
        for c in ("croissance_ca_1an", "cagr_ca_3ans", "marge_nette", "log_ca", "effectif")
    ).with_columns(siren=pl.lit("000000000"))
    scored = score_day(pl.concat([known, unknown]), baseline(), None, NOW).frame.sort("siren")
    confidence = dict(zip(scored["siren"], scored["confidence"], strict=True))

    matrix = encode(known)
    completeness = 1 - np.isnan(matrix).mean()
    margins = [RuleBaseline(s).margin(matrix)[0] for s in SCORES]
    certainty = np.mean([abs(2 * probability(m) - 1) for m in margins])
    assert confidence[known["siren"][0]] == pytest.approx(
        100 * completeness * (0.5 + 0.5 * certainty)
    )
    assert confidence["000000000"] < confidence[known["siren"][0]]
    assert scored["confidence"].is_between(0, 100).all()


def test_feature_hashes_are_the_same_in_another_process() -> None:
    matrix = np.array([[1.5, np.nan, -0.0, 3.0], [1.5, np.nan, 0.0, 3.0], [1.5, 2.0, 0.0, 3.0]])
    hashes = feature_hashes(matrix).to_list()

    code = (
        "import numpy as np; from ma_pipeline.scoring.compute import feature_hashes;"
        " m = np.array([[1.5, float('nan'), 0.0, 3.0]]); print(feature_hashes(m)[0])"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == hashes[0] == hashes[1]  # -0.0 and 0.0 are one value
    assert hashes[2] != hashes[0] and len(hashes[0]) == 32


def test_a_value_counts_only_through_the_thresholds_the_models_compare_it_with(
    boosters: dict[str, lgb.Booster],
) -> None:
    edges = decision_edges(champions(boosters).values())
    age = FEATURE_NAMES.index("age_dirigeant_max")
    cuts = edges[age]
    assert cuts is not None and len(cuts) > 0
    between = (cuts[0] + cuts[1]) / 2 if len(cuts) > 1 else cuts[0] + 1
    row = np.full((3, len(FEATURE_NAMES)), np.nan)
    row[:, age] = [np.nextafter(between, -np.inf), between, cuts[0]]  # cuts[0] is on the left

    seen = as_models_see_it(row, edges)
    assert seen[0, age] == seen[1, age] != seen[2, age]
    assert np.isnan(seen[:, 0]).all()  # missing stays missing
    # The baseline reads its features' exact values: nothing is coarsened for them.
    rules = decision_edges(baseline().values())
    assert rules[age] is None and rules[FEATURE_NAMES.index("capital")] is not None


def test_an_incremental_day_equals_the_day_scored_from_scratch(
    day_1: pl.DataFrame, day_2: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    scorers = champions(boosters)
    first = score_day(day_1, scorers, None, NOW)
    # One company changes for real: a young dirigeant gives way to one the ma model reads as old.
    moved = day_2.filter(pl.col("age_dirigeant_max") < 45)["siren"].sort()[0]
    day_2 = day_2.with_columns(
        age_dirigeant_max=pl.when(pl.col("siren") == moved)
        .then(pl.lit(99))
        .otherwise(pl.col("age_dirigeant_max"))
    )

    incremental = score_day(day_2, scorers, first.frame, LATER)
    scratch = score_day(day_2, scorers, None, LATER)

    assert incremental.recomputed + incremental.carried_over == day_2.height
    assert 0 < incremental.recomputed < day_2.height / 2  # most companies carry over
    assert comparable(incremental.frame).equals(comparable(scratch.frame))
    # A carried-over company shows the values of reasons that age with the day as they were
    # calculated (the sandbox's models happen not to use them: a reference that did is made).
    aged = first.frame.with_columns(
        ma_reason_1_feature=pl.lit("anciennete"), ma_reason_1_value=pl.lit("12.3")
    )
    carried = pl.col("calculated_at") == NOW
    kept = score_day(day_2, scorers, aged, LATER).frame.filter(carried)
    assert kept.height == incremental.carried_over
    assert set(kept["ma_reason_1_value"]) == {"12.3"}
    assert kept["ma_reason_2_value"].equals(incremental.frame.filter(carried)["ma_reason_2_value"])
    stamps = incremental.frame.select("siren", "calculated_at")
    assert stamps.filter(pl.col("siren") == moved)["calculated_at"][0] == LATER
    assert stamps["calculated_at"].value_counts().height == 2  # carried rows keep NOW
    assert set(incremental.frame["partition_date"]) == {SANDBOX_DAY + timedelta(days=1)}


def test_a_new_model_version_rescores_every_company(
    day_1: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    first = score_day(day_1, champions(boosters), None, NOW)
    same = score_day(day_1, champions(boosters), first.frame, LATER)
    retrained = score_day(day_1, champions(boosters, version=2), first.frame, LATER)

    assert (same.recomputed, same.carried_over) == (0, day_1.height)
    assert (retrained.recomputed, retrained.carried_over) == (day_1.height, 0)
    assert set(retrained.frame["model_version_ma"]) == {"ma_pipeline_ma/2"}


def test_reason_values_read_exactly_as_shown_value_formats_them() -> None:
    rng = np.random.default_rng(7)
    n = 60_000
    features = rng.integers(-1, len(FEATURE_NAMES), n)
    values = rng.lognormal(0, 4, n) * rng.choice([-1.0, 1.0], n)
    values[::5] = np.round(values[::5])
    values[::7] = np.nan
    # Near ties, carries, integers, zeros and extremes, where rounding shortcuts go wrong.
    edge = [1.235, 0.125, 2.675, 999.6, 999.4, 9.995, 1e-5, 0.0001235, 123456.0, -0.0, 1e20]
    values[::11] = rng.choice(edge, len(values[::11]))
    for column in CATEGORICAL_INDICES:
        values[features == column] = rng.integers(0, 4, (features == column).sum())

    shown = shown_values(features, values).to_list()

    expected = [
        shown_value(FEATURE_NAMES[f], v) if f >= 0 else None
        for f, v in zip(features.tolist(), values.tolist(), strict=True)
    ]
    assert shown == expected


def test_no_growth_score_without_accounts_and_the_reason_says_why(
    day_1: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    """The review's artefact: without any revenue known the growth model only sees the branch
    learnt from one-year-olds. Such companies get no growth score, no rank, no band, no
    reasons, and a reason; their other scores stay."""
    scored = score_day(day_1, champions(boosters), None, NOW).frame
    blind = day_1.sort("siren")["log_ca"].is_null()
    assert 0 < blind.sum() < len(blind)
    unscored = scored.filter(blind)
    assert unscored["score_croissance"].null_count() == unscored.height
    assert unscored["rank_croissance"].null_count() == unscored.height
    assert unscored["croissance_reason_1_feature"].null_count() == unscored.height
    assert set(unscored["unscored_croissance"]) == {"not scored without log_ca (no accounts)"}
    assert unscored["score_ma"].null_count() == 0 and unscored["unscored_ma"].null_count() == (
        unscored.height
    )
    assert scored.filter(~blind)["score_croissance"].null_count() == 0


def test_ranks_and_bands_read_against_the_models_reference(
    day_1: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    """A champion's ranks are the share of its reference population below each company: ranked
    against the day itself, the ranks spread over 0-100, follow the score's order, and the bands
    follow their documented cut-offs."""
    matrix = encode(day_1.sort("siren"))
    scorers = {
        s: LightGBMScorer(s, "v", b, RankReference.of(b.predict(matrix, raw_score=True)))
        for s, b in boosters.items()
    }
    scored = score_day(day_1, scorers, None, NOW).frame
    for score in SCORES:
        given = scored.filter(pl.col(f"score_{score}").is_not_null())
        ranks, values = given[f"rank_{score}"], given[f"score_{score}"]
        assert ranks.min() >= 0 and ranks.max() <= 100 and ranks.max() - ranks.min() > 20
        ordered = given.sort(f"score_{score}", f"rank_{score}")[f"rank_{score}"]
        assert ordered.is_sorted()  # a higher score never ranks lower
        assert values.n_unique() == 1 or ranks.n_unique() > 1
        expected = bands(ranks.to_numpy())
        assert given[f"band_{score}"].to_list() == list(expected)
    assert set(bands(np.array([99.0, 95.0, 94.9, 80.0, 50.0, 20.0, 19.9]))) == set("ABCDE")
    # The rule baseline: no ranks before a training gave it a reference, then like a model's.
    assert score_day(day_1, baseline(), None, NOW).frame["rank_ma"].null_count() == len(day_1)
    referenced = {
        s: RuleBaseline(s, reference=RankReference.of(RuleBaseline(s).margin(matrix)))
        for s in SCORES
    }
    ranked = score_day(day_1, referenced, None, NOW).frame.sort("score_ma", "rank_ma")
    assert ranked["rank_ma"].is_sorted() and ranked["rank_ma"].null_count() == 0


def test_no_persons_age_nor_sole_traders_name_reaches_the_scores(
    day_1: pl.DataFrame, boosters: dict[str, lgb.Booster]
) -> None:
    """A reason on a dirigeant's age keeps its contribution, not the age; a sole trader's
    company name (the person's own) is not copied: both are personal data, and ml_scores is
    what scores:read keys and the marts see."""
    scored = score_day(day_1, champions(boosters), None, NOW).frame
    reasons = pl.concat(
        scored.select(
            pl.col(f"{s}_reason_{k}_feature").alias("feature"),
            pl.col(f"{s}_reason_{k}_value").alias("value"),
            pl.col(f"{s}_reason_{k}_contribution").alias("contribution"),
        )
        for s in SCORES
        for k in range(1, TOP_REASONS + 1)
    )
    on_age = reasons.filter(pl.col("feature") == "age_dirigeant_max")
    assert on_age.height > 0 and on_age["value"].null_count() == on_age.height
    assert on_age["contribution"].null_count() == 0
    others = reasons.filter(
        pl.col("feature").is_not_null()
        & ~pl.col("feature").is_in(["age_dirigeant_max", "part_dirigeants_60_plus"])
    )
    assert others["value"].null_count() == 0
    features = day_1.sort("siren").with_row_index()
    features = features.with_columns(  # a few sole traders (the target universe has none)
        forme_juridique_famille=pl.when(pl.col("index") % 10 == 0)
        .then(pl.lit("EI"))
        .otherwise("forme_juridique_famille")
    ).drop("index")
    scored = score_day(features, champions(boosters), None, NOW).frame
    sole = features["forme_juridique_famille"] == "EI"
    assert scored.filter(sole)["nom_entreprise"].null_count() == sole.sum() > 0
    assert scored.filter(~sole)["nom_entreprise"].to_list() == (
        features.filter(~sole)["nom_entreprise"].to_list()
    )
