"""The Pappers sandbox: ``GET /v2/entreprise?siren=`` answered in the real response shape.

It knows every company of the sandbox universe and answers consistently with what SIRENE shows
of it (NAF, creation date, headcount band, legal form, written the Pappers way: 5720 for a SASU,
5498 for an EURL) and with the world's latent truth (finances, dirigeants, procedures), as of a
given day: only accounts filed by then, only people in post by then. Unknown SIRENs get a 404.
The head-office postal code is the département's main one (``dep`` + ``000``, arrondissements
for Paris, Lyon and Marseille): close to La Poste's, not taken from it.
"""

from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ma_pipeline.partitions import TIMEZONE
from ma_pipeline.reference import departements, naf_hierarchy
from ma_pipeline.sandbox.transport import SandboxTransport
from ma_pipeline.sandbox.world import (
    MID_BANDS,
    SMALL_BANDS,
    Dirigeant,
    FinanceYear,
    World,
    closing_day,
    world,
)

CREDITS_MESSAGE = "Vous n'avez plus assez de crédits pour effectuer cette requête"

LEGAL_FORM_LABELS = {
    "5710": "SAS, société par actions simplifiée",
    "5720": "SASU, société par actions simplifiée unipersonnelle",
    "5499": "SARL, société à responsabilité limitée",
    "5498": "EURL, entreprise unipersonnelle à responsabilité limitée",
    "5599": "SA à conseil d'administration (s.a.i.)",
    "5202": "Société en nom collectif",
    "1000": "Entrepreneur individuel",
    "6540": "Société civile immobilière",
    "6599": "Société civile",
    "9220": "Association déclarée",
    "7210": "Commune et commune nouvelle",
}
# Headcount band -> (label, min, max), as Pappers writes them.
BANDS: dict[str, tuple[str, int, int | None]] = {
    "00": ("0 salarié", 0, 0),
    "01": ("Entre 1 et 2 salariés", 1, 2),
    "02": ("Entre 3 et 5 salariés", 3, 5),
    "03": ("Entre 6 et 9 salariés", 6, 9),
    "11": ("Entre 10 et 19 salariés", 10, 19),
    "12": ("Entre 20 et 49 salariés", 20, 49),
    "21": ("Entre 50 et 99 salariés", 50, 99),
    "22": ("Entre 100 et 199 salariés", 100, 199),
    "31": ("Entre 200 et 249 salariés", 200, 249),
    "32": ("Entre 250 et 499 salariés", 250, 499),
    "41": ("Entre 500 et 999 salariés", 500, 999),
    "42": ("Entre 1 000 et 1 999 salariés", 1_000, 1_999),
    "51": ("Entre 2 000 et 4 999 salariés", 2_000, 4_999),
    "52": ("Entre 5 000 et 9 999 salariés", 5_000, 9_999),
    "53": ("10 000 salariés et plus", 10_000, None),
}
_MONTHS = ("Janvier", "Février", "Mars", "Avril", "Mai", "Juin", "Juillet", "Août")
_MONTHS += ("Septembre", "Octobre", "Novembre", "Décembre")
_STREET_TYPES = ("RUE", "AVENUE", "BOULEVARD", "PLACE", "CHEMIN", "ALLEE", "IMPASSE", "ROUTE")
_STREETS = ("DE LA REPUBLIQUE", "VICTOR HUGO", "JEAN JAURES", "DE LA GARE", "PASTEUR")
_STREETS += ("DU GENERAL DE GAULLE", "DES ECOLES", "DE L'EGLISE", "NATIONALE", "DU MOULIN")


