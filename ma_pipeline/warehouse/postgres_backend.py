"""PostgreSQL warehouse over ADBC.

There is no official polars IO manager for PostgreSQL. ADBC moves Arrow both ways: its bulk
ingest is ``COPY ... FROM STDIN WITH (FORMAT binary)`` (checked in the server log), inside the same
transaction as the delete, and reads come back as typed Arrow (dates, lists, UTC timestamps).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc
import polars as pl

from ma_pipeline.warehouse.base import PARTITION_COLUMN, TableRef, Warehouse

# Any constant works: it names the lock that serialises DDL between concurrent writers.
_DDL_LOCK_ID = 7_302_215


def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg://`` URLs as well as libpq ones."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, *parts[1:]))


def redact(url: str) -> str:
    """The URL without its password, for logs and metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, *parts[2:]))


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)

    def __repr__(self) -> str:
        return f"PostgresWarehouse({redact(self.url)})"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        conn = adbc.connect(self.url)
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    @contextmanager
    def reader(self) -> Iterator[Any]:
        with self.transaction() as conn:
            yield conn

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> None:
        with conn.cursor() as cur:
            cur.execute(sql, parameters=tuple(params) or None)

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        with conn.cursor() as cur:
            cur.execute(sql, parameters=tuple(params) or None)
            return pl.from_arrow(cur.fetch_arrow_table())  # type: ignore[return-value]

    def _bulk_insert(self, conn: Any, table: TableRef, frame: pl.DataFrame) -> None:
        with conn.cursor() as cur:
            cur.adbc_ingest(
                table.name, frame.to_arrow(), mode="append", db_schema_name=table.schema
            )

    def _stage(self, conn: Any, name: str, frame: pl.DataFrame) -> None:
        with conn.cursor() as cur:
            cur.adbc_ingest(name, frame.to_arrow(), mode="create", temporary=True)

    def _columns(self, conn: Any, table: TableRef) -> dict[str, str]:
        rows = self._fetch(
            conn,
            "SELECT column_name, data_type, udt_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            (table.schema, table.name),
        )
        return {
            name: f"ARRAY:{udt}" if data_type == "ARRAY" else data_type
            for name, data_type, udt in rows.iter_rows()
        }

    def _row_hash(self, columns: Sequence[str]) -> str:
        listed = ", ".join(f'"{c}"' for c in columns)
        return f"hashtextextended(ROW({listed})::text, 0)"

    def _lock_ddl(self, conn: Any) -> None:
        self._execute(conn, f"SELECT pg_advisory_xact_lock({_DDL_LOCK_ID})")

    def _ensure_indexes(self, conn: Any, table: TableRef, partitioned: bool) -> None:
        partition = (PARTITION_COLUMN,) if partitioned else ()
        wanted: dict[str, tuple[str, ...]] = {}
        if partitioned:
            wanted[f"{table.name}_{PARTITION_COLUMN}_idx"] = partition
        if table.lookup:
            wanted[f"{table.name}_lookup_idx"] = (*table.lookup, *partition)
        existing = self._fetch(
            conn,
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            (table.schema, table.name),
        )["indexname"].to_list()
        missing = {name: cols for name, cols in wanted.items() if name not in existing}
        if missing:
            self._lock_ddl(conn)
        for name, columns in missing.items():
            listed = ", ".join(f'"{c}"' for c in columns)
            self._execute(conn, f'CREATE INDEX IF NOT EXISTS "{name}" ON {table.sql} ({listed})')
