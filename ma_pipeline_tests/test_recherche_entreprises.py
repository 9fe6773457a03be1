"""The API Recherche d'entreprises as a registry provider: its real recorded answers parsed into
the registry tables, and its twin (rate limit, 429 with Retry-After, non-diffusible units, the
User-Agent) through the same client core, resource and asset as Pappers."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest

from ma_pipeline.enrichment.cache import Answer, ApiCache
from ma_pipeline.enrichment.recherche_entreprises import (
    NON_DIFFUSIBLE,
    SOURCE,
    RechercheEntreprisesResource,
    parse_unit,
)
from ma_pipeline.enrichment.records import TABLES, partition_tables
from ma_pipeline.features.compute import FeatureInputs, compute_features
from ma_pipeline.ingestion.inpi_ratios import RATIOS_SCHEMA
from ma_pipeline.sandbox.recherche_entreprises_api import RechercheEntreprisesSandbox
from ma_pipeline.sandbox.transport import Faults
from ma_pipeline.sandbox.universe import opted_out
from ma_pipeline.warehouse import PARTITION_COLUMN, TableRef, connect_warehouse
from ma_pipeline_tests.conftest import SANDBOX_AS_OF, SANDBOX_UNITS, make_resources
from ma_pipeline_tests.test_enrichment_assets import COMPANIES, DAY, materialize, metadata

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_data"
FETCHED = datetime(2026, 6, 1, tzinfo=UTC)


def recorded(siren: str) -> dict[str, Any]:
    """The unit of a real recorded answer (the site's e2e fixtures wrap it in ``result``)."""
    answer = json.loads((SHARED / f"recherche_entreprises_siren_{siren}.json").read_text())
    [unit] = answer["result"]["results"]
    return unit


def twin(**kwargs: Any) -> RechercheEntreprisesSandbox:
    return RechercheEntreprisesSandbox(SANDBOX_UNITS, 2026, as_of=SANDBOX_AS_OF, **kwargs)


def provider(
    data_dir: Path, transport: RechercheEntreprisesSandbox, **fields: Any
) -> RechercheEntreprisesResource:
    """The provider as the code location builds it, on the twin ``transport``; the margin
    keeps a loaded test machine's scheduling jitter out of the server's one-second windows."""
    fields = {"transport": transport, "rate_margin_s": 0.3, **fields}
    resources = make_resources(data_dir, recherche_entreprises=fields)
    return resources["registry"].recherche_entreprises.resolved()


def sandbox_sirens(transport: RechercheEntreprisesSandbox, *, hidden: bool, n: int) -> list[str]:
    """``n`` SIRENs of companies created by the twin's day, opted out of diffusion or not."""
    world = transport.world
    created = world.companies["creation"].to_list()
    return [
        str(siren)
        for i, siren in enumerate(world.sirens)
        if opted_out(str(siren), str(world.legal[i])) == hidden and created[i] <= SANDBOX_AS_OF
    ][:n]


# ------------------------------------------------------------------------ the real answers
def test_danone_yields_its_identity_capital_and_placeholder_income() -> None:
    record = parse_unit(recorded("552032534"), fetched_at=FETCHED)
    company = record.company
    assert (company["siren"], company["nom_entreprise"]) == ("552032534", "DANONE")
    assert (company["code_naf"], company["categorie_juridique"]) == ("70.10Z", "5599")
    assert company["personne_morale"] and company["diffusable"]
    assert company["capital"] == 170348620.75 and company["devise_capital"] == "EUR"
    assert company["date_immatriculation_rcs"] == date(1955, 3, 1)
    assert company["date_creation"] == date(1955, 1, 1) and not company["entreprise_cessee"]
    assert (company["siege_code_commune"], company["siege_code_departement"]) == ("75109", "75")
    assert (company["siege_code_postal"], company["siege_ville"]) == ("75009", "PARIS")
    assert company["tranche_effectif"] == "42"
    assert company["numero_tva_intracommunautaire"] == "FR27552032534"
    assert company["derniere_mise_a_jour_sirene"] == date(2026, 4, 10)
    # One year only; a net income of 0 beside 27 bn of revenue is the source's placeholder.
    [year] = record.finances
    assert (year["annee"], year["chiffre_affaires"], year["resultat"]) == (2024, 27376000000, None)
    assert year["date_de_cloture_exercice"] == date(2024, 12, 31)  # "3112" in immatriculation
    people = [d for d in record.dirigeants if not d["personne_morale"]]
    assert len(people) == 11
    first = people[0]
    assert (first["nom"], first["prenom"]) == ("BERNARD DE SAINT AFFRIQUE", "ANTOINE")
    assert (first["annee_naissance"], first["mois_naissance"]) == (1964, 12)
    assert first["date_de_naissance"] is None and first["qualite"] == "Directeur Général"
    auditors = [d for d in record.dirigeants if d["personne_morale"]]
    assert [a["siren_personne_morale"] for a in auditors] == ["344366315", "784824153"]
    assert all(a["commissaire_aux_comptes"] for a in auditors)
    assert auditors[0]["nom_complet"] == "ERNST & YOUNG AUDIT"


def test_a_gerant_listed_twice_is_kept_once_and_a_loss_is_kept() -> None:
    record = parse_unit(recorded("487444697"), fetched_at=FETCHED)
    [gerant] = record.dirigeants
    assert gerant["nom"] == "POUYANNE (POUYANNE)" and gerant["qualite"] == "Gérant"
    assert (gerant["annee_naissance"], gerant["mois_naissance"]) == (1965, 10)
    [year] = record.finances
    assert (year["annee"], year["chiffre_affaires"], year["resultat"]) == (2022, 1848367, -693623)
    assert record.company["capital"] == 2099975 and record.company["code_naf"] == "35.11Z"


def test_a_ceased_company_and_its_liquidator() -> None:
    record = parse_unit(recorded("880878145"), fetched_at=FETCHED)
    assert record.company["entreprise_cessee"]
    assert record.company["date_cessation"] == date(2022, 10, 22)
    assert record.company["tranche_effectif"] is None  # "NN": no headcount band
    [liquidator] = record.dirigeants
    assert liquidator["qualite"] == "Liquidateur" and liquidator["annee_naissance"] == 1990
    assert record.finances == []


def test_births_by_month_give_ages_as_of_each_day() -> None:
    record = parse_unit(recorded("423208180"), fetched_at=FETCHED)
    births = [(d["annee_naissance"], d["mois_naissance"]) for d in record.dirigeants]
    assert births == [(1941, 9), (1944, 12), (1971, 8)]
    day = pl.DataFrame({PARTITION_COLUMN: [date(2025, 10, 1)], "siren": ["423208180"]})
    tables = partition_tables([record], day, source=SOURCE)
    assert tables["pappers_dirigeants"]["age"].to_list() == [84, 80, 54]
    assert set(tables["pappers_companies"]["source"]) == {SOURCE}


def test_an_answer_for_another_siren_is_refused() -> None:
    payload = json.dumps(recorded("552032534"))
    with pytest.raises(ValueError, match="asked for 487444697"):
        RechercheEntreprisesResource().parse(Answer(SOURCE, "487444697", 200, FETCHED, payload))


# ------------------------------------------------------------------------------- the twin
def test_the_client_keeps_under_7_per_second_and_names_the_project(data_dir: Path) -> None:
    """At the API's own limit the server never answers 429: every arrival window of one second
    holds at most 7 requests, and each request says who sends it."""
    transport = twin()
    api = provider(data_dir, transport, rate_per_second=None, concurrency=4)
    sirens = sandbox_sirens(transport, hidden=False, n=22)
    run = api.enrich(sirens, connect_warehouse("", data_dir))
    assert not run.failures and len(run.records) + len(run.negatives) == 22
    assert transport.statuses[429] == 0 and transport.requests == 22
    times = sorted(transport.timestamps)
    assert max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)) <= 7
    [agent] = transport.user_agents
    assert agent.startswith("ma_pipeline/") and "M&A scoring pipeline" in agent


