"""API keys with scopes, a rate limit per key and a limit of bad keys per client address.

Keys are looked up by the id in the token and their rows cached for ``MA_API_KEY_CACHE_SECONDS``:
the database is asked at most once per key and period, in the background while the last row read
keeps answering (for up to one more period), so a revocation shows within about one period. The
limits (``serving.ratelimit``) are shared by every worker when ``MA_API_REDIS_URL`` is set.
"""

import asyncio
import logging
import time
from functools import partial

from cachetools import TTLCache
from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, SecurityScopes

from serving.ratelimit import RateLimits
from serving.store import ApiKey, ApiStore, split_token

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"


class KeyRing:
    """Checks tokens against the stored keys, through a cache of their rows.

    Under load, every request in flight (64 at 64 connections) found an expired row at once and
    each asked the database: one query per request held them all for ~45 ms every period. Now one
    query per key is in flight at a time; only a key never seen (or unused for two periods)
    waits for it.
    """

    def __init__(self, store: ApiStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._rows: TTLCache[str, tuple[ApiKey | None, float]] = TTLCache(
            maxsize=10_000, ttl=2 * cache_seconds
        )
        self._asking: dict[str, asyncio.Task[ApiKey | None]] = {}

    async def verify(self, token: str) -> ApiKey | None:
        """The active key the token belongs to, or None."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        cached = self._rows.get(key_id)
        if cached is None:
            # Shielded: a client that disconnects cancels its own wait, not the others' answer.
            key = await asyncio.shield(self._ask(key_id))
        else:
            key, read_at = cached
            if time.monotonic() - read_at > self.cache_seconds:
                self._ask(key_id)
        if key is None or key.revoked_at is not None or not key.matches(secret):
            return None
        return key

    def _ask(self, key_id: str) -> "asyncio.Task[ApiKey | None]":
        """The query for the key's row: the one in flight, or a new one."""
        asking = self._asking.get(key_id)
        if asking is None:
            asking = asyncio.create_task(run_in_threadpool(self.store.get_key, key_id))
            self._asking[key_id] = asking
            asking.add_done_callback(partial(self._answered, key_id))
        return asking

    def _answered(self, key_id: str, task: "asyncio.Task[ApiKey | None]") -> None:
        del self._asking[key_id]
        if task.cancelled():
            return
        if task.exception() is not None:
            log.warning("reading API key %s failed", key_id, exc_info=task.exception())
            return
        self._rows[key_id] = (task.result(), time.monotonic())


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
        limits: RateLimits = request.app.state.limits
        address = request.client.host if request.client else "unknown"
        blocked = await limits.auth_blocked(address)
        if blocked:
            raise _too_many("too many invalid API keys from this address", blocked)
        key = await request.app.state.keys.verify(token)
        if key is None:
            await limits.auth_failed(address)
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked API key",
                headers={"WWW-Authenticate": "APIKey"},
            )
        request.state.key_id = key.id  # for the access log
        retry_after = await limits.wait_for(key)
        if retry_after:
            raise _too_many("rate limit of this API key exceeded", retry_after)
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


def _too_many(reason: str, retry_after: int) -> HTTPException:
    """429 with the wait, in the header and the message."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"{reason}: retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )
