"""Which target companies a paid API is asked about on a day: credits follow change, not the
universe.

A target is due when
- ``new``: no answer is stored for it;
- ``changed``: its SIRENE record was processed again since the stored answer (its
  ``date_dernier_traitement`` differs from the one the answer was fetched for), or the stored
  answer was partial (Pappers' 206); an answer stored without a version is not ``changed``;
- ``event``: a BODACC notice about it (accounts filed, a procedure, a sale, a modification) was
  published after the day its stored answer was fetched (``last_event``, when given): the
  registry has news the answer cannot hold;
- ``old``: its stored answer is older than the maximum age.

Due targets are fetched highest priority first within the day's call budget: new, then changed,
then event, then old; inside each, the oldest answer first (by the day it was fetched), then the
highest last M&A score (``last_score``, when given: the companies deal teams look at), then the
SIREN. The others are the backlog, due again the next day. Every target that is not fetched is
served from its stored answer, whatever its age, at no cost.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

REASONS = ("new", "changed", "event", "old")
# What a target's stored answer was fetched for: its SIRENE record's last processing.
VERSION_COLUMN = "date_dernier_traitement"
LAST_SCORE = "last_score"  # optional column of the targets: their newest score_ma
LAST_EVENT = "last_event"  # optional column of the targets: their newest BODACC notice's date


def version_of(processed: pl.Expr) -> pl.Expr:
    """A SIRENE record's version as stored beside an answer (text, to compare exactly)."""
    return processed.dt.to_string("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class RefreshPlan:
    """What a day's enrichment does for its targets."""

    targets: int
    fetch: list[str]
    reuse: list[str]
    versions: dict[str, str | None] = field(repr=False)
    due_by_reason: dict[str, int]
    fetched_by_reason: dict[str, int]
    backlog_by_reason: dict[str, int]
    budget: int | None

    @property
    def backlog(self) -> int:
        return sum(self.backlog_by_reason.values())

    def metadata(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "due_by_reason": self.due_by_reason,
            "calls_planned": len(self.fetch),
            "calls_planned_by_reason": self.fetched_by_reason,
            "calls_saved": self.targets - len(self.fetch),
            "served_from_stored_answers": len(self.reuse),
            "call_budget": self.budget if self.budget is not None else "none",
            "backlog": self.backlog,
            "backlog_by_reason": self.backlog_by_reason,
        }


def plan_refresh(
    targets: pl.DataFrame,
    stored: pl.DataFrame,
    *,
    now: datetime,
    max_age: timedelta,
    budget: int | None,
) -> RefreshPlan:
    """The plan for ``targets`` (``siren``, ``date_dernier_traitement``, optionally
    ``last_score`` and ``last_event``) given the answers ``stored`` for them (``key``,
    ``fetched_at``, ``partial``, ``version``), at most ``budget`` calls (None: no limit)."""

    def optional(name: str, dtype: pl.DataType) -> pl.Expr:
        found = pl.col(name) if name in targets.columns else pl.lit(None)
        return found.cast(dtype).alias(name)

    rows = (
        targets.select(
            "siren",
            version_of(pl.col(VERSION_COLUMN)).alias("current"),
            optional(LAST_SCORE, pl.Float64()),
            optional(LAST_EVENT, pl.Date()),
        )
        .unique("siren")
        .join(
            stored.select(pl.col("key").alias("siren"), "fetched_at", "partial", "version"),
            on="siren",
            how="left",
        )
        .with_columns(
            reason=pl.when(pl.col("fetched_at").is_null())
            .then(pl.lit("new"))
            # An answer stored before versions were kept (null) ages out instead: upgrading
            # does not refetch the whole universe at once.
            .when(
                pl.col("partial")
                | (pl.col("version").is_not_null() & pl.col("version").ne(pl.col("current")))
            )
            .then(pl.lit("changed"))
            .when(pl.col(LAST_EVENT) > pl.col("fetched_at").dt.date())
            .then(pl.lit("event"))
            .when(pl.col("fetched_at") < now - max_age)
            .then(pl.lit("old"))
        )
    )
    due = (
        rows.filter(pl.col("reason").is_not_null())
        .with_columns(rank=pl.col("reason").replace_strict(REASONS, range(len(REASONS))))
        .with_columns(fetched_on=pl.col("fetched_at").dt.date())
        .sort(
            ["rank", "fetched_on", LAST_SCORE, "siren"],
            descending=[False, False, True, False],
            nulls_last=[False, False, True, False],
        )
    )
    fetched = due.head(max(budget, 0)) if budget is not None else due
    backlog = due.slice(fetched.height)
    reuse = rows.filter(pl.col("fetched_at").is_not_null()).join(fetched, on="siren", how="anti")
    return RefreshPlan(
        targets=rows.height,
        fetch=fetched["siren"].to_list(),
        reuse=reuse["siren"].sort().to_list(),
        versions=dict(zip(rows["siren"], rows["current"], strict=True)),
        due_by_reason=_by_reason(due),
        fetched_by_reason=_by_reason(fetched),
        backlog_by_reason=_by_reason(backlog),
        budget=budget,
    )


def _by_reason(frame: pl.DataFrame) -> dict[str, int]:
    counts = dict(frame.group_by("reason").len().iter_rows())
    return {reason: counts.get(reason, 0) for reason in REASONS}
