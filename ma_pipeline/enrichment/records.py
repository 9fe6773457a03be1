"""The registry tables every registry provider fills, whichever ran: their schemas, the rows
one answer yields (``RegistryRecord``), and how a run's records become each day's rows.

The tables keep the names of their first provider (``pappers_companies``, ``pappers_finances``,
``pappers_dirigeants``, ``pappers_procedures``) and its column names; every row says which
provider answered (``source``) and when (``fetched_at``), so features and scoring never depend on
which one ran. The value readers are shared by the providers' parsers: answers are read
defensively (numbers as text, 0/1 as booleans, dates with or without a day).
"""

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import polars as pl

from ma_pipeline.enrichment.cache import Answer
from ma_pipeline.warehouse import PARTITION_COLUMN

_NAF = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$")

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
RATIO_COLUMNS = tuple((key, key.lower()) for key in RATIO_KEYS)
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
def as_bool(value: Any) -> bool | None:
    """JSON booleans, and the 0/1 integers some endpoints send instead."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def as_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def naf(code: Any) -> str | None:
    """A NAF sous-classe as ``NN.NNL``; other codes (old nomenclatures) as given."""
    text = as_text(code)
    if text is None:
        return None
    match = _NAF.match(text.upper())
    return f"{match[1]}.{match[2]}{match[3]}" if match else text


def birth(value: Any, formatted: Any = None) -> tuple[date | None, int | None, int | None]:
    """(full date when the day is given, year, month) from ``YYYY-MM-DD``, ``YYYY-MM``,
    ``DD/MM/YYYY`` or ``MM/YYYY``; Pappers withholds the day for some people."""
    for text in (as_text(value), as_text(formatted)):
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
class RegistryRecord:
    """The rows one provider's answer about a company yields, one list per table."""

    company: dict[str, Any]
    finances: list[dict[str, Any]]
    dirigeants: list[dict[str, Any]]
    procedures: list[dict[str, Any]]


Rows = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


class ParseObject(Protocol):
    def __call__(
        self, payload: dict[str, Any], *, partial: bool, fetched_at: datetime
    ) -> RegistryRecord: ...


def record_of(company: dict[str, Any], payload: dict[str, Any], *tables: Rows) -> RegistryRecord:
    """The record of ``company`` with the finance, dirigeant and procedure rows that
    ``tables`` read from ``payload``."""
    siren = company["siren"]
    if siren is None:
        raise ValueError("the answer has no siren")
    finances, dirigeants, procedures = (rows(siren, payload) for rows in tables)
    return RegistryRecord(company, finances, dirigeants, procedures)


def record_of_answer(answer: Answer, parse: ParseObject) -> RegistryRecord:
    """The record of a stored answer whose body is one JSON object about ``answer.key``."""
    payload = json.loads(answer.payload or "null")
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    record = parse(payload, partial=answer.partial, fetched_at=answer.fetched_at)
    if record.company["siren"] != answer.key:
        raise ValueError(f"asked for {answer.key}, got {record.company['siren']}")
    return record


# ----------------------------------------------------------------------------------- tables
TABLES = ("pappers_companies", "pappers_finances", "pappers_dirigeants", "pappers_procedures")
_SCHEMAS = dict(
    zip(TABLES, (COMPANY_SCHEMA, FINANCE_SCHEMA, DIRIGEANT_SCHEMA, PROCEDURE_SCHEMA), strict=True)
)


def record_frames(records: Sequence[RegistryRecord]) -> dict[str, pl.DataFrame]:
    """The rows of ``records``, one typed frame per table (no partition yet)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "pappers_companies": [r.company for r in records],
        "pappers_finances": [row for r in records for row in r.finances],
        "pappers_dirigeants": [row for r in records for row in r.dirigeants],
        "pappers_procedures": [row for r in records for row in r.procedures],
    }
    return {name: pl.DataFrame(rows[name], schema=_SCHEMAS[name]) for name in TABLES}


def partition_tables(
    records: Sequence[RegistryRecord], companies_by_day: pl.DataFrame, source: str
) -> dict[str, pl.DataFrame]:
    """Each table's rows for each (partition_date, siren) of ``companies_by_day``.

    A SIREN enriched once serves every day it is active; dirigeants get their age at that day.
    Every row names where it comes from: ``source`` (the provider; ``pappers_sandbox`` or
    ``recherche_entreprises_sandbox`` for generated answers) and the ``fetched_at`` of the
    answer it was parsed from (the API cache's answer for that SIREN).
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


# INPI's ratios (``open_data.inpi_ratios``, percent like Pappers' ratios) as finance columns.
RATIO_YEAR_COLUMNS = {
    "chiffre_d_affaires": "chiffre_affaires",
    "resultat_net": "resultat",
    "ebe": "excedent_brut_exploitation",
    "marge_brute": "marge_brute",
    "marge_ebe": "taux_marge_ebitda",
    "taux_d_endettement": "ratio_endettement",
    "ratio_de_liquidite": "liquidite_generale",
    "autonomie_financiere": "autonomie_financiere",
    "capacite_de_remboursement": "capacite_remboursement",
}


def with_ratio_years(
    finances: pl.DataFrame, companies: pl.DataFrame, ratios: pl.DataFrame
) -> pl.DataFrame:
    """``finances`` (one day's or a run's rows) plus, for each (day, SIREN) of ``companies``,
    the fiscal years INPI's ratios hold and the provider did not give (the free API gives one
    year; Pappers may miss some): the revenue history growth features need.

    Only each year's ``chosen`` row (the legal entity's accounts) is used; a revenue flagged
    implausible (a unit slip) or a net income of 0 flagged as a placeholder is left null. Each
    added row says ``source = inpi_ratios`` and has no ``fetched_at``.
    """
    if ratios.is_empty():
        return finances
    flagged = pl.col("implausible").fill_null("")
    years = ratios.filter(pl.col("chosen")).select(
        "siren",
        pl.col("annee").cast(pl.Int64),
        pl.col("date_cloture_exercice").alias("date_de_cloture_exercice"),
        *(
            pl.col(inpi).alias(ours)
            for inpi, ours in RATIO_YEAR_COLUMNS.items()
            if inpi not in ("chiffre_d_affaires", "resultat_net")
        ),
        pl.when(~flagged.str.contains("chiffre_d_affaires"))
        .then(pl.col("chiffre_d_affaires").round().cast(pl.Int64))
        .alias("chiffre_affaires"),
        pl.when(~flagged.str.contains("resultat_net"))
        .then(pl.col("resultat_net").round().cast(pl.Int64))
        .alias("resultat"),
    )
    added = (
        companies.select(PARTITION_COLUMN, "siren")
        .join(years, on="siren")
        .join(finances, on=[PARTITION_COLUMN, "siren", "annee"], how="anti")
        .with_columns(pl.lit("inpi_ratios").alias("source"))
    )
    return pl.concat([finances, added], how="diagonal_relaxed").select(finances.columns)
