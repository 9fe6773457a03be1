"""BODACC notices: the real recorded answer in ``../shared/data/open_data/``, and constructed
notices (labelled as such) for what no real record shows: sales, cancellations, corrections,
several SIRENs, mojibake."""

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.ingestion.assets import bodacc
from ma_pipeline.ingestion.bodacc import (
    BodaccFileError,
    accounts_filed,
    current,
    events,
    procedures,
    read_notices,
    repaired,
)
from ma_pipeline.warehouse import TableRef, Warehouse
from ma_pipeline_tests.conftest import make_resources

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_data"
REAL = SHARED / "bodacc_ods_v1_search_registre_880878145.json"
BUYER, SELLER, OTHER, ABSORBED = "552032534", "833310592", "487444697", "423208180"


def person(siren: str, name: str) -> dict[str, Any]:
    spaced = f"{siren[:3]} {siren[3:6]} {siren[6:]}"
    return {
        "typePersonne": "pm",
        "denomination": name,
        "numeroImmatriculation": {"numeroIdentification": spaced, "codeRCS": "RCS"},
    }


def notice(id_: str, famille: str, registre: list[str], **fields: Any) -> dict[str, Any]:
    """A notice in the export's shape: JSON fields written as strings, registre doubled."""
    doubled = ",".join(f"{s},{s[:3]} {s[3:6]} {s[6:]}" for s in registre)
    return {
        "id": id_,
        "dateparution": fields.pop("dateparution", "2024-03-20"),
        "typeavis": fields.pop("typeavis", "annonce"),
        "familleavis": famille,
        "registre": doubled,
        **{k: json.dumps(v, ensure_ascii=False) for k, v in fields.items()},
    }


def previous(id_: str) -> dict[str, Any]:
    return {
        "nomPublication": f"BODACC {id_[0]}",
        "numeroParution": id_[1:9],
        "numeroAnnonce": int(id_[9:]),
    }


# CONSTRUCTED in the documented shape (OPEN_DATA.md §2.2): no real vente record was available.
CONSTRUCTED = [
    notice(
        "A20240055101",
        "vente",
        [BUYER, SELLER],
        listepersonnes={"personne": person(BUYER, "Acheteur")},
        listeprecedentproprietaire={"personne": person(SELLER, "Vendeur")},
        acte={
            "vente": {
                "categorieVente": "Achat d'un fonds par une personne morale",
                "dateEffet": "2024-03-01",
            }
        },
    ),
    notice("A20240055102", "vente", [BUYER], listepersonnes={"personne": person(BUYER, "B")}),
    notice(
        "A20240055103",
        "vente",
        [BUYER, SELLER, OTHER],
        listeprecedentexploitant={"personne": [person(SELLER, "V1"), person(OTHER, "V2")]},
    ),
    notice(
        "A20240055104",
        "vente",
        [BUYER, ABSORBED],
        listeprecedentproprietaire={"personne": person(ABSORBED, "Annulée")},
    ),
    notice(
        "A20240056101",
        "vente",
        [BUYER, ABSORBED],
        typeavis="annulation",
        parutionavisprecedent=previous("A20240055104"),
    ),
    notice(
        "B20240060101",
        "modification",
        [ABSORBED],
        modificationsgenerales={"descriptif": "Fusion-absorption par la société Acheteur."},
    ),
    notice(
        "B20240060102",
        "modification",
        [OTHER],
        modificationsgenerales={"descriptif": "Modification survenue sur l'administration."},
    ),
    notice(
        "A20240070101",
        "collective",
        [OTHER],
        jugement={
            "date": "2024-03-12",
            "famille": "Jugement de clÃ´ture",
            "nature": "ClÃ´ture pour insuffisance d'actif",
        },
    ),
    notice(
        "C20240080101",
        "dpc",
        [OTHER],
        depot={"dateCloture": "2022-12-31", "typeDepot": "Comptes annuels et rapports"},
    ),
    notice(
        "C20240080102",
        "dpc",
        [OTHER],
        typeavis="rectificatif",
        parutionavisprecedent=previous("C20240080101"),
        depot={"dateCloture": "2023-12-31", "typeDepot": "Comptes consolidés et rapports"},
    ),
]


@pytest.fixture
def constructed(tmp_path: Path) -> Path:
    path = tmp_path / "bodacc_constructed.jsonl"
    path.write_text("\n".join(json.dumps(n, ensure_ascii=False) for n in CONSTRUCTED) + "\n")
    return path


