"""DuckDB warehouse: one file, one writing process at a time.

Not built on dagster-duckdb(-polars): its IO manager deletes and inserts in separate autocommit
statements (a reader can see a partition missing) and inserts with ``SELECT *``, matching columns by
position, so a reordered frame silently lands in the wrong columns; its ``DuckDBResource`` does not
close the connection when the body raises, which keeps the file locked after a failed write.
"""

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ma_pipeline.contracts.tables import PARTITION_COLUMN
from ma_pipeline.warehouse.base import TableRef, Warehouse, WriteReport
from ma_pipeline.warehouse.errors import SchemaMismatchError, WarehouseError
from ma_pipeline.warehouse.local import LocalRows

# What a write transaction may hold in memory before DuckDB spills to disk.
LOAD_MEMORY_LIMIT = "2GB"


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path})"

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """Attach the file as catalog ``warehouse``, waiting while another process holds its lock,
        and always close it.

        Attaching under a fixed name, rather than opening the file directly (which names the
        catalog after the file), keeps a file called ``ml.duckdb`` from clashing with schema ``ml``.
        """
        conn = duckdb.connect(":memory:")
        try:
            conn.execute("SET TimeZone = 'UTC'")
            if self.path.exists() or not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._attach_with_retry(conn, read_only)
            # else: nothing to read yet; the empty in-memory catalog answers "no such table".
            yield conn
        finally:
            conn.close()

    def _attach_with_retry(self, conn: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        mode = " (READ_ONLY)" if read_only else ""
        path = str(self.path).replace("'", "''")
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn.execute(f"ATTACH '{path}' AS warehouse{mode}")
                conn.execute("USE warehouse")
                return
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(
                        f"cannot open the DuckDB warehouse {self.path}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction. Its memory is bounded (``LOAD_MEMORY_LIMIT``): DuckDB otherwise
        holds every row a transaction inserts until the commit, so loading a partition of a
        national universe would need memory in proportion."""
        with self._connect(read_only=False) as conn:
            conn.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect(read_only=True) as conn:
            yield conn

    def _load_local(
        self, table: TableRef, rows: LocalRows, partitions: Sequence[date]
    ) -> WriteReport:
        """Inside the engine: the staged files read by the transaction that deletes the
        partitions, without passing through Python. Insertion order is not kept (a table has
        none), which halves the load."""
        schema = rows.schema()
        self._check_partition_column(table, schema, partitions)
        days = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(partitions)))
        columns = ", ".join(f'"{c}"' for c in schema.columns)
        with self.transaction() as conn:
            conn.execute("SET preserve_insertion_order = false")
            outside = conn.execute(
                f'SELECT DISTINCT "{PARTITION_COLUMN}" FROM ({rows.select}) AS r'
                f' WHERE "{PARTITION_COLUMN}" NOT IN ({days})'
            ).fetchall()
            if outside:
                raise SchemaMismatchError(
                    f"{table}: rows carry {PARTITION_COLUMN} {outside[0][0]}, outside the"
                    " partitions written"
                )
            report = self._prepare_table(conn, table, schema, partitioned=True)
            self._delete_partitions(conn, table, partitions)
            inserted = conn.execute(
                f"INSERT INTO {table.sql} ({columns}) SELECT {columns} FROM ({rows.select}) AS r"
            ).fetchone()
        report.rows = int(inserted[0]) if inserted else 0
        report.partitions = sorted(set(partitions))
        return report

    def to_parquet(
        self, table: TableRef, path: Path, order_by: Sequence[str], exclude: Sequence[str] = ()
    ) -> None:
        """``table`` (but its ``exclude`` columns) written to the Parquet file ``path`` by the
        engine, in bounded memory."""
        order = ", ".join(f'"{c}"' for c in order_by)
        excluded = ", ".join(f'"{c}"' for c in exclude)
        select = f"* EXCLUDE ({excluded})" if exclude else "*"
        with self.reader() as conn:
            conn.execute(
                f"COPY (SELECT {select} FROM {table.sql} ORDER BY {order}) TO '{path}'"
                " (FORMAT parquet)"
            )

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> None:
        conn.execute(sql, list(params))

    def _fetch(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        return conn.execute(sql, list(params)).pl()

    def _bulk_insert(self, conn: Any, table: TableRef, frame: pl.DataFrame) -> None:
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        conn.register("__incoming", frame.to_arrow())
        try:
            conn.execute(f"INSERT INTO {table.sql} ({columns}) SELECT {columns} FROM __incoming")
        finally:
            conn.unregister("__incoming")

    def _stage(self, conn: Any, name: str, frame: pl.DataFrame) -> None:
        conn.register(name, frame.to_arrow())

    def _row_hash(self, columns: Sequence[str]) -> str:
        listed = ", ".join(f'"{c}"' for c in columns)
        return f"CAST(hash({listed}) >> 1 AS BIGINT)"  # UBIGINT, halved into BIGINT's range

    def _lock_ddl(self, conn: Any) -> None:
        """Nothing to do: the file lock already makes this process the only writer."""

    def _ensure_indexes(self, conn: Any, table: TableRef, partitioned: bool) -> None:
        """Nothing to do: DuckDB's zone maps prune partitions without an index, and the API
        reads the snapshot's files (sorted by SIREN), not these tables."""

    def _columns(self, conn: Any, table: TableRef) -> dict[str, str]:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            [table.schema, table.name],
        ).fetchall()
        return dict(rows)
