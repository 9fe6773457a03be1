"""Publication: only checked partitions reach readers, and a failed re-run never replaces them."""

from datetime import date
from pathlib import Path

import polars as pl
import psycopg
import pytest

from ma_pipeline.contracts.scores import ML_SCORES_SCHEMA
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import (
    KASPR_CONTACTS,
    ML_SCORES,
    PUBLISHED_CONTACTS,
    PUBLISHED_SCORES,
)
from ma_pipeline.scoring.publication import latest_published, publications, publish
from ma_pipeline.warehouse import Warehouse, connect_warehouse
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.published import SnapshotStore

D1, D2 = date(2026, 11, 19), date(2026, 11, 20)


def test_nothing_is_published_before_the_first_publication(warehouse: Warehouse) -> None:
    assert latest_published(warehouse) is None
    assert publications(warehouse).is_empty()


def test_publishing_copies_the_partition_and_records_it(warehouse: Warehouse) -> None:
    companies = sirens(20)
    warehouse.replace_partitions(ML_SCORES, ml_scores(D1, companies), [D1])
    warehouse.replace_partitions(ML_SCORES, ml_scores(D2, companies, seed=1), [D2])

    publish(warehouse, D1, run_id="run-1")
    record = publish(warehouse, D2, run_id="run-2")

    assert latest_published(warehouse) == D2
    assert record.row(0, named=True)["companies"] == 20
    assert publications(warehouse)["partition_date"].to_list() == [D2, D1]
    published = warehouse.read(PUBLISHED_SCORES, start=D2, end=D2).sort("siren")
    assert published.equals(ml_scores(D2, companies, seed=1).sort("siren"))
    assert list(published.schema) == list(ML_SCORES_SCHEMA)


@pytest.mark.postgres
def test_the_tables_the_api_reads_by_siren_are_indexed_by_siren_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    """The history and contacts routes read one company's rows per request."""
    warehouse = connect_warehouse(pg_url, tmp_path)
    warehouse.replace_partitions(ML_SCORES, ml_scores(D1, sirens(20)), [D1])
    contacts = pl.DataFrame({"partition_date": [D1], "siren": [sirens(1)[0]], "nom": ["Durand"]})
    warehouse.replace_partitions(KASPR_CONTACTS, contacts, [D1])
    publish(warehouse, D1, run_id="run-1")

    with psycopg.connect(pg_url) as conn:
        indexes = dict(
            conn.execute(
                "SELECT tablename, indexdef FROM pg_indexes WHERE indexname LIKE '%lookup%'"
            )
        )

    assert "(siren, partition_date)" in indexes[PUBLISHED_CONTACTS.name]
    # Scores are stored by change: one company's versions are found by SIREN.
    assert "(siren)" in indexes[PUBLISHED_SCORES.versions.name]


def test_an_unpublished_rerun_leaves_the_published_copy_in_place(warehouse: Warehouse) -> None:
    companies = sirens(10)
    good = ml_scores(D1, companies, seed=1)
    warehouse.replace_partitions(ML_SCORES, good, [D1])
    publish(warehouse, D1, run_id="good")

    # A later run of the same day writes bad scores; its blocking checks keep it unpublished.
    bad = good.with_columns(score_ma=pl.lit(250.0))
    warehouse.replace_partitions(ML_SCORES, bad, [D1])

    served = warehouse.read(PUBLISHED_SCORES, start=D1, end=D1)
    assert served["score_ma"].max() <= 100
    assert publications(warehouse)["run_id"].to_list() == ["good"]


def test_publishing_an_unscored_day_fails_clearly(warehouse: Warehouse) -> None:
    warehouse.replace_partitions(ML_SCORES, ml_scores(D1, sirens(3)), [D1])

    with pytest.raises(ValueError, match="no rows for 2026-11-20: nothing to publish"):
        publish(warehouse, D2, run_id="x")


def test_the_snapshot_holds_each_published_day_and_the_record(
    data_dir: Path, tmp_path: Path
) -> None:
    """On DuckDB, the API reads each published day back as it was published, from versions
    that grow with what changed: two of five companies change on the second day."""
    warehouse = connect_warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", data_dir)
    snapshot = snapshot_paths(data_dir)
    companies = sirens(5)
    first = ml_scores(D1, companies, seed=0)
    second = pl.concat([first.head(3), ml_scores(D1, companies[3:], seed=1)]).with_columns(
        partition_date=pl.lit(D2)
    )
    for day, scores in ((D1, first), (D2, second)):
        warehouse.replace_partitions(ML_SCORES, scores, [day])
        publish(warehouse, day, run_id=f"run-{day}", snapshot=snapshot)

    assert pl.read_parquet(snapshot.publications)["partition_date"].to_list() == [D2, D1]
    store = SnapshotStore(snapshot)
    for day in (D1, D2):
        served = pl.concat(store.blocks(day, rows=2))
        assert served.equals(warehouse.read(PUBLISHED_SCORES, start=day, end=day).sort("siren"))
    assert served["siren"].is_sorted()
    assert pl.read_parquet(snapshot.score_versions).height == 7
    assert not list(snapshot.root.rglob("*.partial"))
