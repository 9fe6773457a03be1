"""The model matrix: ``MODEL_FEATURES`` then ``CATEGORICAL_FEATURES``, as float64 for LightGBM.

Categories are coded from fixed vocabularies (the shipped NAF and COG references, the legal-form
families), never learned from the rows at hand, so a code means the same thing in training and in
scoring whatever each one sees. Nulls and unknown categories become NaN, LightGBM's missing value;
booleans become 0/1.
"""

import numpy as np
import polars as pl

from ma_pipeline.features.codes import LEGAL_FAMILIES
from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.reference import naf_hierarchy, regions

FEATURE_NAMES: list[str] = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]
VOCABULARIES: dict[str, list[str]] = {
    "naf_section": sorted(naf_hierarchy()["code_section"].unique()),
    "naf_division": sorted(naf_hierarchy()["code_division"].unique()),
    "forme_juridique_famille": list(LEGAL_FAMILIES),
    "region": sorted(regions()["reg"]),
}
CATEGORICAL_INDICES: list[int] = [FEATURE_NAMES.index(c) for c in CATEGORICAL_FEATURES]


def encode(features: pl.DataFrame) -> np.ndarray:
    """The (companies × FEATURE_NAMES) float64 matrix of a features frame."""
    numeric = [pl.col(c).cast(pl.Float64) for c in MODEL_FEATURES]
    categorical = [
        pl.col(c).replace_strict(
            {value: float(code) for code, value in enumerate(VOCABULARIES[c])},
            default=None,
            return_dtype=pl.Float64,
        )
        for c in CATEGORICAL_FEATURES
    ]
    return features.select(*numeric, *categorical).to_numpy().astype(np.float64)


def shown_value(feature: str, value: float) -> str:
    """A matrix value as a user reads it: the category's label, a count, or a rounded number."""
    if np.isnan(value):
        return "inconnu"
    if feature in VOCABULARIES:
        return VOCABULARIES[feature][int(value)]
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"
