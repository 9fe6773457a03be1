"""The transparent rule baseline: a few documented weights on owner age, growth and size.

Each score's baseline is a logistic model written by hand: a base log-odds plus one term per rule,
each rule reading one feature. It is the floor a model must beat to become champion, and it scores
companies before any model exists. Its terms are exact additive contributions, so its scores come
with reasons like a model's.

Rules (log-odds added when the condition holds; a missing feature adds nothing):

- ``ma`` (an M&A event within 12 months), base 3.5 % a year:
  oldest dirigeant 65 or older +1.2, 60-64 +0.5; revenue flat (|1-year growth| < 5 %) +0.5,
  declining (< -5 %) +0.2; 10 to 199 employees +0.6, fewer than 10 -0.4; a sole dirigeant +0.2.
- ``croissance`` (revenue up 10 % or more the next fiscal year), base 30 %:
  +2.0 × 1-year growth and +1.0 × 3-year CAGR (each clipped to ±50 %); company older than
  20 years -0.3.
- ``stabilite`` (P(a collective procedure within 12 months); the score is its complement),
  base 1 %: a procedure in progress +1.5, any earlier procedure +0.8, net margin below -5 % +1.0,
  revenue down more than 15 % +0.8, last accounts more than 2 years old +0.5.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ma_pipeline.ml.encoding import FEATURE_NAMES
from ma_pipeline.ml.scale import RankReference
from ma_pipeline.ml.scorer import BASELINE_VERSION

Term = Callable[[np.ndarray], np.ndarray]


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _step(low: float, high: float, weight: float) -> Term:
    return lambda x: np.where((x >= low) & (x < high), weight, 0.0)


def _linear(weight: float, clip: float) -> Term:
    return lambda x: weight * np.clip(x, -clip, clip)


# score -> (base probability, [(feature, term), ...])
RULES: dict[str, tuple[float, list[tuple[str, Term]]]] = {
    "ma": (
        0.035,
        [
            ("age_dirigeant_max", lambda x: _step(65, np.inf, 1.2)(x) + _step(60, 65, 0.5)(x)),
            (
                "croissance_ca_1an",
                lambda x: _step(-0.05, 0.05, 0.5)(x) + _step(-np.inf, -0.05, 0.2)(x),
            ),
            ("tranche_effectifs_rang", lambda x: _step(4, 8, 0.6)(x) + _step(-np.inf, 4, -0.4)(x)),
            ("dirigeant_unique", _step(1, 2, 0.2)),
        ],
    ),
    "croissance": (
        0.30,
        [
            ("croissance_ca_1an", _linear(2.0, 0.5)),
            ("cagr_ca_3ans", _linear(1.0, 0.5)),
            ("anciennete", _step(20, np.inf, -0.3)),
        ],
    ),
    "stabilite": (
        0.01,
        [
            ("procedure_collective_en_cours", _step(1, 2, 1.5)),
            ("nb_procedures_collectives", _step(1, np.inf, 0.8)),
            ("marge_nette", _step(-np.inf, -0.05, 1.0)),
            ("croissance_ca_1an", _step(-np.inf, -0.15, 0.8)),
            ("annees_depuis_derniers_comptes", _step(2, np.inf, 0.5)),
        ],
    ),
}


@dataclass(frozen=True)
class RuleBaseline:
    """The baseline scorer of one score (see the module's rules)."""

    score: str
    version: str = BASELINE_VERSION
    reference: RankReference | None = None  # set from the last training (ml.registry)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        base, rules = RULES[self.score]
        out = np.zeros((matrix.shape[0], len(FEATURE_NAMES) + 1))
        for feature, term in rules:
            column = FEATURE_NAMES.index(feature)
            values = matrix[:, column]
            with np.errstate(invalid="ignore"):
                out[:, column] += np.where(np.isnan(values), 0.0, term(values))
        out[:, -1] = _logit(base)
        return out

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        return self.contributions(matrix).sum(axis=1)
