"""Reasons in words, and what moved a company's score between two published days: the API
serves signed contributions per feature, a deal team reads sentences."""

import itertools
from typing import Any

from app import labels

TOP_IN_WORDS = 3  # reasons per row in lists


def in_words(reason: dict[str, Any]) -> str:
    """``oldest director's age ↑ 0.84`` or ``net margin = 0.05 ↓ 0.31``: the feature, its value
    when shown (never a personal one: the API leaves those out), which way it pushes and how
    hard."""
    value = "" if reason.get("value") is None else f" = {reason['value']}"
    arrow = "↑" if reason["contribution"] >= 0 else "↓"
    return f"{labels.feature(reason['feature'])}{value} {arrow} {abs(reason['contribution']):.2f}"


def summary(reasons: list[dict[str, Any]] | None) -> str:
    return "; ".join(in_words(r) for r in (reasons or [])[:TOP_IN_WORDS])


def last_change(
    history: list[dict[str, Any]], score: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The newest two consecutive days of ``history`` (oldest first) whose ``score`` differs:
    (before, after); None when it never changed."""
    for after, before in itertools.pairwise(reversed(history)):
        if before["scores"][score] != after["scores"][score]:
            return before, after
    return None


def moved(before: dict[str, Any], after: dict[str, Any], score: str) -> list[dict[str, Any]]:
    """The reasons of ``score`` by how much their contribution changed from ``before`` to
    ``after`` (a reason absent from a day's top reasons counts 0 that day), largest first."""
    old = {r["feature"]: r["contribution"] for r in before["reasons"][score]}
    new = {r["feature"]: r["contribution"] for r in after["reasons"][score]}
    rows = [
        {
            "reason": labels.feature(name),
            "before": old.get(name, 0.0),
            "after": new.get(name, 0.0),
            "change": new.get(name, 0.0) - old.get(name, 0.0),
        }
        for name in old | new
    ]
    return sorted(rows, key=lambda row: -abs(row["change"]))


def moved_in_words(reason: dict[str, Any]) -> str:
    """A mover's reason as the API gives it: ``revenue growth (1 year) +0.12 → +0.56``."""
    name = labels.feature(reason["feature"])
    return f"{name} {reason['previous_contribution']:+.2f} → {reason['contribution']:+.2f}"
