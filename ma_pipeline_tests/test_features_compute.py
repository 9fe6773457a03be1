"""compute_features: point-in-time rules, each feature's meaning, and the real samples.

Pappers frames are built the way the pipeline builds them, by parsing ``/entreprise`` answers
with the enrichment's own parser, so the tests hold for the tables the asset really reads.
"""

import json
import math
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ma_pipeline.contracts.siren import with_check_digit
from ma_pipeline.contracts.sirene import COLUMNS
from ma_pipeline.enrichment.pappers import parse_entreprise
from ma_pipeline.enrichment.records import record_frames
from ma_pipeline.features import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    FeatureConfig,
    FeatureInputs,
    compute_features,
)
from ma_pipeline.features.schemas import FEATURE_DTYPES, CompanyFeatures
from ma_pipeline.ingestion.sirene import StockFile, read_stock_file, validate
from ma_pipeline_tests.conftest import PAPPERS_SAMPLE, SANDBOX_DAY, SIRENE_SAMPLE

A, B, C = (with_check_digit(f"1000000{k}") for k in range(3))
RAW_SCHEMA = {
    "siren": pl.String,
    "nom_entreprise": pl.String,
    "etat_administratif": pl.String,
    "activite_principale": pl.String,
    "categorie_juridique": pl.String,
    "tranche_effectifs": pl.String,
    "caractere_employeur": pl.String,
    "date_creation": pl.Date,
}


def company(siren: str, **given: Any) -> dict[str, Any]:
    """A raw_companies row: an active SAS of 20-49 employees created in 2010, unless given."""
    row = {
        "siren": siren,
        "nom_entreprise": f"SOCIETE {siren}",
        "etat_administratif": "A",
        "activite_principale": "62.01Z",
        "categorie_juridique": "5710",
        "tranche_effectifs": "12",
        "caractere_employeur": "O",
        "date_creation": date(2010, 1, 1),
    }
    return row | given


def features(
    companies: list[dict[str, Any]],
    answers: list[dict[str, Any]],
    as_of: date,
    config: FeatureConfig | None = None,
) -> pl.DataFrame:
    """Features on ``as_of`` of ``companies``, Pappers having given ``answers``."""
    frames = record_frames([parse_entreprise(answer) for answer in answers])
    inputs = FeatureInputs(pl.DataFrame(companies, schema=RAW_SCHEMA), *frames.values())
    return compute_features(inputs, as_of, config).sort("siren")


def one(frame: pl.DataFrame, siren: str = A) -> dict[str, Any]:
    return frame.filter(pl.col("siren") == siren).row(0, named=True)


def years(start: date, end: date) -> float:
    return (end - start).days / 365.25


# ------------------------------------------------------------------------- point in time
def test_changing_what_was_not_yet_known_on_d_does_not_change_the_features_of_d(
    sandbox_partition: dict[str, pl.DataFrame],
) -> None:
    """The leakage test. The sandbox's Pappers snapshot is months newer than D, as in a backfill;
    rewriting every account not yet filed on D, and adding accounts, dirigeants and procedures
    that start after D, leaves D's features unchanged, and changes them once they are known."""
    raw = sandbox_partition["raw_companies"].filter(pl.col("etat_administratif") == "A")
    inputs = FeatureInputs(
        raw,
        sandbox_partition["pappers_companies"],
        sandbox_partition["pappers_finances"],
        sandbox_partition["pappers_dirigeants"],
        sandbox_partition["pappers_procedures"],
    )
    finances = inputs.finances
    filed_later = pl.col("date_de_cloture_exercice").dt.offset_by("7mo") > SANDBOX_DAY
    assert finances.filter(filed_later).height > 100  # the snapshot does hold them
    after_d = SANDBOX_DAY + timedelta(days=1)
    new_year = (
        finances.group_by("siren")
        .agg(pl.all().first())
        .with_columns(
            annee=pl.lit(2025, pl.Int64),
            date_de_cloture_exercice=pl.lit(date(2025, 3, 31)),
            chiffre_affaires=pl.lit(10**9, pl.Int64),
        )
    )
    elder = (
        inputs.dirigeants.group_by("siren")
        .agg(pl.all().first())
        .with_columns(
            rang=pl.lit(99, pl.Int64),
            personne_morale=False,
            commissaire_aux_comptes=False,
            annee_naissance=pl.lit(1930, pl.Int64),
            date_prise_de_poste=pl.lit(after_d),
        )
    )
    procedure = raw.select("partition_date", "siren").with_columns(
        rang=pl.lit(9, pl.Int64),
        type=pl.lit("Liquidation judiciaire"),
        date_debut=pl.lit(after_d),
        date_fin=pl.lit(None, pl.Date),
    )
    rewritten = replace(
        inputs,
        finances=pl.concat(
            [
                finances.with_columns(
                    pl.when(filed_later).then(pl.col(c) * 7 + 1).otherwise(pl.col(c))
                    for c in ("chiffre_affaires", "resultat", "effectif")
                ),
                new_year.select(finances.columns),
            ]
        ),
        dirigeants=pl.concat([inputs.dirigeants, elder.select(inputs.dirigeants.columns)]),
        procedures=pl.concat([inputs.procedures, procedure], how="diagonal_relaxed"),
    )

    assert_frame_equal(
        compute_features(inputs, SANDBOX_DAY), compute_features(rewritten, SANDBOX_DAY)
    )
    later = date(2026, 1, 1)
    assert not compute_features(inputs, later).equals(compute_features(rewritten, later))


