"""The API Recherche d'entreprises (``recherche-entreprises.api.gouv.fr``) as a free registry
provider: the resource, and the parsing of an answer into the registry tables' rows.

What OPEN_DATA.md §1 verified, and how it is read here:
- A look-up is ``GET /search?q=<siren>`` (every other filter is then ignored), trimmed with
  ``minimal=true&include=siege,dirigeants,finances,complements``. The undocumented
  ``include_admin=immatriculation,bodacc`` adds the capital, registration dates and the latest
  collective procedure; it is a bonus (``admin_blocks``, empty to leave it out) and nothing
  depends on it.
- 7 requests per second per IP, then HTTP 429 with ``Retry-After``: the client core's limiter
  keeps under it and its retries wait what the server asks. A ``User-Agent`` names the project.
- Units whose owner opted out of diffusion (``statut_diffusion`` other than ``O``) are left
  out: the answer is stored as a negative (status 451, no body) and no row is kept.
- ``dirigeants`` come from the RNE with a month of birth, never a day, nor a start date; the
  same person can be listed twice with different spellings, so people are deduplicated on
  (normalised name, month of birth).
- ``finances`` holds ONE fiscal year (the consolidated one when there is one): one finance row,
  no ratios, no closing date unless ``immatriculation`` gives the closing day. A ``resultat_net``
  of 0 beside a revenue of a million or more is the source's placeholder for a missing value,
  read as unknown.
"""

import json
import re
import unicodedata
from datetime import UTC, date, datetime
from importlib.metadata import version
from typing import Any, ClassVar

import httpx
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer
from ma_pipeline.enrichment.http import ApiClient, RequestFailed
from ma_pipeline.enrichment.records import (
    RegistryRecord,
    as_bool,
    as_date,
    as_float,
    as_int,
    as_text,
    birth,
    naf,
    record_of,
    record_of_answer,
)
from ma_pipeline.enrichment.registry import RegistryApi
from ma_pipeline.sandbox.recherche_entreprises_api import RechercheEntreprisesSandbox

SOURCE = "recherche_entreprises"
# Answer statuses stored for a unit left out because its owner opted out of diffusion.
NON_DIFFUSIBLE = 451
_INCLUDE = "siege,dirigeants,finances,complements"
_PERSON = "personne physique"
# Below this revenue a net income of exactly 0 is believed; above it, it is the placeholder.
_PLACEHOLDER_REVENUE = 1_000_000
PACKAGE = version("ma_pipeline")


def _closing(day_month: Any, year: int | None) -> date | None:
    """The closing day of fiscal year ``year`` from ``date_cloture_exercice`` ("3112")."""
    text = as_text(day_month)
    if year is None or text is None or not re.fullmatch(r"\d{4}", text):
        return None
    try:
        return date(year, int(text[2:]), int(text[:2]))
    except ValueError:
        return None


def _same_person(item: dict[str, Any]) -> tuple[str, str | None]:
    """Who a listed person is: the name without accents, parentheses or punctuation (the RNE
    writes "POUYANNE (POUYANNE)" and "POUYANNE" for one gérant), and the month of birth."""
    name = re.sub(r"\(.*?\)", " ", f"{item.get('nom') or ''} {item.get('prenoms') or ''}")
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    return " ".join(re.sub(r"[^A-Z ]", " ", plain).split()), as_text(item.get("date_de_naissance"))


