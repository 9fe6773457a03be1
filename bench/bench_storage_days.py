"""Disk over consecutive days: tables stored by change against a full copy per day.

    cd bench && python bench_storage_days.py [--companies 100000] [--days 30] [--change 0.02]

A synthetic universe (``bench_features.tables``: raw companies and the Pappers tables) lives
``--days`` days; each day ``--change`` of the companies get a new answer from Pappers (a new
capital, their fiscal years' figures revised, a new dirigeant) and every dirigeant ages. Each day
goes through the pipeline's code: the Pappers rows of the day, ``compute_features`` as of the
day, ``score_day`` with carry-over from the day before (models trained with ``ml.train``'s
parameters), and the publication's copy of the scores. Every day is written twice, in this
process, into two DuckDB files:

- stored by change: the pipeline's tables (``contracts.tables``), four Pappers tables,
  company_features, ml_scores and published_scores;
- the floor: the same frames into plain partitioned tables, a full copy per day, as every table
  was stored before.

Printed: each file's size after day 1 and after the last day (after a checkpoint), their ratio
to one full day (the full copy's first day), and the reads a user makes, timed in both (best of
5): the universe on a day (ml_scores and company_features of the middle day) and one company
over the whole period.
"""

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from bench_features import AS_OF, tables
from bench_scoring import train

from ma_pipeline.contracts import tables as t
from ma_pipeline.contracts.tables import PARTITION_COLUMN, TableRef
from ma_pipeline.features.compute import FeatureInputs, compute_features
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.warehouse import Warehouse, connect_warehouse

PAPPERS = {
    "pappers_companies": t.PAPPERS_COMPANIES,
    "finances": t.PAPPERS_FINANCES,
    "dirigeants": t.PAPPERS_DIRIGEANTS,
    "procedures": t.PAPPERS_PROCEDURES,
}
LAYOUTS = ("by change", "full copy")


def plain(table: TableRef) -> TableRef:
    """The floor's table: the same name in a schema of its own, so not stored by change."""
    return TableRef(f"full_{table.schema}", table.name)


def changed_answers(data: dict[str, pl.DataFrame], share: float, day: int) -> None:
    """``share`` of the companies Pappers knows get a new answer: capital, revised fiscal
    years, one more dirigeant."""
    rng = np.random.default_rng(day)
    known = data["pappers_companies"]["siren"]
    hit = pl.Series("siren", rng.choice(known.to_numpy(), int(share * known.len()), False))
    new = pl.col("siren").is_in(hit.implode())
    data["pappers_companies"] = data["pappers_companies"].with_columns(
        pl.when(new).then(pl.col("capital").fill_null(1_000) * 2).otherwise("capital")
    )
    data["finances"] = data["finances"].with_columns(
        pl.when(new).then(pl.col("chiffre_affaires") + day).otherwise("chiffre_affaires")
    )
    arrivals = data["dirigeants"].filter(new).unique("siren", keep="first")
    data["dirigeants"] = pl.concat([data["dirigeants"], arrivals])


def pappers_rows(data: dict[str, pl.DataFrame], day: Any) -> dict[TableRef, pl.DataFrame]:
    """The day's Pappers rows, dirigeants with their age that day (as ``partition_tables``)."""
    rows = {
        table: data[name].select(pl.lit(day).alias(PARTITION_COLUMN), pl.all())
        for name, table in PAPPERS.items()
    }
    later = (pl.col("mois_naissance").fill_null(7) > day.month).cast(pl.Int64)
    rows[t.PAPPERS_DIRIGEANTS] = rows[t.PAPPERS_DIRIGEANTS].with_columns(
        age=day.year - pl.col("annee_naissance") - later
    )
    return rows


def size(path: Path) -> int:
    with duckdb.connect(str(path)) as conn:
        conn.execute("CHECKPOINT")
    return path.stat().st_size


