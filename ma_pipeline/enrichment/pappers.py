"""Pappers API v2 ``/entreprise``: the resource, and the parsing of an answer into table rows.

Parsing is pure (JSON in, rows out) and reads the response defensively, as CONTRACTS §1 asks:
every ratio is optional, ``qualite`` (v2.7) and ``qualites`` (v2.20) are both read, 0/1 integers
count as booleans, NAF codes are written ``NN.NNL`` and legal forms are mapped back to INSEE's
codes (Pappers writes SASU 5720 and EURL 5498 where SIRENE has 5710 and 5499), with Pappers' code
kept beside. Dated fields are kept as dates so features can be computed as of any day.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import polars as pl
from pydantic import Field

from ma_pipeline.enrichment.cache import Answer, ApiCache, ApiUsage
from ma_pipeline.enrichment.http import ApiClient, RequestFailed
from ma_pipeline.enrichment.refresh import RefreshPlan, plan_refresh
from ma_pipeline.enrichment.resource import ApiResource, today
from ma_pipeline.enrichment.runner import BadApiKey, CreditsExhausted, EnrichmentRun
from ma_pipeline.sandbox.pappers_api import PappersSandbox
from ma_pipeline.settings import SANDBOX_UNITS
from ma_pipeline.warehouse import PARTITION_COLUMN, Warehouse

SOURCE = "pappers"
# Pappers re-codes these two INSEE legal forms (spec v2.20, "Pappers deviates from INSEE").
LEGAL_FORM_TO_INSEE = {"5720": "5710", "5498": "5499"}
_NAF = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$")
_CREDITS_MESSAGE = re.compile(r"plus assez de cr[ée]dits", re.IGNORECASE)
# Free extra fields (CONTRACTS §1.2) that place the head office in the COG.
_FREE_FIELDS = "code_commune,code_departement,departement,code_region,region"

# Every ratio documented for finances[] (CONTRACTS §1.4); all optional, stored in lower case.
RATIO_KEYS = (
    "marge_brute",
    "excedent_brut_exploitation",
    "resultat_exploitation",
    "taux_croissance_chiffre_affaires",
    "taux_marge_brute",
    "taux_marge_EBITDA",
    "taux_marge_operationnelle",
    "BFR",
    "BFR_exploitation",
    "BFR_hors_exploitation",
    "BFR_jours_CA",
    "BFR_exploitation_jours_CA",
    "BFR_hors_exploitation_jours_CA",
    "delai_paiement_clients_jours",
    "delai_paiement_fournisseurs_jours",
    "ratio_stock_CA_jours",
    "capacite_autofinancement",
    "capacite_autofinancement_CA",
    "fonds_roulement_net_global",
    "couverture_BFR",
    "tresorerie",
    "dettes_financieres",
    "capacite_remboursement",
    "ratio_endettement",
    "autonomie_financiere",
    "taux_levier",
    "etat_dettes_1_an_au_plus",
    "liquidite_generale",
    "couverture_dettes",
    "marge_nette",
    "rentabilite_fonds_propres",
    "rentabilite_economique",
    "valeur_ajoutee",
    "valeur_ajoutee_CA",
    "salaires_charges_sociales",
    "salaires_CA",
    "impots_taxes",
)

COMPANY_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "nom_entreprise": pl.String(),
    "denomination": pl.String(),
    "sigle": pl.String(),
    "personne_morale": pl.Boolean(),
    "diffusable": pl.Boolean(),
    "code_naf": pl.String(),
    "libelle_code_naf": pl.String(),
    "categorie_juridique": pl.String(),
    "categorie_juridique_pappers": pl.String(),
    "forme_juridique": pl.String(),
    "capital": pl.Float64(),
    "devise_capital": pl.String(),
    "tranche_effectif": pl.String(),
    "effectif": pl.String(),
    "effectif_min": pl.Int64(),
    "effectif_max": pl.Int64(),
    "annee_effectif": pl.Int64(),
    "entreprise_employeuse": pl.Boolean(),
    "statut_rcs": pl.String(),
    "statut_consolide": pl.String(),
    "entreprise_cessee": pl.Boolean(),
    "date_creation": pl.Date(),
    "date_cessation": pl.Date(),
    "date_immatriculation_rcs": pl.Date(),
    "date_radiation_rcs": pl.Date(),
    "date_cloture_exercice": pl.String(),
    "prochaine_date_cloture_exercice": pl.Date(),
    "associe_unique": pl.Boolean(),
    "economie_sociale_solidaire": pl.Boolean(),
    "societe_a_mission": pl.Boolean(),
    "numero_tva_intracommunautaire": pl.String(),
    "siege_siret": pl.String(),
    "siege_adresse": pl.String(),
    "siege_code_postal": pl.String(),
    "siege_ville": pl.String(),
    "siege_code_commune": pl.String(),
    "siege_code_departement": pl.String(),
    "siege_departement": pl.String(),
    "siege_code_region": pl.String(),
    "siege_region": pl.String(),
    "siege_latitude": pl.Float64(),
    "siege_longitude": pl.Float64(),
    "procedure_collective_existe": pl.Boolean(),
    "procedure_collective_en_cours": pl.Boolean(),
    "derniere_mise_a_jour_sirene": pl.Date(),
    "derniere_mise_a_jour_rcs": pl.Date(),
    "dernier_traitement": pl.Date(),
    "partial": pl.Boolean(),
    "fetched_at": pl.Datetime("us", "UTC"),
}
FINANCE_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "annee": pl.Int64(),
    "date_de_cloture_exercice": pl.Date(),
    "duree_exercice": pl.Int64(),
    "chiffre_affaires": pl.Int64(),
    "resultat": pl.Int64(),
    "effectif": pl.Int64(),
    **{key.lower(): pl.Float64() for key in RATIO_KEYS},
}
_RATIO_COLUMNS = tuple((key, key.lower()) for key in RATIO_KEYS)
DIRIGEANT_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "rang": pl.Int64(),
    "personne_morale": pl.Boolean(),
    "qualite": pl.String(),
    "qualites": pl.List(pl.String()),
    "commissaire_aux_comptes": pl.Boolean(),
    "nom": pl.String(),
    "prenom": pl.String(),
    "nom_complet": pl.String(),
    "sexe": pl.String(),
    "date_de_naissance": pl.Date(),
    "annee_naissance": pl.Int64(),
    "mois_naissance": pl.Int64(),
    "nationalite": pl.String(),
    "date_prise_de_poste": pl.Date(),
    "denomination": pl.String(),
    "siren_personne_morale": pl.String(),
    "forme_juridique": pl.String(),
}
PROCEDURE_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "rang": pl.Int64(),
    "type": pl.String(),
    "date_debut": pl.Date(),
    "date_fin": pl.Date(),
}


# ----------------------------------------------------------------------------------- values
def _bool(value: Any) -> bool | None:
    """JSON booleans, and the 0/1 integers some endpoints send instead."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def naf(code: Any) -> str | None:
    """A NAF sous-classe as ``NN.NNL``; other codes (old nomenclatures) as given."""
    text = _text(code)
    if text is None:
        return None
    match = _NAF.match(text.upper())
    return f"{match[1]}.{match[2]}{match[3]}" if match else text


