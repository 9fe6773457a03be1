"""Champion and challenger: when a newly trained version replaces the one that serves.

A new version is first the ``challenger``. It becomes ``champion`` only if its holdout ROC-AUC
beats, by ``margin``, both the rule baseline and the current champion re-scored on the same
holdout; the first model of a score has only the baseline to beat. ROC-AUC decides because the
product is a ranking (which companies to look at first); the other metrics are reported beside
it. A champion that cannot score today's feature matrix (the feature list changed since it was
trained) is not compared: the challenger then has the baseline to beat, and the reason says so.
"""

from dataclasses import dataclass

DECIDING_METRIC = "roc_auc"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    challenger: dict[str, float],
    baseline: dict[str, float],
    champion: dict[str, float] | None,
    *,
    margin: float,
    champion_version: str | None = None,
    champion_note: str = "",
) -> Decision:
    """Whether ``challenger`` (holdout metrics) is promoted, and why in one sentence."""
    value = challenger[DECIDING_METRIC]
    bars = [("the rule baseline", baseline[DECIDING_METRIC])]
    if champion is not None:
        bars.append((f"champion {champion_version}", champion[DECIDING_METRIC]))
    compared = "; ".join(f"{name} {bar:.4f}" for name, bar in bars)
    short = [name for name, bar in bars if value < bar + margin]
    note = f" ({champion_note})" if champion_note else ""
    if short:
        return Decision(
            False,
            f"stays challenger: holdout ROC-AUC {value:.4f} does not beat {' nor '.join(short)}"
            f" by {margin} ({compared}){note}",
        )
    return Decision(
        True, f"promoted: holdout ROC-AUC {value:.4f} beats {compared} by {margin} or more{note}"
    )
