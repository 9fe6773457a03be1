"""raw_companies on bad SIRENE files: rows whose field count is not the header's, and a stock
keeping far fewer rows than the one served before it."""

import gzip
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.contracts.sirene import INSEE_COLUMNS
from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline.ingestion.sirene import read_stock_file, validate
from ma_pipeline.warehouse import TableRef, connect_warehouse
from ma_pipeline_tests.conftest import SIRENE_SAMPLE, make_resources
from ma_pipeline_tests.test_raw_companies import (
    COMPANIES,
    REJECTED,
    failure_message,
    materialize,
    metadata,
    sample_rows,
    stored,
    write_csv,
)

STOCKS = TableRef("ingestion", "sirene_stocks")
DAYS = TableRef("ingestion", "raw_companies_days")
WIDTH = len(INSEE_COLUMNS)


def _cut(line: str, fields: int) -> str:
    """A line of the sample (no quoted separator in it) cut to its first ``fields`` fields."""
    return ",".join(line.split(",")[:fields])


def test_short_and_long_rows_are_rejected_with_their_count_and_line(data_dir: Path) -> None:
    """A row missing only its last field used to be kept, its last column read as empty."""
    lines = SIRENE_SAMPLE.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    assert len(header.split(",")) == WIDTH
    sirens = [r.split(",")[0] for r in rows]
    content = [
        header,
        rows[0],
        _cut(rows[1], WIDTH - 1),  # line 3: every required value there, one field short
        rows[2],
        "",  # a blank line: skipped, not a short row
        _cut(rows[3], 12),  # line 6
        rows[4] + ',extra,"with, a comma"',  # line 7: two fields too many, not three
        *rows[5:],
    ]
    path = data_dir / "landing" / "StockUniteLegale_2026-03-01.csv"
    path.write_text("\n".join(content) + "\n")

    result = materialize(data_dir)

    assert result.success
    kept = set(stored(data_dir)["siren"])
    assert kept == set(sirens) - {sirens[1], sirens[3], sirens[4]}
    rejected = stored(data_dir, REJECTED).sort("row_number")
    assert rejected.select("row_number", "siren", "reason", "detail").rows() == [
        (2, sirens[1], "too_few_fields", "34 fields where the header has 35 (line 3)"),
        (4, sirens[3], "too_few_fields", "12 fields where the header has 35 (line 6)"),
        (5, sirens[4], "too_many_fields", "37 fields where the header has 35 (line 7)"),
    ]
    assert metadata(result)["rejected_by_reason"] == {"too_few_fields": 2, "too_many_fields": 1}
    assert metadata(result)["blank_lines"] == 1
    raw = rejected.filter(pl.col("reason") == "too_many_fields")["raw"].item()
    assert f'"siren":"{sirens[4]}"' in raw  # the values as given, cut to the header's width


def test_a_quoted_separator_or_line_break_is_one_field_and_lines_are_counted(
    data_dir: Path,
) -> None:
    rows = sample_rows()
    rows[0]["denominationUniteLegale"] = "DUPONT, MARTIN ET FILS"
    rows[1]["denominationUniteLegale"] = "SUR DEUX\nLIGNES"
    path = write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows)
    lines = path.read_text().splitlines()  # the header, row 0, row 1 on lines 3 and 4, ...
    lines[5] = _cut(lines[5], 20)  # the 4th data row, on line 6 of the file
    path.write_text("\n".join(lines) + "\n")

    result = materialize(data_dir)

    assert result.success
    names = stored(data_dir)["nom_entreprise"].to_list()
    assert "DUPONT, MARTIN ET FILS" in names and "SUR DEUX\nLIGNES" in names
    rejected = stored(data_dir, REJECTED)
    assert rejected.select("siren", "detail").rows() == [
        (rows[3]["siren"], "20 fields where the header has 35 (line 6)")
    ]


def test_gzipped_and_legacy_encoded_files_reject_short_rows_too(tmp_path: Path) -> None:
    lines = SIRENE_SAMPLE.read_text().splitlines()
    lines[2] = _cut(lines[2], 30)
    text = "\n".join(lines) + "\n"
    gz = tmp_path / "StockUniteLegale_2026.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    legacy = tmp_path / "StockUniteLegale_2026.csv"
    legacy.write_bytes(text.replace("INVEST", "INVESTÉ").encode("cp1252"))

    for path in (gz, legacy):
        checked = validate(read_stock_file(path))
        assert checked.rejected["reason"].to_list() == ["too_few_fields"], path.name
        assert checked.kept.height == 8


