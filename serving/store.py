"""The API's own state: API keys and score requests, in an SQLAlchemy database of their own.

Not in the DuckDB warehouse, which the API must never write while the pipeline holds its lock:
SQLite under ``$MA_DATA_DIR`` in DuckDB mode, schema ``serving`` of the warehouse's PostgreSQL
otherwise (``MA_API_DB_URL`` overrides both). This module imports no FastAPI, so the Dagster
sensor that scores pending requests uses it as is::

    store = ApiStore.from_env()
    for request in store.pending_requests():
        ...  # enrich and score request.siren with the champion
        store.complete_request(request.id, scores)   # or store.fail_request(request.id, reason)

Tables are created with ``metadata.create_all``: two tables with no migration yet do not need
Alembic; add it with the first change to a column.

A key is ``ma_<id>_<secret>``: the id finds the row, the secret is stored only as its SHA-256
(the secret is 256 random bits, so a fast hash is enough) and compared in constant time.
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from serving.config import ApiSettings

SCOPES = ("scores:read", "contacts:read", "requests:write")
PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
_TOKEN_PREFIX = "ma"
_DDL_LOCK_ID = 7_302_216  # serialises create_all between API processes starting together


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware, SQLite included."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


metadata = sa.MetaData(schema="serving")

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("rate_per_second", sa.Float),  # None: MA_API_RATE_PER_SECOND
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

score_requests = sa.Table(
    "score_requests",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("siren", sa.String(9), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("key_id", sa.ForeignKey(api_keys.c.id), nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("result", sa.JSON),
    sa.Column("failure_reason", sa.Text),
    sa.CheckConstraint(f"status IN ('{PENDING}', '{COMPLETED}', '{FAILED}')", name="status"),
    sa.UniqueConstraint("key_id", "idempotency_key"),
    sa.Index("score_requests_status_idx", "status", "created_at"),
)


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


@dataclass(frozen=True)
class ScoreRequest:
    id: uuid.UUID
    siren: str
    status: str
    key_id: str
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    result: dict[str, Any] | None
    failure_reason: str | None


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


class ApiStore:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            if self.engine.url.database:
                Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
            # SQLite has no schemas: the tables go in the main database.
            self.engine = self.engine.execution_options(schema_translate_map={"serving": None})
            sa.event.listen(self.engine.engine, "connect", _sqlite_pragmas)

    @classmethod
    def from_env(cls) -> "ApiStore":
        return cls(ApiSettings().api_database)

    def create_tables(self) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_ID)))
                conn.execute(sa.schema.CreateSchema("serving", if_not_exists=True))
            metadata.create_all(conn)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))

    def dispose(self) -> None:
        self.engine.dispose()

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

    # ------------------------------------------------------------------------ score requests
    def create_request(
        self, siren: str, key_id: str, idempotency_key: str | None = None
    ) -> tuple[ScoreRequest, bool]:
        """Record a pending request; with an idempotency key already used by this API key,
        return the first request instead (second value: whether a request was created)."""
        if idempotency_key is not None:
            existing = self._by_idempotency_key(key_id, idempotency_key, siren)
            if existing is not None:
                return existing, False
        now = datetime.now(UTC)
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

    def get_request(self, request_id: uuid.UUID) -> ScoreRequest | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(score_requests.select().where(score_requests.c.id == request_id))
                .mappings()
                .first()
            )
        return None if row is None else ScoreRequest(**row)

    def pending_requests(self, limit: int = 100) -> list[ScoreRequest]:
        """The oldest pending requests first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                score_requests.select()
                .where(score_requests.c.status == PENDING)
                .order_by(score_requests.c.created_at)
                .limit(limit)
            ).mappings()
            return [ScoreRequest(**row) for row in rows]

    def complete_request(self, request_id: uuid.UUID, result: dict[str, Any]) -> ScoreRequest:
        return self._finish(request_id, status=COMPLETED, result=result)

    def fail_request(self, request_id: uuid.UUID, reason: str) -> ScoreRequest:
        return self._finish(request_id, status=FAILED, failure_reason=reason)

    def _finish(self, request_id: uuid.UUID, **values: Any) -> ScoreRequest:
        """Move a pending request to its final state; a finished request is never rewritten."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    score_requests.update()
                    .where(score_requests.c.id == request_id, score_requests.c.status == PENDING)
                    .values(updated_at=datetime.now(UTC), **values)
                    .returning(*score_requests.c)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise LookupError(f"score request {request_id} does not exist or is not pending")
        return ScoreRequest(**row)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL, so the API reads while the sensor writes; foreign keys, which SQLite leaves off."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