@cache
def _naf_labels() -> dict[str, str]:
    return dict(naf_hierarchy().select("code_sous_classe", "libelle_sous_classe").iter_rows())


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _french(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def vat_number(siren: str) -> str:
    """The French VAT number of a SIREN (CONTRACTS §3.5)."""
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def _siege(w: World, i: int, siren: str, nic: str, band: str, creation: date) -> dict[str, Any]:
    dep = departements().row(int(w.departement[i]), named=True)
    street = int(w.street[i])
    postal, ville = f"{dep['dep']}000", dep["cheflieu_libelle"].upper()
    if len(dep["dep"]) == 3:  # overseas: 97100 Basse-Terre, 97400 Saint-Denis...
        postal = f"{dep['dep']}00"
    elif dep["dep"] in ("2A", "2B"):
        postal = "20000" if dep["dep"] == "2A" else "20200"
    elif dep["dep"] == "75":
        postal, ville = f"750{street % 20 + 1:02d}", f"PARIS {street % 20 + 1}"
    elif dep["dep"] == "69":
        postal, ville = f"6900{street % 9 + 1}", f"LYON {street % 9 + 1}"
    elif dep["dep"] == "13":
        postal, ville = f"130{street % 16 + 1:02d}", f"MARSEILLE {street % 16 + 1}"
    label, low, high = BANDS.get(band, (None, None, None))
    return {
        "siret": siren + nic,
        "siret_formate": f"{siren[:3]} {siren[3:6]} {siren[6:]} {nic}",
        "nic": nic,
        "siege": True,
        "numero_voie": street % 150 + 1,
        "indice_repetition": None,
        "type_voie": _STREET_TYPES[street % len(_STREET_TYPES)],
        "libelle_voie": _STREETS[street // 8 % len(_STREETS)],
        "complement_adresse": None,
        "adresse_ligne_1": f"{street % 150 + 1} {_STREET_TYPES[street % len(_STREET_TYPES)]}"
        f" {_STREETS[street // 8 % len(_STREETS)]}",
        "adresse_ligne_2": None,
        "code_postal": postal,
        "ville": ville,
        "pays": "France",
        "code_pays": "FR",
        "latitude": None,
        "longitude": None,
        "code_commune": dep["cheflieu"],
        "code_departement": dep["dep"],
        "departement": dep["libelle"],
        "code_region": dep["reg"],
        "region": dep["reg_libelle"],
        "date_de_creation": creation.isoformat(),
        "etablissement_cesse": False,
        "date_cessation": None,
        "tranche_effectif": band if band in BANDS else None,
        "effectif": label,
        "effectif_min": low,
        "effectif_max": high,
    }


def _capital(draw: int, band: str, insee: str) -> float:
    """A round share capital that grows with the company's size (SA: 37,000 at least)."""
    if band in SMALL_BANDS:
        amounts = (1_000, 1_500, 2_000, 5_000, 7_500, 10_000)
    elif band in MID_BANDS:
        amounts = (10_000, 20_000, 50_000, 100_000)
    else:
        amounts = (100_000, 500_000, 1_000_000, 5_000_000)
    return float(max(amounts[draw % len(amounts)], 37_000 if insee == "5599" else 0))


def _finances(years: list[FinanceYear]) -> list[dict[str, Any]]:
    items = []
    for k, year in enumerate(years):
        ca = year.chiffre_affaires
        item: dict[str, Any] = {
            "annee": year.annee,
            "date_de_cloture_exercice": year.cloture.isoformat(),
            "duree_exercice": 12,
            "chiffre_affaires": ca,
            "resultat": year.resultat,
            "effectif": year.effectif,
        }
        if year.with_ratios and ca > 0:
            previous = years[k + 1].chiffre_affaires if k + 1 < len(years) else None
            equity = max(year.fonds_propres, 1)
            item |= {
                "excedent_brut_exploitation": year.ebitda,
                "resultat_exploitation": year.ebit,
                "taux_croissance_chiffre_affaires": round((ca / previous - 1) * 100, 2)
                if previous
                else None,
                "taux_marge_EBITDA": round(year.ebitda / ca * 100, 2),
                "taux_marge_operationnelle": round(year.ebit / ca * 100, 2),
                "marge_nette": round(year.resultat / ca * 100, 2),
                "capacite_autofinancement": round(year.resultat + 0.03 * ca),
                "tresorerie": year.tresorerie,
                "dettes_financieres": year.dettes_financieres,
                "ratio_endettement": round(year.dettes_financieres / equity * 100, 2),
                "autonomie_financiere": round(equity / (equity + year.dettes_financieres) * 100, 2),
            }
        items.append(item)
    return items


def _representant(person: Dirigeant, as_of: date) -> dict[str, Any]:
    common = {
        "qualite": person.qualites[0],
        "qualites": list(person.qualites),
        "personne_morale": person.kind != "person",
        "date_prise_de_poste": person.start.isoformat(),
    }
    if person.kind != "person":
        return common | {
            "denomination": person.denomination,
            "siren": person.siren,
            "nom_complet": person.denomination,
            "forme_juridique": person.forme_juridique,
        }
    assert person.birth is not None and person.prenom is not None
    age = (
        as_of.year
        - person.birth.year
        - ((as_of.month, as_of.day) < (person.birth.month, person.birth.day))
    )
    return common | {
        "nom": person.nom,
        "prenom": person.prenom.title(),
        "nom_complet": f"{person.prenom.title()} {person.nom}",
        "sexe": person.sexe,
        "date_de_naissance": person.birth.isoformat(),
        "date_de_naissance_formate": _french(person.birth),
        "age": age,
        "nationalite": person.nationalite,
        "pays": "France",
    }


def entreprise(w: World, siren: str, as_of: date) -> dict[str, Any] | None:
    """The ``/entreprise`` object of ``siren`` as Pappers would show it on ``as_of``."""
    i = w.row(siren)
    if i is None:
        return None
    company = w.companies.row(i, named=True)
    creation: date = company["creation"]
    if creation > as_of:
        return None
    cessation: date | None = company["cessation"]
    ceased = cessation is not None and cessation <= as_of
    insee = company["categorie_juridique"]
    pappers = {"5710": "5720", "5499": "5498"}.get(insee, insee) if w.single_member[i] else insee
    person = insee == "1000"
    band = company["tranche_effectifs"]
    label, low, high = BANDS.get(band, (None, None, None))
    month = int(w.closing_month[i])
    next_close = closing_day(as_of.year, month)
    if next_close < as_of:
        next_close = closing_day(as_of.year + 1, month)
    capital = None if person else _capital(int(w.street[i]), band, insee)
    people = [d for d in w.dirigeants(siren) if d.start <= as_of]
    procedures = [p for p in w.procedures(siren) if p.debut <= as_of]
    name = f"{company['name_a']} {company['name_b']}"
    return {
        "siren": siren,
        "siren_formate": f"{siren[:3]} {siren[3:6]} {siren[6:]}",
        "diffusable": True,
        "nom_entreprise": f"{company['prenom']} {company['name_b']}" if person else name,
        "personne_morale": not person,
        "denomination": None if person else name,
        "nom": company["name_b"] if person else None,
        "prenom": company["prenom"] if person else None,
        "sexe": company["sexe"] if person else None,
        "sigle": None,
        "siege": _siege(w, i, siren, company["nic_siege"], band, creation),
        "code_naf": company["activite_principale"],
        "libelle_code_naf": _naf_labels().get(company["activite_principale"]),
        "date_creation": creation.isoformat(),
        "date_creation_formate": _french(creation),
        "entreprise_cessee": ceased,
        "date_cessation": _iso(cessation) if ceased else None,
        "associe_unique": bool(w.single_member[i]),
        "categorie_juridique": pappers,
        "forme_juridique": LEGAL_FORM_LABELS.get(pappers),
        "entreprise_employeuse": band not in ("NN", "00"),
        "effectif": label,
        "effectif_min": low,
        "effectif_max": high,
        "tranche_effectif": band if band in BANDS else None,
        "annee_effectif": as_of.year - 2 if band in BANDS else None,
        "capital": capital,
        "devise_capital": None if person else "Euros",
        "date_cloture_exercice": f"{next_close.day} {_MONTHS[month - 1]}",
        "prochaine_date_cloture_exercice": next_close.isoformat(),
        "economie_sociale_solidaire": company["ess"] == "O",
        "societe_a_mission": company["mission"] == "O",
        "derniere_mise_a_jour_sirene": as_of.isoformat(),
        "statut_rcs": "Non inscrit" if person else ("Radié" if ceased else "Inscrit"),
        "date_immatriculation_rcs": None if person else creation.isoformat(),
        "date_radiation_rcs": _iso(cessation) if ceased and not person else None,
        "numero_tva_intracommunautaire": vat_number(siren),
        "finances": _finances(w.finances(siren, as_of)),
        "representants": [_representant(p, as_of) for p in people],
        "procedures_collectives": [
            {
                "type": p.type,
                "date_debut": p.debut.isoformat(),
                "date_fin": _iso(p.fin) if p.fin and p.fin <= as_of else None,
                "publications_bodacc": [],
            }
            for p in procedures
        ],
        "procedure_collective_existe": bool(procedures),
        "procedure_collective_en_cours": any(p.fin is None or p.fin > as_of for p in procedures),
    }


class PappersSandbox(SandboxTransport):
    """Pappers ``/v2/entreprise`` for the sandbox universe ``(n_companies, seed)``."""

    def __init__(
        self, n_companies: int, seed: int, *, as_of: date | None = None, **transport: Any
    ) -> None:
        super().__init__(**transport)
        self.world = world(n_companies, seed)
        self.as_of = as_of or datetime.now(ZoneInfo(TIMEZONE)).date()

    def authorized(self, request: httpx.Request) -> bool:
        return request.headers.get("api-key") == self.api_key

    def no_credits(self) -> tuple[int, dict[str, Any]]:
        return 401, {"statusCode": 401, "error": CREDITS_MESSAGE}

    def answer(self, request: httpx.Request) -> tuple[int, Any, str | None]:
        if request.method != "GET" or not request.url.path.endswith("/entreprise"):
            return 404, {"statusCode": 404, "error": "Not Found"}, None
        siren = request.url.params.get("siren", "")
        if len(siren) != 9 or not siren.isdigit():
            return 400, {"statusCode": 400, "error": "Paramètre siren invalide"}, None
        payload = entreprise(self.world, siren, self.as_of)
        if payload is None:
            return 404, {"statusCode": 404, "error": "Entreprise non trouvée"}, None
        return 200, payload, siren

    def make_partial(self, body: Any) -> Any:
        """An upstream source timed out: the accounts are missing from the answer."""
        return {**body, "finances": []}
