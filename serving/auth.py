"""API keys with scopes, and a rate limit per key.

Keys are looked up by the id in the token and cached for ``MA_API_KEY_CACHE_SECONDS``: the
database is asked at most once per key and period, and a revocation shows within it. The
rate limit is a token bucket per key **in each process**: with ``--workers N`` a key may make up
to N times its rate in total.
"""

import math
import time
from dataclasses import dataclass, field

from cachetools import TTLCache
from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, SecurityScopes

from serving.store import ApiKey, ApiStore, split_token

API_KEY_HEADER = "X-API-Key"

_UNKNOWN = object()


class KeyRing:
    """Checks tokens against the stored keys, through a short-lived cache of the rows."""

    def __init__(self, store: ApiStore, cache_seconds: float) -> None:
        self.store = store
        self._cache: TTLCache[str, ApiKey | None] = TTLCache(maxsize=10_000, ttl=cache_seconds)

    async def verify(self, token: str) -> ApiKey | None:
        """The active key the token belongs to, or None."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        key = self._cache.get(key_id, _UNKNOWN)
        if key is _UNKNOWN:
            key = self._cache[key_id] = await run_in_threadpool(self.store.get_key, key_id)
        if key is None or key.revoked_at is not None or not key.matches(secret):
            return None
        return key


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


class RateLimiter:
    """Token buckets per key: ``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, default_rate: float, burst: float) -> None:
        self.default_rate = default_rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def wait_for(self, key: ApiKey) -> int:
        """Take a token for one request: 0, or the seconds to wait before retrying."""
        rate = key.rate_per_second or self.default_rate
        capacity = max(self.burst, rate)
        bucket = self._buckets.get(key.id)
        if bucket is None:
            bucket = self._buckets[key.id] = _Bucket(capacity)
        now = time.monotonic()
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / rate))


class ApiKeyAuth(APIKeyHeader):
    """The ``X-API-Key`` security scheme, checking the key itself: one dependency rather than a
    check depending on the header scheme, as FastAPI's cost per dependency level shows on the
    company lookup."""

    async def __call__(  # type: ignore[override]
        self, request: Request, security_scopes: SecurityScopes
    ) -> ApiKey:
        """The caller's key: 401 without a valid one, 429 over its rate, 403 without the scopes."""
        token = request.headers.get(self.model.name)
        if not token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"missing API key: send it in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": "APIKey"},
            )
        key = await request.app.state.keys.verify(token)
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked API key",
                headers={"WWW-Authenticate": "APIKey"},
            )
        request.state.key_id = key.id  # for the access log
        retry_after = request.app.state.limiter.wait_for(key)
        if retry_after:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit of this API key exceeded: retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        missing = sorted(set(security_scopes.scopes) - key.scopes)
        if missing:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key lacks the scope {', '.join(missing)}"
            )
        return key


authorize = ApiKeyAuth(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A token from `ma-api keys create`, e.g. `ma_1a2b3c4d5e6f_...`",
)
