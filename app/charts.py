"""The app's charts (Altair, which Streamlit draws natively)."""

import itertools
from typing import Any

import altair as alt
import pandas as pd

from app import labels

POSITIVE, NEGATIVE = "#2e7d32", "#c62828"


def reasons(reasons: list[dict[str, Any]]) -> alt.Chart:
    """Signed contributions, one bar per reason, strongest on top: green pushes up, red down."""
    frame = pd.DataFrame(
        {
            "reason": [labels.feature(r["feature"]) for r in reasons],
            "value": [r["value"] or "" for r in reasons],
            "contribution": [r["contribution"] for r in reasons],
        }
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q", title="contribution (log-odds)"),
            y=alt.Y("reason:N", sort=None, title=None, axis=alt.Axis(labelLimit=240)),
            color=alt.condition(
                alt.datum.contribution >= 0, alt.value(POSITIVE), alt.value(NEGATIVE)
            ),
            tooltip=["reason", "value", alt.Tooltip("contribution:Q", format="+.3f")],
        )
    )


def history(points: list[dict[str, Any]]) -> alt.LayerChart:
    """One line per score over the published days; a dashed rule where a model version
    changed."""
    frame = pd.DataFrame(
        [
            {"date": p["date"], "score": labels.SCORES[s], "value": p["scores"][s]}
            for p in points
            for s in labels.SCORES
        ]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    changes = pd.DataFrame(
        [
            {"date": after["date"], "change": _versions(before, after)}
            for before, after in itertools.pairwise(points)
            if before["model_versions"] != after["model_versions"]
        ],
        columns=["date", "change"],
    )
    changes["date"] = pd.to_datetime(changes["date"])
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("date:T", title=None),
            y=alt.Y("value:Q", title="score", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("score:N", title=None),
            tooltip=["date:T", "score", alt.Tooltip("value:Q", format=".1f")],
        )
    )
    rules = (
        alt.Chart(changes)
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(x="date:T", tooltip=["date:T", "change"])
    )
    return alt.layer(lines, rules)


def _versions(before: dict[str, Any], after: dict[str, Any]) -> str:
    old, new = before["model_versions"], after["model_versions"]
    return ", ".join(f"{old[s]} → {new[s]}" for s in new if old[s] != new[s])


def sector_heat_map(sectors: list[dict[str, Any]]) -> alt.Chart:
    """NAF division × région, coloured by the share of companies with score_ma >= 75; a click
    selects a cell."""
    frame = pd.DataFrame(sectors).fillna({"naf_division": "?"})
    frame["région"] = [labels.region(s["region"]) for s in sectors]
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("naf_division:O", title="NAF division"),
            y=alt.Y("région:N", title=None),
            color=alt.Color(
                "share_score_ma_75:Q", title="share M&A ≥ 75", scale=alt.Scale(scheme="oranges")
            ),
            tooltip=[
                "naf_division",
                "région",
                "companies",
                alt.Tooltip("share_score_ma_75:Q", format=".0%"),
                alt.Tooltip("mean_score_ma:Q", format=".1f"),
            ],
        )
        .add_params(alt.selection_point(name="cell", fields=["naf_division", "region"]))
    )
