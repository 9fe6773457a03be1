"""The warehouse contract, on DuckDB and on PostgreSQL: the same tests, the same outcomes."""

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from ma_pipeline.warehouse import (
    MissingTableError,
    SchemaMismatchError,
    TableRef,
    Warehouse,
    WarehouseError,
    connect_warehouse,
)
from ma_pipeline.warehouse.duckdb_backend import DuckDBWarehouse
from ma_pipeline.warehouse.local import LocalRows, parquet_files

TABLE = TableRef("ingestion", "things")
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def things(day: date, n: int = 3, start: int = 0) -> pl.DataFrame:
    """A partition's rows with every column type the pipeline stores."""
    return pl.DataFrame(
        {
            "partition_date": [day] * n,
            "siren": [f"{start + i:09d}" for i in range(n)],
            "revenue": [1_000_000 + i for i in range(n)],
            "margin": [0.1 * i if i else None for i in range(n)],
            "active": [i % 2 == 0 for i in range(n)],
            "created": [date(2000 + i, 1, 1) for i in range(n)],
            "fetched_at": [datetime(2024, 1, 1, 12, i, tzinfo=UTC) for i in range(n)],
            "roles": [["Gérant", "Associé"][: i % 3] for i in range(n)],
        },
        schema_overrides={"revenue": pl.Int64},
    )


def by_siren(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("partition_date", "siren")


def test_round_trip_keeps_values_and_types(warehouse: Warehouse) -> None:
    frame = pl.concat([things(D1), things(D2, start=10)])

    report = warehouse.replace_partitions(TABLE, frame, [D1, D2])

    assert report.created and report.rows == 6
    assert_frame_equal(by_siren(warehouse.read(TABLE)), by_siren(frame))


def test_writing_a_partition_twice_leaves_one_copy(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])
    warehouse.replace_partitions(TABLE, things(D1), [D1])

    assert warehouse.read(TABLE).height == 3


def test_writing_partition_b_leaves_a_untouched(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])
    warehouse.replace_partitions(TABLE, things(D2, n=5, start=10), [D2])
    warehouse.replace_partitions(TABLE, things(D2, n=2, start=20), [D2])

    assert_frame_equal(by_siren(warehouse.read(TABLE, start=D1, end=D1)), things(D1))
    assert warehouse.read(TABLE, start=D2, end=D2)["siren"].to_list() == ["000000020", "000000021"]


def test_a_write_failing_midway_leaves_the_old_partition_intact(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])

    def fail_after_delete(*args: object) -> None:
        raise RuntimeError("disk full")  # the delete of D1 has run in this transaction

    monkeypatch.setattr(warehouse, "_bulk_insert", fail_after_delete)
    with pytest.raises(RuntimeError, match="disk full"):
        warehouse.replace_partitions(TABLE, things(D1, n=7, start=50), [D1])
    monkeypatch.undo()

    assert_frame_equal(by_siren(warehouse.read(TABLE)), things(D1))


def test_reads_one_partition_a_range_or_everything(warehouse: Warehouse) -> None:
    frame = pl.concat([things(D1), things(D2, start=10), things(D3, start=20)])
    warehouse.replace_partitions(TABLE, frame, [D1, D2, D3])

    assert warehouse.read(TABLE, start=D2, end=D2)["partition_date"].unique().to_list() == [D2]
    assert warehouse.read(TABLE, start=D2, end=D3).height == 6
    assert warehouse.read(TABLE).height == 9
    assert warehouse.partitions(TABLE) == [D1, D2, D3]
    assert warehouse.read(TABLE, columns=["siren"]).columns == ["siren"]


def test_a_multi_day_write_replaces_exactly_its_days(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, pl.concat([things(D1), things(D3, start=30)]), [D1, D3])
    # D2 has no rows in this write: it is written as an empty partition; D1 and D3 are replaced.
    warehouse.replace_partitions(TABLE, things(D1, n=1, start=90), [D1, D2])

    counts = warehouse.read(TABLE).group_by("partition_date").len().sort("partition_date")
    assert counts.rows() == [(D1, 1), (D3, 3)]


def test_rows_outside_the_partitions_written_are_refused(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])

    with pytest.raises(SchemaMismatchError, match="2024-01-02, outside the partitions written"):
        warehouse.replace_partitions(TABLE, pl.concat([things(D1), things(D2)]), [D1])
    assert warehouse.read(TABLE).height == 3


def test_a_partitioned_frame_needs_a_date_partition_column(warehouse: Warehouse) -> None:
    with pytest.raises(SchemaMismatchError, match="'partition_date' column of type Date"):
        warehouse.replace_partitions(TABLE, things(D1).drop("partition_date"), [D1])
    text_dates = things(D1).with_columns(pl.col("partition_date").cast(pl.String))
    with pytest.raises(SchemaMismatchError, match="must be of type Date, not String"):
        warehouse.replace_partitions(TABLE, text_dates, [D1])