def test_a_fiscal_year_counts_from_its_close_plus_the_filing_lag() -> None:
    """Default lag 7 months; growth on revenues annualised by fiscal-year length."""
    answer = {
        "siren": A,
        "finances": [
            {"annee": 2023, "date_de_cloture_exercice": "2023-12-31", "duree_exercice": 18,
             "chiffre_affaires": 180, "resultat": 18, "effectif": 4},
            {"annee": 2022, "date_de_cloture_exercice": "2022-06-30", "duree_exercice": 12,
             "chiffre_affaires": 100, "resultat": -5, "effectif": 3},
            {"annee": 2020, "date_de_cloture_exercice": "2020-06-30", "duree_exercice": 12,
             "chiffre_affaires": 80, "resultat": 1, "effectif": 2},
        ],
    }  # fmt: skip
    before = one(features([company(A)], [answer], date(2024, 7, 30)))
    on_the_day = one(features([company(A)], [answer], date(2024, 7, 31)))
    longer_lag = one(features([company(A)], [answer], date(2024, 7, 31), FeatureConfig(12)))

    assert (before["chiffre_affaires"], before["marge_nette"]) == (100, -0.05)
    assert before["croissance_ca_1an"] is None  # no 2021 accounts
    assert before["annees_depuis_derniers_comptes"] == pytest.approx(
        years(date(2022, 6, 30), date(2024, 7, 30))
    )
    assert on_the_day["chiffre_affaires"] == 180
    assert on_the_day["croissance_ca_1an"] == pytest.approx(180 * 12 / 18 / 100 - 1)
    assert on_the_day["cagr_ca_3ans"] == pytest.approx((120 / 80) ** (1 / 3) - 1)
    assert (on_the_day["effectif"], on_the_day["ca_par_salarie"]) == (4, 45)
    assert on_the_day["log_ca"] == pytest.approx(math.log1p(180))
    assert longer_lag["chiffre_affaires"] == 100


def test_dirigeants_count_the_people_in_post_on_d_with_their_age_on_d() -> None:
    day = date(2024, 6, 15)
    people = [
        {"qualite": "Gérant", "personne_morale": False, "date_de_naissance": "1960-08-20",
         "date_prise_de_poste": "2005-03-01"},
        {"qualite": "Gérant", "personne_morale": False, "date_de_naissance_formate": "01/1985",
         "date_prise_de_poste": "2020-01-01"},
        {"qualite": "Gérant", "personne_morale": False, "date_de_naissance": "1950-01-01",
         "date_prise_de_poste": "2024-09-01"},
        {"qualite": "Commissaire aux comptes titulaire", "personne_morale": True,
         "denomination": "AUDIT SA", "siren": "438476913", "date_prise_de_poste": "2010-01-01"},
        {"qualites": ["Président"], "personne_morale": True, "denomination": "FAMILLE HOLDING",
         "siren": "552032534", "date_prise_de_poste": "2015-01-01"},
    ]  # fmt: skip
    auditor_only = [people[3]]
    rows = features(
        [company(A), company(B)],
        [{"siren": A, "representants": people}, {"siren": B, "representants": auditor_only}],
        day,
    )

    chaired = one(rows, A)
    assert chaired["nb_dirigeants"] == 2  # the 2024-09 start, the auditor and the holding aside
    assert chaired["age_dirigeant_max"] == 63  # born August 1960, not yet 64 in June
    assert chaired["part_dirigeants_60_plus"] == 0.5
    assert chaired["dirigeant_unique"] is False
    assert chaired["anciennete_dirigeant_max"] == pytest.approx(years(date(2005, 3, 1), day))
    assert chaired["dirigeant_personne_morale"] is True
    audited = one(rows, B)
    assert (audited["nb_dirigeants"], audited["dirigeant_unique"]) == (0, False)
    assert audited["age_dirigeant_max"] is None
    assert audited["dirigeant_personne_morale"] is False


