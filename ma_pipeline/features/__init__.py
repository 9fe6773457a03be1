"""Company features (point-in-time, polars), their data-quality checks and drift."""

from ma_pipeline.features.compute import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    FeatureConfig,
    FeatureInputs,
    compute_features,
)

__all__ = [
    "CATEGORICAL_FEATURES",
    "MODEL_FEATURES",
    "FeatureConfig",
    "FeatureInputs",
    "compute_features",
]