def test_a_new_column_is_added_and_older_rows_read_null(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])

    report = warehouse.replace_partitions(
        TABLE, things(D2).with_columns(naf=pl.lit("62.01Z")), [D2]
    )

    assert report.columns_added == ["naf"]
    naf = warehouse.read(TABLE).sort("partition_date")["naf"].to_list()
    assert naf == [None] * 3 + ["62.01Z"] * 3


def test_a_missing_column_is_refused_by_name_and_nothing_changes(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])

    with pytest.raises(SchemaMismatchError, match=r"lacks column\(s\) 'margin'"):
        warehouse.replace_partitions(TABLE, things(D1, n=1).drop("margin"), [D1])
    assert warehouse.read(TABLE).height == 3


def test_a_column_of_the_wrong_type_is_refused_by_name(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])
    wrong = things(D2).with_columns(pl.col("created").cast(pl.String))

    with pytest.raises(SchemaMismatchError, match="'created' is text in the frame but date"):
        warehouse.replace_partitions(TABLE, wrong, [D2])


def test_integers_widen_into_float_columns(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1), [D1])
    warehouse.replace_partitions(TABLE, things(D2).with_columns(margin=pl.lit(2, pl.Int32)), [D2])

    margins = warehouse.read(TABLE, start=D2, end=D2)["margin"]
    assert margins.dtype == pl.Float64 and margins.to_list() == [2.0] * 3


def test_an_all_null_column_takes_the_table_type_but_cannot_create_one(
    warehouse: Warehouse,
) -> None:
    with pytest.raises(SchemaMismatchError, match="column 'margin' has no type"):
        warehouse.replace_partitions(TABLE, things(D1).with_columns(margin=None), [D1])

    warehouse.replace_partitions(TABLE, things(D1), [D1])
    warehouse.replace_partitions(TABLE, things(D2).with_columns(margin=None), [D2])
    assert warehouse.read(TABLE, start=D2, end=D2)["margin"].null_count() == 3


def test_an_unpartitioned_table_is_replaced_whole(warehouse: Warehouse) -> None:
    table = TableRef("ml", "training_set")
    warehouse.replace_table(table, pl.DataFrame({"siren": ["a", "b"], "label": [1, 0]}))
    warehouse.replace_table(table, pl.DataFrame({"siren": ["c"], "label": [1]}))
    assert warehouse.read(table).rows() == [("c", 1)]

    report = warehouse.replace_table(table, pl.DataFrame({"siren": ["d"], "score": [0.5]}))
    assert report.created
    assert warehouse.read(table).columns == ["siren", "score"]


def test_upsert_replaces_rows_by_key_and_lookup_finds_them(warehouse: Warehouse) -> None:
    table = TableRef("enrichment", "api_cache")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    first = pl.DataFrame({"source": ["p", "p"], "key": ["1", "2"], "payload": ["a", "b"]})
    warehouse.upsert(table, first.with_columns(fetched_at=pl.lit(now)), ["source", "key"])
    second = pl.DataFrame({"source": ["p", "k"], "key": ["2", "2"], "payload": ["B", "k2"]})
    warehouse.upsert(table, second.with_columns(fetched_at=pl.lit(now)), ["source", "key"])

    assert warehouse.read(table).sort("source", "key")["payload"].to_list() == ["k2", "a", "B"]
    found = warehouse.lookup(table, pl.DataFrame({"source": ["p", "p"], "key": ["2", "9"]}))
    assert found["payload"].to_list() == ["B"]


def test_reading_a_table_never_written_names_it(warehouse: Warehouse) -> None:
    with pytest.raises(MissingTableError, match=r"table ingestion\.things does not exist yet"):
        warehouse.read(TABLE)
    assert warehouse.partitions(TABLE) == []


def test_a_duckdb_file_named_like_a_schema_works(tmp_path: Path) -> None:
    warehouse = connect_warehouse(f"duckdb:///{tmp_path / 'ingestion.duckdb'}", tmp_path)

    warehouse.replace_partitions(TABLE, things(D1), [D1])

    assert warehouse.read(TABLE).height == 3


def test_a_duckdb_file_locked_by_another_process_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('locked', flush=True);"
            " time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        warehouse = DuckDBWarehouse(path, lock_timeout_s=0.5)
        with pytest.raises(WarehouseError, match=r"cannot open the DuckDB warehouse .*lock"):
            warehouse.replace_partitions(TABLE, things(D1), [D1])
    finally:
        holder.kill()
        holder.wait()


def _plan(pg_url: str, sql: str) -> str:
    with psycopg.connect(pg_url) as conn:
        conn.execute(f"ANALYZE {TABLE.sql}")
        return "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))