def parse_company(unit: dict[str, Any], *, fetched_at: datetime) -> dict[str, Any]:
    siege = unit.get("siege") or {}
    complements = unit.get("complements") or {}
    registry = unit.get("immatriculation") or {}
    procedure = (unit.get("bodacc") or {}).get("procedure_collective") or {}
    legal_form = as_text(unit.get("nature_juridique"))
    band = as_text(unit.get("tranche_effectif_salarie"))
    tva = unit.get("tva") or []
    return {
        "siren": as_text(unit["siren"]),
        "nom_entreprise": as_text(unit.get("nom_complet")),
        "denomination": as_text(unit.get("nom_raison_sociale")),
        "sigle": as_text(unit.get("sigle")),
        "personne_morale": None if legal_form is None else legal_form != "1000",
        "diffusable": as_text(unit.get("statut_diffusion")) == "O",
        "code_naf": naf(unit.get("activite_principale")),
        "libelle_code_naf": None,
        "categorie_juridique": legal_form,
        "categorie_juridique_pappers": None,
        "forme_juridique": None,
        "capital": as_float(registry.get("capital_social")),
        "devise_capital": as_text(registry.get("devise_capital")),
        "tranche_effectif": None if band == "NN" else band,
        "effectif": None,
        "effectif_min": None,
        "effectif_max": None,
        "annee_effectif": as_int(unit.get("annee_tranche_effectif_salarie")),
        "entreprise_employeuse": None
        if unit.get("caractere_employeur") is None
        else unit.get("caractere_employeur") == "O",
        "statut_rcs": None,
        "statut_consolide": None,
        "entreprise_cessee": as_text(unit.get("etat_administratif")) == "C",
        "date_creation": as_date(unit.get("date_creation")),
        "date_cessation": as_date(unit.get("date_fermeture")),
        "date_immatriculation_rcs": as_date(registry.get("date_immatriculation")),
        "date_radiation_rcs": as_date(registry.get("date_radiation")),
        "date_cloture_exercice": as_text(registry.get("date_cloture_exercice")),
        "prochaine_date_cloture_exercice": None,
        "associe_unique": as_bool(registry.get("indicateur_associe_unique")),
        "economie_sociale_solidaire": as_bool(complements.get("est_ess")),
        "societe_a_mission": as_bool(complements.get("est_societe_mission")),
        "numero_tva_intracommunautaire": as_text(tva[0]) if tva else None,
        "siege_siret": as_text(siege.get("siret")),
        "siege_adresse": as_text(siege.get("adresse")),
        "siege_code_postal": as_text(siege.get("code_postal")),
        "siege_ville": as_text(siege.get("libelle_commune")),
        "siege_code_commune": as_text(siege.get("commune")),
        "siege_code_departement": as_text(siege.get("departement")),
        "siege_departement": None,
        "siege_code_region": as_text(siege.get("region")),
        "siege_region": None,
        "siege_latitude": as_float(siege.get("latitude")),
        "siege_longitude": as_float(siege.get("longitude")),
        "procedure_collective_existe": bool(as_text(procedure.get("statut"))) or None,
        "procedure_collective_en_cours": bool(as_text(procedure.get("statut"))) or None,
        "derniere_mise_a_jour_sirene": as_date(unit.get("date_mise_a_jour_insee")),
        "derniere_mise_a_jour_rcs": as_date(unit.get("date_mise_a_jour_rne")),
        "dernier_traitement": as_date(unit.get("date_mise_a_jour_insee")),
        "partial": False,
        "fetched_at": fetched_at,
    }


def parse_finances(siren: str, unit: dict[str, Any]) -> list[dict[str, Any]]:
    """The one fiscal year the API gives: revenue and net income, nothing else."""
    closing = (unit.get("immatriculation") or {}).get("date_cloture_exercice")
    rows = []
    for year, item in sorted((unit.get("finances") or {}).items()):
        annee, item = as_int(year), item or {}
        revenue, income = as_int(item.get("ca")), as_int(item.get("resultat_net"))
        if income == 0 and revenue is not None and revenue >= _PLACEHOLDER_REVENUE:
            income = None
        rows.append(
            {
                "siren": siren,
                "annee": annee,
                "date_de_cloture_exercice": _closing(closing, annee),
                "duree_exercice": None,
                "chiffre_affaires": revenue,
                "resultat": income,
                "effectif": None,
            }
        )
    return rows