def best(read: Callable[[], pl.DataFrame], runs: int = 5) -> tuple[float, int]:
    """Best wall time of ``runs`` reads, and the rows read."""
    seconds, rows = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = read().height
        seconds = min(seconds, time.perf_counter() - started)
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--change", type=float, default=0.02, help="share of companies a day")
    args = parser.parse_args()

    data = tables(args.companies)
    scorers = train(compute_features(FeatureInputs(**data), AS_OF), reference=False)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as folder:
        files = {name: Path(folder) / f"{name.replace(' ', '_')}.duckdb" for name in LAYOUTS}
        by_change = connect_warehouse(f"duckdb:///{files['by change']}", folder)
        full = connect_warehouse(f"duckdb:///{files['full copy']}", folder)
        first: dict[str, int] = {}
        written: dict[str, list[int]] = {}  # table -> rows written, rows stored, over the days
        started = time.perf_counter()
        for k in range(args.days):
            day = AS_OF + timedelta(days=k)
            if k:
                changed_answers(data, args.change, k)
            frames = pappers_rows(data, day)
            features = compute_features(FeatureInputs(**data), day)
            frames[t.COMPANY_FEATURES] = features
            before = day - timedelta(days=1)
            previous = by_change.read(t.ML_SCORES, start=before, end=before) if k else None
            scored = score_day(features, scorers, previous, datetime.now(UTC))
            frames[t.ML_SCORES] = frames[t.PUBLISHED_SCORES] = scored.frame
            for table, frame in frames.items():
                report = by_change.replace_partitions(table, frame, [day])
                counts = written.setdefault(table.name, [0, 0])
                counts[0] += frame.height
                counts[1] += report.changes[day]["rows_stored"]
                full.replace_partitions(plain(table), frame, [day])
            if not k:
                first = {name: size(path) for name, path in files.items()}
            print(
                f"day {k + 1:2d}: {features.height:,} companies, {scored.recomputed:,} scores"
                f" recomputed, {sum(f.height for f in frames.values()):,} rows written,"
                f" {sum(c[1] for c in written.values()):,} stored by change so far"
                f" ({time.perf_counter() - started:.0f} s)"
            )
        last = {name: size(path) for name, path in files.items()}

        print(f"\n{args.days} days, {args.companies:,} companies, {args.change:.0%} changing a day")
        for name in files:
            print(
                f"{name:>9}: one day {first[name] / 2**20:,.1f} MiB, {args.days} days"
                f" {last[name] / 2**20:,.1f} MiB = {last[name] / first['full copy']:.2f}x one full"
                " day (the full copy's first day)"
            )
        print(f"\n{'table':<22}{'rows written':>14}{'rows stored':>14}")
        for name, (rows, kept) in written.items():
            print(f"{name:<22}{rows:>14,}{kept:>14,}")
        middle = AS_OF + timedelta(days=args.days // 2)
        siren = features["siren"][features.height // 2]

        def one_day(warehouse: Warehouse, table: TableRef) -> pl.DataFrame:
            return warehouse.read(table, start=middle, end=middle)

        def one_company(warehouse: Warehouse, table: TableRef) -> pl.DataFrame:
            return warehouse.query(f"SELECT * FROM {table.sql} WHERE siren = $1", [siren])

        reads = [
            ("ml_scores: the universe on a day", t.ML_SCORES, one_day),
            ("company_features: the universe on a day", t.COMPANY_FEATURES, one_day),
            ("ml_scores: one company, every day", t.ML_SCORES, one_company),
        ]
        print(f"\n{'read (best of 5)':<42}{'by change':>12}{'full copy':>12}{'ratio':>8}")
        for label, table, read in reads:
            ours, rows = best(lambda: read(by_change, table))  # noqa: B023
            floor, _ = best(lambda: read(full, plain(table)))  # noqa: B023
            print(
                f"{label:<42}{ours * 1000:>9.1f} ms{floor * 1000:>9.1f} ms{ours / floor:>8.2f}"
                f"  ({rows:,} rows)"
            )


if __name__ == "__main__":
    main()
