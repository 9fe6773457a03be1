"""The warehouse contract, written once for both backends.

Every write happens in one transaction: the partitions being written are deleted and the new rows
bulk-inserted (Arrow into DuckDB, binary COPY into PostgreSQL), so a re-run is idempotent and a
reader never sees half a partition. A backend only supplies connections, statements and the bulk
path; the rules (what may change in a table's schema, which rows a write may touch) live here.
"""

import abc
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar

import polars as pl

from ma_pipeline.contracts.tables import PARTITION_COLUMN, TableRef, declared
from ma_pipeline.warehouse import changes
from ma_pipeline.warehouse.errors import MissingTableError, SchemaMismatchError
from ma_pipeline.warehouse.local import LocalRows
from ma_pipeline.warehouse.types import (
    compatible,
    dtype_family,
    polars_dtype,
    sql_family,
    sql_type,
    untyped,
)


@dataclass
class WriteReport:
    """What a write did, for the materialization's metadata."""

    table: TableRef
    rows: int
    partitions: list[date] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    created: bool = False
    # A table stored by change: per day written, its rows, the keys that changed, the rows stored.
    changes: dict[date, dict[str, int]] = field(default_factory=dict)


# The rows of a write stored by change, staged inside its transaction.
_STAGED = "__by_change_rows"


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Contiguous [first, last] runs of ``days``, so a 30-day backfill deletes with one range."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


