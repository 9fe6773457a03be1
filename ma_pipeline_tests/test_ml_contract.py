"""The matrix and scorers shared by training and scoring."""

import lightgbm as lgb
import numpy as np
import polars as pl

from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.encoding import (
    CATEGORICAL_INDICES,
    FEATURE_NAMES,
    VOCABULARIES,
    encode,
    shown_value,
)
from ma_pipeline.ml.scorer import LightGBMScorer, probability


def features(**values: list) -> pl.DataFrame:
    n = len(next(iter(values.values())))
    columns = {c: [None] * n for c in [*MODEL_FEATURES, *CATEGORICAL_FEATURES]}
    return pl.DataFrame(
        {**columns, **values},
        schema_overrides={
            **dict.fromkeys(MODEL_FEATURES, pl.Float64),
            **dict.fromkeys(CATEGORICAL_FEATURES, pl.String),
        },
    )


def test_categories_are_coded_from_fixed_vocabularies_whatever_the_rows() -> None:
    one = encode(features(naf_section=["J"], region=["11"]))
    two = encode(features(naf_section=["A", "J", "Z9"], region=["84", "11", None]))

    section, region = (FEATURE_NAMES.index(c) for c in ("naf_section", "region"))
    assert one[0, section] == two[1, section] == VOCABULARIES["naf_section"].index("J")
    assert one[0, region] == two[1, region]
    assert np.isnan(two[2, section]) and np.isnan(two[2, region])  # unknown, null: missing
    assert shown_value("naf_section", one[0, section]) == "J"
    assert shown_value("age_dirigeant_max", 67.0) == "67"
    assert shown_value("marge_nette", float("nan")) == "inconnu"


def test_the_baseline_adds_its_documented_weights() -> None:
    matrix = encode(
        features(
            age_dirigeant_max=[67.0, 40.0, None],
            croissance_ca_1an=[0.01, 0.30, None],
            tranche_effectifs_rang=[5.0, 1.0, None],
        )
    )

    contributions = RuleBaseline("ma").contributions(matrix)

    age = FEATURE_NAMES.index("age_dirigeant_max")
    assert contributions[:, age].tolist() == [1.2, 0.0, 0.0]
    assert contributions[2, :-1].sum() == 0.0  # nothing known: the base rate alone
    assert np.allclose(probability(contributions[2].sum()), 0.035)
    margins = RuleBaseline("ma").margin(matrix)
    assert margins[0] > margins[2] > margins[1]


def test_contributions_add_up_to_the_margin_for_every_scorer() -> None:
    rng = np.random.default_rng(0)
    frame = features(
        age_dirigeant_max=rng.uniform(25, 80, 400).tolist(),
        log_ca=rng.normal(13, 2, 400).tolist(),
        naf_section=rng.choice(["F", "G", "J"], 400).tolist(),
    )
    matrix = encode(frame)
    labels = (matrix[:, FEATURE_NAMES.index("age_dirigeant_max")] > 60).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 1},
        lgb.Dataset(
            matrix, labels, feature_name=FEATURE_NAMES, categorical_feature=CATEGORICAL_INDICES
        ),
        num_boost_round=20,
    )

    for scorer in (LightGBMScorer("ma", "test/1", booster), RuleBaseline("stabilite")):
        contributions = scorer.contributions(matrix)
        assert contributions.shape == (400, len(FEATURE_NAMES) + 1)
        assert np.allclose(contributions.sum(axis=1), scorer.margin(matrix), atol=1e-6)
