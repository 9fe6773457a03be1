"""Reason values as users read them, for millions of (feature, value) pairs at once.

``encoding.shown_value`` formats one value: "inconnu" for a missing one, the label of a category,
an integer as is, any other number to 3 significant digits. A day has 15 reasons per company, so
a million companies make 15 million values, and features such as revenue are distinct for every
company: calling it once per distinct value took 16 s of the 60 s a day's scoring spent outside
SHAP. ``shown_values`` calls it once per *group of values it shows alike*: a missing value, an
integer (counts, category codes) and, for other numbers, the 3 significant digits they round to.

Grouping other numbers by their rounding is exact because the rounding used is itself exact: the
value times an exactly representable power of ten is correctly rounded in IEEE arithmetic, so
rounding it half-to-even gives the digits Python's formatting gives, except within 1e-9 of a tie
(x.xx5, which binary floats only approximate) where the two may differ; such values, and
infinities and extremes, are formatted one by one. A seeded sample is also compared with
``shown_value`` itself: if ``shown_value`` ever formats differently (4 digits, say), the check
fails and every distinct value is formatted one by one, slower but still right.
"""

import numpy as np
import polars as pl

from ma_pipeline.ml.encoding import FEATURE_NAMES, shown_value

NO_REASON = -1
_NAN, _INTEGER, _DIGITS, _ALONE = 0, 1, 2, 3
_INTEGER_LIMIT = 2.0**52
_CHECKED = 2_000


def _keys(features: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An int64 per pair; two pairs with the same key show the same text."""
    magnitude = np.abs(values)
    finite = np.isfinite(values)
    integer = finite & (values == np.floor(values)) & (magnitude < _INTEGER_LIMIT)
    rounded = finite & ~integer & (magnitude > 1e-300) & (magnitude < 1e300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exponent = np.floor(np.log10(np.where(rounded, magnitude, 1.0))).astype(np.int64)
        shift = 2 - exponent  # digits = magnitude × 10^shift, in [100, 1000)
        power = 10.0 ** np.abs(shift)  # exact for |shift| <= 22
        scaled = np.where(shift >= 0, magnitude * power, magnitude / power)
        scaled = np.where(rounded, scaled, 500.0)
    digits = np.round(scaled)  # half to even, as formatting rounds
    tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-9 * scaled
    carry = digits == 1000  # 999.6 -> 1.00e3
    digits = np.where(carry, 100, digits).astype(np.int64)
    exponent = exponent + carry
    rounded &= ~tie & (np.abs(shift) <= 22) & (digits >= 100) & (digits < 1000)

    kind = np.select(
        [np.isnan(values), integer, rounded], [_NAN, _INTEGER, _DIGITS], default=_ALONE
    )
    payload = np.select(
        [kind == _INTEGER, kind == _DIGITS, kind == _ALONE],
        [
            np.where(integer, values, 0).astype(np.int64) + 2**53,
            (values < 0).astype(np.int64) << 30 | (exponent + 400) << 10 | digits,
            np.arange(len(values), dtype=np.int64),
        ],
        default=0,
    )
    keys = features.astype(np.int64) << 57 | kind.astype(np.int64) << 55 | payload
    return np.where(features < 0, NO_REASON, keys)


def _shown(features: pl.Series, values: pl.Series) -> list[str | None]:
    return [
        shown_value(FEATURE_NAMES[f], v) if f >= 0 else None
        for f, v in zip(features.to_list(), values.to_list(), strict=True)
    ]


def shown_values(features: np.ndarray, values: np.ndarray) -> pl.Series:
    """``encoding.shown_value`` of each (feature index, value) pair (null for index -1)."""
    pairs = pl.DataFrame(
        {"key": _keys(features, values), "feature": features, "value": values},
        schema={"key": pl.Int64, "feature": pl.Int64, "value": pl.Float64},
    )
    groups = pairs.unique("key", keep="first", maintain_order=True)
    labels = pl.Series(_shown(groups["feature"], groups["value"]), dtype=pl.String)
    shown = pairs["key"].replace_strict(groups["key"], labels, return_dtype=pl.String)
    sample = pairs.with_columns(shown=shown).sample(min(_CHECKED, pairs.height), seed=0)
    if sample["shown"].to_list() == _shown(sample["feature"], sample["value"]):
        return shown
    exact = pairs.unique(["feature", "value"])  # shown_value formats otherwise: value by value
    exact = exact.with_columns(
        shown=pl.Series(_shown(exact["feature"], exact["value"]), dtype=pl.String)
    )
    return pairs.join(exact, on=["feature", "value"], how="left", maintain_order="left")["shown"]
