"""INPI's financial ratios: the real recorded answer for DANONE (552032534, with its duplicated
years, consolidated and full accounts, a unit slip and zero net incomes), and the bulk CSV form."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.ingestion.assets import inpi_ratios
from ma_pipeline.ingestion.inpi_ratios import RatiosFileError, read_ratios
from ma_pipeline.warehouse import TableRef, Warehouse
from ma_pipeline_tests.conftest import make_resources

REAL = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "open_data"
    / "ratios_inpi_bce_ods_v1_search_siren_552032534.json"
)


def test_the_legal_entity_s_year_is_chosen_and_slips_are_flagged() -> None:
    rows = read_ratios([REAL])

    assert rows.height == 10 and set(rows["siren"]) == {"552032534"}
    chosen = rows.filter("chosen").select("annee", "type_bilan", "chiffre_d_affaires")
    assert chosen.rows() == [
        (2016, "K", 21_944_000_000.0),  # only the group's accounts are known that year
        (2018, "K", 24_812_000_000.0),
        (2019, "C", 593_000_000.0),  # full accounts win over the group's
        (2020, "C", 622_000_000.0),
        (2021, "C", 635_000_000.0),
        (2022, "C", 635_000_000.0),
        (2023, "C", 699_000_000.0),
    ]
    flagged = rows.filter(pl.col("implausible").is_not_null())
    assert flagged.select("date_cloture_exercice", "type_bilan", "implausible").rows() == [
        (date(2016, 12, 31), "K", "resultat_net 0"),
        (date(2019, 12, 31), "K", "chiffre_d_affaires x1000 off its neighbour years"),
        (date(2022, 12, 31), "K", "resultat_net 0"),
    ]
    row = rows.filter((pl.col("annee") == 2019) & (pl.col("type_bilan") == "C")).row(0, named=True)
    assert (row["resultat_net"], row["ebe"], row["taux_d_endettement"]) == (
        471_000_000.0,
        298_000_000.0,
        119.827,
    )
    assert row["confidentiality"] == "Public" and row["reference"].startswith("5a06ad53")


def test_the_bulk_csv_with_its_bom_and_capitalised_columns_reads_the_same(tmp_path: Path) -> None:
    bulk = tmp_path / "ratios_inpi_bce.csv"
    bulk.write_text(
        "\ufeffsiren;Chiffre_d_affaires;Resultat_net;date_cloture_exercice;type_bilan\n"
        "552032534;593000000;471000000;2019-12-31;C\n"
        "552032534;1;1;2020-12-31;S\n"
        "552032534;622000000;n/a;2020-12-31;S\n",  # the repeat wins; a bad number is null
        encoding="utf-8",
    )

    rows = read_ratios([bulk])

    assert rows.select("annee", "type_bilan", "chiffre_d_affaires", "resultat_net").rows() == [
        (2019, "C", 593_000_000.0, 471_000_000.0),
        (2020, "S", 622_000_000.0, None),
    ]
    assert rows["reference"].to_list() == ["ratios_inpi_bce.csv:2", "ratios_inpi_bce.csv:4"]


def test_a_file_without_the_key_columns_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "ratios_inpi_bad.csv"
    bad.write_text("siren;ca\n552032534;1\n")

    with pytest.raises(RatiosFileError, match=r"ratios_inpi_bad\.csv: no column"):
        read_ratios([bad])


def test_the_asset_stores_the_ratios_from_the_landing_folder(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    shutil.copy(REAL, data_dir / "landing" / "ratios_inpi_552032534.json")

    result = dg.materialize([inpi_ratios], resources=make_resources(data_dir, warehouse_url))

    assert result.success
    stored = warehouse.read(TableRef("open_data", "inpi_ratios"))
    assert stored.sort("date_cloture_exercice", "type_bilan").equals(read_ratios([REAL]))
    [event] = result.asset_materializations_for_node("open_data__inpi_ratios")
    assert event.metadata["implausible"].value == 3
