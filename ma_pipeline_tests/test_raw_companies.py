"""raw_companies: the real SIRENE sample, every bad input's documented outcome, the sandbox."""

import gzip
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest

from ma_pipeline.contracts.siren import (
    siren_blocks,
    siren_problem,
    siren_problem_expr,
    with_check_digit,
    with_check_digits,
)
from ma_pipeline.contracts.sirene import INSEE_COLUMNS
from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline.reference import naf_hierarchy
from ma_pipeline.warehouse import TableRef, connect_warehouse
from ma_pipeline_tests.conftest import SANDBOX_UNITS, SIRENE_SAMPLE, make_resources

COMPANIES = TableRef("ingestion", "raw_companies")
REJECTED = TableRef("ingestion", "raw_companies_rejected")
DAY = "2026-03-02"


def sample_rows() -> list[dict[str, str | None]]:
    return pl.read_csv(SIRENE_SAMPLE, infer_schema=False).to_dicts()


def write_csv(
    path: Path,
    rows: list[dict[str, str | None]],
    *,
    header: list[str] | None = None,
    encoding: str = "utf-8",
    blank_lines: int = 0,
) -> Path:
    header = header or list(rows[0])
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(f'"{row[c]}"' if row[c] else "" for c in INSEE_COLUMNS))
        lines.extend([""] * blank_lines)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def materialize(
    data_dir: Path, warehouse_url: str = "", partition: str = DAY
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_companies],
        resources=make_resources(data_dir, warehouse_url),
        partition_key=partition,
        raise_on_error=False,
    )


def stored(data_dir: Path, table: TableRef = COMPANIES, warehouse_url: str = "") -> pl.DataFrame:
    return connect_warehouse(warehouse_url, data_dir).read(table)


def metadata(result: dg.ExecuteInProcessResult, output: str = "raw_companies") -> dict:
    # A multi-day run emits one event per partition, all with the run's metadata.
    events = result.get_asset_materialization_events()
    event = next(e for e in events if e.asset_key.path[-1] == output)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return str(failure.step_failure_data.error)


def test_the_real_sirene_sample_keeps_every_valid_row(data_dir: Path, warehouse_url: str) -> None:
    shutil.copy(SIRENE_SAMPLE, data_dir / "landing")

    result = materialize(data_dir, warehouse_url)

    assert result.success
    companies = stored(data_dir, warehouse_url=warehouse_url)
    assert companies.height == 9
    assert set(companies["partition_date"]) == {date(2026, 3, 2)}
    row = companies.filter(pl.col("siren") == "017051186").row(0, named=True)
    assert row["nom_entreprise"] == "PENNEQUIN INVEST"
    assert row["date_creation"] == date(1970, 1, 1)
    assert row["activite_principale"] == "43.12B"
    assert row["activite_principale_naf25"] == "66.30Y"
    assert row["tranche_effectifs"] == "21" and row["categorie_juridique"] == "5499"
    assert companies.filter(pl.col("siren") == "057808172")["etat_administratif"].item() == "C"
    info = metadata(result)
    assert info["source"] == SIRENE_SAMPLE.name
    assert (info["rows_read"], info["kept"], info["rejected"]) == (9, 9, 0)


def test_a_partition_dated_before_every_landing_file_fails_clearly(data_dir: Path) -> None:
    shutil.copy(SIRENE_SAMPLE, data_dir / "landing")  # dated 2026 by its name: 2026-01-01

    result = materialize(data_dir, partition="2025-12-31")

    assert "no SIRENE file in" in failure_message(result)
    assert "dated on or before 2025-12-31" in failure_message(result)


def test_the_newest_file_dated_on_or_before_the_partition_is_used(data_dir: Path) -> None:
    rows = sample_rows()
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-02-01.csv", rows[:3])
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows[:5])
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-04-01.csv", rows)

    result = materialize(data_dir, partition="2026-03-15")

    assert metadata(result)["source"] == "StockUniteLegale_2026-03-01.csv"
    assert stored(data_dir).height == 5


def test_gzipped_csv_and_parquet_files_are_read(data_dir: Path) -> None:
    rows = sample_rows()
    landing = data_dir / "landing"
    (landing / "StockUniteLegale_20260201.csv.gz").write_bytes(
        gzip.compress(SIRENE_SAMPLE.read_bytes())
    )
    # 5 of 9 rows: above the share of the stock before it a stock must keep (0.5 by default).
    pl.DataFrame(rows[:5]).write_parquet(landing / "StockUniteLegale_20260301.parquet")

    assert materialize(data_dir, partition="2026-02-10").success
    assert stored(data_dir).height == 9
    assert materialize(data_dir, partition="2026-03-10").success
    assert stored(data_dir).filter(pl.col("partition_date") == date(2026, 3, 10)).height == 5


