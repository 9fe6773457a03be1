"""The blocking rules of an ml_scores partition, on rows built to break each one."""

from datetime import date

import polars as pl

from ma_pipeline.scoring.checks import (
    coverage_outcome,
    distribution_outcome,
    in_range_outcome,
    key_inputs_outcome,
    no_nulls_outcome,
)
from ma_pipeline_tests.factories import ml_scores, sirens

DAY = date(2026, 11, 20)
COMPANIES = sirens(400)


def test_a_clean_partition_passes_every_rule() -> None:
    scores = ml_scores(DAY, COMPANIES)
    features = scores.select("siren")
    reference = ml_scores(DAY, COMPANIES, seed=1)  # same models, same distribution

    assert in_range_outcome(scores).passed
    assert no_nulls_outcome(scores).passed
    assert coverage_outcome(scores, features).passed
    assert distribution_outcome(scores, reference, "published 2026-11-19", threshold=0.25).passed


def test_out_of_range_and_missing_scores_fail() -> None:
    scores = ml_scores(DAY, COMPANIES).with_columns(
        score_ma=pl.when(pl.col("siren") == COMPANIES[0]).then(101.0).otherwise("score_ma"),
        confidence=pl.when(pl.col("siren") == COMPANIES[1])
        .then(float("nan"))
        .otherwise("confidence"),
        score_croissance=pl.when(pl.col("siren") == COMPANIES[2])
        .then(None)
        .otherwise("score_croissance"),
    )

    in_range = in_range_outcome(scores)
    assert not in_range.passed
    assert in_range.metadata["outside_0_100"] == {
        "score_ma": 1,
        "score_croissance": 0,
        "score_stabilite": 0,
        "confidence": 1,
    }
    missing = no_nulls_outcome(scores)
    assert not missing.passed
    assert missing.metadata["failing_sirens"] == [COMPANIES[1], COMPANIES[2]]


def test_a_company_scored_twice_or_not_at_all_fails_coverage() -> None:
    scores = ml_scores(DAY, COMPANIES)
    features = pl.DataFrame({"siren": [*COMPANIES[1:], "999999999"]})
    twice = pl.concat([scores, scores.head(1)])

    outcome = coverage_outcome(twice, features)
    assert not outcome.passed
    assert outcome.metadata["missing_sirens"] == ["999999999"]
    assert outcome.metadata["unexpected_sirens"] == [COMPANIES[0]]
    assert outcome.metadata["duplicated"] == 1


def test_a_score_that_jumps_blocks_unless_its_model_changed() -> None:
    reference = ml_scores(DAY, COMPANIES)
    jumped = reference.with_columns(score_ma=pl.col("score_ma") / 4)  # the same model, halved...

    blocked = distribution_outcome(jumped, reference, "published 2026-11-19", threshold=0.25)
    assert not blocked.passed and "score_ma" in blocked.description

    new_champion = jumped.with_columns(model_version_ma=pl.lit("ma_pipeline_ma/4"))
    outcome = distribution_outcome(new_champion, reference, "published 2026-11-19", threshold=0.25)
    assert outcome.passed and "score_ma" in outcome.metadata["psi_by_score"].value
    assert distribution_outcome(jumped, None, "no published partition", threshold=0.25).passed


def test_a_missing_score_passes_only_with_its_reason() -> None:
    unscored = ml_scores(DAY, COMPANIES).with_columns(
        score_croissance=pl.when(pl.col("siren") == COMPANIES[0])
        .then(None)
        .otherwise("score_croissance"),
        unscored_croissance=pl.when(pl.col("siren") == COMPANIES[0]).then(
            pl.lit("not scored without log_ca (no accounts)")
        ),
    )
    assert no_nulls_outcome(unscored).passed
    silent = unscored.with_columns(unscored_croissance=pl.lit(None, pl.String))
    outcome = no_nulls_outcome(silent)
    assert not outcome.passed and "score_croissance" in outcome.description


def key_inputs(blind: set[str]) -> pl.DataFrame:
    """The day's key inputs: missing for the ``blind`` SIRENs, known for the others."""
    known = ~pl.col("siren").is_in(list(blind))
    return pl.DataFrame({"siren": COMPANIES}).with_columns(
        log_ca=pl.when(known).then(12.0), age_dirigeant_max=pl.when(known).then(61.0)
    )


def test_a_top_made_of_companies_the_model_cannot_see_blocks() -> None:
    """The review's artefact, constructed: the four best stabilite scores (the top 1 % of 400)
    go to companies without accounts."""
    scores = ml_scores(DAY, COMPANIES)
    top = scores.sort("score_stabilite", descending=True)["siren"].head(4).to_list()
    assert key_inputs_outcome(scores, key_inputs(set(top[:2]))).passed  # half: not dominated
    outcome = key_inputs_outcome(scores, key_inputs(set(top[:3])))
    assert not outcome.passed and "score_stabilite 75%" in outcome.description
    tops = {
        siren
        for score in ("score_ma", "score_croissance", "score_stabilite")
        for siren in scores.sort(score, descending=True)["siren"].head(4)
    }
    spread = set([s for s in COMPANIES if s not in tops][:200])
    assert key_inputs_outcome(scores, key_inputs(spread)).passed  # many blind, none on top
