"""API keys and score requests as the API records them, in the request store's database
(``ma_pipeline.contracts.api_store``, which the pipeline's score requests use too). This module
imports no FastAPI.

A key is ``ma_<id>_<secret>``: the id finds the row, the secret is stored only as its SHA-256
(the secret is 256 random bits, so a fast hash is enough) and compared in constant time.
"""

import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ma_pipeline.contracts.api_store import (
    PENDING,
    RequestStore,
    ScoreRequest,
    api_keys,
    score_requests,
)

SCOPES = ("scores:read", "contacts:read", "requests:write")
PARIS = ZoneInfo("Europe/Paris")
_TOKEN_PREFIX = "ma"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    rate_per_second: float | None
    created_at: datetime
    revoked_at: datetime | None
    secret_sha256: str

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(_sha256(secret), self.secret_sha256)


class TooManyPending(Exception):
    """The key has as many pending score requests as it may: each costs an enrichment call."""


class TooManyToday(Exception):
    """The key has made as many score requests today (Paris time) as it may."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def paris_day(now: datetime) -> tuple[datetime, datetime]:
    """The start and end of ``now``'s day in Europe/Paris, as UTC instants."""
    day = now.astimezone(PARIS).date()
    start, end = (datetime.combine(d, time(), PARIS) for d in (day, day + timedelta(days=1)))
    return start.astimezone(UTC), end.astimezone(UTC)  # 23 or 25 hours apart on DST days


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused for a different SIREN."""


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token, else None."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != _TOKEN_PREFIX or not key_id or not secret:
        return None
    return key_id, secret


class ApiStore(RequestStore):
    """The request store with what only the API does: keys, and recording requests."""

    # ------------------------------------------------------------------------------ API keys
    def create_key(
        self, name: str, scopes: list[str], rate_per_second: float | None = None
    ) -> tuple[ApiKey, str]:
        """A new key and its token, which is shown once and never stored."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(
                f"unknown scope(s) {', '.join(unknown) or '(none given)'}; use {', '.join(SCOPES)}"
            )
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("the rate limit must be a positive number of requests per second")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {
            "id": key_id,
            "name": name,
            "secret_sha256": _sha256(secret),
            "scopes": sorted(set(scopes)),
            "rate_per_second": rate_per_second,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(row))
        return _key(row), f"{_TOKEN_PREFIX}_{key_id}_{secret}"

    def get_key(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(api_keys.select().order_by(api_keys.c.created_at)).mappings()
            return [_key(row) for row in rows]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has this id."""
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return done.rowcount == 1

    def create_request(
        self,
        siren: str,
        key_id: str,
        idempotency_key: str | None = None,
        max_pending: int | None = None,
        max_per_day: int | None = None,
    ) -> tuple[ScoreRequest, bool]:
        """Record a pending request (second value: whether a request was created). With an
        idempotency key already used by this API key, or while the key's request for the same
        SIREN is still pending, return that request instead; past ``max_pending`` pending
        requests of the key, raise ``TooManyPending``, and past ``max_per_day`` requests made
        by the key since midnight in Paris, ``TooManyToday`` (two racing requests may both
        pass either cap)."""
        if idempotency_key is not None:
            existing = self._by_idempotency_key(key_id, idempotency_key, siren)
            if existing is not None:
                return existing, False
        pending = self._pending(key_id)
        same = next((r for r in pending if r.siren == siren), None)
        if same is not None and idempotency_key is None:
            return same, False
        if max_pending is not None and len(pending) >= max_pending:
            raise TooManyPending(
                f"this API key has {len(pending)} pending score requests, the most it may have:"
                " wait for some to complete"
            )
        now = datetime.now(UTC)
        if max_per_day is not None:
            start, end = paris_day(now)
            made = self.requests_since(key_id, start)
            if made >= max_per_day:
                raise TooManyToday(
                    f"this API key has made {made} score requests today (Paris time), the most"
                    " it may: retry tomorrow",
                    retry_after=max(1, math.ceil((end - now).total_seconds())),
                )
        row = {
            "id": uuid.uuid4(),
            "siren": siren,
            "status": PENDING,
            "key_id": key_id,
            "idempotency_key": idempotency_key,
            "created_at": now,
            "updated_at": now,
            "result": None,
            "failure_reason": None,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(score_requests.insert().values(row))
        except sa.exc.IntegrityError:
            # Another request with the same idempotency key won the race: answer with its row.
            existing = self._by_idempotency_key(key_id, idempotency_key, siren)
            if existing is None:
                raise
            return existing, False
        return ScoreRequest(**row), True

    def requests_since(self, key_id: str, start: datetime) -> int:
        """How many score requests the key has made since ``start``."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).where(
                    score_requests.c.key_id == key_id, score_requests.c.created_at >= start
                )
            ).scalar_one()

    def _pending(self, key_id: str) -> list[ScoreRequest]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                score_requests.select().where(
                    score_requests.c.key_id == key_id, score_requests.c.status == PENDING
                )
            ).mappings()
            return [ScoreRequest(**row) for row in rows]

    def _by_idempotency_key(
        self, key_id: str, idempotency_key: str | None, siren: str
    ) -> ScoreRequest | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    score_requests.select().where(
                        score_requests.c.key_id == key_id,
                        score_requests.c.idempotency_key == idempotency_key,
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        if row["siren"] != siren:
            raise IdempotencyConflict(
                f"Idempotency-Key {idempotency_key!r} was used for siren {row['siren']!r},"
                f" not {siren!r}: use a new key for a new request"
            )
        return ScoreRequest(**row)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(row["scopes"]),
        rate_per_second=row["rate_per_second"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        secret_sha256=row["secret_sha256"],
    )
