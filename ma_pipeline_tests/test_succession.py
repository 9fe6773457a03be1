"""SIRENE succession links as candidate transfers between legal units. No real file was recorded:
the rows are constructed with INSEE's column names (OPEN_DATA.md §3)."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from ma_pipeline.ingestion.assets import succession_candidates
from ma_pipeline.ingestion.succession import SuccessionFileError, candidates
from ma_pipeline.warehouse import TableRef, Warehouse
from ma_pipeline_tests.conftest import make_resources

A, B, C = "552032534", "833310592", "487444697"  # valid SIRENs of the recorded answers
HEADER = (
    "siretEtablissementPredecesseur,siretEtablissementSuccesseur,dateLienSuccession,"
    "transfertSiege,continuiteEconomique,dateDernierTraitementLienSuccession\n"
)
LINKS = (
    f"{A}00011,{B}00017,2024-05-01,false,true,2024-05-03\n"  # another unit, activity goes on
    f"{A}00011,{B}00017,2024-05-01,false,true,2024-05-03\n"  # the same link twice
    f"{A}00029,{A}00037,2024-06-01,false,true,2024-06-02\n"  # within the unit
    f"{C}00015,{B}00025,2024-07-01,true,true,2024-07-02\n"  # a head office moving
    f"{C}00023,{B}00033,2024-08-01,N,N,2024-08-02\n"  # no economic continuity (O/N flags)
    f"{C}00031,{A}00045,2024-09-01,N,O,2024-09-02\n"  # O/N flags, a candidate
)


def test_only_transfers_to_another_unit_that_carry_on_the_business_are_candidates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "StockEtablissementLiensSuccession_utf8.csv"
    path.write_text(HEADER + LINKS)

    found = candidates([path])

    assert found.sort("siren").select("siren", "successor_siren", "event_date").rows() == [
        (C, A, date(2024, 9, 1)),  # sorted by SIREN: 487... before 552...
        (A, B, date(2024, 5, 1)),
    ]
    assert set(found["source"]) == {"sirene_succession"}
    assert f"{A}00011 > {B}00017" in found["reference"].to_list()


def test_a_file_without_the_link_columns_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "StockEtablissementLiensSuccession_bad.csv"
    path.write_text("siret,date\n1,2\n")

    with pytest.raises(SuccessionFileError, match=r"StockEtablissementLiensSuccession_bad\.csv"):
        candidates([path])


def test_the_asset_stores_the_candidates(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    (data_dir / "landing" / "StockEtablissementLiensSuccession_utf8.csv").write_text(HEADER + LINKS)

    result = dg.materialize(
        [succession_candidates], resources=make_resources(data_dir, warehouse_url)
    )

    assert result.success
    stored = warehouse.read(TableRef("open_data", "succession_candidates")).sort("siren")
    assert stored.select("siren", "successor_siren").rows() == [(C, A), (A, B)]