def test_a_bad_check_digit_is_rejected_with_its_reason(data_dir: Path) -> None:
    rows = sample_rows()
    rows[0]["siren"] = "016750698"  # last digit changed
    rows[1]["siren"] = "1234"
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows)

    result = materialize(data_dir)

    assert result.success
    assert stored(data_dir).height == 7
    rejected = stored(data_dir, REJECTED).sort("row_number")
    assert rejected["siren"].to_list() == ["016750698", "1234"]
    assert rejected["reason"].to_list() == ["invalid_siren", "invalid_siren"]
    assert rejected["detail"].to_list() == [
        "siren '016750698' check digit is wrong (Luhn)",
        "siren '1234' must be 9 digits",
    ]
    assert '"denominationUniteLegale":"ETS J VIRLY S A"' in rejected["raw"][0]
    assert metadata(result)["rejected_by_reason"] == {"invalid_siren": 2}


def test_a_missing_column_fails_naming_file_and_column_and_keeps_stored_data(
    data_dir: Path,
) -> None:
    shutil.copy(SIRENE_SAMPLE, data_dir / "landing")
    assert materialize(data_dir).success
    header = [
        c for c in INSEE_COLUMNS if c not in ("etatAdministratifUniteLegale", "nicSiegeUniteLegale")
    ]
    bad = pl.read_csv(SIRENE_SAMPLE, infer_schema=False).select(header)
    bad.write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv")

    result = materialize(data_dir)

    assert (
        "StockUniteLegale_2026-03-01.csv: missing required column(s):"
        " etatAdministratifUniteLegale, nicSiegeUniteLegale"
    ) in failure_message(result)
    assert stored(data_dir).height == 9  # the partition written before is still there


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (",".join(INSEE_COLUMNS).encode() + b"\n", "the file has no data rows"),
    ],
)
def test_an_empty_file_fails_with_its_reason(data_dir: Path, content: bytes, message: str) -> None:
    (data_dir / "landing" / "StockUniteLegale_2026-03-01.csv").write_bytes(content)

    result = materialize(data_dir)

    assert f"StockUniteLegale_2026-03-01.csv: {message}" in failure_message(result)


def test_a_latin1_file_is_decoded_and_reported(data_dir: Path) -> None:
    rows = sample_rows()
    rows[0]["denominationUniteLegale"] = "SOCIÉTÉ DES ŒUVRES"
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows, encoding="cp1252")

    result = materialize(data_dir)

    assert result.success
    names = stored(data_dir)["nom_entreprise"].to_list()
    assert "SOCIÉTÉ DES ŒUVRES" in names
    assert metadata(result)["decoded_as"] == {"StockUniteLegale_2026-03-01.csv": "cp1252"}


def test_duplicate_sirens_keep_the_latest_processed_row(data_dir: Path) -> None:
    rows = sample_rows()
    older = {
        **rows[0],
        "denominationUniteLegale": "OLD NAME",
        "dateDernierTraitementUniteLegale": "2020-01-01T00:00:00",
    }
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", [older, *rows])

    result = materialize(data_dir)

    companies = stored(data_dir)
    assert companies.height == 9
    assert companies.filter(pl.col("siren") == rows[0]["siren"])["nom_entreprise"].item() == (
        "ETS J VIRLY S A"
    )
    rejected = stored(data_dir, REJECTED)
    assert rejected.select("siren", "reason", "row_number").rows() == [
        (rows[0]["siren"], "duplicate_siren", 1)
    ]
    assert metadata(result)["rejected_by_reason"] == {"duplicate_siren": 1}


def test_blank_lines_are_skipped_and_counted(data_dir: Path) -> None:
    write_csv(
        data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows(), blank_lines=1
    )

    result = materialize(data_dir)

    assert stored(data_dir).height == 9
    assert stored(data_dir, REJECTED).height == 0
    assert (metadata(result)["blank_lines"], metadata(result)["rows_read"]) == (9, 18)


def test_header_names_with_stray_spaces_are_read(data_dir: Path) -> None:
    header = [f" {c}  " if i % 3 == 0 else c for i, c in enumerate(INSEE_COLUMNS)]
    write_csv(
        data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows(), header=header
    )

    assert materialize(data_dir).success
    assert stored(data_dir).height == 9


