"""Pappers API v2 ``/entreprise``: the resource, and the parsing of an answer into table rows.

Parsing is pure (JSON in, rows out) and reads the response defensively, as CONTRACTS §1 asks:
every ratio is optional, ``qualite`` (v2.7) and ``qualites`` (v2.20) are both read, 0/1 integers
count as booleans, NAF codes are written ``NN.NNL`` and legal forms are mapped back to INSEE's
codes (Pappers writes SASU 5720 and EURL 5498 where SIRENE has 5710 and 5499), with Pappers' code
kept beside. Dated fields are kept as dates so features can be computed as of any day.
"""

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer
from ma_pipeline.enrichment.http import ApiClient, RequestFailed
from ma_pipeline.enrichment.records import (
    RATIO_COLUMNS,
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
from ma_pipeline.enrichment.runner import BadApiKey, CreditsExhausted
from ma_pipeline.sandbox.pappers_api import PappersSandbox

SOURCE = "pappers"
# Pappers re-codes these two INSEE legal forms (spec v2.20, "Pappers deviates from INSEE").
LEGAL_FORM_TO_INSEE = {"5720": "5710", "5498": "5499"}
_CREDITS_MESSAGE = re.compile(r"plus assez de cr[ée]dits", re.IGNORECASE)
# Free extra fields (CONTRACTS §1.2) that place the head office in the COG.
_FREE_FIELDS = "code_commune,code_departement,departement,code_region,region"


# --------------------------------------------------------------------------------- parsing
def insee_legal_form(code: Any) -> str | None:
    text = as_text(code)
    return LEGAL_FORM_TO_INSEE.get(text, text) if text else None


def parse_company(
    payload: dict[str, Any], *, partial: bool, fetched_at: datetime
) -> dict[str, Any]:
    siege = payload.get("siege") or {}

    def located(key: str) -> str | None:  # v2.20 puts these in siege; extra fields at top level
        return as_text(siege.get(key)) or as_text(payload.get(key))

    return {
        "siren": as_text(payload["siren"]),
        "nom_entreprise": as_text(payload.get("nom_entreprise")),
        "denomination": as_text(payload.get("denomination")),
        "sigle": as_text(payload.get("sigle")),
        "personne_morale": as_bool(payload.get("personne_morale")),
        "diffusable": as_bool(payload.get("diffusable")),
        "code_naf": naf(payload.get("code_naf")),
        "libelle_code_naf": as_text(payload.get("libelle_code_naf")),
        "categorie_juridique": insee_legal_form(payload.get("categorie_juridique")),
        "categorie_juridique_pappers": as_text(payload.get("categorie_juridique")),
        "forme_juridique": as_text(payload.get("forme_juridique")),
        "capital": as_float(payload.get("capital")),
        "devise_capital": as_text(payload.get("devise_capital")),
        "tranche_effectif": as_text(payload.get("tranche_effectif")),
        "effectif": as_text(payload.get("effectif")),
        "effectif_min": as_int(payload.get("effectif_min")),
        "effectif_max": as_int(payload.get("effectif_max")),
        "annee_effectif": as_int(payload.get("annee_effectif")),
        "entreprise_employeuse": as_bool(payload.get("entreprise_employeuse")),
        "statut_rcs": as_text(payload.get("statut_rcs")),
        "statut_consolide": as_text(payload.get("statut_consolide")),
        "entreprise_cessee": as_bool(payload.get("entreprise_cessee")),
        "date_creation": as_date(payload.get("date_creation")),
        "date_cessation": as_date(payload.get("date_cessation")),
        "date_immatriculation_rcs": as_date(payload.get("date_immatriculation_rcs")),
        "date_radiation_rcs": as_date(payload.get("date_radiation_rcs")),
        "date_cloture_exercice": as_text(payload.get("date_cloture_exercice")),
        "prochaine_date_cloture_exercice": as_date(payload.get("prochaine_date_cloture_exercice")),
        "associe_unique": as_bool(payload.get("associe_unique")),
        "economie_sociale_solidaire": as_bool(payload.get("economie_sociale_solidaire")),
        "societe_a_mission": as_bool(payload.get("societe_a_mission")),
        "numero_tva_intracommunautaire": as_text(payload.get("numero_tva_intracommunautaire")),
        "siege_siret": as_text(siege.get("siret")),
        "siege_adresse": as_text(siege.get("adresse_ligne_1")),
        "siege_code_postal": as_text(siege.get("code_postal")),
        "siege_ville": as_text(siege.get("ville")),
        "siege_code_commune": located("code_commune"),
        "siege_code_departement": located("code_departement"),
        "siege_departement": located("departement"),
        "siege_code_region": located("code_region"),
        "siege_region": located("region"),
        "siege_latitude": as_float(siege.get("latitude")),
        "siege_longitude": as_float(siege.get("longitude")),
        "procedure_collective_existe": as_bool(payload.get("procedure_collective_existe")),
        "procedure_collective_en_cours": as_bool(payload.get("procedure_collective_en_cours")),
        "derniere_mise_a_jour_sirene": as_date(payload.get("derniere_mise_a_jour_sirene")),
        "derniere_mise_a_jour_rcs": as_date(payload.get("derniere_mise_a_jour_rcs")),
        "dernier_traitement": as_date(payload.get("dernier_traitement")),
        "partial": partial,
        "fetched_at": fetched_at,
    }


def parse_finances(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per fiscal year, ratios null where Pappers gives none."""
    rows = []
    for item in payload.get("finances") or []:
        row = {
            "siren": siren,
            "annee": as_int(item.get("annee")),
            "date_de_cloture_exercice": as_date(item.get("date_de_cloture_exercice")),
            "duree_exercice": as_int(item.get("duree_exercice")),
            "chiffre_affaires": as_int(item.get("chiffre_affaires")),
            "resultat": as_int(item.get("resultat")),
            "effectif": as_int(item.get("effectif")),
        }
        row.update({column: as_float(item.get(key)) for key, column in RATIO_COLUMNS})
        rows.append(row)
    return rows


def parse_dirigeants(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per representative, a person or a company, with both role spellings."""
    rows = []
    for rank, item in enumerate(payload.get("representants") or [], start=1):
        listed = [q for q in (as_text(q) for q in item.get("qualites") or []) if q]
        qualite = as_text(item.get("qualite")) or (listed[0] if listed else None)
        qualites = listed or ([qualite] if qualite else [])
        born, year, month = birth(
            item.get("date_de_naissance"), item.get("date_de_naissance_formate")
        )
        legal = bool(as_bool(item.get("personne_morale")))
        rows.append(
            {
                "siren": siren,
                "rang": rank,
                "personne_morale": legal,
                "qualite": qualite,
                "qualites": qualites,
                "commissaire_aux_comptes": any(
                    "commissaire aux comptes" in q.lower() for q in qualites
                ),
                "nom": as_text(item.get("nom")),
                "prenom": as_text(item.get("prenom")),
                "nom_complet": as_text(item.get("nom_complet")),
                "sexe": as_text(item.get("sexe")),
                "date_de_naissance": born,
                "annee_naissance": year,
                "mois_naissance": month,
                "nationalite": as_text(item.get("nationalite")),
                "date_prise_de_poste": as_date(item.get("date_prise_de_poste")),
                "denomination": as_text(item.get("denomination")),
                "siren_personne_morale": as_text(item.get("siren")) if legal else None,
                "forme_juridique": as_text(item.get("forme_juridique")),
            }
        )
    return rows


def parse_procedures(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "siren": siren,
            "rang": rank,
            "type": as_text(item.get("type")),
            "date_debut": as_date(item.get("date_debut")),
            "date_fin": as_date(item.get("date_fin")),
        }
        for rank, item in enumerate(payload.get("procedures_collectives") or [], start=1)
    ]


def parse_entreprise(
    payload: dict[str, Any], *, partial: bool = False, fetched_at: datetime | None = None
) -> RegistryRecord:
    """Every row an ``/entreprise`` object yields."""
    company = parse_company(payload, partial=partial, fetched_at=fetched_at or datetime.now(UTC))
    return record_of(company, payload, parse_finances, parse_dirigeants, parse_procedures)


# ---------------------------------------------------------------------------------- the API
async def fetch_entreprise(client: ApiClient, siren: str) -> Answer:
    """``GET /entreprise?siren=``: an answer (404 included), or the error it means."""
    response = await client.request(
        "GET", "/entreprise", params={"siren": siren, "champs_supplementaires": _FREE_FIELDS}
    )
    status, now = response.status_code, datetime.now(UTC)
    if status in (200, 206):
        return Answer(SOURCE, siren, status, now, response.text, partial=status == 206)
    if status == 404:
        return Answer(SOURCE, siren, status, now)
    if status == 401:
        if _CREDITS_MESSAGE.search(response.text):
            raise CreditsExhausted(
                'Pappers credits exhausted (401: "Vous n\'avez plus assez de crédits");'
                " top up the account and re-run: what was fetched is cached"
            )
        raise BadApiKey("Pappers rejected the API key (401): bad API key; check MA_PAPPERS_API_KEY")
    kind = "bad_request" if status == 400 else f"http_{status}"
    raise RequestFailed(kind, f"HTTP {status}: {response.text[:200]}", status)


class PappersResource(RegistryApi):
    """Pappers API v2 ``/entreprise`` (key in MA_PAPPERS_API_KEY, sent as the ``api-key``
    header); without a key, the sandbox answers for the sandbox universe's companies.

    Credits are estimated at one per answered call (200, 206 or 404): Pappers does not state
    the base cost of ``/entreprise``.
    """

    source: ClassVar[str] = SOURCE
    label: ClassVar[str] = "Pappers"
    live_rate_per_second: ClassVar[float | None] = 10.0
    # The sandbox is in-process: its default limit is set for a demo, not for Pappers.
    sandbox_rate_per_second: ClassVar[float | None] = 200.0

    # Fields left None take these variables when a run launches (settings.LaunchSettings).
    from_settings: ClassVar[dict[str, str]] = {
        "api_key": "MA_PAPPERS_API_KEY",
        "concurrency": "MA_PAPPERS_CONCURRENCY",
        "rate_per_second": "MA_PAPPERS_RATE_PER_SECOND",
        "rate_per_minute": "MA_PAPPERS_RATE_PER_MINUTE",
        "cache_ttl_hours": "MA_PAPPERS_CACHE_TTL_HOURS",
        "max_age_days": "MA_PAPPERS_MAX_AGE_DAYS",
        "daily_calls": "MA_PAPPERS_DAILY_CALLS",
        "max_failure_rate": "MA_PAPPERS_MAX_FAILURE_RATE",
        "sandbox_companies": "MA_SANDBOX_COMPANIES",
        "sandbox_as_of": "MA_SANDBOX_AS_OF",
    }

    base_url: str = Field(default="https://api.pappers.fr/v2", description="Pappers API v2 root")
    concurrency: int | None = Field(default=8, description="Requests in flight at most")

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["api-key"] = self.api_key
        return headers

    def sandbox_transport(self) -> httpx.AsyncBaseTransport:
        return PappersSandbox(self.sandbox_companies, self.sandbox_seed, as_of=self.sandbox_day)

    async def fetch(self, client: ApiClient, siren: str) -> Answer:
        return await fetch_entreprise(client, siren)

    def parse(self, answer: Answer) -> RegistryRecord:
        return record_of_answer(answer, parse_entreprise)
