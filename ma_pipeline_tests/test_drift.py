"""PSI and the drift rule: what counts as drift, at which severity, against which reference."""

import math

import numpy as np
import polars as pl
import pytest

from ma_pipeline.features import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.features.quality import ERROR, WARN
from ma_pipeline.lib.drift import drift_outcome, psi

RNG = np.random.default_rng(7)
NORMAL = pl.Series(RNG.normal(0.0, 1.0, 20_000))


def test_psi_is_near_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    same = pl.Series(RNG.normal(0.0, 1.0, 20_000))
    assert psi(NORMAL, same) < 0.01
    # The textbook figure: a shift of half a standard deviation gives a PSI of about 0.25.
    assert psi(NORMAL, NORMAL + 0.5) == pytest.approx(0.25, abs=0.03)
    assert psi(NORMAL, NORMAL * 10) > 1


def test_a_pile_of_equal_values_moving_by_a_day_is_not_drift() -> None:
    """Years since the last accounts pile up on a few values (31 December closes); every day
    they grow by 1/365.25, which must not read as drift against yesterday."""
    years = pl.Series([1.42] * 800 + [1.67] * 100 + [0.92] * 100)
    assert psi(years, years + 1 / 365.25) == 0
    assert psi(years, years + 1) > 1


def test_categories_and_missing_values_are_bins_of_their_own() -> None:
    regions = pl.Series(["11"] * 50 + ["84"] * 30 + ["93"] * 20)
    assert psi(regions, regions) == 0
    assert psi(regions, pl.Series(["11"] * 20 + ["84"] * 30 + ["93"] * 50)) > 0.25
    revenue = pl.Series([float(v) for v in range(100)])
    half_missing = pl.Series([float(v) if v % 2 else None for v in range(100)])
    assert psi(revenue, half_missing) > 0.25
    assert math.isfinite(psi(pl.Series([None] * 10, dtype=pl.Float64), revenue))


def frame(shift: float = 0.0, scale: float = 1.0) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    n = 5_000
    return pl.DataFrame(
        {
            "log_ca": rng.normal(12.0, 1.5, n) * scale + shift,
            "anciennete": rng.exponential(12.0, n),
            "region": rng.choice(["11", "84", "93"], n),
        }
    )


@pytest.mark.parametrize(
    ("current", "passed", "severity", "drifted"),
    [
        (frame(), True, WARN, []),
        (frame(shift=0.65), False, WARN, ["log_ca"]),  # PSI ~0.18: between the thresholds
        (frame(scale=3.0), False, ERROR, ["log_ca"]),
    ],
    ids=["stable", "moderate shift", "large shift"],
)
def test_drift_warns_over_the_first_threshold_and_errs_over_the_second(
    current: pl.DataFrame, passed: bool, severity: object, drifted: list[str]
) -> None:
    outcome = drift_outcome(
        frame(),
        current,
        ["log_ca", "anciennete", "region"],
        "previous partition",
        warn=0.1,
        error=0.25,
    )
    assert (outcome.passed, outcome.severity) == (passed, severity)
    assert outcome.metadata["drifted_features"] == drifted
    table = outcome.metadata["psi_by_feature"].value
    assert all(name in table for name in ("log_ca", "anciennete", "region"))


def test_the_thresholds_are_configurable_and_no_reference_passes() -> None:
    moderate = drift_outcome(
        frame(), frame(shift=0.65), ["log_ca"], "previous partition", warn=0.3, error=0.5
    )
    assert moderate.passed
    first = drift_outcome(None, frame(), ["log_ca"], "no reference yet", warn=0.1, error=0.25)
    assert first.passed and first.metadata["reference"] == "no reference yet"


def test_a_reference_without_some_features_is_compared_on_the_others() -> None:
    """The champion's training sample (ml.feature_reference) may predate a new feature."""
    outcome = drift_outcome(
        frame().drop("region"),
        frame(),
        ["log_ca", "region"],
        "ml.feature_reference",
        warn=0.1,
        error=0.25,
    )
    assert outcome.passed
    assert outcome.metadata["not_in_reference"] == ["region"]
    assert set(MODEL_FEATURES + CATEGORICAL_FEATURES) >= {"log_ca", "anciennete", "region"}