def test_a_row_with_extra_fields_is_rejected_with_its_count_and_line(data_dir: Path) -> None:
    """It used to fail the whole file; ma_pipeline_tests/test_sirene_bad_files.py has more."""
    path = write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows())
    path.write_text(path.read_text() + "1,2," + ",".join(["x"] * 40) + "\n")

    result = materialize(data_dir)

    assert result.success and stored(data_dir).height == 9
    assert stored(data_dir, REJECTED).select("row_number", "reason", "detail").rows() == [
        (10, "too_many_fields", "42 fields where the header has 35 (line 11)")
    ]


def _unclosed_quote(text: str) -> str:
    lines = text.splitlines()
    return "\n".join([*lines[:3], '"unclosed,' + lines[3], *lines[4:]]) + "\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "StockUniteLegale_2026-03-01.csv.gz",
            lambda sample: gzip.compress(sample)[:300],
            "not a complete gzip file (Compressed file ended before the end-of-stream marker",
        ),
        (
            "StockUniteLegale_2026-03-01.csv.gz",
            lambda sample: sample,
            "not a complete gzip file (Not a gzipped file",
        ),
        (
            "StockUniteLegale_2026-03-01.parquet",
            lambda sample: b"PAR1" + sample[:500],
            "not a readable Parquet file",
        ),
        (
            "StockUniteLegale_2026-03-01.csv",
            lambda sample: _unclosed_quote(sample.decode()).encode(),
            'a field cannot be parsed, often an unclosed quote, near: `"unclosed,',
        ),
        (
            "StockUniteLegale_2026-03-01.csv",
            lambda sample: sample.replace(b",", b";"),
            "the header is read as one column: its fields are separated by ';', not by ','",
        ),
    ],
    ids=["truncated_gzip", "plain_csv_named_gz", "corrupt_parquet", "unclosed_quote", "semicolons"],
)
def test_a_bad_file_fails_naming_it_and_the_problem_in_a_line_and_keeps_stored_data(
    data_dir: Path, name: str, content: Any, message: str
) -> None:
    shutil.copy(SIRENE_SAMPLE, data_dir / "landing" / "StockUniteLegale_2026-02-01.csv")
    assert materialize(data_dir).success
    (data_dir / "landing" / name).write_bytes(content(SIRENE_SAMPLE.read_bytes()))

    result = materialize(data_dir, partition="2026-03-02")

    error = failure_message(result)
    assert f"{name}: {message}" in error
    reported = next(line for line in error.splitlines() if name in line)
    assert len(reported) < 400  # never the rest of the file
    assert stored(data_dir).height == 9  # the day written before is still there


def test_a_typed_parquet_stock_keeps_its_leading_zeros_and_dates(data_dir: Path) -> None:
    """SIREN and NIC stored as integers, dates as dates: read back as INSEE writes them."""
    text = pl.read_csv(SIRENE_SAMPLE, infer_schema=False)
    typed = text.with_columns(
        pl.col("siren", "nicSiegeUniteLegale").cast(pl.Int64),
        pl.col("dateCreationUniteLegale").str.to_date(),
        pl.col("dateDernierTraitementUniteLegale").str.to_datetime("%Y-%m-%dT%H:%M:%S"),
    )
    assert typed["siren"].cast(pl.String).str.len_chars().min() < 9  # zeros were lost
    typed.write_parquet(data_dir / "landing" / "StockUniteLegale_2026-03-01.parquet")

    result = materialize(data_dir)

    assert result.success and stored(data_dir).height == 9
    assert set(stored(data_dir)["siren"]) == set(text["siren"])


def test_a_file_whose_every_row_is_rejected_fails_instead_of_keeping_nothing(
    data_dir: Path,
) -> None:
    rows = sample_rows()
    for row in rows:
        row["siren"] = row["siren"][1:]  # 8 digits: what a spreadsheet leaves of a SIREN
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows)

    result = materialize(data_dir)

    assert not result.success
    assert (
        "StockUniteLegale_2026-03-01.csv: every one of its 9 rows was rejected (invalid_siren 9)"
    ) in failure_message(result)


def test_missing_values_and_unparsable_dates_are_rejected(data_dir: Path) -> None:
    rows = sample_rows()
    rows[0]["etatAdministratifUniteLegale"] = None
    rows[1]["etatAdministratifUniteLegale"] = "X"
    rows[2]["categorieJuridiqueUniteLegale"] = None
    rows[3]["dateCreationUniteLegale"] = "1967-13-45"
    rows[4]["siren"] = None
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", rows)

    materialize(data_dir)

    reasons = stored(data_dir, REJECTED).sort("row_number").select("reason", "detail").rows()
    assert reasons == [
        ("missing_etat_administratif", "etat_administratif is empty"),
        ("invalid_etat_administratif", "etat_administratif 'X' is not A or C"),
        ("missing_categorie_juridique", "categorie_juridique is empty"),
        ("invalid_date_creation", "dateCreationUniteLegale '1967-13-45' is not a valid date"),
        ("missing_siren", "siren is empty"),
    ]
    assert stored(data_dir).height == 4


