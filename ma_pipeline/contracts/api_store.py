"""The API's request store: the tables of API keys and score requests, and what the pipeline
does with a request (read the pending ones, complete or fail each).

The API records requests (``serving.store``) and the pipeline answers them
(``scoring.on_demand``): both go through this module, never through each other. The database is
the API's own, never the DuckDB warehouse, which the API must not write while the pipeline holds
its lock: SQLite under ``$MA_DATA_DIR`` in DuckDB mode, schema ``serving`` of the warehouse's
PostgreSQL otherwise; ``MA_API_DB_URL`` overrides both (``api_database``).

Tables are created with ``metadata.create_all``: two tables with no migration yet do not need
Alembic; add it with the first change to a column.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
_DDL_LOCK_ID = 7_302_216  # serialises create_all between API processes starting together


def sqlalchemy_url(url: str) -> str:
    """Name the psycopg 3 driver in ``postgresql://`` URLs (SQLAlchemy defaults to psycopg2)."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def on_postgres(warehouse_url: str) -> bool:
    """Whether the warehouse is PostgreSQL (else DuckDB, which the API reads as a snapshot)."""
    return urlsplit(warehouse_url).scheme.split("+", 1)[0] in ("postgresql", "postgres")


def api_database(data_dir: str | Path, warehouse_url: str = "", api_db_url: str = "") -> str:
    """Where API keys and score requests live, as an SQLAlchemy URL."""
    if api_db_url:
        return sqlalchemy_url(api_db_url)
    if on_postgres(warehouse_url):
        return sqlalchemy_url(warehouse_url)
    return f"sqlite:///{Path(data_dir).resolve() / 'api.sqlite'}"


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


class RequestStore:
    """The request store's database: its tables, and the life of a score request."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            if self.engine.url.database:
                Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
            # SQLite has no schemas: the tables go in the main database.
            self.engine = self.engine.execution_options(schema_translate_map={"serving": None})
            sa.event.listen(self.engine.engine, "connect", _sqlite_pragmas)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL, so the API reads while the sensor writes; foreign keys, which SQLite leaves off."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
