"""What scores a company: a LightGBM champion or the rule baseline, behind one interface.

Every scorer gives, for an encoded matrix (``encoding.encode``), the raw margin (log-odds of its
label) and the additive contributions of each feature to that margin, with the base value in the
last column, so that ``contributions.sum(axis=1) == margin``. For LightGBM these are its native
SHAP values (``pred_contrib``); for the baseline, its rule terms. Scoring turns margins into 0-100
scores and contributions into reasons the same way for both.
"""

from dataclasses import dataclass
from typing import Protocol

import lightgbm as lgb
import numpy as np

from ma_pipeline.ml.scale import RankReference

# The label each score's model predicts (positive class); score_stabilite is 1 - P(distress).
LABELS = {
    "ma": "label_ma_12m",
    "croissance": "label_croissance_12m",
    "stabilite": "label_detresse_12m",
}
BASELINE_VERSION = "rule_baseline"


class Scorer(Protocol):
    score: str
    version: str
    reference: RankReference | None  # what its margins are ranked against (ml.scale)

    def margin(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LightGBMScorer:
    """A registered LightGBM model; ``version`` is ``<registered model>/<version>``."""

    score: str
    version: str
    booster: lgb.Booster
    reference: RankReference | None = None

    def margin(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, raw_score=True)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix, pred_contrib=True)


def probability(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-margin))
