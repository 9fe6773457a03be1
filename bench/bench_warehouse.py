"""Write a 1M-row partition on DuckDB and PostgreSQL; compare with pandas.DataFrame.to_sql.

    python bench/bench_warehouse.py [--rows 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

For each backend it times, in this process: the first write of the partition (table creation +
bulk insert), a rewrite of the same partition (delete 1M rows + insert 1M rows, one transaction),
a read of the partition back into polars, and pandas' ``to_sql`` of the same rows through
SQLAlchemy (the floor a hand-rolled loader would start from). PostgreSQL runs in a scratch
database that is dropped afterwards.
"""

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import psycopg
import sqlalchemy as sa

from ma_pipeline.warehouse import TableRef, Warehouse, connect_warehouse

DAY = date(2026, 11, 20)
TABLE = TableRef("bench", "companies")


def partition(rows: int) -> pl.DataFrame:
    """Rows shaped like the pipeline's tables: ids, text, numbers, flags and dates."""
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "partition_date": pl.Series([DAY] * rows),
            "siren": pl.Series(np.arange(rows)).cast(pl.String).str.zfill(9),
            "nom_entreprise": pl.Series(rng.integers(0, 50_000, rows)).cast(pl.String),
            "activite_principale": pl.Series(rng.choice(["62.01Z", "47.11F", "41.20A"], rows)),
            "chiffre_affaires": rng.integers(0, 50_000_000, rows),
            "marge_nette": rng.normal(0.05, 0.1, rows),
            "employeur": rng.random(rows) < 0.6,
            "date_creation": pl.Series(rng.integers(-10_000, 20_000, rows)).cast(pl.Date),
        }
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(label: str, warehouse: Warehouse, sqlalchemy_url: str, frame: pl.DataFrame) -> dict:
    first = timed(lambda: warehouse.replace_partitions(TABLE, frame, [DAY]))
    rewrite = timed(lambda: warehouse.replace_partitions(TABLE, frame, [DAY]))
    read = timed(lambda: warehouse.read(TABLE, start=DAY, end=DAY))
    assert warehouse.read(TABLE, start=DAY, end=DAY, columns=["siren"]).height == frame.height
    pandas_frame = frame.to_pandas()
    engine = sa.create_engine(sqlalchemy_url)
    to_sql = timed(
        lambda: pandas_frame.to_sql("companies_to_sql", engine, index=False, chunksize=10_000)
    )
    engine.dispose()
    return {"backend": label, "first": first, "rewrite": rewrite, "read": read, "to_sql": to_sql}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    frame = partition(args.rows)
    results = []

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        results.append(
            run(
                "DuckDB", connect_warehouse(f"duckdb:///{path}", folder), f"duckdb:///{path}", frame
            )
        )

    scratch = f"ma_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        url = f"{args.pg.rpartition('/')[0]}/{scratch}"
        results.append(
            run(
                "PostgreSQL",
                connect_warehouse(url, "."),
                url.replace("postgresql://", "postgresql+psycopg://"),
                frame,
            )
        )
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')

    print(f"{args.rows:,} rows, {frame.width} columns, one partition")
    header = ("backend", "write", "rewrite", "read", "to_sql", "to_sql/write")
    print("{:<11} {:>8} {:>8} {:>7} {:>8} {:>13}".format(*header))
    for r in results:
        print(
            f"{r['backend']:<11} {r['first']:>7.2f}s {r['rewrite']:>7.2f}s {r['read']:>6.2f}s"
            f" {r['to_sql']:>7.2f}s {r['to_sql'] / r['first']:>12.1f}x"
        )


if __name__ == "__main__":
    main()
