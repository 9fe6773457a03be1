"""Ingestion of a national-size SIRENE stock: time and peak memory beside a floor.

`python bench/bench_ingestion.py --rows 28000000` writes a StockUniteLegale file in the real
layout (`bench/sirene_stock.py`, cached under --work), then, each in a fresh process so that its
peak RSS is its own:
- the floor: DuckDB loading the file into a table of a DuckDB database (all columns as text, no
  validation);
- raw_companies materialized for one day on the DuckDB warehouse: batches read and validated,
  duplicates resolved, the stock written once;
- raw_companies for the next day, served by the same file (already stored), and the warehouse's
  growth between the two days;
- target_companies for the first day, with the default rules: how many units each rule keeps.
"""

import argparse
import multiprocessing
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DAY, NEXT_DAY = "2026-11-02", "2026-11-03"


def peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def floor(stock: Path, work: Path) -> dict[str, Any]:
    import duckdb

    target = work / "floor.duckdb"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(target)) as db:
        db.execute(
            "CREATE TABLE stock AS SELECT * FROM read_csv(?, all_varchar = true, header = true)",
            [str(stock)],
        )
        rows = db.execute("SELECT count(*) FROM stock").fetchone()[0]
    return {"seconds": time.perf_counter() - started, "rows": rows}


def pipeline(stock: Path, work: Path) -> dict[str, Any]:
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore")
    from ma_pipeline.contracts.tables import SIRENE_STOCKS
    from ma_pipeline.ingestion.assets import raw_companies
    from ma_pipeline.resources import build_resources
    from ma_pipeline.warehouse import connect_warehouse

    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "landing").mkdir(parents=True)
    (data / "landing" / "StockUniteLegale_2026-11-01.csv").symlink_to(stock)
    resources = build_resources(str(data), "")

    def day(partition: str) -> float:
        started = time.perf_counter()
        result = dg.materialize([raw_companies], partition_key=partition, resources=resources)
        assert result.success
        return time.perf_counter() - started

    first = day(DAY)
    warehouse = data / "warehouse.duckdb"
    size_after_first = warehouse.stat().st_size
    second = day(NEXT_DAY)
    rows = connect_warehouse("", data).query(f"SELECT count(*) AS n FROM {SIRENE_STOCKS.sql}")
    return {
        "seconds": first,
        "rows": int(rows["n"][0]),
        "next_day_seconds": second,
        "growth": warehouse.stat().st_size / size_after_first - 1,
    }


def target_universe(stock: Path, work: Path) -> dict[str, Any]:
    """target_companies of the first day, on the warehouse ``pipeline`` left."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore")
    from ma_pipeline.contracts.keys import TARGET_COMPANIES
    from ma_pipeline.ingestion.assets import raw_companies, target_companies
    from ma_pipeline.resources import build_resources

    resources = build_resources(str(work / "data"), "")
    started = time.perf_counter()
    result = dg.materialize(
        [raw_companies, target_companies],
        selection=[target_companies],
        partition_key=DAY,
        resources=resources,
    )
    assert result.success
    [event] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == TARGET_COMPANIES
    ]
    return {
        "seconds": time.perf_counter() - started,
        "funnel": event.metadata["kept_and_dropped_by_rule"].value,
    }


def _child(function: Callable[..., dict[str, Any]], args: tuple, queue: Any) -> None:
    result = function(*args)
    queue.put({**result, "peak_rss_gb": peak_rss_gb()})


def measured(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a fresh process, with that process's peak RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(function, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ma_bench_ingestion"))
    args = parser.parse_args()
    from bench.sirene_stock import write_stock

    args.work.mkdir(parents=True, exist_ok=True)
    stock = args.work / f"StockUniteLegale_{args.rows}.csv"
    if not stock.exists():
        started = time.perf_counter()
        write_stock(stock, args.rows)
        print(f"generated {stock} in {time.perf_counter() - started:.0f} s")
    print(f"stock file: {stock.stat().st_size / 1e9:.2f} GB")

    base = measured(floor, stock, args.work)
    print(
        f"floor (DuckDB read_csv into a table): {base['rows']:,} rows in {base['seconds']:.1f} s"
        f" ({base['rows'] / base['seconds']:,.0f} rows/s), peak RSS {base['peak_rss_gb']:.2f} GB"
    )
    ours = measured(pipeline, stock, args.work)
    print(
        f"raw_companies, one day: {ours['rows']:,} companies kept in {ours['seconds']:.1f} s"
        f" ({base['rows'] / ours['seconds']:,.0f} rows/s), peak RSS {ours['peak_rss_gb']:.2f} GB"
    )
    print(
        f"ratio to the floor: time {ours['seconds'] / base['seconds']:.2f}x,"
        f" peak RSS {ours['peak_rss_gb'] / base['peak_rss_gb']:.2f}x"
    )
    print(
        f"next day from the same file: {ours['next_day_seconds']:.1f} s,"
        f" warehouse growth {ours['growth']:.1%}"
    )
    chosen = measured(target_universe, stock, args.work)
    funnel = chosen["funnel"]
    print(
        f"target_companies, default rules: {chosen['seconds']:.1f} s,"
        f" peak RSS {chosen['peak_rss_gb']:.2f} GB"
    )
    for rule, counts in funnel.items():
        print(f"  {rule}: kept {counts['kept']:,}, dropped {counts['dropped']:,}")


if __name__ == "__main__":
    main()