def insee_legal_form(code: Any) -> str | None:
    text = _text(code)
    return LEGAL_FORM_TO_INSEE.get(text, text) if text else None


def birth(value: Any, formatted: Any = None) -> tuple[date | None, int | None, int | None]:
    """(full date when the day is given, year, month) from ``YYYY-MM-DD``, ``YYYY-MM``,
    ``DD/MM/YYYY`` or ``MM/YYYY``; Pappers withholds the day for some people."""
    for text in (_text(value), _text(formatted)):
        if text is None:
            continue
        full = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text) or re.fullmatch(
            r"(\d{2})/(\d{2})/(\d{4})", text
        )
        if full:
            parts = full.groups()
            y, m, d = parts if len(parts[0]) == 4 else parts[::-1]
            try:
                return date(int(y), int(m), int(d)), int(y), int(m)
            except ValueError:
                continue
        month = re.fullmatch(r"(\d{4})-(\d{2})", text) or re.fullmatch(r"(\d{2})/(\d{4})", text)
        if month:
            a, b = month.groups()
            y, m = (a, b) if len(a) == 4 else (b, a)
            return None, int(y), int(m)
        year = re.fullmatch(r"\d{4}", text)
        if year:
            return None, int(text), None
    return None, None, None


# ---------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class PappersRecord:
    """The rows one ``/entreprise`` answer yields, one list per table."""

    company: dict[str, Any]
    finances: list[dict[str, Any]]
    dirigeants: list[dict[str, Any]]
    procedures: list[dict[str, Any]]


