"""The HTTP client core shared by every external API (Pappers, Kaspr).

One ``ApiClient`` holds an ``httpx.AsyncClient`` (its transport injectable: the sandbox, a test
double, or the network), a semaphore bounding the requests in flight, a rate limiter that keeps
both a per-second and a per-minute limit, and the retry policy: 429, 5xx, timeouts and connection
errors are retried with exponential backoff and full jitter, waiting at least what ``Retry-After``
asks. Every other answer (2xx, 4xx) goes back to the caller, which alone knows what it means for
its API. Counters record what was sent, so metadata and benches can report it.
"""

import asyncio
import email.utils
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """How hard a client may press an API.

    ``margin_s`` widens every rate window a little: requests that leave a second apart can reach
    the server closer together, so a client that used the window to the microsecond would
    sometimes exceed the server's count.
    """

    concurrency: int = 8
    per_second: float | None = 10.0
    per_minute: float | None = None
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    margin_s: float = 0.01

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")

    def windows(self) -> list[tuple[int, float]]:
        """(requests, seconds) pairs for the rate limiter; 0.5/s becomes 1 per 2 s."""
        pairs = [(self.per_second, 1.0), (self.per_minute, 60.0)]
        return [
            (int(limit), seconds + self.margin_s)
            if limit >= 1
            else (1, seconds / limit + self.margin_s)
            for limit, seconds in pairs
            if limit
        ]


class RateLimiter:
    """Sliding-window limiter: in any window of ``seconds``, at most ``limit`` grants.

    Keeps the grant times of the last ``limit`` requests per window; a request waits until the
    oldest one that would make the window overflow has left it. Grants are served in arrival
    order (the lock is held while waiting), so no caller starves.
    """

    def __init__(
        self,
        windows: Iterable[tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._windows = list(windows)
        self._clock, self._sleep = clock, sleep
        if any(limit < 1 for limit, _ in self._windows):
            raise ValueError("a rate limit must allow at least one request per window")
        self._grants: list[deque[float]] = [deque(maxlen=limit) for limit, _ in self._windows]
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                wait = max(
                    (
                        grants[0] + seconds - now
                        for (limit, seconds), grants in zip(
                            self._windows, self._grants, strict=True
                        )
                        if len(grants) == limit
                    ),
                    default=0.0,
                )
                if wait <= 0:
                    for grants in self._grants:
                        grants.append(now)
                    return
                await self._sleep(wait)


@dataclass
class Counters:
    """What a client did: HTTP requests sent, retries, answers by status, final failures."""

    calls: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


class RequestFailed(Exception):
    """A request that still failed after every attempt; ``kind`` names the last cause."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class ClientStopped(Exception):
    """The client was stopped (credits exhausted, bad key) before this request was sent."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _retryable(status: int) -> str | None:
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    return None


class ApiClient:
    """Requests to one API with bounded concurrency, a rate limit, retries and counters.

    Use it as ``async with ApiClient(...) as client``; ``stop()`` makes every request not yet
    sent raise ``ClientStopped`` (requests in flight finish).
    """

    def __init__(
        self,
        base_url: str,
        *,
        limits: Limits,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url
        self.limits = limits
        self.counters = Counters()
        self._headers = headers or {}
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(limits.concurrency)
        self._limiter = RateLimiter(limits.windows())
        self._stopped = False
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # the headers may hold a key: never show them
        return f"ApiClient({self.base_url!r})"

    async def __aenter__(self) -> "ApiClient":
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            transport=self._transport,
            timeout=self.limits.timeout_s,
            limits=httpx.Limits(max_connections=self.limits.concurrency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _raise_if_stopped(self) -> None:
        if self._stopped:
            raise ClientStopped("the client was stopped before this request was sent")

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempt + 1``: full jitter, never less than Retry-After."""
        ceiling = min(self.limits.backoff_max_s, self.limits.backoff_base_s * 2**attempt)
        jittered = self._rng.uniform(0, ceiling)
        return jittered if retry_after is None else max(retry_after, jittered)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The first answer that is neither 429 nor 5xx, or ``RequestFailed`` after the last try."""
        if self._http is None:
            raise RuntimeError("use the client inside 'async with'")
        attempt = 0
        while True:
            retry_after: float | None = None
            status: int | None = None
            async with self._semaphore:
                self._raise_if_stopped()
                await self._limiter.acquire()
                self._raise_if_stopped()  # the wait for a slot may have outlived the run
                self.counters.calls += 1
                try:
                    # httpx enforces its timeout on network transports only; this bounds any.
                    async with asyncio.timeout(self.limits.timeout_s):
                        response = await self._http.request(method, url, **kwargs)
                except (TimeoutError, httpx.TimeoutException):
                    kind = "timeout"
                    message = f"no answer within {self.limits.timeout_s:g} s"
                except httpx.TransportError as exc:
                    kind = "connection"
                    message = f"connection error: {type(exc).__name__}"
                else:
                    status = response.status_code
                    self.counters.statuses[status] += 1
                    retryable = _retryable(status)
                    if retryable is None:
                        return response
                    kind, message = retryable, f"HTTP {status}"
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            last = attempt == self.limits.max_attempts - 1
            if retry_after is not None and retry_after > self.limits.backoff_max_s:
                message += f" with Retry-After {retry_after:g} s, longer than we wait"
                last = True
            if last:
                self.counters.failures[kind] += 1
                raise RequestFailed(
                    kind, f"{message} (after {attempt + 1} attempt(s))", status=status
                )
            self.counters.retries += 1
            await self._sleep(self.backoff(attempt, retry_after))
            attempt += 1
