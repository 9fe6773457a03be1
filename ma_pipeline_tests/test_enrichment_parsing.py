"""Parsing Pappers answers: the real GOOGLE FRANCE sample yields the documented rows."""

import json
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from ma_pipeline.enrichment.pappers import parse_company, parse_entreprise
from ma_pipeline.enrichment.records import (
    COMPANY_SCHEMA,
    DIRIGEANT_SCHEMA,
    FINANCE_SCHEMA,
    TABLES,
    birth,
    naf,
    partition_tables,
)
from ma_pipeline_tests.conftest import PAPPERS_SAMPLE, TEST_DATA

FETCHED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def sample() -> dict[str, Any]:
    return json.loads(PAPPERS_SAMPLE.read_text(encoding="utf-8"))


def tables(payload: dict[str, Any], day: date) -> dict[str, pl.DataFrame]:
    record = parse_entreprise(payload, fetched_at=FETCHED)
    by_day = pl.DataFrame({"partition_date": [day], "siren": [payload["siren"]]})
    return partition_tables([record], by_day, source="pappers")


def test_the_company_row_of_the_real_sample(sample: dict[str, Any]) -> None:
    [company] = tables(sample, date(2021, 6, 30))["pappers_companies"].to_dicts()
    assert company == {
        "partition_date": date(2021, 6, 30),
        "siren": "443061841",
        "nom_entreprise": "GOOGLE FRANCE",
        "denomination": "GOOGLE FRANCE",
        "sigle": None,
        "personne_morale": True,
        "diffusable": True,
        "code_naf": "70.10Z",
        "libelle_code_naf": "Activités des sièges sociaux",
        "categorie_juridique": "5499",  # Pappers' EURL 5498, as SIRENE codes it
        "categorie_juridique_pappers": "5498",
        "forme_juridique": "EURL, entreprise unipersonnelle à responsabilité limitée",
        "capital": 1_000_000.0,
        "devise_capital": "Euros",
        "tranche_effectif": "41",
        "effectif": "Entre 500 et 999 salariés",
        "effectif_min": 500,
        "effectif_max": 999,
        "annee_effectif": 2018,
        "entreprise_employeuse": True,
        "statut_rcs": "Inscrit",
        "statut_consolide": None,
        "entreprise_cessee": False,
        "date_creation": date(2002, 5, 16),
        "date_cessation": None,
        "date_immatriculation_rcs": date(2002, 8, 14),
        "date_radiation_rcs": None,
        "date_cloture_exercice": "31 Décembre",
        "prochaine_date_cloture_exercice": date(2021, 12, 31),
        "associe_unique": True,
        "economie_sociale_solidaire": True,
        "societe_a_mission": None,
        "numero_tva_intracommunautaire": "FR64443061841",
        "siege_siret": "44306184100047",
        "siege_adresse": "8 RUE DE LONDRES",
        "siege_code_postal": "75009",
        "siege_ville": "PARIS 9",
        "siege_code_commune": None,  # the 2021 answer predates these v2.20 fields
        "siege_code_departement": None,
        "siege_departement": None,
        "siege_code_region": None,
        "siege_region": None,
        "siege_latitude": None,
        "siege_longitude": None,
        "procedure_collective_existe": False,
        "procedure_collective_en_cours": False,
        "derniere_mise_a_jour_sirene": date(2021, 6, 19),
        "derniere_mise_a_jour_rcs": None,
        "dernier_traitement": date(2021, 1, 6),
        "partial": False,
        "fetched_at": FETCHED,
        "source": "pappers",
    }


def test_the_finances_of_the_real_sample(sample: dict[str, Any]) -> None:
    finances = tables(sample, date(2021, 6, 30))["pappers_finances"]
    assert finances.columns == ["partition_date", *FINANCE_SCHEMA, "fetched_at", "source"]
    rows = finances.select(
        "annee",
        "date_de_cloture_exercice",
        "duree_exercice",
        "chiffre_affaires",
        "resultat",
        "effectif",
    ).sort("annee", descending=True)
    assert rows.rows() == [
        (2019, date(2019, 12, 31), 12, 483_033_598, -539_868_050, 859),
        (2018, date(2018, 12, 31), 12, 411_016_329, 29_327_087, 723),
        (2017, date(2017, 12, 31), 12, 325_554_124, 25_535_981, 639),
        (2016, date(2016, 12, 31), 12, 299_301_917, 24_925_482, 612),
        (2015, date(2015, 12, 31), 12, 247_938_438, 12_213_072, 584),
    ]
    # No field of the sample is lost; its accounts carry no ratio, so every ratio is null.
    sample_keys = {key.lower() for item in sample["finances"] for key in item}
    assert sample_keys <= set(finances.columns)
    ratios = [c for c in FINANCE_SCHEMA if c not in sample_keys and c != "siren"]
    assert finances.select(ratios).null_count().row(0) == tuple([5] * len(ratios))


