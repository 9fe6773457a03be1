"""Rate limits shared by every worker: requests per API key, and failed authentications per
client address.

Counters live in Redis when ``MA_API_REDIS_URL`` is set, so ``--workers N`` (or N servers on that
Redis) give a key its rate once, not N times; without it they live in the process's memory, which
is exact for one worker only. The ``limits`` library counts with sliding windows (two counters per
key and window, no list of timestamps). Should Redis stop answering, requests are let through and
a warning logged: the limits protect the API, they must not take it down.
"""

import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from serving.store import ApiKey

log = logging.getLogger(__name__)


def open_storage(redis_url: str, prefix: str) -> Storage:
    """Redis at ``redis_url`` (``redis://`` or ``rediss://``), else the process's memory."""
    if not redis_url:
        return MemoryStorage()
    storage = storage_from_string(f"async+{redis_url}", implementation="redispy", key_prefix=prefix)
    assert isinstance(storage, Storage)
    return storage


def per_key_item(rate: float, burst: float) -> RateLimitItem:
    """``rate`` requests per second on average, bursts up to ``max(burst, rate)``: that many
    requests per window of ``burst / rate`` seconds (whole seconds, so the amount is rounded)."""
    capacity = max(burst, rate)
    window = max(1, round(capacity / rate))
    return RateLimitItemPerSecond(max(1, round(rate * window)), window)


class RateLimits:
    """The API's limits over one storage."""

    def __init__(
        self,
        storage: Storage,
        default_rate: float,
        burst: float,
        auth_failures_per_minute: int,
        namespace: str = "ma_api",
    ) -> None:
        self.storage = storage
        self.default_rate = default_rate
        self.burst = burst
        self.auth_failures = RateLimitItemPerMinute(auth_failures_per_minute)
        self.namespace = namespace
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[float, RateLimitItem] = {}

    async def wait_for(self, key: ApiKey) -> int:
        """Count one request of ``key``: 0, or the seconds to wait before retrying."""
        rate = key.rate_per_second or self.default_rate
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = per_key_item(rate, self.burst)
        return await self._hit(item, "key", key.id)

    async def auth_blocked(self, address: str) -> int:
        """0, or the seconds until ``address`` may try keys again after too many bad ones."""
        try:
            if await self._limiter.test(self.auth_failures, self.namespace, "auth", address):
                return 0
            return await self._retry_after(self.auth_failures, "auth", address)
        except Exception:
            log.warning("the rate-limit storage does not answer", exc_info=True)
            return 0

    async def auth_failed(self, address: str) -> None:
        """Count a bad key sent from ``address``."""
        await self._hit(self.auth_failures, "auth", address)

    async def _hit(self, item: RateLimitItem, *identifiers: str) -> int:
        try:
            if await self._limiter.hit(item, self.namespace, *identifiers):
                return 0
            return await self._retry_after(item, *identifiers)
        except Exception:
            log.warning("the rate-limit storage does not answer", exc_info=True)
            return 0

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self._limiter.get_window_stats(item, self.namespace, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))