def test_a_429_is_retried_after_the_wait_the_server_asks(data_dir: Path) -> None:
    """Pressed at 40 requests/s, the twin answers 429 with Retry-After: the refused request is
    sent again no earlier than that, and every company still gets its answer."""
    transport = twin()
    api = provider(data_dir, transport, rate_per_second=40.0, concurrency=1, backoff_max_s=2.0)
    sirens = sandbox_sirens(transport, hidden=False, n=12)
    run = api.enrich(sirens, connect_warehouse("", data_dir))
    assert not run.failures and len(run.records) + len(run.negatives) == 12
    assert transport.statuses[429] >= 1 and run.counters.retries == transport.statuses[429]
    assert run.counters.statuses[429] == transport.statuses[429]
    for k, (refused_at, url, status) in enumerate(transport.history):
        if status == 429:  # Retry-After: 1
            retried_at = next(t for t, again, _ in transport.history[k + 1 :] if again == url)
            assert retried_at - refused_at >= 1.0


def test_a_retry_after_longer_than_the_client_waits_fails_that_company_clearly(
    data_dir: Path,
) -> None:
    transport = twin(faults=Faults(rate_429=1.0, retry_after_s=120))
    api = provider(data_dir, transport)
    run = api.enrich([str(transport.world.sirens[0])], connect_warehouse("", data_dir))
    [failure] = run.failures.values()
    assert failure.kind == "http_429" and "Retry-After 120 s" in failure.message