def test_the_real_recorded_notices_are_read_with_their_filings() -> None:
    standing = current(read_notices([REAL]))

    assert standing.sort("id")["id"].to_list() == ["B20220227446", "C202101554392", "C202200902528"]
    assert set(standing["familleavis"]) == {"radiation", "dpc"}
    assert standing["sirens"].to_list() == [["880878145"]] * 3  # "880878145,880 878 145"
    assert standing.filter(pl.col("id") == "B20220227446")["dateparution"][0] == date(2022, 11, 23)
    filed = accounts_filed(standing).sort("date_cloture")
    assert filed.rows() == [
        (
            "880878145",
            date(2020, 12, 31),
            "Comptes annuels et rapports",
            True,
            date(2021, 8, 11),
            "bodacc",
            "C202101554392",
        ),
        (
            "880878145",
            date(2021, 12, 31),
            "Comptes annuels et rapports",
            True,
            date(2022, 5, 8),
            "bodacc",
            "C202200902528",
        ),
    ]
    assert events(standing).events.is_empty() and procedures(standing).is_empty()


def test_a_sale_is_the_seller_s_event_and_cancelled_notices_are_not(constructed: Path) -> None:
    derived = events(current(read_notices([constructed])))

    assert derived.events.sort("reference", "siren").select(
        "siren", "event_date", "event_type", "reference"
    ).rows() == [
        (SELLER, date(2024, 3, 1), "cession", "A20240055101"),  # the dateEffet, not the buyer
        (OTHER, date(2024, 3, 20), "cession", "A20240055103"),  # several sellers, no dateEffet
        (SELLER, date(2024, 3, 20), "cession", "A20240055103"),
        (ABSORBED, date(2024, 3, 20), "fusion_absorption", "B20240060101"),
    ]
    assert set(derived.events["source"]) == {"bodacc"}
    assert derived.skipped == {"vente_without_seller": 1}  # A20240055002: nobody sold


def test_a_correction_replaces_its_notice_and_mojibake_is_repaired(constructed: Path) -> None:
    standing = current(read_notices([constructed]))

    assert accounts_filed(standing).select("date_cloture", "type_depot", "reference").rows() == [
        (date(2023, 12, 31), "Comptes consolidés et rapports", "C20240080102")
    ]
    assert procedures(standing).select("siren", "date_jugement", "famille", "nature").rows() == [
        (OTHER, date(2024, 3, 12), "Jugement de clôture", "Clôture pour insuffisance d'actif")
    ]
    assert repaired("déjà") == "déjà"  # correct text is left alone


def test_the_csv_export_reads_as_the_json_one(constructed: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "bodacc_export.csv"
    columns = sorted({key for n in CONSTRUCTED for key in n})
    pl.DataFrame([{c: n.get(c) for c in columns} for n in CONSTRUCTED]).write_csv(
        csv_path, separator=";"
    )

    from_csv = read_notices([csv_path]).drop("file")
    from_json = read_notices([constructed]).drop("file")

    assert from_csv.sort("id").equals(from_json.sort("id"))


def test_a_file_that_is_not_an_export_is_refused_by_name(tmp_path: Path) -> None:
    broken = tmp_path / "bodacc_broken.json"
    broken.write_text("{not json")
    undated = tmp_path / "bodacc_undated.jsonl"
    undated.write_text(json.dumps({"id": "A1", "familleavis": "vente"}) + "\n")

    with pytest.raises(BodaccFileError, match=r"bodacc_broken\.json: not a BODACC export"):
        read_notices([broken])
    with pytest.raises(BodaccFileError, match=r"bodacc_undated\.jsonl: 1 notice"):
        read_notices([undated])


def test_the_bodacc_asset_stores_notices_procedures_and_filings_without_names(
    constructed: Path, data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    shutil.copy(constructed, data_dir / "landing" / constructed.name)
    shutil.copy(REAL, data_dir / "landing" / "bodacc_880878145.json")

    result = dg.materialize([bodacc], resources=make_resources(data_dir, warehouse_url))

    assert result.success
    stored = warehouse.read(TableRef("open_data", "bodacc_notices"))
    assert stored.height == len(CONSTRUCTED) + 3
    gone = {"A20240055104", "A20240056101", "C20240080101"}  # cancelled, cancelling, corrected
    assert set(stored.filter(~pl.col("standing"))["id"]) == gone
    assert "Vendeur" not in str(stored.rows())  # no person's name kept
    filed = warehouse.read(TableRef("open_data", "bodacc_accounts_filed"))
    assert sorted(filed["reference"]) == ["C202101554392", "C202200902528", "C20240080102"]
    assert warehouse.read(TableRef("open_data", "bodacc_procedures"))["siren"].to_list() == [OTHER]


def test_the_bodacc_asset_without_an_export_fails_and_says_where_to_put_one(
    data_dir: Path,
) -> None:
    result = dg.materialize([bodacc], resources=make_resources(data_dir), raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "no bodacc*.csv" in (failure.step_failure_data.user_failure_data.description or "")
