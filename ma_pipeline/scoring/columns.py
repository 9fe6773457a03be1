"""The columns of ml_scores (and of published_scores, its published copy).

One row per company and day. Each score is on 0-100; each carries its top reasons as typed columns
(``ma_reason_1_feature``, ``ma_reason_1_value``, ``ma_reason_1_contribution`` ...), so a row holds
everything the API and the marts show about a company without a join.
"""

import polars as pl

SCORES = ("ma", "croissance", "stabilite")
TOP_REASONS = 5

# Who the company is, copied from the features so that lists can be filtered without a join.
PROFILE: dict[str, pl.DataType] = {
    "nom_entreprise": pl.String(),
    "activite_principale": pl.String(),  # NAF sous-classe, NN.NNL
    "naf_section": pl.String(),
    "naf_division": pl.String(),
    "departement": pl.String(),  # COG code: 75, 2A, 974
    "region": pl.String(),  # COG code
}


def reason_columns(score: str) -> dict[str, pl.DataType]:
    """The reason columns of one score: feature name, its value as shown, signed contribution."""
    columns: dict[str, pl.DataType] = {}
    for rank in range(1, TOP_REASONS + 1):
        columns[f"{score}_reason_{rank}_feature"] = pl.String()
        columns[f"{score}_reason_{rank}_value"] = pl.String()
        columns[f"{score}_reason_{rank}_contribution"] = pl.Float64()
    return columns


ML_SCORES_SCHEMA: dict[str, pl.DataType] = {
    "partition_date": pl.Date(),
    "siren": pl.String(),
    **PROFILE,
    **{f"score_{s}": pl.Float64() for s in SCORES},
    "confidence": pl.Float64(),  # 0-100
    "scorer": pl.String(),  # "champion" or "rule_baseline"
    **{f"model_version_{s}": pl.String() for s in SCORES},
    "feature_hash": pl.String(),  # hash of the feature vector the scores were computed from
    "calculated_at": pl.Datetime("us", "UTC"),
    **{c: t for s in SCORES for c, t in reason_columns(s).items()},
}