def parse_dirigeants(siren: str, unit: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per person or company, people listed twice kept once (the first spelling)."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for item in unit.get("dirigeants") or []:
        person = item.get("type_dirigeant") == _PERSON
        if person:
            who = _same_person(item)
            if who in seen:
                continue
            seen.add(who)
        qualite = as_text(item.get("qualite"))
        born, year, month = birth(item.get("date_de_naissance") or item.get("annee_de_naissance"))
        nom, prenom = as_text(item.get("nom")), as_text(item.get("prenoms"))
        full_name = " ".join(part for part in (prenom, nom) if part) or None
        rows.append(
            {
                "siren": siren,
                "rang": len(rows) + 1,
                "personne_morale": not person,
                "qualite": qualite,
                "qualites": [qualite] if qualite else [],
                "commissaire_aux_comptes": bool(
                    qualite and "commissaire aux comptes" in qualite.lower()
                ),
                "nom": nom if person else None,
                "prenom": prenom if person else None,
                "nom_complet": full_name if person else as_text(item.get("denomination")),
                "sexe": None,
                "date_de_naissance": born if person else None,
                "annee_naissance": year if person else None,
                "mois_naissance": month if person else None,
                "nationalite": as_text(item.get("nationalite")),
                "date_prise_de_poste": None,
                "denomination": None if person else as_text(item.get("denomination")),
                "siren_personne_morale": None if person else as_text(item.get("siren")),
                "forme_juridique": None,
            }
        )
    return rows


def parse_procedures(siren: str, unit: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest open collective procedure, when ``include_admin=bodacc`` gave it (closed
    procedures and those older than ten years have an empty ``statut`` there)."""
    procedure = (unit.get("bodacc") or {}).get("procedure_collective") or {}
    kind = as_text(procedure.get("statut"))
    if kind is None:
        return []
    return [
        {
            "siren": siren,
            "rang": 1,
            "type": kind.replace("_", " "),
            "date_debut": as_date(procedure.get("date")),
            "date_fin": None,
        }
    ]


def parse_unit(
    unit: dict[str, Any], *, partial: bool = False, fetched_at: datetime
) -> RegistryRecord:
    """Every row an ``UniteLegale`` yields (``partial`` is always False here: the API has no
    partial answers)."""
    company = parse_company(unit, fetched_at=fetched_at)
    return record_of(company, unit, parse_finances, parse_dirigeants, parse_procedures)


async def fetch_unit(client: ApiClient, siren: str, admin_blocks: str = "") -> Answer:
    """``GET /search?q=<siren>``: the unit's object, a negative answer when the API does not
    list it (unknown, or not public) or lists it as not diffusible, or the error it means."""
    params = {"q": siren, "minimal": "true", "include": _INCLUDE, "per_page": "1"}
    if admin_blocks:
        params["include_admin"] = admin_blocks
    response = await client.request("GET", "/search", params=params)
    status, now = response.status_code, datetime.now(UTC)
    if status != 200:
        kind = "bad_request" if status == 400 else f"http_{status}"
        hint = " (include_admin refused? set admin_blocks to '')" if admin_blocks else ""
        raise RequestFailed(kind, f"HTTP {status}{hint}: {response.text[:200]}", status)
    try:
        results = response.json().get("results") or []
    except (ValueError, AttributeError) as exc:
        raise RequestFailed("invalid_response", f"not a search answer: {exc}", status) from exc
    unit = next((u for u in results if isinstance(u, dict) and u.get("siren") == siren), None)
    if unit is None:
        return Answer(SOURCE, siren, 404, now)
    if unit.get("statut_diffusion") != "O":
        return Answer(SOURCE, siren, NON_DIFFUSIBLE, now)
    return Answer(SOURCE, siren, status, now, json.dumps(unit, ensure_ascii=False))


class RechercheEntreprisesResource(RegistryApi):
    """The API Recherche d'entreprises: free, no key, 7 requests per second per IP.

    Live unless ``sandbox`` is set (MA_RECHERCHE_ENTREPRISES_SANDBOX): then an in-process
    twin answers in the API's shape for the sandbox universe, with the same rate limit.
    """

    source: ClassVar[str] = SOURCE
    label: ClassVar[str] = "API Recherche d'entreprises"
    live_rate_per_second: ClassVar[float | None] = 7.0
    sandbox_rate_per_second: ClassVar[float | None] = 7.0

    from_settings: ClassVar[dict[str, str]] = {
        "sandbox": "MA_RECHERCHE_ENTREPRISES_SANDBOX",
        "rate_per_second": "MA_RECHERCHE_ENTREPRISES_RATE_PER_SECOND",
        "max_age_days": "MA_RECHERCHE_ENTREPRISES_MAX_AGE_DAYS",
        "daily_calls": "MA_RECHERCHE_ENTREPRISES_DAILY_CALLS",
        "contact": "MA_RECHERCHE_ENTREPRISES_CONTACT",
        "sandbox_companies": "MA_SANDBOX_COMPANIES",
        "sandbox_as_of": "MA_SANDBOX_AS_OF",
    }

    base_url: str = Field(
        default="https://recherche-entreprises.api.gouv.fr", description="The API's root"
    )
    sandbox: bool | None = Field(
        default=None, description="Answer from the in-process twin instead of the network"
    )
    concurrency: int = Field(default=4, description="Requests in flight at most")
    admin_blocks: str = Field(
        default="immatriculation,bodacc",
        description="Undocumented include_admin blocks asked for (capital, registration,"
        " latest procedure); empty: none",
    )
    contact: str | None = Field(
        default=None,
        description="Where the API's operators can reach whoever runs the pipeline (an e-mail"
        " or a URL), sent in the User-Agent",
    )

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox else "live"

    def headers(self) -> dict[str, str]:
        about = "open-source M&A scoring pipeline" + (f"; {self.contact}" if self.contact else "")
        return {"Accept": "application/json", "User-Agent": f"ma_pipeline/{PACKAGE} ({about})"}

    def sandbox_transport(self) -> httpx.AsyncBaseTransport:
        return RechercheEntreprisesSandbox(
            self.sandbox_companies, self.sandbox_seed, as_of=self.sandbox_day
        )

    async def fetch(self, client: ApiClient, siren: str) -> Answer:
        return await fetch_unit(client, siren, self.admin_blocks)

    def parse(self, answer: Answer) -> RegistryRecord:
        return record_of_answer(answer, parse_unit)
