"""Partitioned tables stored by change: one row per key and day to read, one per version stored.

A table declared with ``by_change`` (``contracts.tables.ByChange``) is a view over two tables:
``<name>__versions`` holds each version of a key's rows with the days it is valid,
[``valid_from``, ``valid_to``) (an open end: still valid), and ``<name>__days`` lists the
partitions written, with their counts. The view joins them, so readers see one row per key and
day, exactly the rows written for that day, while the disk grows with what changed.

Writing a day compares its rows, key by key, with the rows valid that day (the whole set of a
key's rows: a company's fiscal years change together) and touches only the keys that differ:
their old versions end the day before, their new rows start that day. A day written behind the
newest one (a re-run, a backfill) splits the versions around it, so every other day reads as
before; written again with the same rows, it changes nothing.
"""

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from ma_pipeline.contracts.tables import (
    DAYS_PER_YEAR,
    PARTITION_COLUMN,
    VALID_FROM,
    VALID_TO,
    ByChange,
    TableRef,
)

if TYPE_CHECKING:
    from ma_pipeline.warehouse.base import Warehouse

DAYS_SCHEMA: dict[str, pl.DataType] = {
    PARTITION_COLUMN: pl.Date(),
    "rows": pl.Int64(),
    "keys_changed": pl.Int64(),
    "rows_stored": pl.Int64(),
}
_CHANGED = "__changed_keys"
# A hash of each version's stored columns (``Warehouse._row_hash``): days are compared on it.
ROW_HASH = "row_hash"
_VIEW_DAY = f'd."{PARTITION_COLUMN}"'


def spec(table: TableRef) -> ByChange:
    if table.by_change is None:
        raise ValueError(f"{table} is not stored by change")
    return table.by_change


def stored_columns(table: TableRef, columns: Sequence[str]) -> list[str]:
    """The columns of a frame that its versions keep: not the day, not what the view computes."""
    computed = {column for column, _ in spec(table).years_since}
    return [c for c in columns if c != PARTITION_COLUMN and c not in computed]