def test_la_poste_siren_is_valid() -> None:
    assert siren_problem("356000000") is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("443061841", None),
        ("443061842", "check digit is wrong (Luhn)"),
        ("44306184", "must be 9 digits"),
        ("443 061 841", "must be 9 digits"),
        ("44306184\u00b9", "must be 9 digits"),  # superscript one: a digit to str.isdigit
        ("\u0664\u0664\u0663\u0660\u0666\u0661\u0668\u0664\u0661", "must be 9 digits"),
        ("", "missing"),
        (None, "missing"),
    ],
)
def test_siren_problem_names_what_is_wrong(value: str | None, problem: str | None) -> None:
    assert siren_problem(value) == problem
    column = pl.DataFrame({"siren": [value]}, schema={"siren": pl.String})
    assert column.select(siren_problem_expr("siren")).item() == problem  # the vectorised rule


def test_the_vectorised_siren_check_agrees_with_the_scalar_one() -> None:
    """Every 9-digit body with each of its ten last digits, and malformed values."""
    bodies = [f"{n:08d}" for n in range(0, 100_000_000, 997_651)]
    values = [b + str(d) for b in bodies for d in range(10)] + [
        "",
        "12345678",
        "1234567890",
        "12a456789",
    ]
    expected = [siren_problem(v) for v in values]
    frame = pl.DataFrame({"siren": values})
    assert frame.select(siren_problem_expr("siren")).to_series().to_list() == expected


def test_the_sandbox_universe_is_deterministic_valid_and_moves_daily(data_dir: Path) -> None:
    def day(partition: str) -> pl.DataFrame:
        assert materialize(data_dir, partition=partition).success
        return stored(data_dir).filter(pl.col("partition_date") == date.fromisoformat(partition))

    first, again = day("2026-06-01"), day("2026-06-01")
    assert first.equals(again)
    assert metadata(materialize(data_dir, partition="2026-06-01"))["source"] == "sandbox"

    later = day("2026-09-01")
    assert set(later["siren"]) > set(first["siren"])  # creations, and nobody disappears
    ceased = (later["etat_administratif"] == "C").sum() - (first["etat_administratif"] == "C").sum()
    assert ceased > 0  # cessations
    active = first.filter(pl.col("etat_administratif") == "A")
    assert 0.9 * SANDBOX_UNITS <= active.height <= 1.1 * SANDBOX_UNITS  # as make_resources asks
    # The stock's mix, so that every target rule has units to drop: more than half sole traders,
    # associations and public bodies, units not diffusible, unknown headcounts.
    forms = active["categorie_juridique"].value_counts(normalize=True)
    share = dict(zip(forms["categorie_juridique"], forms["proportion"], strict=True))
    assert share["1000"] > 0.5 and share["9220"] > 0.03 and share["7210"] > 0
    assert 0.05 < (active["statut_diffusion"] == "P").mean() < 0.2
    assert active["tranche_effectifs"].null_count() > active.height / 2
    assert all(siren_problem(s) is None for s in later["siren"])
    assert set(later["activite_principale"]) <= set(naf_hierarchy()["code_sous_classe"])
    assert later["siren"].is_unique().all()


def test_a_single_run_backfill_writes_each_day(data_dir: Path) -> None:
    job = dg.Definitions(
        assets=[raw_companies], resources=make_resources(data_dir)
    ).resolve_implicit_global_asset_job_def()

    result = job.execute_in_process(
        tags={
            "dagster/asset_partition_range_start": "2026-06-01",
            "dagster/asset_partition_range_end": "2026-06-03",
        }
    )

    assert len(result.get_step_success_events()) == 1
    counts = stored(data_dir).group_by("partition_date").len().sort("partition_date")
    assert counts["partition_date"].to_list() == [date(2026, 6, d) for d in (1, 2, 3)]
    assert metadata(result)["kept"] == counts["len"].sum()


def test_with_check_digit_makes_valid_sirens() -> None:
    assert with_check_digit("44306184") == "443061841"


def test_check_digits_of_whole_arrays_match_the_one_at_a_time_function() -> None:
    """The sandbox and the bench generate millions of SIRENs and SIRETs this way."""
    rng = np.random.default_rng(3)
    for width in (8, 13):
        bodies = rng.integers(0, 10**width, 2_000)
        made = with_check_digits(bodies, width)
        assert made.tolist() == [with_check_digit(f"{b:0{width}d}") for b in bodies]
    assert with_check_digits(np.array([44306184, 0]), 8).tolist() == ["443061841", "000000000"]


