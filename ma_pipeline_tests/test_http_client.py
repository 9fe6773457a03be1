"""The HTTP client core: retries and their causes, Retry-After, backoff, timeout, stop, rate limit.

Waits are asserted through an injected sleep (what the client asked to wait), and the rate limit
through the arrival times the transport recorded: no test depends on how fast the machine is.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from ma_pipeline.enrichment.http import (
    ApiClient,
    ClientStopped,
    Limits,
    RateLimiter,
    RequestFailed,
    retry_after_seconds,
)

Outcome = tuple[int, dict[str, str]] | Exception


class Scripted(httpx.AsyncBaseTransport):
    """Answers from a script, one outcome per request, recording arrival times."""

    def __init__(self, outcomes: list[Outcome] | None = None, hang_s: float = 0.0) -> None:
        self.outcomes = list(outcomes or [])
        self.hang_s = hang_s
        self.arrivals: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(time.monotonic())
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        outcome = self.outcomes.pop(0) if self.outcomes else (200, {})
        if isinstance(outcome, Exception):
            raise outcome
        status, headers = outcome
        return httpx.Response(status, headers=headers, json={"ok": status}, request=request)


class Sleeps:
    """A sleep that records what it was asked for and returns at once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def run(
    transport: httpx.AsyncBaseTransport,
    limits: Limits,
    body: Callable[[ApiClient], Awaitable[object]],
    sleep: Sleeps | None = None,
) -> tuple[object, ApiClient]:
    async def main() -> tuple[object, ApiClient]:
        kwargs = {"sleep": sleep} if sleep else {}
        client = ApiClient(
            "https://api.test/v2",
            limits=limits,
            transport=transport,
            rng=random.Random(1),
            **kwargs,
        )
        async with client:
            return await body(client), client

    return asyncio.run(main())


def get(client: ApiClient) -> Awaitable[httpx.Response]:
    return client.request("GET", "/entreprise", params={"siren": "443061841"})


def test_every_retryable_cause_is_retried_until_an_answer() -> None:
    request = httpx.Request("GET", "https://api.test")
    transport = Scripted(
        [
            (500, {}),
            (429, {}),
            httpx.ReadTimeout("slow", request=request),
            httpx.ConnectError("refused", request=request),
            (502, {}),
            (200, {}),
        ]
    )
    response, client = run(transport, Limits(per_second=None, max_attempts=6), get, Sleeps())
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert len(transport.arrivals) == 6
    assert client.counters.calls == 6
    assert client.counters.retries == 5
    assert client.counters.statuses == {500: 1, 429: 1, 502: 1, 200: 1}
    assert not client.counters.failures


@pytest.mark.parametrize("status", [200, 206, 400, 401, 402, 404])
def test_other_answers_go_back_to_the_caller_at_once(status: int) -> None:
    transport = Scripted([(status, {})])
    response, client = run(transport, Limits(per_second=None), get, Sleeps())
    assert isinstance(response, httpx.Response) and response.status_code == status
    assert client.counters.calls == 1 and client.counters.retries == 0


def test_the_last_failure_is_raised_with_its_kind_after_the_last_attempt() -> None:
    transport = Scripted([(503, {})] * 3)
    with pytest.raises(RequestFailed, match=r"HTTP 503 \(after 3 attempt") as failed:
        run(transport, Limits(per_second=None, max_attempts=3), get, Sleeps())
    assert failed.value.kind == "http_5xx" and failed.value.status == 503
    assert len(transport.arrivals) == 3


def test_retry_after_is_honoured_in_seconds_and_as_an_http_date() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    transport = Scripted([(429, {"Retry-After": "7"}), (503, {"Retry-After": soon}), (200, {})])
    sleeps = Sleeps()
    limits = Limits(per_second=None, backoff_base_s=0.001, backoff_max_s=60)
    response, _ = run(transport, limits, get, sleeps)
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert sleeps.asked[0] >= 7
    assert 28 <= sleeps.asked[1] <= 31  # HTTP dates have a one-second resolution


def test_a_retry_after_longer_than_the_longest_wait_fails_the_request_now() -> None:
    transport = Scripted([(429, {"Retry-After": "3600"}), (200, {})])
    with pytest.raises(RequestFailed, match="Retry-After 3600 s") as failed:
        run(transport, Limits(per_second=None, backoff_max_s=30), get, Sleeps())
    assert failed.value.kind == "http_429"
    assert len(transport.arrivals) == 1


def test_backoff_doubles_its_ceiling_and_draws_below_it() -> None:
    client = ApiClient(
        "https://api.test",
        limits=Limits(backoff_base_s=0.5, backoff_max_s=30),
        rng=random.Random(3),
    )
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0)]:
        draws = [client.backoff(attempt, None) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.9 * ceiling and min(draws) < 0.1 * ceiling  # full jitter
    assert client.backoff(0, 12.0) == 12.0  # never sooner than Retry-After


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("2") == 2
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:10 GMT", now) == 10
    assert retry_after_seconds("Wed, 31 Dec 2025 00:00:10 GMT", now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_the_timeout_bounds_a_request_on_any_transport() -> None:
    transport = Scripted(hang_s=30)
    with pytest.raises(RequestFailed, match=r"no answer within 0\.05 s") as failed:
        run(transport, Limits(per_second=None, timeout_s=0.05, max_attempts=2), get, Sleeps())
    assert failed.value.kind == "timeout"
    assert len(transport.arrivals) == 2


def test_a_stopped_client_sends_nothing_more() -> None:
    transport = Scripted()

    async def body(client: ApiClient) -> object:
        await get(client)
        client.stop()
        return await get(client)

    with pytest.raises(ClientStopped):
        run(transport, Limits(per_second=None), body)
    assert len(transport.arrivals) == 1


def most_in_any_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + seconds) for i, start in enumerate(times))


def test_no_one_second_window_sees_more_requests_than_the_limit() -> None:
    transport = Scripted()

    async def body(client: ApiClient) -> object:
        return await asyncio.gather(*(get(client) for _ in range(50)))

    # The margin absorbs scheduling jitter between a grant and the request's arrival.
    run(transport, Limits(per_second=20, concurrency=10, margin_s=0.05), body)
    assert len(transport.arrivals) == 50
    assert most_in_any_window(transport.arrivals, 1.0) == 20  # used fully, never exceeded


def test_the_limiter_keeps_every_window_at_once() -> None:
    """Per-second and per-minute limits are the same mechanism. Virtual time: each grant is
    stamped with the limiter's own clock, so the windows are exact whatever the machine's load."""
    granted: list[float] = []
    now = [0.0]

    async def advance(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    async def main() -> None:
        limiter = RateLimiter([(4, 0.2), (10, 1.0)], clock=lambda: now[0], sleep=advance)

        async def one() -> None:
            await limiter.acquire()
            granted.append(now[0])

        await asyncio.gather(*(one() for _ in range(24)))

    asyncio.run(main())
    assert most_in_any_window(granted, 0.2) <= 4
    assert most_in_any_window(granted, 1.0) <= 10
    assert max(granted) - min(granted) >= 2.0  # 24 grants at 10 per second take two windows


def test_limits_below_one_a_second_become_one_per_longer_window() -> None:
    assert Limits(per_second=0.5, per_minute=90, margin_s=0).windows() == [(1, 2.0), (90, 60.0)]