def test_the_dirigeants_of_the_real_sample(sample: dict[str, Any]) -> None:
    dirigeants = tables(sample, date(2021, 6, 30))["pappers_dirigeants"].sort("rang")
    assert dirigeants.columns == [
        "partition_date",
        *DIRIGEANT_SCHEMA,
        "age",
        "fetched_at",
        "source",
    ]
    rows = dirigeants.select(
        "rang",
        "personne_morale",
        "qualite",
        "qualites",
        "commissaire_aux_comptes",
        "nom_complet",
        "date_de_naissance",
        "annee_naissance",
        "age",
        "date_prise_de_poste",
        "siren_personne_morale",
    ).rows()
    assert rows == [
        (1, False, "Gérant", ["Gérant"], False, "Kenneth H. Yi", date(1970, 1, 6), 1970, 51,
         date(2017, 8, 3), None),
        (2, False, "Gérant", ["Gérant"], False, "Paul Manicle", date(1975, 10, 3), 1975, 45,
         date(2019, 6, 5), None),
        (3, True, "Commissaire aux comptes titulaire", ["Commissaire aux comptes titulaire"],
         True, "ERNST & YOUNG ET AUTRES", None, None, None, date(2018, 3, 21), "438476913"),
        (4, True, "Commissaire aux comptes suppléant", ["Commissaire aux comptes suppléant"],
         True, "AUDITEX", None, None, None, date(2016, 10, 4), "377652938"),
    ]  # fmt: skip


def test_age_is_computed_at_each_partition_date(sample: dict[str, Any]) -> None:
    """Kenneth H. Yi was born on 6 January 1970."""
    before = tables(sample, date(2021, 1, 5))["pappers_dirigeants"].row(0, named=True)
    on = tables(sample, date(2021, 1, 6))["pappers_dirigeants"].row(0, named=True)
    assert (before["age"], on["age"]) == (50, 51)


def test_the_real_sample_has_no_procedure(sample: dict[str, Any]) -> None:
    assert tables(sample, date(2021, 6, 30))["pappers_procedures"].is_empty()


def test_v2_20_roles_legal_forms_naf_and_procedures(sample: dict[str, Any]) -> None:
    """A newer answer: roles only as a list, SASU 5720, NAF without its dot, a procedure."""
    payload = sample | {
        "categorie_juridique": "5720",
        "code_naf": "7010Z",
        "entreprise_cessee": 0,
        "procedure_collective_existe": 1,
        "procedures_collectives": [
            {"type": "Redressement judiciaire", "date_debut": "2020-03-02", "date_fin": None}
        ],
        "representants": [
            {
                "qualites": ["Président", "Directeur général"],
                "personne_morale": False,
                "nom": "DUPONT",
                "date_de_naissance": "1958-07",
                "date_prise_de_poste": "2001-01-01",
            }
        ],
    }
    out = tables(payload, date(2023, 7, 15))
    company = out["pappers_companies"].row(0, named=True)
    assert (company["categorie_juridique"], company["categorie_juridique_pappers"]) == (
        "5710",
        "5720",
    )
    assert company["code_naf"] == "70.10Z"
    assert company["entreprise_cessee"] is False and company["procedure_collective_existe"] is True
    dirigeant = out["pappers_dirigeants"].row(0, named=True)
    assert dirigeant["qualite"] == "Président"
    assert dirigeant["qualites"] == ["Président", "Directeur général"]
    assert (dirigeant["date_de_naissance"], dirigeant["annee_naissance"]) == (None, 1958)
    assert dirigeant["age"] == 65  # born in July 1958: 65 on 15 July 2023
    procedure = out["pappers_procedures"].row(0, named=True)
    assert (procedure["type"], procedure["date_debut"], procedure["date_fin"]) == (
        "Redressement judiciaire",
        date(2020, 3, 2),
        None,
    )


def test_zero_one_integers_of_the_real_search_sample_become_booleans() -> None:
    result = json.loads((TEST_DATA / "pappers_v2_recherche.json").read_text())["resultats"][0]
    assert (result["entreprise_cessee"], result["entreprise_employeuse"]) == (0, 1)
    company = parse_company(result, partial=False, fetched_at=FETCHED)
    assert company["entreprise_cessee"] is False
    assert company["entreprise_employeuse"] is True
    assert set(company) == set(COMPANY_SCHEMA)


@pytest.mark.parametrize(
    ("given", "formatted", "expected"),
    [
        ("1970-01-06", None, (date(1970, 1, 6), 1970, 1)),
        (None, "06/01/1970", (date(1970, 1, 6), 1970, 1)),
        ("1970-01", None, (None, 1970, 1)),
        (None, "01/1970", (None, 1970, 1)),
        ("1970", None, (None, 1970, None)),
        ("", None, (None, None, None)),
    ],
)
def test_birth_dates_with_and_without_the_day(
    given: str | None, formatted: str | None, expected: tuple[date | None, int | None, int | None]
) -> None:
    assert birth(given, formatted) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("62.01Z", "62.01Z"),
        ("6201Z", "62.01Z"),
        ("6201z", "62.01Z"),
        ("22.02", "22.02"),
        (None, None),
    ],
)
def test_naf_codes_are_written_with_their_dot(code: str | None, expected: str | None) -> None:
    assert naf(code) == expected


def test_every_row_names_its_source_and_the_answer_it_came_from(sample: dict[str, Any]) -> None:
    record = parse_entreprise(sample, fetched_at=FETCHED)
    by_day = pl.DataFrame({"partition_date": [date(2021, 6, 30)], "siren": [sample["siren"]]})

    frames = partition_tables([record], by_day, source="pappers_sandbox")

    for name, frame in frames.items():
        assert set(frame["source"]) <= {"pappers_sandbox"}, name  # the sample has no procedure
        assert set(frame["fetched_at"]) <= {FETCHED}, name
    assert all(frames[name].height for name in TABLES[:3])