def parse_company(
    payload: dict[str, Any], *, partial: bool, fetched_at: datetime
) -> dict[str, Any]:
    siege = payload.get("siege") or {}

    def located(key: str) -> str | None:  # v2.20 puts these in siege; extra fields at top level
        return _text(siege.get(key)) or _text(payload.get(key))

    return {
        "siren": _text(payload["siren"]),
        "nom_entreprise": _text(payload.get("nom_entreprise")),
        "denomination": _text(payload.get("denomination")),
        "sigle": _text(payload.get("sigle")),
        "personne_morale": _bool(payload.get("personne_morale")),
        "diffusable": _bool(payload.get("diffusable")),
        "code_naf": naf(payload.get("code_naf")),
        "libelle_code_naf": _text(payload.get("libelle_code_naf")),
        "categorie_juridique": insee_legal_form(payload.get("categorie_juridique")),
        "categorie_juridique_pappers": _text(payload.get("categorie_juridique")),
        "forme_juridique": _text(payload.get("forme_juridique")),
        "capital": _float(payload.get("capital")),
        "devise_capital": _text(payload.get("devise_capital")),
        "tranche_effectif": _text(payload.get("tranche_effectif")),
        "effectif": _text(payload.get("effectif")),
        "effectif_min": _int(payload.get("effectif_min")),
        "effectif_max": _int(payload.get("effectif_max")),
        "annee_effectif": _int(payload.get("annee_effectif")),
        "entreprise_employeuse": _bool(payload.get("entreprise_employeuse")),
        "statut_rcs": _text(payload.get("statut_rcs")),
        "statut_consolide": _text(payload.get("statut_consolide")),
        "entreprise_cessee": _bool(payload.get("entreprise_cessee")),
        "date_creation": _date(payload.get("date_creation")),
        "date_cessation": _date(payload.get("date_cessation")),
        "date_immatriculation_rcs": _date(payload.get("date_immatriculation_rcs")),
        "date_radiation_rcs": _date(payload.get("date_radiation_rcs")),
        "date_cloture_exercice": _text(payload.get("date_cloture_exercice")),
        "prochaine_date_cloture_exercice": _date(payload.get("prochaine_date_cloture_exercice")),
        "associe_unique": _bool(payload.get("associe_unique")),
        "economie_sociale_solidaire": _bool(payload.get("economie_sociale_solidaire")),
        "societe_a_mission": _bool(payload.get("societe_a_mission")),
        "numero_tva_intracommunautaire": _text(payload.get("numero_tva_intracommunautaire")),
        "siege_siret": _text(siege.get("siret")),
        "siege_adresse": _text(siege.get("adresse_ligne_1")),
        "siege_code_postal": _text(siege.get("code_postal")),
        "siege_ville": _text(siege.get("ville")),
        "siege_code_commune": located("code_commune"),
        "siege_code_departement": located("code_departement"),
        "siege_departement": located("departement"),
        "siege_code_region": located("code_region"),
        "siege_region": located("region"),
        "siege_latitude": _float(siege.get("latitude")),
        "siege_longitude": _float(siege.get("longitude")),
        "procedure_collective_existe": _bool(payload.get("procedure_collective_existe")),
        "procedure_collective_en_cours": _bool(payload.get("procedure_collective_en_cours")),
        "derniere_mise_a_jour_sirene": _date(payload.get("derniere_mise_a_jour_sirene")),
        "derniere_mise_a_jour_rcs": _date(payload.get("derniere_mise_a_jour_rcs")),
        "dernier_traitement": _date(payload.get("dernier_traitement")),
        "partial": partial,
        "fetched_at": fetched_at,
    }


