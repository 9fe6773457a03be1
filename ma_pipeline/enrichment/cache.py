"""Raw API answers kept in the warehouse, so that no answer is paid for twice within its TTL.

``enrichment.api_cache`` holds the latest answer per (source, key): when it came, its HTTP status,
whether it was partial, and the body as received (null for a negative answer: 404, or Kaspr's
empty profile). An answer is fresh while younger than the source's TTL, unless it was partial
(Pappers' 206), which is kept but fetched again next time. ``enrichment.api_usage`` counts calls
and estimated credits per source and day, which is what Kaspr's daily budget reads.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from ma_pipeline.contracts.tables import API_CACHE, API_USAGE
from ma_pipeline.warehouse import Warehouse

CACHE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "key": pl.String(),
    "fetched_at": pl.Datetime("us", "UTC"),
    "status": pl.Int64(),
    "partial": pl.Boolean(),
    "payload": pl.String(),
}
USAGE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "day": pl.Date(),
    "calls": pl.Int64(),
    "credits": pl.Float64(),
    "updated_at": pl.Datetime("us", "UTC"),
}


@dataclass(frozen=True)
class Answer:
    """One API answer as received; ``payload`` is None for a negative answer."""

    source: str
    key: str
    status: int
    fetched_at: datetime
    payload: str | None = None
    partial: bool = False


class ApiCache:
    """The cached answers of one source, with its TTL."""

    def __init__(self, warehouse: Warehouse, source: str, ttl: timedelta) -> None:
        self.warehouse = warehouse
        self.source = source
        self.ttl = ttl

    def fresh(self, keys: Sequence[str], now: datetime, chunk: int = 2_000) -> Iterator[Answer]:
        """The cached answers for ``keys`` that are complete and younger than the TTL.

        Read ``chunk`` keys at a time: real Pappers bodies weigh tens of kilobytes each.
        """
        oldest = now - self.ttl
        for start in range(0, len(keys), chunk):
            wanted = pl.DataFrame(
                {"source": self.source, "key": list(keys[start : start + chunk])},
                schema={"source": pl.String(), "key": pl.String()},
            )
            rows = self.warehouse.lookup(API_CACHE, wanted)
            if rows.is_empty():
                continue
            fresh = rows.filter((pl.col("fetched_at") > oldest) & ~pl.col("partial"))
            for row in fresh.iter_rows(named=True):
                yield Answer(
                    self.source,
                    row["key"],
                    row["status"],
                    row["fetched_at"],
                    row["payload"],
                    row["partial"],
                )

    def store(self, answers: Sequence[Answer]) -> None:
        """Keep ``answers`` as the latest of their keys, in one transaction."""
        if not answers:
            return
        frame = pl.DataFrame(
            [(a.source, a.key, a.fetched_at, a.status, a.partial, a.payload) for a in answers],
            schema=CACHE_SCHEMA,
            orient="row",
        )
        self.warehouse.upsert(API_CACHE, frame, ["source", "key"])


class ApiUsage:
    """Calls and estimated credits spent per source and day."""

    def __init__(self, warehouse: Warehouse, source: str) -> None:
        self.warehouse = warehouse
        self.source = source

    def _row(self, day: date) -> pl.DataFrame:
        keys = pl.DataFrame(
            {"source": [self.source], "day": [day]},
            schema={"source": pl.String(), "day": pl.Date()},
        )
        return self.warehouse.lookup(API_USAGE, keys)

    def credits_spent(self, day: date) -> float:
        row = self._row(day)
        return float(row["credits"].sum()) if not row.is_empty() else 0.0

    def record(self, day: date, calls: int, credits: float, now: datetime) -> None:
        """Add ``calls`` and ``credits`` to the day's totals."""
        if not calls and not credits:
            return
        row = self._row(day)
        if not row.is_empty():
            calls += int(row["calls"].sum())
            credits += float(row["credits"].sum())
        frame = pl.DataFrame(
            [(self.source, day, calls, credits, now)], schema=USAGE_SCHEMA, orient="row"
        )
        self.warehouse.upsert(API_USAGE, frame, ["source", "day"])