def versions_frame(table: TableRef, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s rows as versions (open from their day): what creates or extends the table."""
    anchors = {anchor for _, anchor in spec(table).years_since}
    missing = sorted(anchors - set(frame.columns))
    if missing:
        raise ValueError(f"{table}: the frame lacks the anchor column(s) {', '.join(missing)}")
    return frame.select(
        *stored_columns(table, frame.columns),
        pl.lit(None, pl.Int64).alias(ROW_HASH),
        pl.col(PARTITION_COLUMN).alias(VALID_FROM),
        pl.lit(None, pl.Date).alias(VALID_TO),
    )


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _day(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def _valid_on(day: str, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return (
        f'{prefix}"{VALID_FROM}" <= {day}'
        f' AND ({prefix}"{VALID_TO}" IS NULL OR {prefix}"{VALID_TO}" > {day})'
    )


def _shown(table: TableRef, columns: Sequence[str], day: str) -> str:
    """``columns`` as the view shows them on the day ``day`` (an SQL expression)."""
    anchors = dict(spec(table).years_since)

    def column(name: str) -> str:
        if name == PARTITION_COLUMN:
            return f'{day} AS "{PARTITION_COLUMN}"'
        if name in anchors:
            days = f'{day} - v."{anchors[name]}"'
            return (
                f"CAST({days} AS DOUBLE PRECISION)"
                f' / CAST({DAYS_PER_YEAR} AS DOUBLE PRECISION) AS "{name}"'
            )
        return f'v."{name}"'

    return ", ".join(column(c) for c in columns)


def view_select(table: TableRef, columns: Sequence[str]) -> str:
    """The view's query: ``columns`` in order, each version joined to the days it is valid."""
    return (
        f"SELECT {_shown(table, columns, _VIEW_DAY)}"
        f" FROM {table.days.sql} AS d JOIN {table.versions.sql} AS v"
        f" ON {_valid_on(_VIEW_DAY, 'v')}"
    )


def day_select(table: TableRef, columns: Sequence[str], day: date) -> str:
    """What the view gives for ``day`` alone, read from the versions valid that day."""
    literal = _day(day)
    return (
        f"SELECT {_shown(table, columns, literal)} FROM {table.versions.sql} AS v"
        f" WHERE {_valid_on(literal, 'v')} AND EXISTS (SELECT 1 FROM {table.days.sql}"
        f' WHERE "{PARTITION_COLUMN}" = {literal})'
    )


def apply_day(
    warehouse: "Warehouse", conn: Any, table: TableRef, source: str, day: date
) -> dict[str, int]:
    """Make ``day`` of ``table`` hold the rows of ``source`` (a table or staged rows with the
    partition column and the versions' columns) for that day; its counts.

    A company changed when its multiset of row hashes differs from the rows valid that day: a
    64-bit hash of the stored columns in the versions' order, so two days are compared on two
    columns rather than on every column of every row. (A collision would keep an old row; at
    2^-64 a pair, it is left to chance. Adding a column changes every hash once: that day every
    company is stored again.)"""
    key = f'"{spec(table).key}"'
    versions, days = table.versions.sql, table.days.sql
    stored = [
        c
        for c in warehouse._columns(conn, table.versions)
        if c not in (ROW_HASH, VALID_FROM, VALID_TO)
    ]
    columns, row_hash = _quoted(stored), warehouse._row_hash(stored)
    today = _day(day)
    later = warehouse._fetch(
        conn,
        f'SELECT min("{PARTITION_COLUMN}") AS d FROM {days} WHERE "{PARTITION_COLUMN}" > {today}',
    )["d"][0]
    new = f'SELECT {key}, {row_hash} AS h FROM {source} WHERE "{PARTITION_COLUMN}" = {today}'
    old = f'SELECT {key}, "{ROW_HASH}" AS h FROM {versions} WHERE {_valid_on(today)}'
    warehouse._execute(conn, f"DROP TABLE IF EXISTS {_CHANGED}")
    warehouse._execute(
        conn,
        f"CREATE TEMP TABLE {_CHANGED} AS SELECT DISTINCT {key} FROM"
        f" (({new} EXCEPT ALL {old}) UNION ALL ({old} EXCEPT ALL {new})) AS diff",
    )
    changed = f"{key} IN (SELECT {key} FROM {_CHANGED})"
    if later is not None:
        # The old rows still hold on the next day written, which this write does not touch.
        nxt = _day(later)
        warehouse._execute(
            conn,
            f'INSERT INTO {versions} ({columns}, "{ROW_HASH}", "{VALID_FROM}", "{VALID_TO}")'
            f' SELECT {columns}, "{ROW_HASH}", {nxt}, "{VALID_TO}" FROM {versions}'
            f" WHERE {changed} AND {_valid_on(today)}"
            f' AND ("{VALID_TO}" IS NULL OR "{VALID_TO}" > {nxt})',
        )
    warehouse._execute(
        conn, f'UPDATE {versions} SET "{VALID_TO}" = {today} WHERE {changed} AND {_valid_on(today)}'
    )
    warehouse._execute(
        conn,
        f'DELETE FROM {versions} WHERE {changed} AND "{VALID_TO}" = {today}'
        f' AND "{VALID_FROM}" >= {today}',
    )
    ends = "CAST(NULL AS DATE)" if later is None else _day(later)
    warehouse._execute(
        conn,
        f'INSERT INTO {versions} ({columns}, "{ROW_HASH}", "{VALID_FROM}", "{VALID_TO}")'
        f" SELECT {columns}, {row_hash}, {today}, {ends} FROM {source}"
        f' WHERE "{PARTITION_COLUMN}" = {today} AND {changed}',
    )
    counts = warehouse._fetch(
        conn,
        f'SELECT (SELECT count(*) FROM {source} WHERE "{PARTITION_COLUMN}" = {today}) AS rows,'
        f" (SELECT count(*) FROM {_CHANGED}) AS keys_changed,"
        f' (SELECT count(*) FROM {source} WHERE "{PARTITION_COLUMN}" = {today}'
        f" AND {changed}) AS rows_stored",
    ).row(0, named=True)
    warehouse._execute(conn, f"DROP TABLE {_CHANGED}")
    warehouse._execute(conn, f'DELETE FROM {days} WHERE "{PARTITION_COLUMN}" = {today}')
    record = pl.DataFrame([{PARTITION_COLUMN: day, **counts}], schema=DAYS_SCHEMA)
    warehouse._insert(conn, table.days, record)
    return {name: int(value) for name, value in counts.items()}