def parse_finances(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per fiscal year, ratios null where Pappers gives none."""
    rows = []
    for item in payload.get("finances") or []:
        row = {
            "siren": siren,
            "annee": _int(item.get("annee")),
            "date_de_cloture_exercice": _date(item.get("date_de_cloture_exercice")),
            "duree_exercice": _int(item.get("duree_exercice")),
            "chiffre_affaires": _int(item.get("chiffre_affaires")),
            "resultat": _int(item.get("resultat")),
            "effectif": _int(item.get("effectif")),
        }
        row.update({column: _float(item.get(key)) for key, column in _RATIO_COLUMNS})
        rows.append(row)
    return rows


def parse_dirigeants(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per representative, a person or a company, with both role spellings."""
    rows = []
    for rank, item in enumerate(payload.get("representants") or [], start=1):
        listed = [q for q in (_text(q) for q in item.get("qualites") or []) if q]
        qualite = _text(item.get("qualite")) or (listed[0] if listed else None)
        qualites = listed or ([qualite] if qualite else [])
        born, year, month = birth(
            item.get("date_de_naissance"), item.get("date_de_naissance_formate")
        )
        legal = bool(_bool(item.get("personne_morale")))
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
                "nom": _text(item.get("nom")),
                "prenom": _text(item.get("prenom")),
                "nom_complet": _text(item.get("nom_complet")),
                "sexe": _text(item.get("sexe")),
                "date_de_naissance": born,
                "annee_naissance": year,
                "mois_naissance": month,
                "nationalite": _text(item.get("nationalite")),
                "date_prise_de_poste": _date(item.get("date_prise_de_poste")),
                "denomination": _text(item.get("denomination")),
                "siren_personne_morale": _text(item.get("siren")) if legal else None,
                "forme_juridique": _text(item.get("forme_juridique")),
            }
        )
    return rows


def parse_procedures(siren: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "siren": siren,
            "rang": rank,
            "type": _text(item.get("type")),
            "date_debut": _date(item.get("date_debut")),
            "date_fin": _date(item.get("date_fin")),
        }
        for rank, item in enumerate(payload.get("procedures_collectives") or [], start=1)
    ]


def parse_entreprise(
    payload: dict[str, Any], *, partial: bool = False, fetched_at: datetime | None = None
) -> PappersRecord:
    """Every row an ``/entreprise`` object yields."""
    company = parse_company(payload, partial=partial, fetched_at=fetched_at or datetime.now(UTC))
    siren = company["siren"]
    if siren is None:
        raise ValueError("the answer has no siren")
    return PappersRecord(
        company=company,
        finances=parse_finances(siren, payload),
        dirigeants=parse_dirigeants(siren, payload),
        procedures=parse_procedures(siren, payload),
    )


def parse_answer(answer: Answer) -> PappersRecord:
    payload = json.loads(answer.payload or "null")
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    record = parse_entreprise(payload, partial=answer.partial, fetched_at=answer.fetched_at)
    if record.company["siren"] != answer.key:
        raise ValueError(f"asked for {answer.key}, got {record.company['siren']}")
    return record


# ----------------------------------------------------------------------------------- tables
TABLES = ("pappers_companies", "pappers_finances", "pappers_dirigeants", "pappers_procedures")
_SCHEMAS = dict(
    zip(TABLES, (COMPANY_SCHEMA, FINANCE_SCHEMA, DIRIGEANT_SCHEMA, PROCEDURE_SCHEMA), strict=True)
)