class Warehouse(abc.ABC):
    """A SQL warehouse that stores polars frames with the partition contract above."""

    dialect: ClassVar[str]

    # ----------------------------------------------------------------------------- backend API
    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A connection inside a transaction: committed on exit, rolled back on error."""

    @abc.abstractmethod
    def reader(self) -> AbstractContextManager[Any]:
        """A connection for reads only."""

    @abc.abstractmethod
    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abc.abstractmethod
    def _fetch(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame: ...

    @abc.abstractmethod
    def _bulk_insert(self, conn: Any, table: TableRef, frame: pl.DataFrame) -> None:
        """Append ``frame`` to ``table``, matching columns by name, on the backend's bulk path."""

    @abc.abstractmethod
    def _stage(self, conn: Any, name: str, frame: pl.DataFrame) -> None:
        """Make ``frame`` queryable as ``name`` for the rest of this connection's work."""

    @abc.abstractmethod
    def _columns(self, conn: Any, table: TableRef) -> dict[str, str]:
        """Column name -> SQL type of ``table``, in table order; empty when it does not exist."""

    @abc.abstractmethod
    def _row_hash(self, columns: Sequence[str]) -> str:
        """An SQL expression: a BIGINT hash of ``columns``' values, the same for equal values."""

    @abc.abstractmethod
    def _lock_ddl(self, conn: Any) -> None:
        """Serialise schema changes between concurrent writers."""

    @abc.abstractmethod
    def _ensure_indexes(self, conn: Any, table: TableRef, partitioned: bool) -> None:
        """Create the backend's indexes of the table that are missing (on the partition column,
        on ``table.lookup``); on every write, so a table created before an index was declared
        gets it too."""

    # ------------------------------------------------------------------------------- contract
    def replace_partitions(
        self,
        table: TableRef,
        frame: pl.DataFrame | Iterable[pl.DataFrame] | LocalRows,
        partitions: Sequence[date],
    ) -> WriteReport:
        """Replace exactly ``partitions`` of ``table`` with the rows of ``frame``, atomically.

        Rows of other partitions are untouched; a partition in ``partitions`` without rows in
        ``frame`` ends up empty. Raises before changing anything if a row falls outside
        ``partitions`` or the frame does not fit the table. ``frame`` may be an iterable of
        batches too large to hold together (``_load_batches``), or rows staged in a local
        DuckDB file (``_load_local``).
        """
        if not partitions:
            raise ValueError(f"{table}: no partitions given to replace")
        table = declared(table)
        if table.by_change is not None:
            return self._replace_by_change(table, frame, partitions)
        if isinstance(frame, LocalRows):
            return self._load_local(table, frame, partitions)
        if not isinstance(frame, pl.DataFrame):
            return self._load_batches(table, iter(frame), partitions)
        self._check_partition_column(table, frame, partitions)
        with self.transaction() as conn:
            report = self._prepare_table(conn, table, frame, partitioned=True)
            self._delete_partitions(conn, table, partitions)
            self._insert(conn, table, frame)
        report.partitions = sorted(set(partitions))
        return report

    def _delete_partitions(self, conn: Any, table: TableRef, partitions: Sequence[date]) -> None:
        for first, last in _runs(partitions):
            self._execute(
                conn,
                f'DELETE FROM {table.sql} WHERE "{PARTITION_COLUMN}" BETWEEN $1 AND $2',
                (first, last),
            )

    @contextmanager
    def _loading(
        self, table: TableRef, batches: Iterator[pl.DataFrame], partitions: Sequence[date]
    ) -> Iterator[tuple[TableRef, pl.DataFrame, int]]:
        """Each batch committed to a loading table of its own (dropped on exit): the loading
        table, the first batch (the schema), and the rows loaded. Readers never see half a load,
        and the process holds one batch at a time (a single transaction of client-side inserts
        holds them all until it commits)."""
        first = next(batches)
        self._check_partition_column(table, first, partitions)
        loading = TableRef(table.schema, f"_loading_{table.name}_{uuid.uuid4().hex[:8]}")
        try:
            with self.transaction() as conn:
                self._execute(conn, f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
                self._create(conn, loading, first, partitioned=False)
                self._insert(conn, loading, first)
            rows = first.height
            for batch in batches:
                self._check_partition_column(table, batch, partitions)
                with self.transaction() as conn:
                    self._insert(conn, loading, batch)
                rows += batch.height
            yield loading, first, rows
        finally:
            with self.transaction() as conn:
                self._execute(conn, f"DROP TABLE IF EXISTS {loading.sql}")

    def _load_batches(
        self, table: TableRef, batches: Iterator[pl.DataFrame], partitions: Sequence[date]
    ) -> WriteReport:
        """Batches loaded (``_loading``), then, in one transaction, the partitions replaced
        from them inside the database."""
        with self._loading(table, batches, partitions) as (loading, first, rows):
            columns = ", ".join(f'"{c}"' for c in first.columns)
            with self.transaction() as conn:
                report = self._prepare_table(conn, table, first, partitioned=True)
                self._delete_partitions(conn, table, partitions)
                self._execute(
                    conn, f"INSERT INTO {table.sql} ({columns}) SELECT {columns} FROM {loading.sql}"
                )
        report.rows = rows
        report.partitions = sorted(set(partitions))
        return report

    def _replace_by_change(
        self,
        table: TableRef,
        frame: pl.DataFrame | Iterable[pl.DataFrame] | LocalRows,
        partitions: Sequence[date],
    ) -> WriteReport:
        """In one transaction, each day applied to the versions in date order
        (``changes.apply_day``), the view made to show every column. A frame is staged inside
        the transaction; batches too large to hold together are loaded first (``_loading``)."""
        if isinstance(frame, pl.DataFrame):
            self._check_partition_column(table, frame, partitions)
            with self.transaction() as conn:
                report = self._prepare_by_change(conn, table, frame)
                types = self._columns(conn, table.versions)
                stored = changes.stored_columns(table, frame.columns)
                staged = frame.select(
                    PARTITION_COLUMN, *(pl.col(c).cast(polars_dtype(types[c])) for c in stored)
                )
                self._stage(conn, _STAGED, staged)
                report.changes = self._apply_days(conn, table, _STAGED, partitions)
            report.rows = frame.height
        else:
            with (
                self._loading(table, _batches(frame), partitions) as (loading, first, rows),
                self.transaction() as conn,
            ):
                report = self._prepare_by_change(conn, table, first)
                report.changes = self._apply_days(conn, table, loading.sql, partitions)
            report.rows = rows
        report.table, report.partitions = table, sorted(set(partitions))
        return report

    def _prepare_by_change(self, conn: Any, table: TableRef, frame: pl.DataFrame) -> WriteReport:
        """The versions and days tables created or extended for ``frame``'s columns, and the
        view replaced when it lacks one of them."""
        report = self._prepare_table(
            conn, table.versions, changes.versions_frame(table, frame), partitioned=False
        )
        days = pl.DataFrame(schema=changes.DAYS_SCHEMA)
        self._prepare_table(conn, table.days, days, partitioned=True)
        shown = list(self._columns(conn, table)) if self._kind(conn, table) == "VIEW" else []
        wanted = [*shown, *(c for c in frame.columns if c not in shown)]
        if wanted != shown:
            self._replace_view(conn, table, changes.view_select(table, wanted))
        return report

    def _apply_days(
        self,
        conn: Any,
        table: TableRef,
        source: str,
        partitions: Sequence[date],
    ) -> dict[date, dict[str, int]]:
        return {
            day: changes.apply_day(self, conn, table, source, day)
            for day in sorted(set(partitions))
        }

    def _load_local(
        self, table: TableRef, rows: LocalRows, partitions: Sequence[date]
    ) -> WriteReport:
        """Rows staged in a local DuckDB file, loaded batch by batch (a backend that can read
        the file itself inserts from it directly)."""
        return self._load_batches(table, rows.batches(), partitions)

    def replace_table(self, table: TableRef, frame: pl.DataFrame) -> WriteReport:
        """Replace the whole content of an unpartitioned table, atomically.

        The table is recreated when its columns change; otherwise it is emptied and refilled so
        that views built on it (dbt staging models) survive.
        """
        with self.transaction() as conn:
            existing = self._columns(conn, table)
            wanted = {
                c: sql_family(sql_type(c, frame[c].dtype, self.dialect)) for c in frame.columns
            }
            same = list(existing) == list(wanted) and all(
                sql_family(t) == wanted[c] for c, t in existing.items()
            )
            if same:
                self._execute(conn, f"DELETE FROM {table.sql}")
                self._ensure_indexes(conn, table, partitioned=False)
                report = WriteReport(table, frame.height)
            else:
                self._lock_ddl(conn)
                self._execute(conn, f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
                self._execute(conn, f"DROP TABLE IF EXISTS {table.sql}")
                self._create(conn, table, frame, partitioned=False)
                report = WriteReport(table, frame.height, created=True)
            self._insert(conn, table, frame)
        return report

    def replace_view(self, view: TableRef, select: str) -> None:
        """Create or replace ``view`` as ``select``. A table of that name, written before the
        view replaced it, is renamed ``<name>_before_view`` first: nothing stored is lost."""
        with self.transaction() as conn:
            self._replace_view(conn, view, select)

    def _kind(self, conn: Any, table: TableRef) -> str | None:
        """``BASE TABLE``, ``VIEW``, or None when nothing has that name."""
        kind = self._fetch(
            conn,
            "SELECT table_type FROM information_schema.tables"
            " WHERE table_schema = $1 AND table_name = $2",
            (table.schema, table.name),
        )
        return kind.item() if kind.height else None

    def _replace_view(self, conn: Any, view: TableRef, select: str) -> None:
        self._lock_ddl(conn)
        if self._kind(conn, view) == "BASE TABLE":
            self._execute(conn, f'ALTER TABLE {view.sql} RENAME TO "{view.name}_before_view"')
        self._execute(conn, f'CREATE SCHEMA IF NOT EXISTS "{view.schema}"')
        self._execute(conn, f"CREATE OR REPLACE VIEW {view.sql} AS {select}")

    def upsert(self, table: TableRef, frame: pl.DataFrame, keys: Sequence[str]) -> WriteReport:
        """Insert ``frame``, replacing the rows of ``table`` that share its ``keys``, atomically."""
        with self.transaction() as conn:
            report = self._prepare_table(conn, table, frame, partitioned=False)
            if not report.created and not frame.is_empty():
                self._stage(conn, "__upsert_keys", frame.select(keys).unique())
                match = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
                self._execute(
                    conn,
                    f"DELETE FROM {table.sql} AS t WHERE EXISTS"
                    f" (SELECT 1 FROM __upsert_keys AS s WHERE {match})",
                )
            self._insert(conn, table, frame)
        return report

    def lookup(
        self, table: TableRef, keys: pl.DataFrame, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Rows of ``table`` whose key columns (the columns of ``keys``) match a row of ``keys``;
        only ``columns`` of them when given (those the table has)."""
        with self.reader() as conn:
            existing = self._columns(conn, table)
            if not existing:
                return pl.DataFrame(schema=keys.schema)
            if columns is not None:
                existing = {c: t for c, t in existing.items() if c in columns}
            self._stage(conn, "__lookup_keys", keys.unique())
            select = ", ".join(f't."{c}"' for c in existing)
            match = " AND ".join(f't."{k}" = s."{k}"' for k in keys.columns)
            frame = self._fetch(
                conn,
                f"SELECT {select} FROM {table.sql} AS t JOIN __lookup_keys AS s ON {match}",
            )
        return _normalise(frame, existing)

    def read(
        self,
        table: TableRef,
        *,
        start: date | None = None,
        end: date | None = None,
        columns: Sequence[str] | None = None,
        sirens: tuple[str, str] | None = None,
    ) -> pl.DataFrame:
        """Rows of ``table``; with ``start``/``end``, only partitions in [start, end]; with
        ``sirens``, only SIRENs in [first, last] (a block of a universe too large to read at
        once)."""
        table = declared(table)
        with self.reader() as conn:
            existing = self._columns(conn, table)
            if not existing:
                raise MissingTableError(
                    f"table {table} does not exist yet: materialize the asset that writes it first"
                )
            if columns is not None:
                unknown = [c for c in columns if c not in existing]
                if unknown:
                    raise SchemaMismatchError(f"{table} has no column(s) {', '.join(unknown)}")
            select = ", ".join(f'"{c}"' for c in (columns or existing))
            conditions: list[str] = []
            params: list[Any] = []
            if start is not None or end is not None:
                if PARTITION_COLUMN not in existing:
                    raise SchemaMismatchError(
                        f"{table} is not partitioned: it cannot be read by date"
                    )
                conditions.append(f'"{PARTITION_COLUMN}" BETWEEN $1 AND $2')
                params += [start or date.min, end or date.max]
            if sirens is not None:
                if "siren" not in existing:
                    raise SchemaMismatchError(f"{table} has no siren: it cannot be read by SIREN")
                n = len(params)
                conditions.append(f'"siren" BETWEEN ${n + 1} AND ${n + 2}')
                params += list(sirens)
            source = table.sql
            if table.by_change is not None and start is not None and start == end:
                # One day of a table stored by change: its versions filtered on their days,
                # without the view's join (which would carry every version's columns through).
                source = f"({changes.day_select(table, list(existing), start)}) AS one_day"
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            frame = self._fetch(conn, f"SELECT {select} FROM {source}{where}", params)
        return _normalise(frame, {c: existing[c] for c in frame.columns})

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a read-only query (``$1``-style parameters) and return its rows."""
        with self.reader() as conn:
            return self._fetch(conn, sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement in its own transaction."""
        with self.transaction() as conn:
            self._execute(conn, sql, params)

    def columns(self, table: TableRef) -> dict[str, str]:
        """Column name -> SQL type of ``table``; empty when it does not exist."""
        with self.reader() as conn:
            return self._columns(conn, table)

    def partitions(self, table: TableRef) -> list[date]:
        """The partition dates present in ``table``, oldest first (empty if no table)."""
        if PARTITION_COLUMN not in self.columns(table):
            return []
        # A table stored by change lists its days; its view would expand every version.
        table = declared(table)
        listed = table.days if table.by_change is not None else table
        rows = self.query(f'SELECT DISTINCT "{PARTITION_COLUMN}" AS d FROM {listed.sql} ORDER BY 1')
        return rows["d"].to_list()

    # ------------------------------------------------------------------------------ internals
    @staticmethod
    def _check_partition_column(
        table: TableRef, frame: pl.DataFrame, partitions: Sequence[date]
    ) -> None:
        if PARTITION_COLUMN not in frame.columns:
            raise SchemaMismatchError(
                f"{table}: a partitioned frame needs a '{PARTITION_COLUMN}' column of type Date"
            )
        dtype = frame.schema[PARTITION_COLUMN]
        if dtype != pl.Date:
            raise SchemaMismatchError(
                f"{table}: column '{PARTITION_COLUMN}' must be of type Date, not {dtype}"
            )
        outside = (
            frame.lazy()
            .select(pl.col(PARTITION_COLUMN).unique())
            .filter(~pl.col(PARTITION_COLUMN).is_in(list(set(partitions))))
            .collect()[PARTITION_COLUMN]
            .sort()
            .to_list()
        )
        if outside:
            shown = ", ".join(str(d) for d in outside[:5])
            raise SchemaMismatchError(
                f"{table}: rows carry {PARTITION_COLUMN} {shown}, outside the partitions written"
                f" ({min(partitions)}..{max(partitions)})"
            )

    def _prepare_table(
        self, conn: Any, table: TableRef, frame: pl.DataFrame, *, partitioned: bool
    ) -> WriteReport:
        """Create the table, or check the frame against it and add the frame's new columns."""
        existing = self._columns(conn, table)
        if not existing:
            self._lock_ddl(conn)
            existing = self._columns(conn, table)  # another writer may have just created it
        if not existing:
            self._execute(conn, f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
            self._create(conn, table, frame, partitioned=partitioned)
            return WriteReport(table, frame.height, created=True)

        missing = [c for c in existing if c not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"{table}: the frame lacks column(s) {', '.join(repr(c) for c in missing)} that the"
                " table has; produce them (null if unknown) or migrate the table"
            )
        mismatched = [
            f"'{c}' is {dtype_family(frame.schema[c])} in the frame but {sql_family(existing[c])}"
            " in the table"
            for c in frame.columns
            if c in existing
            and not untyped(frame.schema[c])
            and not compatible(dtype_family(frame.schema[c]), sql_family(existing[c]))
        ]
        if mismatched:
            raise SchemaMismatchError(f"{table}: {'; '.join(mismatched)}")
        added = [c for c in frame.columns if c not in existing]
        if added:
            self._lock_ddl(conn)
            for column in added:
                column_type = sql_type(column, frame.schema[column], self.dialect)
                self._execute(conn, f'ALTER TABLE {table.sql} ADD COLUMN "{column}" {column_type}')
        self._ensure_indexes(conn, table, partitioned)
        return WriteReport(table, frame.height, columns_added=added)

    def _create(
        self, conn: Any, table: TableRef, frame: pl.DataFrame, *, partitioned: bool
    ) -> None:
        columns = ", ".join(
            f'"{c}" {sql_type(c, frame.schema[c], self.dialect)}' for c in frame.columns
        )
        self._execute(conn, f"CREATE TABLE {table.sql} ({columns})")
        self._ensure_indexes(conn, table, partitioned)

    def _insert(self, conn: Any, table: TableRef, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        # Cast to the table's exact types: binary COPY refuses an int4 value for an int8 column.
        target = self._columns(conn, table)
        self._bulk_insert(
            conn,
            table,
            frame.select(pl.col(c).cast(polars_dtype(target[c])) for c in frame.columns),
        )


def _batches(frame: pl.DataFrame | Iterable[pl.DataFrame] | LocalRows) -> Iterator[pl.DataFrame]:
    if isinstance(frame, pl.DataFrame):
        return iter([frame])
    if isinstance(frame, LocalRows):
        return frame.batches()
    return iter(frame)


def _normalise(frame: pl.DataFrame, types: dict[str, str]) -> pl.DataFrame:
    """Give a read frame the same dtypes whichever backend it came from (UTC, Int64...)."""
    return frame.with_columns(
        pl.col(c).cast(polars_dtype(t))
        for c, t in types.items()
        if frame.schema[c] != polars_dtype(t)
    )
