"""How a score reads to a deal team: a percentile rank and a band beside the probability.

A probability is honest but hard to read: an M&A event within a year is rare, so ``score_ma``
tops out near 30 and a 12 is a strong signal, while ``score_stabilite`` sits at 97-99 for nearly
everyone. So each score also gets:

- ``rank_{score}``: 0-100, the share of the **reference population** whose score is lower (half
  of the ties counted): 90 means the company scores higher than 90 % of the companies the model
  last saw. The reference is the champion's own: the margins of every company of the newest
  as-of date of its training set, kept as 101 quantiles with the model version (tag
  ``rank_reference``). A rank is therefore a fixed function of the company's margin and the
  model version, like the score: it does not move when other companies change, a carried-over
  row keeps it, and storing scores by change still holds. It tracks the day's own percentile
  as long as the universe looks like the one the model was trained on (the drift checks watch
  that).
- ``band_{score}``: A to E by rank, cut-offs ``BANDS``: A the top 5 %, B the next 15 %, C the
  next 30 %, D the next 30 %, E the bottom 20 %.

The rule baseline is ranked the same way, against its own margins on the newest as-of date of the
last training (the registered model's tag ``baseline_rank_reference``): before any training it
has no reference, and its ranks and bands are null.
"""

import json
from dataclasses import dataclass

import numpy as np

# (lowest rank of the band, band), best first.
BANDS = ((95.0, "A"), (80.0, "B"), (50.0, "C"), (20.0, "D"), (0.0, "E"))
QUANTILES = 101
DECIMALS = 6  # of the margins kept and compared


@dataclass(frozen=True)
class RankReference:
    """The margins of a reference population at 0, 1, ..., 100 %."""

    quantiles: tuple[float, ...]

    @classmethod
    def of(cls, margins: np.ndarray) -> "RankReference":
        if len(margins) == 0:
            raise ValueError("a rank reference needs at least one margin")
        levels = np.linspace(0.0, 1.0, QUANTILES)
        return cls(tuple(round(float(q), DECIMALS) for q in np.quantile(margins, levels)))

    def rank(self, margins: np.ndarray) -> np.ndarray:
        """0-100 for each margin: where it falls among the reference's quantiles, linear
        between two of them; a run of equal quantiles (a tie in the population) counts from
        its middle. Margins are compared at ``DECIMALS``, as the quantiles are kept: equal
        outputs of a tree model can differ in their last bits."""
        margins = np.round(margins, DECIMALS)
        levels = np.linspace(0.0, 100.0, QUANTILES)
        values, first = np.unique(self.quantiles, return_index=True)
        last = np.unique(self.quantiles[::-1], return_index=True)[1]
        last = len(self.quantiles) - 1 - last
        middle = (levels[first] + levels[last]) / 2.0
        if len(values) == 1:
            return np.where(margins < values[0], 0.0, np.where(margins > values[0], 100.0, 50.0))
        return np.interp(margins, values, middle, left=0.0, right=100.0)

    def to_json(self) -> str:
        return json.dumps(list(self.quantiles))

    @classmethod
    def from_json(cls, text: str) -> "RankReference":
        return cls(tuple(float(q) for q in json.loads(text)))


def bands(ranks: np.ndarray) -> np.ndarray:
    """The band of each rank (None where the rank is NaN)."""
    out = np.full(len(ranks), None, dtype=object)
    for floor, band in reversed(BANDS):
        out[ranks >= floor] = band
    return out