def record_frames(records: Sequence[PappersRecord]) -> dict[str, pl.DataFrame]:
    """The rows of ``records``, one typed frame per table (no partition yet)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "pappers_companies": [r.company for r in records],
        "pappers_finances": [row for r in records for row in r.finances],
        "pappers_dirigeants": [row for r in records for row in r.dirigeants],
        "pappers_procedures": [row for r in records for row in r.procedures],
    }
    return {name: pl.DataFrame(rows[name], schema=_SCHEMAS[name]) for name in TABLES}


def partition_tables(
    records: Sequence[PappersRecord], companies_by_day: pl.DataFrame, source: str = SOURCE
) -> dict[str, pl.DataFrame]:
    """Each table's rows for each (partition_date, siren) of ``companies_by_day``.

    A SIREN enriched once serves every day it is active; dirigeants get their age at that day.
    Every row names where it comes from: ``source`` (``pappers``, or ``pappers_sandbox`` for
    generated answers) and the ``fetched_at`` of the answer it was parsed from (the API cache's
    answer for that SIREN).
    """
    frames = record_frames(records)
    by_day = companies_by_day.select(PARTITION_COLUMN, "siren")
    out = {
        name: by_day.join(frame, on="siren", how="inner").sort(PARTITION_COLUMN, "siren")
        for name, frame in frames.items()
    }
    day = pl.col(PARTITION_COLUMN)
    # Month-precision births count from the 1st of the month, year-only ones from 1 July.
    # (dt.month() is an Int8: widen before multiplying.)
    birthday_passed = day.dt.month().cast(pl.Int32) * 100 + day.dt.day() >= (
        pl.col("mois_naissance").fill_null(7) * 100
        + pl.col("date_de_naissance").dt.day().cast(pl.Int32).fill_null(1)
    )
    out["pappers_dirigeants"] = out["pappers_dirigeants"].with_columns(
        age=(day.dt.year() - pl.col("annee_naissance") - (~birthday_passed).cast(pl.Int64)).cast(
            pl.Int64
        )
    )
    # The companies' fetched_at is their answer's; the other tables take it from there.
    answers = frames["pappers_companies"].select("siren", "fetched_at")
    return {
        name: (
            frame if name == "pappers_companies" else frame.join(answers, on="siren", how="left")
        ).with_columns(pl.lit(source).alias("source"))
        for name, frame in out.items()
    }


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


class PappersResource(ApiResource):
    """Pappers API v2 ``/entreprise`` (key in MA_PAPPERS_API_KEY, sent as the ``api-key``
    header); without a key, the sandbox answers for the sandbox universe's companies."""

    source: ClassVar[str] = SOURCE
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
    cache_ttl_hours: float | None = Field(
        default=24.0,
        description="Age after which a cached answer is fetched again, for a look-up on demand",
    )
    max_age_days: float | None = Field(
        default=30.0,
        description="Age after which a target's answer is fetched again by the daily enrichment"
        " even if its SIRENE record did not change",
    )
    daily_calls: int | None = Field(
        default=None,
        description="Calls the daily enrichment may make a calendar day (Paris); unset: no limit",
    )
    max_failure_rate: float | None = Field(
        default=0.05, description="Share of failed companies above which the asset fails"
    )
    sandbox_companies: int | None = Field(
        default=SANDBOX_UNITS,
        description="MA_SANDBOX_COMPANIES: the universe the sandbox answers for",
    )
    sandbox_seed: int = Field(default=2026, description="Seed of the sandbox universe")
    sandbox_as_of: str | None = Field(
        default="", description="Day the sandbox answers as of (YYYY-MM-DD); empty: today"
    )

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["api-key"] = self.api_key
        return headers

    def sandbox_transport(self) -> httpx.AsyncBaseTransport:
        as_of = date.fromisoformat(self.sandbox_as_of) if self.sandbox_as_of else None
        return PappersSandbox(self.sandbox_companies, self.sandbox_seed, as_of=as_of)

    def enrich(
        self, sirens: Sequence[str], warehouse: Warehouse, now: datetime | None = None
    ) -> EnrichmentRun[PappersRecord]:
        """Records for ``sirens``: cached within the TTL, fetched otherwise.

        Credits are estimated at one per answered call (200, 206 or 404): Pappers does not
        state the base cost of ``/entreprise``.
        """
        return self._enrich(
            sirens, warehouse, fetch=fetch_entreprise, parse=parse_answer, credits=_one, now=now
        )

    def refresh(
        self, targets: pl.DataFrame, warehouse: Warehouse, now: datetime | None = None
    ) -> tuple[RefreshPlan, EnrichmentRun[PappersRecord]]:
        """Records for ``targets`` (``siren``, ``date_dernier_traitement``): only the new,
        changed and old ones are fetched, within what is left of the day's calls; the others
        are served from their stored answers (``enrichment.refresh``)."""
        now = now or datetime.now(UTC)
        sirens = targets["siren"].unique().sort().to_list()
        stored = ApiCache(warehouse, SOURCE, timedelta(hours=self.cache_ttl_hours)).state(sirens)
        budget = None
        if self.daily_calls is not None:
            spent = ApiUsage(warehouse, SOURCE).calls_made(today(now))
            budget = max(self.daily_calls - spent, 0)
        plan = plan_refresh(
            targets, stored, now=now, max_age=timedelta(days=self.max_age_days), budget=budget
        )
        run = self._enrich(
            plan.fetch + plan.reuse,
            warehouse,
            fetch=fetch_entreprise,
            parse=parse_answer,
            credits=_one,
            now=now,
            plan=plan,
        )
        return plan, run


def _one(_: Answer) -> float:
    return 1.0
