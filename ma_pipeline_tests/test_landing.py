"""Which landing file serves which partition: the naming convention of the README."""

import os
from datetime import date, datetime
from pathlib import Path

import pytest

from ma_pipeline.ingestion.landing import PARIS, file_date, stock_file_for, stock_files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("StockUniteLegale_2026-11-01.csv", date(2026, 11, 1)),
        ("StockUniteLegale_20261101.csv.gz", date(2026, 11, 1)),
        ("StockUniteLegale_2026-11.parquet", date(2026, 11, 1)),
        ("StockUniteLegale_echantillon_2026.csv", date(2026, 1, 1)),
    ],
)
def test_a_file_is_dated_by_the_date_in_its_name(tmp_path: Path, name: str, expected: date) -> None:
    path = tmp_path / name
    path.touch()
    assert file_date(path) == (expected, "name")


def test_a_name_without_a_date_is_dated_by_its_modification_time(tmp_path: Path) -> None:
    path = tmp_path / "StockUniteLegale_utf8.csv"
    path.touch()
    stamp = datetime(2026, 5, 3, 23, 30, tzinfo=PARIS).timestamp()
    os.utime(path, (stamp, stamp))
    assert file_date(path) == (date(2026, 5, 3), "mtime")


def test_only_stock_files_are_listed_oldest_first(tmp_path: Path) -> None:
    for name in (
        "StockUniteLegale_2026-03-01.csv",
        "StockUniteLegale_2026-01-01.parquet",
        "StockEtablissement_2026-02-01.csv",
        "notes.txt",
        "linkedin_profiles.csv",
    ):
        (tmp_path / name).touch()

    files = stock_files(tmp_path)

    assert [f.path.name for f in files] == [
        "StockUniteLegale_2026-01-01.parquet",
        "StockUniteLegale_2026-03-01.csv",
    ]
    assert (
        stock_file_for(files, date(2026, 2, 15)).path.name == "StockUniteLegale_2026-01-01.parquet"
    )
    assert stock_file_for(files, date(2026, 3, 1)).path.name == "StockUniteLegale_2026-03-01.csv"
    assert stock_file_for(files, date(2025, 12, 31)) is None
    assert stock_files(tmp_path / "missing") == []
