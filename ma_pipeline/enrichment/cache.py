"""Raw API answers kept in the warehouse, so that no answer is paid for twice within its TTL.

``enrichment.api_cache`` holds the latest answer per (source, key): when it came, its HTTP status,
whether it was partial, the version of the key it was fetched for (Pappers: the SIRENE record's
last processing), and the body as received (null for a negative answer: 404, or Kaspr's empty
profile). An answer is fresh while younger than the source's TTL, unless it was partial
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
    "version": pl.String(),
}
# What is known of a stored answer without its body.
STATE_COLUMNS = ["key", "fetched_at", "partial", "version"]
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
    version: str | None = None


class ApiCache:
    """The cached answers of one source, with its TTL."""

    def __init__(self, warehouse: Warehouse, source: str, ttl: timedelta) -> None:
        self.warehouse = warehouse
        self.source = source
        self.ttl = ttl

    def fresh(self, keys: Sequence[str], now: datetime) -> Iterator[Answer]:
        """The cached answers for ``keys`` that are complete and younger than the TTL."""
        oldest = now - self.ttl
        for rows in self._chunks(keys):
            yield from _answers(rows.filter((pl.col("fetched_at") > oldest) & ~pl.col("partial")))

    def stored(self, keys: Sequence[str]) -> Iterator[Answer]:
        """The cached answers for ``keys``, whatever their age (a refresh plan chose them)."""
        for rows in self._chunks(keys):
            yield from _answers(rows)

    def state(self, keys: Sequence[str]) -> pl.DataFrame:
        """``STATE_COLUMNS`` of the cached answers for ``keys``: no bodies are read."""
        frames = list(self._chunks(keys, STATE_COLUMNS))
        schema = {c: CACHE_SCHEMA[c] for c in STATE_COLUMNS}
        rows = pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema=schema)
        missing = [pl.lit(None, schema[c]).alias(c) for c in STATE_COLUMNS if c not in rows.columns]
        return rows.with_columns(missing).select(STATE_COLUMNS).cast(schema)  # type: ignore[arg-type]

    def _chunks(
        self, keys: Sequence[str], columns: list[str] | None = None, chunk: int = 2_000
    ) -> Iterator[pl.DataFrame]:
        """The cached rows for ``keys``, ``chunk`` keys at a time: real Pappers bodies weigh
        tens of kilobytes each."""
        for start in range(0, len(keys), chunk):
            wanted = pl.DataFrame(
                {"source": self.source, "key": list(keys[start : start + chunk])},
                schema={"source": pl.String(), "key": pl.String()},
            )
            rows = self.warehouse.lookup(API_CACHE, wanted, columns)
            if not rows.is_empty():
                yield rows

    def store(self, answers: Sequence[Answer]) -> None:
        """Keep ``answers`` as the latest of their keys, in one transaction."""
        if not answers:
            return
        frame = pl.DataFrame(
            [
                (a.source, a.key, a.fetched_at, a.status, a.partial, a.payload, a.version)
                for a in answers
            ],
            schema=CACHE_SCHEMA,
            orient="row",
        )
        self.warehouse.upsert(API_CACHE, frame, ["source", "key"])


def _answers(rows: pl.DataFrame) -> Iterator[Answer]:
    for row in rows.iter_rows(named=True):
        yield Answer(
            row["source"],
            row["key"],
            row["status"],
            row["fetched_at"],
            row["payload"],
            row["partial"],
            row.get("version"),
        )


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

    def calls_made(self, day: date) -> int:
        row = self._row(day)
        return int(row["calls"].sum()) if not row.is_empty() else 0

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