def test_units_that_opted_out_of_diffusion_are_left_out_and_kept_out(data_dir: Path) -> None:
    transport = twin()
    hidden = sandbox_sirens(transport, hidden=True, n=3)
    shown = sandbox_sirens(transport, hidden=False, n=3)
    assert len(hidden) == 3
    warehouse = connect_warehouse("", data_dir)
    api = provider(data_dir, transport)
    run = api.enrich(hidden + shown, warehouse)
    assert set(run.negatives) == set(hidden) and set(run.records) == set(shown)
    cache = ApiCache(warehouse, SOURCE, timedelta(hours=api.cache_ttl_hours))
    stored = {a.key: a for a in cache.stored(hidden)}
    assert {a.status for a in stored.values()} == {NON_DIFFUSIBLE}
    assert all(a.payload is None for a in stored.values())  # nothing of theirs is kept
    again = api.enrich(hidden, warehouse)
    assert again.cache_hits == 3 and transport.requests == 6


def test_the_twin_answers_in_the_recorded_shape() -> None:
    """Same keys as the real answer, for every key the parser reads."""
    transport = twin()
    [siren] = sandbox_sirens(transport, hidden=False, n=1)
    request = httpx.Request(
        "GET",
        "https://recherche-entreprises.api.gouv.fr/search",
        params={"q": siren, "minimal": "true", "include": "siege", "include_admin": "bodacc"},
    )
    status, body, _ = transport.answer(request)
    real = json.loads((SHARED / "recherche_entreprises_siren_552032534.json").read_text())
    assert status == 200 and set(body) == set(real["result"])
    [unit] = body["results"]
    assert set(unit) - set(recorded("552032534")) <= {"bodacc"}
    assert set(unit["siege"]) <= set(recorded("552032534")["siege"])