def _two_stocks(data_dir: Path, newer_rows: int) -> None:
    """The sample served for 2026-03-02 from a file of 2026-02-01; then a file of 2026-03-01
    with the first ``newer_rows`` rows lands."""
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-02-01.csv", sample_rows())
    assert materialize(data_dir).success
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows()[:newer_rows])


def test_a_stock_keeping_far_fewer_rows_than_the_one_before_fails_and_changes_nothing(
    data_dir: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-02-01.csv", sample_rows())
    assert materialize(data_dir, warehouse_url).success
    warehouse = connect_warehouse(warehouse_url, data_dir)
    before = {t.name: warehouse.read(t) for t in (COMPANIES, STOCKS, DAYS, REJECTED)}
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows()[:4])

    result = materialize(data_dir, warehouse_url)

    assert not result.success
    assert (
        "StockUniteLegale_2026-03-01.csv: keeps 4 rows, fewer than MA_SIRENE_MIN_ROWS_RATIO = 0.5"
        " of the 9 rows of the stock served before it (dated 2026-02-01)"
    ) in failure_message(result)
    for name, rows in before.items():
        assert warehouse.read(TableRef("ingestion", name)).equals(rows), name
    assert set(warehouse.read(STOCKS)["partition_date"]) == {date(2026, 2, 1)}

    # The share is read when the run launches: 0.4 lets 4 of 9 rows through.
    monkeypatch.setenv("MA_SIRENE_MIN_ROWS_RATIO", "0.4")
    assert materialize(data_dir, warehouse_url).success
    assert stored(data_dir, warehouse_url=warehouse_url).height == 4


@pytest.mark.parametrize(("ratio", "success"), [("0.9", False), ("0", True), ("", True)])
def test_the_share_is_a_setting_and_zero_disables_the_check(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, ratio: str, success: bool
) -> None:
    _two_stocks(data_dir, newer_rows=5)  # 5 of 9: passes the default 0.5
    monkeypatch.setenv("MA_SIRENE_MIN_ROWS_RATIO", ratio)

    result = materialize(data_dir)

    assert result.success is success
    if success:
        assert stored(data_dir).height == 5
    else:
        assert "fewer than MA_SIRENE_MIN_ROWS_RATIO = 0.9" in failure_message(result)
        assert stored(data_dir).height == 9


def test_a_first_stock_is_not_compared_and_a_replaced_file_is_compared_to_its_old_version(
    data_dir: Path,
) -> None:
    path = data_dir / "landing" / "StockUniteLegale_2026-03-01.csv"
    write_csv(path, sample_rows()[:1])  # nothing before it: one row is a stock
    assert materialize(data_dir).success
    write_csv(path, sample_rows())
    assert materialize(data_dir).success
    write_csv(path, sample_rows()[:2])  # replaced in place by 2 rows of 9

    result = materialize(data_dir)

    assert "keeps 2 rows" in failure_message(result)
    assert stored(data_dir).height == 9
    assert pl.Series(stored(data_dir)["siren"]).n_unique() == 9


def test_a_backfill_compares_a_stock_with_the_one_it_stored_just_before(data_dir: Path) -> None:
    landing = data_dir / "landing"
    write_csv(landing / "StockUniteLegale_2026-02-01.csv", sample_rows())
    write_csv(landing / "StockUniteLegale_2026-03-01.csv", sample_rows()[:2])
    job = dg.Definitions(
        assets=[raw_companies], resources=make_resources(data_dir)
    ).resolve_implicit_global_asset_job_def()
    tags = {
        "dagster/asset_partition_range_start": "2026-02-02",
        "dagster/asset_partition_range_end": "2026-03-02",
    }

    result = job.execute_in_process(tags=tags, raise_on_error=False)

    assert "StockUniteLegale_2026-03-01.csv: keeps 2 rows" in failure_message(result)
    assert "of the 9 rows of the stock served before it (dated 2026-02-01)" in (
        failure_message(result)
    )
    stocks = connect_warehouse("", data_dir).read(STOCKS)
    assert set(stocks["partition_date"]) == {date(2026, 2, 1)}


def test_the_sandbox_is_not_compared_with_a_landing_file(data_dir: Path) -> None:
    assert materialize(data_dir, partition="2026-03-01").success  # the sandbox's universe
    assert stored(data_dir).height > 100
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-02.csv", sample_rows()[:3])

    result = materialize(data_dir, partition="2026-03-02")

    assert result.success
    assert stored(data_dir).filter(pl.col("partition_date") == date(2026, 3, 2)).height == 3
