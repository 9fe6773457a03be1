"""What the lookup index of published_scores buys the API's history route on PostgreSQL, and what
it costs the nightly write.

    python -m bench.bench_lookup_index [--companies 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

From the repository root (the rows come from the test factories). In a scratch database it writes
two days of ``--companies`` ml_scores rows (63 columns) into a table declared without ``lookup``
columns and into one declared with ``lookup=("siren",)``, as ``serving.published_scores`` is;
times the second day's write and its rewrite on each, then the query the history route runs for
one company over both days (median of 20 SIRENs).
"""

import argparse
import statistics
import uuid
from datetime import date

import psycopg

from bench.bench_api import scratch_database
from bench.bench_warehouse import timed
from ma_pipeline.warehouse import TableRef, connect_warehouse
from ma_pipeline_tests.factories import ml_scores, sirens

DAYS = (date(2026, 11, 19), date(2026, 11, 20))
HISTORY = (
    "SELECT partition_date, score_ma FROM {table}"
    " WHERE siren = %s AND partition_date BETWEEN %s AND %s ORDER BY partition_date"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    companies = sirens(args.companies)
    first, second = (ml_scores(day, companies) for day in DAYS)
    name = f"scores_{uuid.uuid4().hex[:6]}"
    tables = {
        "without index": TableRef("bench", name),
        "with lookup index": TableRef("bench", f"{name}_indexed", lookup=("siren",)),
    }
    print(f"{args.companies:,} companies x {len(DAYS)} days, {first.width} columns")
    print(f"{'table':<20}{'write day 2':>13}{'rewrite':>10}{'look-up (median)':>19}")
    with scratch_database(args.pg) as url:
        warehouse = connect_warehouse(url, ".")
        for label, table in tables.items():
            warehouse.replace_partitions(table, first, [DAYS[0]])
            write = timed(lambda t=table: warehouse.replace_partitions(t, second, [DAYS[1]]))
            rewrite = timed(lambda t=table: warehouse.replace_partitions(t, second, [DAYS[1]]))
            with psycopg.connect(url) as conn:
                conn.execute(f"ANALYZE {table.sql}")
                query = HISTORY.format(table=table.sql)
                lookups = [
                    timed(lambda s=siren, q=query: conn.execute(q, (s, *DAYS)).fetchall())
                    for siren in companies[1_000:1_020]
                ]
            print(
                f"{label:<20}{write:>12.2f}s{rewrite:>9.2f}s"
                f"{statistics.median(lookups) * 1000:>16.2f} ms"
            )


if __name__ == "__main__":
    main()