def test_procedures_count_from_their_start_and_are_in_progress_until_their_end() -> None:
    answer = {
        "siren": A,
        "procedures_collectives": [
            {"type": "Redressement judiciaire",
             "date_debut": "2020-01-01", "date_fin": "2021-06-01"},
            {"type": "Liquidation judiciaire", "date_debut": "2024-01-10", "date_fin": None},
        ],
    }  # fmt: skip
    between = one(features([company(A)], [answer], date(2023, 6, 1)))
    during = one(features([company(A)], [answer], date(2024, 2, 1)))

    assert (between["nb_procedures_collectives"], between["procedure_collective_en_cours"]) == (
        1,
        False,
    )
    assert (during["nb_procedures_collectives"], during["procedure_collective_en_cours"]) == (
        2,
        True,
    )


@pytest.mark.parametrize(
    ("siege", "departement", "region"),
    [
        ({"code_commune": "75056", "code_postal": "75001"}, "75", "11"),
        ({"code_commune": "2A004", "code_postal": "20000"}, "2A", "94"),
        ({"code_commune": "97411", "code_postal": "97400"}, "974", "04"),
        ({"code_departement": "69", "code_postal": "69001"}, "69", "84"),
        ({"code_postal": "33000"}, None, None),  # a postcode alone places nothing
        ({"code_commune": "99134"}, None, None),  # abroad: not a COG département
    ],
)
def test_departement_comes_from_the_cog_commune_code_never_the_postcode(
    siege: dict[str, str], departement: str | None, region: str | None
) -> None:
    row = one(features([company(A)], [{"siren": A, "siege": siege}], date(2024, 1, 1)))
    assert (row["departement"], row["region"]) == (departement, region)


@pytest.mark.parametrize(
    ("legal", "family"),
    [("5710", "SAS"), ("5499", "SARL"), ("5599", "SA"), ("5202", "SNC_SCS"), ("1000", "EI"),
     ("6540", "SC"), ("9220", "ASSOCIATION"), ("7210", "PUBLIC"), ("6220", "AUTRE")],
)  # fmt: skip
def test_legal_forms_fall_into_families(legal: str, family: str) -> None:
    row = one(features([company(A, categorie_juridique=legal)], [], date(2024, 1, 1)))
    assert row["forme_juridique_famille"] == family


def test_the_universe_and_what_unknown_means() -> None:
    """A company created after D has no row; one Pappers does not know keeps its SIRENE
    features with nulls (not zeros) elsewhere; an empty band of a non-employer reads as NN."""
    day = date(2024, 1, 1)
    rows = features(
        [
            company(A, activite_principale="47.11F", tranche_effectifs="21"),
            company(B, tranche_effectifs=None, caractere_employeur="N"),
            company(C, date_creation=date(2024, 1, 2)),
        ],
        [{"siren": B, "capital": 1000}],
        day,
    )

    assert rows["siren"].to_list() == [A, B]
    unknown = one(rows, A)
    assert (unknown["naf_section"], unknown["naf_division"]) == ("G", "47")
    assert (unknown["tranche_effectifs_rang"], unknown["effectif"]) == (6, 74.5)
    assert unknown["anciennete"] == pytest.approx(years(date(2010, 1, 1), day))
    assert unknown["nb_dirigeants"] is None and unknown["procedure_collective_en_cours"] is None
    known = one(rows, B)
    assert (known["tranche_effectifs"], known["effectif"], known["ca_par_salarie"]) == (
        "NN",
        0.0,
        None,
    )
    assert (known["nb_dirigeants"], known["nb_procedures_collectives"]) == (0, 0)
    assert known["procedure_collective_en_cours"] is False
    assert rows.schema == pl.Schema(FEATURE_DTYPES)