def test_siren_blocks_cut_a_universe_in_order_into_blocks_of_at_most_the_size_asked() -> None:
    """Clustered, unsorted, repeated SIRENs: every one falls in exactly one block."""
    sirens = pl.Series([f"{100_000_000 + i:09d}" for i in (5, 3, 3, 9, 1, 7, 2)])

    blocks = siren_blocks(sirens, 3)

    assert blocks == [("100000001", "100000003"), ("100000005", "100000009")]
    assert len(siren_blocks(sirens, 1)) == 6 and len(siren_blocks(sirens, 100)) == 1
    assert siren_blocks(pl.Series([], dtype=pl.String), 3) == [("000000000", "999999999")]


STOCKS = TableRef("ingestion", "sirene_stocks")


def backfill(data_dir: Path, first: str, last: str, warehouse_url: str = "") -> None:
    job = dg.Definitions(
        assets=[raw_companies], resources=make_resources(data_dir, warehouse_url)
    ).resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    assert job.execute_in_process(tags=tags).success


def universe_on(data_dir: Path, day: str, warehouse_url: str = "") -> list[str]:
    on = date.fromisoformat(day)
    rows = connect_warehouse(warehouse_url, data_dir).read(COMPANIES, start=on, end=on)
    return sorted(rows["siren"])


def test_each_day_is_the_newest_file_on_or_before_it_even_a_late_one(
    data_dir: Path, warehouse_url: str
) -> None:
    rows = sample_rows()
    landing = data_dir / "landing"
    first, second, late = rows[:4], rows[2:7], rows[5:]  # overlapping, with known differences
    write_csv(landing / "StockUniteLegale_2026-03-01.csv", first)
    write_csv(landing / "StockUniteLegale_2026-03-10.csv", second)
    backfill(data_dir, "2026-03-02", "2026-03-12", warehouse_url)

    sirens = {name: sorted(r["siren"] for r in part) for name, part in [
        ("first", first), ("second", second), ("late", late)]}  # fmt: skip
    assert universe_on(data_dir, "2026-03-05", warehouse_url) == sirens["first"]
    assert universe_on(data_dir, "2026-03-11", warehouse_url) == sirens["second"]

    # A file dated 2026-03-07 lands afterwards: re-running those days places it at its date.
    write_csv(landing / "StockUniteLegale_2026-03-07.csv", late)
    backfill(data_dir, "2026-03-02", "2026-03-12", warehouse_url)

    assert universe_on(data_dir, "2026-03-06", warehouse_url) == sirens["first"]
    assert universe_on(data_dir, "2026-03-07", warehouse_url) == sirens["late"]
    assert universe_on(data_dir, "2026-03-09", warehouse_url) == sirens["late"]
    assert universe_on(data_dir, "2026-03-10", warehouse_url) == sirens["second"]
    warehouse = connect_warehouse(warehouse_url, data_dir)
    stored = warehouse.read(STOCKS).group_by("partition_date").len().sort("partition_date")
    assert stored.rows() == [(date(2026, 3, 1), 4), (date(2026, 3, 7), 4), (date(2026, 3, 10), 5)]


def test_a_file_is_stored_once_however_many_days_it_serves(data_dir: Path) -> None:
    write_csv(data_dir / "landing" / "StockUniteLegale_2026-03-01.csv", sample_rows())
    warehouse = connect_warehouse("", data_dir)

    backfill(data_dir, "2026-03-02", "2026-03-02")
    stock = warehouse.read(STOCKS)
    backfill(data_dir, "2026-03-03", "2026-03-31")  # 29 more days from the same file
    again = materialize(data_dir, partition="2026-03-02")  # and a re-run of the first

    assert again.success and metadata(again)["stocks_reused"] == 1
    assert warehouse.read(STOCKS).equals(stock)  # re-ingesting the file changed nothing
    assert warehouse.read(COMPANIES).height == 30 * stock.height  # every day reads it
    assert warehouse.read(TableRef("ingestion", "raw_companies_days")).height == 30


def test_a_file_replaced_in_place_is_read_again(data_dir: Path) -> None:
    path = data_dir / "landing" / "StockUniteLegale_2026-03-01.csv"
    write_csv(path, sample_rows()[:3])
    assert materialize(data_dir).success
    write_csv(path, sample_rows())  # same name, new content

    result = materialize(data_dir)

    assert metadata(result)["stocks_ingested"] == 1
    assert stored(data_dir).height == len(sample_rows())
