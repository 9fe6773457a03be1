"""Rows staged in local files, too many to hold in memory: a writer stages them (Parquet), and the
warehouse reads them back in batches or, on DuckDB, inserts them inside the engine."""

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date

import duckdb
import polars as pl

BATCH_ROWS = 250_000
# What DuckDB may hold in memory while it reads or ranks staged rows, before it spills to disk.
MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class LocalRows:
    """The rows of ``select``, a DuckDB query over local files (``read_parquet(...)``) that any
    DuckDB connection can run."""

    select: str

    def stamped(self, column: str, value: date) -> "LocalRows":
        """The same rows with ``column`` set to ``value`` first (a partition date)."""
        constant = f"DATE '{value.isoformat()}' AS \"{column}\""
        return replace(self, select=f"SELECT {constant}, * FROM ({self.select}) AS unstamped")

    def schema(self) -> pl.DataFrame:
        """An empty frame with the rows' columns and types."""
        with local_duckdb() as db:
            return db.execute(f"SELECT * FROM ({self.select}) AS r LIMIT 0").pl()

    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
        """The rows in batches (at least one, empty when there are none)."""
        with local_duckdb() as db:
            empty = True
            for batch in db.execute(self.select).to_arrow_reader(batch_rows):
                empty = False
                yield pl.DataFrame(pl.from_arrow(batch))
        if empty:
            yield self.schema()


def local_duckdb(spill: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with bounded memory, spilling to ``spill`` when given."""
    db = duckdb.connect(":memory:")
    db.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    if spill is not None:
        db.execute(f"SET temp_directory = {sql_text(spill)}")
    return db


def sql_text(value: str) -> str:
    """``value`` as a SQL string literal (a file path)."""
    return "'{}'".format(value.replace("'", "''"))


def parquet_files(pattern: str) -> str:
    """``read_parquet`` of the files matching ``pattern``, for a ``LocalRows`` query."""
    return f"read_parquet({sql_text(pattern)})"