def test_the_model_inputs_are_columns_of_the_table() -> None:
    assert set(MODEL_FEATURES + CATEGORICAL_FEATURES) <= set(FEATURE_DTYPES)
    assert not set(MODEL_FEATURES) & set(CATEGORICAL_FEATURES)
    assert all(FEATURE_DTYPES[c] == pl.String for c in CATEGORICAL_FEATURES)


# ------------------------------------------------------------------------------ real samples
def test_the_real_sirene_sample_with_the_real_pappers_sample_gives_no_nulls_where_data_exists() -> (
    None
):
    """GOOGLE FRANCE (443061841), the Pappers sample, is not in the 9-row SIRENE sample, so a
    SIRENE row for it is written from the Pappers identity (creation date, band, legal form
    mapped back to INSEE's 5499, NAF, head-office NIC) and read with the real rows by the
    ingestion's own reader. Features are taken on 2021-06-30, when the sample was current.

    Google: every feature is filled but the place, because this v2.7-era sample gives the head
    office's postcode only, no COG commune or département code, and the postcode is not used.
    The other eight active companies, unknown to Pappers, get every SIRENE-derived feature.
    """
    pappers = json.loads(PAPPERS_SAMPLE.read_text())
    insee = {c.insee: None for c in COLUMNS} | {
        "siren": pappers["siren"],
        "statutDiffusionUniteLegale": "O",
        "dateCreationUniteLegale": pappers["date_creation"],
        "trancheEffectifsUniteLegale": pappers["tranche_effectif"],
        "etatAdministratifUniteLegale": "A",
        "denominationUniteLegale": pappers["denomination"],
        "categorieJuridiqueUniteLegale": "5499",
        "activitePrincipaleUniteLegale": pappers["code_naf"],
        "nicSiegeUniteLegale": pappers["siege"]["nic"],
    }
    real = read_stock_file(SIRENE_SAMPLE).rows
    stock = pl.concat([real, pl.DataFrame([insee], schema=dict.fromkeys(real.columns, pl.String))])
    raw = validate(StockFile("sample", stock, "utf-8")).kept
    frames = record_frames([parse_entreprise(pappers)])
    day = date(2021, 6, 30)
    rows = compute_features(
        FeatureInputs(raw.filter(pl.col("etat_administratif") == "A"), *frames.values()), day
    )

    assert rows.height == 9
    google = one(rows, "443061841")
    # The sample's accounts give no cash nor debt ratio.
    assert {c for c, v in google.items() if v is None} == {
        "departement",
        "region",
        "tresorerie_sur_ca",
        "dettes_financieres_sur_ca",
    }
    assert google["chiffre_affaires"] == 483_033_598  # 2019, filed July 2020; 2020 not yet
    # The trend: least squares of ln(revenue) over the (at most 6) years known by then.
    known = (
        frames["pappers_finances"]
        .filter(pl.col("date_de_cloture_exercice").dt.offset_by("7mo") <= day)
        .sort("annee")
        .tail(6)
    )
    years, logs = known["annee"].to_numpy(), np.log(known["chiffre_affaires"].to_numpy())
    slope, intercept = np.polyfit(years, logs, 1)
    assert google["pente_log_ca"] == pytest.approx(slope)
    assert google["residu_log_ca"] == pytest.approx(logs[-1] - (intercept + slope * years[-1]))
    assert google["volatilite_log_ca"] == pytest.approx(np.diff(logs).std(ddof=1))
    assert google["croissance_ca_1an"] == pytest.approx(483_033_598 / 411_016_329 - 1)
    assert google["cagr_ca_3ans"] == pytest.approx((483_033_598 / 299_301_917) ** (1 / 3) - 1)
    assert google["marge_nette"] == pytest.approx(-539_868_050 / 483_033_598)
    assert google["ca_par_salarie"] == pytest.approx(483_033_598 / 859)
    assert (google["nb_dirigeants"], google["age_dirigeant_max"]) == (2, 51)  # the auditors aside
    assert google["dirigeant_personne_morale"] is False
    assert (google["naf_section"], google["forme_juridique_famille"]) == ("M", "SARL")
    sirene_only = rows.filter(pl.col("siren") != "443061841")
    sirene_features = [
        "nom_entreprise", "activite_principale", "naf_section", "naf_division",
        "forme_juridique_famille", "tranche_effectifs", "tranche_effectifs_rang", "effectif",
        "anciennete",
    ]  # fmt: skip
    assert sirene_only.select(sirene_features).null_count().sum_horizontal().item() == 0
    CompanyFeatures.validate(rows)
