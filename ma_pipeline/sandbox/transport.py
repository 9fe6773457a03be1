"""What every sandbox API shares: an in-process httpx transport with latency, faults and counters.

A sandbox API answers through the same ``httpx.AsyncClient`` as the real one, so the client core
(limits, retries, timeouts) and the parsing run unchanged. Faults are drawn from a seeded RNG, one
draw per request, so a run with the same requests in the same order meets the same faults. A
server-side rate limit, when set, answers 429 with ``Retry-After`` as the real API does. The
counters (requests, arrival times, statuses, answers per key) are what tests assert on: they are
the server's view, independent of the client's own counting.
"""

import abc
import asyncio
import math
import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Faults:
    """Share of requests meeting each fault; ``retry_after_s`` goes with the injected 429s."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_206: float = 0.0
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        if self.rate_429 + self.rate_500 + self.rate_timeout + self.rate_206 > 1:
            raise ValueError("fault rates add up to more than 1")


class SandboxTransport(httpx.AsyncBaseTransport, abc.ABC):
    """An API in the process: latency, faults, authentication, credits, counters."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        faults: Faults | None = None,
        fault_seed: int = 0,
        api_key: str | None = None,
        credits: int | None = None,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.faults = faults or Faults()
        self.api_key = api_key
        self.credits_left = credits
        self._rng = random.Random(fault_seed)
        # The server's own limit: (requests, seconds) accepted in any window, 429 beyond.
        self.rate_limit = rate_limit
        self._accepted: deque[float] = deque(maxlen=rate_limit[0] if rate_limit else 1)
        self.requests = 0
        self.timestamps: list[float] = []  # time.monotonic() at each request's arrival
        self.statuses: Counter[int] = Counter()
        # (time.monotonic(), URL, status) of each answer, in the order answered.
        self.history: list[tuple[float, str, int]] = []
        self.injected: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()  # 2xx answers per key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(requests={self.requests})"

    # ------------------------------------------------------------------- what an API defines
    @abc.abstractmethod
    def authorized(self, request: httpx.Request) -> bool:
        """Whether the request carries the expected key (only asked when one is set)."""

    @abc.abstractmethod
    def no_credits(self) -> tuple[int, dict[str, Any]]:
        """Status and body once the credits are spent."""

    @abc.abstractmethod
    def answer(self, request: httpx.Request) -> tuple[int, Any, str | None]:
        """Status, JSON body and the key answered for (None when nothing was found)."""

    def make_partial(self, body: Any) -> Any:
        """The body of a 206 (partial) answer; by default the same."""
        return body

    # -------------------------------------------------------------------------- transport
    def _draw(self) -> str | None:
        f, u = self.faults, self._rng.random()
        for kind, rate in (
            ("429", f.rate_429),
            ("500", f.rate_500),
            ("timeout", f.rate_timeout),
            ("206", f.rate_206),
        ):
            if u < rate:
                return kind
            u -= rate
        return None

    def _over_limit(self, now: float) -> float | None:
        """Seconds until the window has room, when the request overflows the rate limit."""
        if self.rate_limit is None:
            return None
        limit, seconds = self.rate_limit
        if len(self._accepted) == limit and now - self._accepted[0] < seconds:
            return seconds - (now - self._accepted[0])
        self._accepted.append(now)
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        self.timestamps.append(now)
        self.requests += 1
        wait = self._over_limit(now)
        if wait is not None:
            self.injected["rate_limited"] += 1
            headers = {"Retry-After": f"{max(1, math.ceil(wait))}"}
            return self._respond(request, 429, {"erreur": "Too Many Requests"}, headers)
        fault = self._draw()
        if fault:
            self.injected[fault] += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if fault == "timeout":
            raise httpx.ReadTimeout("sandbox: injected timeout", request=request)
        if fault == "429":
            headers = {"Retry-After": f"{self.faults.retry_after_s:g}"}
            return self._respond(request, 429, {"error": "Too Many Requests"}, headers)
        if fault == "500":
            return self._respond(request, 500, {"error": "Internal Server Error"})
        if self.api_key is not None and not self.authorized(request):
            return self._respond(request, 401, {"statusCode": 401, "error": "Unauthorized"})
        if self.credits_left is not None and self.credits_left <= 0:
            return self._respond(request, *self.no_credits())
        status, body, key = self.answer(request)
        if 200 <= status < 300:
            if self.credits_left is not None:
                self.credits_left -= 1
            if key is not None:
                self.answered[key] += 1
            if fault == "206":
                status, body = 206, self.make_partial(body)
        return self._respond(request, status, body)

    def _respond(
        self,
        request: httpx.Request,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        self.statuses[status] += 1
        self.history.append((time.monotonic(), str(request.url), status))
        return httpx.Response(status, json=body, headers=headers, request=request)