def _many_things(days: list[date]) -> pl.DataFrame:
    """Enough rows per day for the planner to prefer an index to a scan."""
    return pl.concat(
        pl.DataFrame(
            {"partition_date": [day] * 20_000, "siren": [f"{i:09d}" for i in range(20_000)]}
        )
        for day in days
    )


@pytest.mark.postgres
def test_lookup_columns_are_read_through_an_index_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """The API reads one company's rows of published_scores: no scan of every day's rows."""
    warehouse = connect_warehouse(pg_url, tmp_path)
    looked_up = TableRef(TABLE.schema, TABLE.name, lookup=("siren",))
    warehouse.replace_partitions(looked_up, _many_things([D1, D2]), [D1, D2])

    plan = _plan(
        pg_url,
        f"SELECT * FROM {TABLE.sql} WHERE siren = '000000042'"
        f" AND partition_date BETWEEN '{D1}' AND '{D2}'",
    )

    assert "things_lookup_idx" in plan and "Seq Scan" not in plan


@pytest.mark.postgres
def test_a_table_written_before_its_lookup_was_declared_gets_the_index(
    pg_url: str, tmp_path: Path
) -> None:
    warehouse = connect_warehouse(pg_url, tmp_path)
    warehouse.replace_partitions(TABLE, _many_things([D1]), [D1])
    lookup_sql = f"SELECT * FROM {TABLE.sql} WHERE siren = '000000042'"
    assert "Seq Scan" in _plan(pg_url, lookup_sql)

    looked_up = TableRef(TABLE.schema, TABLE.name, lookup=("siren",))
    warehouse.replace_partitions(looked_up, _many_things([D2]), [D2])

    assert "things_lookup_idx" in _plan(pg_url, lookup_sql)
    assert warehouse.read(TABLE).height == 40_000


def test_a_partition_written_in_batches_is_all_or_nothing(warehouse: Warehouse) -> None:
    """A stock too large for memory is loaded batch by batch, then swapped in at once."""
    warehouse.replace_partitions(TABLE, things(D1, 2), [D1])
    batches = [things(D2, 3), things(D2, 4, start=3), things(D2, 1, start=7)]

    report = warehouse.replace_partitions(TABLE, iter(batches), [D2])

    assert report.rows == 8
    assert warehouse.read(TABLE, start=D2, end=D2).height == 8
    bad = [things(D2, 2, start=20), things(D3, 1)]  # the second batch is outside D2
    with pytest.raises(SchemaMismatchError, match="outside the partitions written"):
        warehouse.replace_partitions(TABLE, iter(bad), [D2])
    assert warehouse.read(TABLE, start=D2, end=D2).height == 8  # rolled back
    assert warehouse.read(TABLE, start=D1, end=D1).height == 2


def staged(folder: Path, frame: pl.DataFrame) -> LocalRows:
    """``frame`` staged in local Parquet files, as ingestion stages a stock."""
    for i, part in enumerate(frame.iter_slices(2)):
        part.write_parquet(folder / f"{i:03d}.parquet")
    return LocalRows(f"SELECT * FROM {parquet_files(str(folder / '*.parquet'))}")


def test_rows_staged_in_a_local_file_replace_a_partition(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A stock staged on disk is loaded without being held in memory, with the same result as
    a frame (on DuckDB, inserted inside the engine; on PostgreSQL, batch by batch)."""
    warehouse.replace_partitions(TABLE, things(D1, 2), [D1])
    rows = staged(tmp_path, things(D2, 5).drop("partition_date"))

    report = warehouse.replace_partitions(TABLE, rows.stamped("partition_date", D2), [D2])

    assert report.rows == 5 and report.partitions == [D2]
    assert_frame_equal(by_siren(warehouse.read(TABLE, start=D2, end=D2)), things(D2, 5))
    with pytest.raises(SchemaMismatchError, match="outside the partitions written"):
        warehouse.replace_partitions(TABLE, rows.stamped("partition_date", D3), [D2])
    assert warehouse.read(TABLE, start=D2, end=D2).height == 5  # nothing changed
    assert warehouse.read(TABLE, start=D1, end=D1).height == 2


def test_a_view_replaces_a_table_of_its_name_without_losing_it(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(TABLE, things(D1, 2), [D1])
    view = TableRef("ingestion", "recent")
    warehouse.replace_table(view, things(D2, 5).drop("roles"))  # written before the view

    warehouse.replace_view(view, f"SELECT * FROM {TABLE.sql}")
    warehouse.replace_view(view, f"SELECT * FROM {TABLE.sql}")  # again: nothing to rename

    assert warehouse.read(view).height == 2
    assert warehouse.read(TableRef("ingestion", "recent_before_view")).height == 5
