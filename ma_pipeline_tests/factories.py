"""Rows shaped like the pipeline's tables, for tests of their readers (publication, API, marts)."""

from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from ma_pipeline.contracts.personal import PERSONAL_FEATURES
from ma_pipeline.contracts.scores import ML_SCORES_SCHEMA, SCORES, TOP_REASONS
from ma_pipeline.contracts.siren import with_check_digit
from ma_pipeline.ml.scale import bands

FEATURES = ("age_dirigeant_max", "croissance_ca_1an", "effectif", "anciennete", "marge_nette")


def sirens(n: int, start: int = 10_000_000) -> list[str]:
    return [with_check_digit(f"{start + i:08d}") for i in range(n)]


def ml_scores(
    day: date, companies: list[str], seed: int = 0, scorer: str = "champion"
) -> pl.DataFrame:
    """A valid ml_scores partition: scores in 0-100, five reasons per score."""
    rng = np.random.default_rng(seed)
    n = len(companies)
    columns: dict[str, object] = {
        "partition_date": [day] * n,
        "siren": companies,
        "nom_entreprise": [f"SOCIETE {s}" for s in companies],
        "activite_principale": rng.choice(["62.01Z", "47.11F", "41.20A", "70.10Z"], n),
        "naf_section": None,
        "naf_division": None,
        "departement": rng.choice(["75", "69", "13", "2A", "974"], n),
        "region": None,
        "confidence": rng.uniform(40, 100, n),
        "scorer": [scorer] * n,
        "feature_hash": [f"{seed:04x}{i:012x}" for i in range(n)],
        "calculated_at": [datetime(day.year, day.month, day.day, 2, tzinfo=UTC)] * n,
    }
    for score in SCORES:
        columns[f"score_{score}"] = rng.uniform(0, 100, n).round(1)
        columns[f"rank_{score}"] = rng.uniform(0, 100, n).round(1)
        columns[f"band_{score}"] = bands(columns[f"rank_{score}"])
        columns[f"unscored_{score}"] = pl.Series([None] * n, dtype=pl.String)
        columns[f"model_version_{score}"] = [f"ma_pipeline_{score}/3"] * n
        for rank in range(1, TOP_REASONS + 1):
            columns[f"{score}_reason_{rank}_feature"] = [FEATURES[rank - 1]] * n
            # A personal feature's value is never stored (contracts.personal.PERSONAL_FEATURES).
            personal = FEATURES[rank - 1] in PERSONAL_FEATURES
            columns[f"{score}_reason_{rank}_value"] = pl.Series(
                [None if personal else str(rank * 10)] * n, dtype=pl.String
            )
            columns[f"{score}_reason_{rank}_contribution"] = rng.normal(0, 1 / rank, n)
    frame = pl.DataFrame(columns).with_columns(
        naf_division=pl.col("activite_principale").str.slice(0, 2),
        naf_section=pl.col("activite_principale").replace_strict(
            {"62.01Z": "J", "47.11F": "G", "41.20A": "F", "70.10Z": "M"}
        ),
        region=pl.col("departement").replace_strict(
            {"75": "11", "69": "84", "13": "93", "2A": "94", "974": "04"}
        ),
    )
    return frame.select(list(ML_SCORES_SCHEMA)).cast(ML_SCORES_SCHEMA)  # type: ignore[arg-type]
