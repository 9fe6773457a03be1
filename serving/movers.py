"""The day's largest score changes against the previous published day, and the reasons that
moved them: both days are published partitions, so a mover is never a half-published day."""

from typing import Any

import polars as pl

from serving.published import Partition

MOVED_REASONS = 3  # reasons shown per mover: the largest changes of contribution


def movers(current: Partition, previous: Partition, score: str, limit: int) -> dict[str, Any]:
    """Up to ``limit`` companies whose ``score`` rose most, and as many that fell most, from
    ``previous`` to ``current`` (ties broken by SIREN); companies scored on one day only are
    not movers."""
    column = f"score_{score}"
    changes = (
        current.frame.lazy()
        .select(
            "siren",
            "nom_entreprise",
            "activite_principale",
            "departement",
            pl.col(column).alias("score"),
            pl.col(f"band_{score}").alias("band"),
        )
        .join(
            previous.frame.lazy().select("siren", pl.col(column).alias("previous_score")),
            on="siren",
        )
        .with_columns(change=pl.col("score") - pl.col("previous_score"))
    )
    rises, falls = pl.collect_all(
        [
            changes.filter(pl.col("change") > 0)
            .sort(["change", "siren"], descending=[True, False])
            .head(limit),
            changes.filter(pl.col("change") < 0).sort(["change", "siren"]).head(limit),
        ]
    )
    return {
        name: [
            {**row, "reasons": moved_reasons(current, previous, row["siren"], score)}
            for row in frame.to_dicts()
        ]
        for name, frame in (("rises", rises), ("falls", falls))
    }


def moved_reasons(
    current: Partition, previous: Partition, siren: str, score: str
) -> list[dict[str, Any]]:
    """The company's top reasons of either day, by how much their contribution changed (a
    reason absent from a day's top reasons counts 0 that day)."""
    now, before = ({r["feature"]: r for r in p.reasons(siren, score)} for p in (current, previous))
    moved = [
        {
            "feature": feature,
            "value": (now.get(feature) or before[feature])["value"],
            "contribution": now.get(feature, {}).get("contribution", 0.0),
            "previous_contribution": before.get(feature, {}).get("contribution", 0.0),
        }
        for feature in now | before
    ]
    moved.sort(key=lambda r: -abs(r["contribution"] - r["previous_contribution"]))
    return moved[:MOVED_REASONS]