# --------------------------------------------------------------------------- the pipeline
def test_the_daily_enrichment_runs_on_the_free_api_with_the_same_tables(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MA_REGISTRY_PROVIDER=recherche_entreprises: the same asset, the same tables, each row
    saying where it comes from; features compute on them as on Pappers' rows."""
    monkeypatch.setenv("MA_REGISTRY_PROVIDER", "recherche_entreprises")
    transport = twin(rate_limit=None)
    resources = make_resources(
        data_dir, recherche_entreprises={"transport": transport, "rate_per_second": 10_000.0}
    )
    result = materialize(resources)
    assert result.success
    facts = metadata(result)
    assert facts["provider"] == SOURCE and facts["mode"].startswith("sandbox")
    warehouse = connect_warehouse("", data_dir)
    companies = warehouse.read(COMPANIES)
    assert companies.height == facts["rows"]["pappers_companies"] > 100
    assert set(companies["source"]) == {f"{SOURCE}_sandbox"}
    assert transport.requests == facts["calls"]
    frames = {name: warehouse.read(TableRef("enrichment", name)) for name in TABLES}
    raw = warehouse.read(TableRef("ingestion", "raw_companies"))
    features = compute_features(
        FeatureInputs(raw, *(frames[name] for name in TABLES)), date.fromisoformat(DAY)
    )
    enriched = features.filter(pl.col("siren").is_in(companies["siren"].implode()))
    assert enriched.height == companies.height
    assert enriched["age_dirigeant_max"].is_not_null().mean() > 0.9
    assert enriched["capital"].is_not_null().sum() == companies["capital"].is_not_null().sum()
    assert dg.AssetKey(["enrichment", "pappers_companies"]) in {
        e.asset_key for e in result.get_asset_materialization_events()
    }


def test_inpi_ratios_give_the_free_provider_its_revenue_history(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API gives one fiscal year; the years before it come from INPI's ratios (their
    chosen rows, a flagged revenue left null), so growth over a year can be computed."""
    monkeypatch.setenv("MA_REGISTRY_PROVIDER", "recherche_entreprises")
    transport = twin(rate_limit=None)
    resources = make_resources(
        data_dir, recherche_entreprises={"transport": transport, "rate_per_second": 10_000.0}
    )
    assert materialize(resources).success
    warehouse = connect_warehouse("", data_dir)
    finances = warehouse.read(TableRef("enrichment", "pappers_finances"))
    last = finances.sort("annee").unique("siren", keep="last").sort("siren").head(2)
    (grows, annee, revenue), (slipped, *_) = last.select(
        "siren", "annee", "chiffre_affaires"
    ).rows()
    ratios = pl.DataFrame(
        {
            "siren": [grows, grows, grows, slipped],
            "annee": [annee - 1, annee - 1, annee, annee - 1],
            "date_cloture_exercice": [date(annee - 1, 12, 31)] * 2
            + [date(annee, 12, 31)]
            + [date(annee - 1, 12, 31)],
            "type_bilan": ["C", "K", "C", "C"],
            "chiffre_d_affaires": [revenue / 1.25, 9e9, 1.0, 5e12],
            "resultat_net": [1000.0, 0.0, 1.0, 1.0],
            "chosen": [True, False, True, True],
            "implausible": [None, None, None, "chiffre_d_affaires x1000 off its neighbour years"],
            "source": ["inpi_ratios"] * 4,
        }
    )
    ratios = ratios.select(
        pl.col(c).cast(t) if c in ratios.columns else pl.lit(None, t).alias(c)
        for c, t in RATIOS_SCHEMA.items()
    )  # as the inpi_ratios asset stores them
    warehouse.replace_table(TableRef("open_data", "inpi_ratios"), ratios)

    assert materialize(resources, with_raw=False).success

    finances = warehouse.read(TableRef("enrichment", "pappers_finances"))
    added = finances.filter(pl.col("source") == "inpi_ratios").sort("siren")
    assert added.select("siren", "annee", "chiffre_affaires", "resultat").rows() == [
        (grows, annee - 1, round(revenue / 1.25), 1000),
        (slipped, annee - 1, None, 1),
    ]
    kept = finances.filter((pl.col("siren") == grows) & (pl.col("annee") == annee))
    assert kept["source"].to_list() == [f"{SOURCE}_sandbox"]  # the provider's year wins
    raw = warehouse.read(TableRef("ingestion", "raw_companies"))
    frames = {name: warehouse.read(TableRef("enrichment", name)) for name in TABLES}
    as_of = date(annee + 2, 1, 1)  # both years filed by then
    features = compute_features(FeatureInputs(raw, *(frames[n] for n in TABLES)), as_of)
    growth = features.filter(pl.col("siren") == grows)["croissance_ca_1an"].item()
    assert growth == pytest.approx(0.25, abs=0.01)
