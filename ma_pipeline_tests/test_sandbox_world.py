"""The sandbox's latent truth and the Pappers sandbox: consistent, dated, deterministic,
learnable."""

import asyncio
from datetime import date, timedelta

import httpx
import numpy as np
import polars as pl
import pytest

from ma_pipeline.enrichment.pappers import parse_entreprise
from ma_pipeline.reference import departements
from ma_pipeline.sandbox.pappers_api import PappersSandbox, entreprise, vat_number
from ma_pipeline.sandbox.universe import population, stock
from ma_pipeline.sandbox.world import (
    AGE_MULTIPLIERS,
    FLAT,
    GROWING,
    MID_BANDS,
    SMALL_BANDS,
    World,
    world,
)

N, SEED = 500, 2026
AS_OF = date(2026, 1, 1)


@pytest.fixture(scope="module")
def answers() -> pl.DataFrame:
    """The sandbox's answer for every company active on AS_OF, parsed, beside its SIRENE row."""
    w = world(N, SEED)
    active = stock(AS_OF, N, SEED).filter(pl.col("etatAdministratifUniteLegale") == "A")
    rows = []
    for siren, naf, legal, band, created in active.select(
        "siren",
        "activitePrincipaleUniteLegale",
        "categorieJuridiqueUniteLegale",
        "trancheEffectifsUniteLegale",
        "dateCreationUniteLegale",
    ).iter_rows():
        payload = entreprise(w, siren, AS_OF)
        assert payload is not None
        record = parse_entreprise(payload)
        rows.append(
            record.company
            | {
                "sirene_naf": naf,
                "sirene_legal": legal,
                "sirene_band": band,
                "sirene_created": date.fromisoformat(created),
                "finances": record.finances,
                "dirigeants": record.dirigeants,
                "procedures": record.procedures,
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def test_answers_agree_with_sirene(answers: pl.DataFrame) -> None:
    assert answers.height > 400
    assert (answers["code_naf"] == answers["sirene_naf"]).all()
    assert (answers["date_creation"] == answers["sirene_created"]).all()
    assert (answers["tranche_effectif"].eq_missing(answers["sirene_band"])).all()
    # Legal forms agree once normalised; only INSEE's own old 5498 comes back as 5499.
    expected = answers["sirene_legal"].replace("5498", "5499")
    assert (answers["categorie_juridique"] == expected).all()
    assert not answers["entreprise_cessee"].any()


def test_legal_forms_are_written_the_pappers_way(answers: pl.DataFrame) -> None:
    pappers = answers["categorie_juridique_pappers"]
    assert {"5720", "5498", "5710", "5499"} <= set(pappers)
    sasu = answers.filter(pl.col("categorie_juridique_pappers") == "5720")
    assert (sasu["sirene_legal"] == "5710").all() and sasu["associe_unique"].all()


def test_head_offices_are_real_communes_of_their_departement(answers: pl.DataFrame) -> None:
    cog = departements().rename({"dep": "siege_code_departement"})
    joined = answers.join(cog, on="siege_code_departement", how="left")
    assert joined["cheflieu"].null_count() == 0
    assert (joined["siege_code_commune"] == joined["cheflieu"]).all()
    assert (joined["siege_code_region"] == joined["reg"]).all()
    assert (joined["siege_departement"] == joined["libelle"]).all()
    assert joined["siege_code_postal"].str.contains(r"^\d{5}$").all()
    shares = answers["siege_code_departement"].value_counts(normalize=True)
    paris = shares.filter(pl.col("siege_code_departement") == "75")["proportion"].item()
    assert paris > 3 / departements().height  # Paris weighs more than an average département


def test_only_what_is_known_on_the_day_is_shown(answers: pl.DataFrame) -> None:
    finances = [f for fs in answers["finances"] for f in fs]
    assert finances and all(f["date_de_cloture_exercice"] < AS_OF for f in finances)
    for years in answers["finances"]:
        assert [f["annee"] for f in years] == sorted((f["annee"] for f in years), reverse=True)
    dirigeants = [d for ds in answers["dirigeants"] for d in ds]
    assert all(d["date_prise_de_poste"] <= AS_OF for d in dirigeants)
    assert {d["personne_morale"] for d in dirigeants} == {True, False}
    assert all(d["qualites"] and d["qualite"] == d["qualites"][0] for d in dirigeants)
    procedures = [p for ps in answers["procedures"] for p in ps]
    assert procedures and all(p["date_debut"] <= AS_OF for p in procedures)
    assert all(p["date_fin"] is None or p["date_fin"] <= AS_OF for p in procedures)


def test_two_years_earlier_the_last_two_accounts_are_not_filed_yet() -> None:
    w = world(N, SEED)
    siren = next(str(s) for s in w.sirens if len(w.finances(str(s), AS_OF)) >= 3)
    now, earlier = w.finances(siren, AS_OF), w.finances(siren, AS_OF - timedelta(days=2 * 365))
    assert earlier[0].annee == now[0].annee - 2
    assert earlier[0] == next(f for f in now if f.annee == earlier[0].annee)


def test_the_sandbox_is_deterministic() -> None:
    fresh, cached = World(N, SEED), world(N, SEED)
    for siren in population(N, SEED)["siren"][:50]:
        assert entreprise(fresh, siren, AS_OF) == entreprise(cached, siren, AS_OF)


def test_unknown_and_malformed_sirens() -> None:
    async def ask(siren: str) -> int:
        transport = PappersSandbox(N, SEED, as_of=AS_OF)
        async with httpx.AsyncClient(transport=transport, base_url="https://s/v2") as client:
            return (await client.get("/entreprise", params={"siren": siren})).status_code

    assert asyncio.run(ask("443061841")) == 404
    assert asyncio.run(ask("44306")) == 400
    assert asyncio.run(ask(population(N, SEED)["siren"][0])) == 200


def test_vat_numbers_follow_the_official_key() -> None:
    assert vat_number("443061841") == "FR64443061841"  # the real sample's


# ----------------------------------------------------------------------- the latent truth
@pytest.fixture(scope="module")
def big() -> World:
    return world(20_000, SEED)


def test_revenue_grows_with_the_headcount_band(big: World) -> None:
    latest = {}
    for i in range(0, len(big.sirens), 7):
        years = big.finances(str(big.sirens[i]), AS_OF)
        if years:
            latest.setdefault(big.band[i], []).append(years[0].chiffre_affaires)
    small = np.median([v for b in SMALL_BANDS for v in latest.get(b, [])])
    mid = np.median([v for b in MID_BANDS for v in latest.get(b, [])])
    large = np.median(
        [v for b, vs in latest.items() if b not in SMALL_BANDS | MID_BANDS for v in vs]
    )
    assert small < mid < large


def test_revenue_follows_the_latent_trend(big: World) -> None:
    growth: dict[str, list[float]] = {GROWING: [], FLAT: []}
    for i in range(0, len(big.sirens), 5):
        years = big.finances(str(big.sirens[i]), AS_OF)
        if len(years) >= 6 and big.trend[i] in growth:
            growth[big.trend[i]].append(
                np.log(years[0].chiffre_affaires / years[4].chiffre_affaires)
            )
    assert np.median(growth[GROWING]) > 0.15
    assert abs(np.median(growth[FLAT])) < 0.05


def test_the_sale_hazard_jumps_when_the_oldest_dirigeant_reaches_65(big: World) -> None:
    on = np.datetime64("2030-06-01")
    rows = np.arange(len(big.sirens))
    ages = big.oldest_age(rows, np.full(len(rows), on.astype(np.int64)))
    i = int(np.flatnonzero((ages > 62) & (ages < 64) & (big.cessation > on.astype(np.int64)))[0])
    days_to_65 = int((65 - ages[i]) * 365.25)
    before = big.sale_hazard(big.sirens[i], (on + days_to_65 - 3).astype(object))
    after = big.sale_hazard(big.sirens[i], (on + days_to_65 + 3).astype(object))
    assert after / before == pytest.approx(AGE_MULTIPLIERS[0][1] / AGE_MULTIPLIERS[1][1])


def test_flat_revenue_and_mid_size_make_a_sale_likelier(big: World) -> None:
    hazard = big.sale_hazard(big.sirens, np.datetime64("2026-01-01"))
    alive = hazard > 0
    by_trend = {t: hazard[alive & (big.trend == t)].mean() for t in (GROWING, FLAT)}
    assert by_trend[FLAT] > 1.5 * by_trend[GROWING]
    mid = np.isin(big.band, list(MID_BANDS))
    small = np.isin(big.band, list(SMALL_BANDS))
    assert hazard[alive & mid].mean() > 2 * hazard[alive & small].mean()


def test_the_hazard_evaluates_a_whole_universe_over_100_months(big: World) -> None:
    months = np.arange("2018-01", "2026-05", dtype="datetime64[M]").astype("datetime64[D]")
    hazard = big.sale_hazard(big.sirens[:20_000, None], months[None, :])
    assert hazard.shape == (20_000, 100)
    assert np.isfinite(hazard).all() and hazard.min() >= 0 and hazard.max() <= 0.2
    assert 0.01 < hazard[hazard > 0].mean() * 12 < 0.2  # a few per cent a year


def test_procedures_follow_distress_and_are_listed_for_the_labels(big: World) -> None:
    frame = big.procedures_frame()
    sample = frame["siren"].unique().sort()[:50].to_list()
    for siren in sample:
        listed = frame.filter(pl.col("siren") == siren).select("type", "date_debut", "date_fin")
        assert listed.rows() == [(p.type, p.debut, p.fin) for p in big.procedures(siren)]
    traits = big.traits().with_columns(procedure=pl.col("siren").is_in(frame["siren"].implode()))
    distress = traits.group_by("procedure").agg(pl.col("distress").mean()).sort("procedure")
    assert distress["distress"][1] > distress["distress"][0] + 0.1


def test_nobody_is_in_post_before_turning_18(big: World) -> None:
    """Birth dates are clipped (nobody older than 82), and start dates follow them: tenures stay
    human, so the features' plausibility check passes on the demo data."""
    in_post = big.person_in_slot
    years_old_at_start = (big.person_start - big.person_birth)[in_post] / 365.25
    assert years_old_at_start.min() >= 18.0
