"""Tables stored by change, on DuckDB and on PostgreSQL: every day reads back exactly what was
written for it, whatever the order of the writes, while only changed keys add rows."""

import random
from datetime import date, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from ma_pipeline.contracts.tables import ByChange, TableRef
from ma_pipeline.warehouse import Warehouse

TABLE = TableRef("features", "facts", by_change=ByChange())
AGED = TableRef(
    "features", "aged", by_change=ByChange(years_since=(("age", "born"), ("tenure", "since")))
)
D0 = date(2025, 6, 2)
SCHEMA = {
    "partition_date": pl.Date(),
    "siren": pl.String(),
    "year": pl.Int64(),
    "revenue": pl.Float64(),
    "roles": pl.List(pl.String()),
}


def day_rows(day: date, facts: dict[str, list[tuple[int, float | None]]]) -> pl.DataFrame:
    """A day's rows: several per company (one per fiscal year), nulls and lists included."""
    rows = [
        {"partition_date": day, "siren": siren, "year": year, "revenue": revenue, "roles": ["G"]}
        for siren, years in sorted(facts.items())
        for year, revenue in years
    ]
    return pl.DataFrame(rows, schema=SCHEMA).sort("siren", "year")


def read_day(warehouse: Warehouse, table: TableRef, day: date) -> pl.DataFrame:
    rows = warehouse.read(table, start=day, end=day)
    return rows.sort([c for c in ("siren", "year") if c in rows.columns])


def stored(warehouse: Warehouse, table: TableRef) -> int:
    return warehouse.query(f"SELECT count(*) AS n FROM {table.versions.sql}")["n"][0]


def test_a_day_reads_back_exactly_and_unchanged_companies_store_nothing(
    warehouse: Warehouse,
) -> None:
    facts = {f"{i:09d}": [(2023, 1.0 * i), (2024, None)] for i in range(50)}
    first = warehouse.replace_partitions(TABLE, day_rows(D0, facts), [D0])
    facts["000000007"] = [(2024, 99.0)]  # one company's accounts change
    del facts["000000008"]  # one leaves
    facts["000000099"] = [(2024, 5.0)]  # one arrives
    second = warehouse.replace_partitions(
        TABLE, day_rows(D0 + timedelta(1), facts), [D0 + timedelta(1)]
    )

    assert first.changes[D0] == {"rows": 100, "keys_changed": 50, "rows_stored": 100}
    assert second.changes[D0 + timedelta(1)] == {"rows": 98, "keys_changed": 3, "rows_stored": 2}
    assert stored(warehouse, TABLE) == 102
    assert_frame_equal(
        read_day(warehouse, TABLE, D0 + timedelta(1)), day_rows(D0 + timedelta(1), facts)
    )
    assert "000000008" in read_day(warehouse, TABLE, D0)["siren"].to_list()
    assert warehouse.partitions(TABLE) == [D0, D0 + timedelta(1)]


def test_days_written_in_any_order_and_again_read_back_exactly(warehouse: Warehouse) -> None:
    """A backfill behind the newest day, re-runs, empty days: each day holds its own rows."""
    rng = random.Random(7)
    days = [D0 + timedelta(k) for k in range(8)]
    truth: dict[date, pl.DataFrame] = {}
    facts = {f"{i:09d}": [(2024, float(i))] for i in range(30)}
    for day in days:
        for siren in rng.sample(sorted(facts), 4):
            facts[siren] = [(2024, rng.choice([1.0, 2.0, None])), (2023, 3.0)][: rng.randint(1, 2)]
        truth[day] = day_rows(day, {s: v for s, v in facts.items() if rng.random() > 0.05})
    truth[days[5]] = day_rows(days[5], {})  # a day with no rows

    order = [days[3], days[0], days[7], days[1], days[2], days[6], days[4], days[5], days[3]]
    for step, day in enumerate(order):
        warehouse.replace_partitions(TABLE, truth[day], [day])
        for written in order[: step + 1]:
            assert_frame_equal(read_day(warehouse, TABLE, written), truth[written])

    before = stored(warehouse, TABLE)
    again = warehouse.replace_partitions(TABLE, truth[days[4]], [days[4]])
    assert again.changes[days[4]]["keys_changed"] == 0 and stored(warehouse, TABLE) == before
    several = pl.concat([truth[d] for d in days])
    # A single-run backfill of them all, in batches too large to hold together.
    warehouse.replace_partitions(TABLE, iter([several.head(50), several.slice(50)]), days)
    assert_frame_equal(
        warehouse.read(TABLE).sort("partition_date", "siren", "year"),
        several.sort("partition_date", "siren", "year"),
    )


def test_columns_that_grow_with_the_day_are_computed_from_their_anchor(
    warehouse: Warehouse,
) -> None:
    def aged(day: date) -> pl.DataFrame:
        born = [date(1990, 3, 1), date(2024, 12, 31), None]
        since = [date(2020, 1, 1), None, date(2001, 7, 4)]
        return pl.DataFrame(
            {
                "partition_date": [day] * 3,
                "siren": ["000000001", "000000002", "000000003"],
                "born": born,
                "since": since,
            }
        ).with_columns(
            age=(pl.col("partition_date") - pl.col("born")).dt.total_days() / 365.25,
            tenure=(pl.col("partition_date") - pl.col("since")).dt.total_days() / 365.25,
        )

    days = [D0 + timedelta(k) for k in range(10)]
    warehouse.replace_partitions(AGED, pl.concat([aged(d) for d in days]), days)

    assert stored(warehouse, AGED) == 3  # one version each, although every age moved daily
    for day in days:
        assert_frame_equal(read_day(warehouse, AGED, day), aged(day))


def test_a_table_written_before_it_was_stored_by_change_is_kept(warehouse: Warehouse) -> None:
    warehouse.execute(f'CREATE SCHEMA IF NOT EXISTS "{TABLE.schema}"')
    warehouse.execute(f"CREATE TABLE {TABLE.sql} AS SELECT '000000001' AS siren")

    warehouse.replace_partitions(TABLE, day_rows(D0, {"000000002": [(2024, 2.0)]}), [D0])

    assert read_day(warehouse, TABLE, D0)["siren"].to_list() == ["000000002"]
    kept = warehouse.read(TableRef(TABLE.schema, f"{TABLE.name}_before_view"))
    assert kept["siren"].to_list() == ["000000001"]


def test_a_new_column_is_added_and_earlier_days_read_it_null(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, day_rows(D0, {"000000001": [(2024, 1.0)]}), [D0])
    later = D0 + timedelta(1)
    rows = day_rows(later, {"000000001": [(2024, 1.0)]}).with_columns(pl.lit("x").alias("note"))

    report = warehouse.replace_partitions(TABLE, rows, [later])

    assert report.columns_added == ["note"]
    assert read_day(warehouse, TABLE, later)["note"].to_list() == ["x"]
    assert read_day(warehouse, TABLE, D0)["note"].to_list() == [None]
