"""One enrichment run of a source: fresh cached answers first, the API for the rest (or, given a
refresh plan, the stored answers it reuses and the API for the keys it fetches).

Every key is asked for at most once per run. Answers are parsed as they arrive and written to the
cache every ``flush_every`` answers (and whatever happens at the end), so a run that stops early
(credits exhausted, a crash) keeps what it paid for. A per-key failure is recorded and the run
goes on; only an error that condemns every further request (``FatalApiError``) stops it.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from ma_pipeline.enrichment.cache import Answer, ApiCache
from ma_pipeline.enrichment.http import ApiClient, ClientStopped, Counters, RequestFailed
from ma_pipeline.enrichment.refresh import RefreshPlan

T = TypeVar("T")


class FatalApiError(Exception):
    """The API refuses every further request: the run stops and reports it."""

    kind: ClassVar[str] = "fatal"


class CreditsExhausted(FatalApiError):
    kind = "credits_exhausted"


class BadApiKey(FatalApiError):
    kind = "bad_api_key"


@dataclass(frozen=True)
class KeyFailure:
    key: str
    kind: str
    message: str
    status: int | None = None


@dataclass
class EnrichmentRun(Generic[T]):
    """What a run got: parsed records by key, negatives, failures, and its counters."""

    source: str
    requested: int
    records: dict[str, T] = field(default_factory=dict)
    negatives: set[str] = field(default_factory=set)
    partial: set[str] = field(default_factory=set)
    failures: dict[str, KeyFailure] = field(default_factory=dict)
    cache_hits: int = 0
    fetched: int = 0
    credits: float = 0.0
    counters: Counters = field(default_factory=Counters)
    fatal: FatalApiError | None = None
    fetch_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def failure_rate(self) -> float:
        return len(self.failures) / self.requested if self.requested else 0.0

    def failures_by_kind(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.failures.values()).most_common())

    def metadata(self) -> dict[str, Any]:
        calls = self.counters.calls
        return {
            "requested": self.requested,
            "cache_hits": self.cache_hits,
            "calls": calls,
            "retries": self.counters.retries,
            "answers_fetched": self.fetched,
            "not_found": len(self.negatives),
            "partial": len(self.partial),
            "failures": len(self.failures),
            "failures_by_kind": self.failures_by_kind(),
            "failure_rate": round(self.failure_rate, 4),
            "estimated_credits": self.credits,
            "responses_by_status": {str(k): n for k, n in sorted(self.counters.statuses.items())},
            "duration_s": round(self.seconds, 3),
            "fetch_duration_s": round(self.fetch_seconds, 3),
            "calls_per_s": round(calls / self.fetch_seconds, 2) if self.fetch_seconds else 0.0,
        }


Fetch = Callable[[ApiClient, str], Awaitable[Answer]]
Parse = Callable[[Answer], T | None]


def run_enrichment(
    keys: Sequence[str],
    *,
    cache: ApiCache,
    open_client: Callable[[], AbstractAsyncContextManager[ApiClient]],
    fetch: Fetch,
    parse: Parse[T],
    credits: Callable[[Answer], float],
    now: datetime,
    budget: int | None = None,
    plan: RefreshPlan | None = None,
    flush_every: int = 500,
) -> EnrichmentRun[T]:
    """Enrich ``keys``: cached answers within TTL, then at most ``budget`` calls for the rest.
    With a ``plan``, ``keys`` are its fetched and reused keys: the reused ones are served from
    their stored answers whatever their age, and each answer fetched is stored with the version
    the plan gives its key.

    ``parse`` turns an answer into a record, or None for a miss (a 200 that found nothing).
    """
    started = time.perf_counter()
    unique = list(dict.fromkeys(keys))
    result: EnrichmentRun[T] = EnrichmentRun(source=cache.source, requested=len(unique))
    cached = cache.fresh(unique, now) if plan is None else cache.stored(plan.reuse)
    for answer in cached:
        result.cache_hits += 1
        _accept(result, answer, parse)
    missing = [k for k in unique if k not in result.records and k not in result.negatives]
    missing = [k for k in missing if k not in result.failures]  # unparsable cached answers
    if budget is not None and len(missing) > budget:
        for key in missing[budget:]:
            result.failures[key] = KeyFailure(
                key, "over_budget", "the day's credit budget is spent"
            )
        missing = missing[: max(budget, 0)]
    if missing:
        fetch_started = time.perf_counter()
        versions = plan.versions if plan is not None else {}
        asyncio.run(
            _fetch_all(
                missing, result, cache, open_client, fetch, parse, credits, versions, flush_every
            )
        )
        result.fetch_seconds = time.perf_counter() - fetch_started
    result.seconds = time.perf_counter() - started
    return result


def _accept(result: EnrichmentRun[T], answer: Answer, parse: Parse[T]) -> None:
    if answer.partial:
        result.partial.add(answer.key)
    if answer.payload is None:
        result.negatives.add(answer.key)
        return
    try:
        record = parse(answer)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        result.failures[answer.key] = KeyFailure(
            answer.key, "invalid_response", f"{type(exc).__name__}: {exc}", answer.status
        )
        return
    if record is None:
        result.negatives.add(answer.key)
    else:
        result.records[answer.key] = record


async def _fetch_all(
    keys: list[str],
    result: EnrichmentRun[T],
    cache: ApiCache,
    open_client: Callable[[], AbstractAsyncContextManager[ApiClient]],
    fetch: Fetch,
    parse: Parse[T],
    credits: Callable[[Answer], float],
    versions: dict[str, str | None],
    flush_every: int,
) -> None:
    pending: list[Answer] = []
    writing = asyncio.Lock()

    async def flush(at_least: int) -> None:
        nonlocal pending
        if len(pending) >= at_least and pending:
            batch, pending = pending, []
            async with writing:  # one write at a time, off the event loop
                await asyncio.to_thread(cache.store, batch)

    todo = iter(keys)
    async with open_client() as client:

        async def worker() -> None:
            for key in todo:
                try:
                    answer = await fetch(client, key)
                except FatalApiError as exc:
                    result.fatal = result.fatal or exc
                    client.stop()
                    continue
                except ClientStopped:
                    continue
                except RequestFailed as exc:
                    result.failures[key] = KeyFailure(key, exc.kind, str(exc), exc.status)
                    continue
                if key in versions:
                    answer = replace(answer, version=versions[key])
                result.fetched += 1
                result.credits += credits(answer)
                pending.append(answer)
                _accept(result, answer, parse)
                await flush(flush_every)

        try:
            async with asyncio.TaskGroup() as workers:
                # Twice the concurrency: workers sleeping in a backoff leave no slot idle.
                for _ in range(2 * client.limits.concurrency):
                    workers.create_task(worker())
        except ExceptionGroup as errors:  # a bug, not an API error: raise it as itself
            raise errors.exceptions[0] from errors
        finally:
            await flush(1)
            result.counters = client.counters
    if result.fatal is not None:
        stopped = result.fatal
        for key in keys:
            if key not in result.records and key not in result.negatives:
                result.failures.setdefault(
                    key, KeyFailure(key, stopped.kind, f"not fetched: {stopped}")
                )
