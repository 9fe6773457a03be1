"""The API Recherche d'entreprises' twin: ``GET /search?q=<siren>`` in the real response shape
(OPEN_DATA.md §1.2, and the recorded answers in ``shared/data/open_data/``).

It answers for the sandbox universe what the Pappers sandbox shows of the same company on the
same day, cut to what this API gives: one fiscal year (revenue and net income), dirigeants with a
month of birth and no start date (one person in seven listed twice, spelt two ways, as the RNE
does), the undocumented ``immatriculation`` and ``bodacc`` blocks when ``include_admin`` asks.
Units whose owner opted out of diffusion come back masked with ``statut_diffusion`` "P". Like the
real API, it allows 7 requests per second and answers 429 with ``Retry-After`` beyond; a text
query (not a SIREN) is refused with a 400, since the twin only looks SIRENs up.
"""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ma_pipeline.partitions import TIMEZONE
from ma_pipeline.sandbox.pappers_api import entreprise
from ma_pipeline.sandbox.transport import SandboxTransport
from ma_pipeline.sandbox.universe import opted_out
from ma_pipeline.sandbox.world import world

RATE_LIMIT = (7, 1.0)  # requests per window of seconds, per IP (the API's documented limit)
MASKED = "[NON-DIFFUSIBLE]"
# Pappers' procedure types as the API's bodacc block classifies them.
_PROCEDURE_STATUS = {
    "Redressement judiciaire": "redressement_judiciaire",
    "Procédure de sauvegarde": "sauvegarde",
    "Liquidation judiciaire": "liquidation_judiciaire",
}


def _person(item: dict[str, Any], twice: bool) -> list[dict[str, Any]]:
    month = item["date_de_naissance"][:7]
    person = {
        "nom": item["nom"].upper(),
        "prenoms": item["prenom"].upper(),
        "annee_de_naissance": month[:4],
        "date_de_naissance": month,
        "qualite": item["qualite"],
        "nationalite": None,
        "type_dirigeant": "personne physique",
    }
    if not twice:
        return [person]
    return [{**person, "nom": f"{person['nom']} ({person['nom']})"}, person]


def unite_legale(payload: dict[str, Any], admin: set[str], as_of: date) -> dict[str, Any]:
    """The API's ``UniteLegale`` for a Pappers sandbox ``/entreprise`` object."""
    siren, siege = payload["siren"], payload["siege"]
    ceased = payload["entreprise_cessee"]
    insee = {"5720": "5710", "5498": "5499"}.get(payload["categorie_juridique"])
    legal_form = insee or payload["categorie_juridique"]
    band = payload["tranche_effectif"] or "NN"
    people = [r for r in payload["representants"] if not r["personne_morale"]]
    dirigeants = [
        d for k, r in enumerate(people) for d in _person(r, k == 0 and int(siren) % 7 == 0)
    ] + [
        {
            "siren": r["siren"],
            "denomination": r["denomination"],
            "qualite": r["qualite"],
            "type_dirigeant": "personne morale",
        }
        for r in payload["representants"]
        if r["personne_morale"]
    ]
    last = max(payload["finances"], key=lambda year: year["annee"], default=None)
    finances = (
        {str(last["annee"]): {"ca": last["chiffre_affaires"], "resultat_net": last["resultat"]}}
        if last
        else None
    )
    unit: dict[str, Any] = {
        "siren": siren,
        "nom_complet": payload["nom_entreprise"].upper(),
        "nom_raison_sociale": payload["denomination"],
        "sigle": None,
        "nombre_etablissements": 1,
        "nombre_etablissements_ouverts": 0 if ceased else 1,
        "siege": {
            "siret": siege["siret"],
            "adresse": f"{siege['adresse_ligne_1']} {siege['code_postal']} {siege['ville']}",
            "code_postal": siege["code_postal"],
            "commune": siege["code_commune"],
            "libelle_commune": siege["ville"],
            "departement": siege["code_departement"],
            "region": siege["code_region"],
            "latitude": None,
            "longitude": None,
            "est_siege": True,
            "etat_administratif": "F" if ceased else "A",
            "activite_principale": payload["code_naf"],
            "tranche_effectif_salarie": band,
            "statut_diffusion_etablissement": "O",
        },
        "activite_principale": payload["code_naf"],
        "categorie_entreprise": None,
        "caractere_employeur": "O" if payload["entreprise_employeuse"] else "N",
        "date_creation": payload["date_creation"],
        "date_fermeture": payload["date_cessation"],
        "date_mise_a_jour_insee": f"{as_of.isoformat()}T00:00:00",
        "date_mise_a_jour_rne": None,
        "dirigeants": dirigeants,
        "etat_administratif": "C" if ceased else "A",
        "nature_juridique": legal_form,
        "tranche_effectif_salarie": band,
        "annee_tranche_effectif_salarie": str(payload["annee_effectif"])
        if payload["annee_effectif"]
        else None,
        "statut_diffusion": "O",
        "finances": finances,
        "complements": {
            "est_entrepreneur_individuel": legal_form == "1000",
            "est_ess": payload["economie_sociale_solidaire"],
            "est_societe_mission": payload["societe_a_mission"],
        },
        "tva": [payload["numero_tva_intracommunautaire"]],
    }
    if "immatriculation" in admin:
        closing = date.fromisoformat(payload["prochaine_date_cloture_exercice"])
        unit["immatriculation"] = {
            "date_immatriculation": payload["date_immatriculation_rcs"],
            "date_radiation": payload["date_radiation_rcs"],
            "date_cloture_exercice": closing.strftime("%d%m"),
            "capital_social": payload["capital"],
            "devise_capital": "EUR" if payload["capital"] is not None else None,
            "indicateur_associe_unique": payload["associe_unique"],
        }
    if "bodacc" in admin:
        open_ = [p for p in payload["procedures_collectives"] if p["date_fin"] is None]
        latest = max(open_, key=lambda p: p["date_debut"], default=None)
        radiation = {"est_radie": ceased, "id_annonce": None, "date": payload["date_radiation_rcs"]}
        unit["bodacc"] = {
            "radiation": radiation,
            "procedure_collective": {
                "statut": _PROCEDURE_STATUS.get(latest["type"], "") if latest else "",
                "id_annonce": None,
                "date": latest["date_debut"] if latest else None,
            },
        }
    return unit


def masked(unit: dict[str, Any]) -> dict[str, Any]:
    """A unit whose owner opted out of diffusion, as the API masks it."""
    return {
        **unit,
        "nom_complet": MASKED,
        "nom_raison_sociale": MASKED,
        "dirigeants": [],
        "statut_diffusion": "P",
        "siege": {**unit["siege"], "adresse": MASKED, "statut_diffusion_etablissement": "P"},
    }


def _page(results: list[dict[str, Any]], per_page: int) -> dict[str, Any]:
    return {
        "results": results,
        "total_results": len(results),
        "page": 1,
        "per_page": per_page,
        "total_pages": 1 if results else 0,
    }


class RechercheEntreprisesSandbox(SandboxTransport):
    """``/search`` for the sandbox universe ``(n_companies, seed)``, 7 requests/s at most."""

    def __init__(
        self, n_companies: int, seed: int, *, as_of: date | None = None, **transport: Any
    ) -> None:
        super().__init__(**{"rate_limit": RATE_LIMIT, **transport})
        self.world = world(n_companies, seed)
        self.as_of = as_of or datetime.now(ZoneInfo(TIMEZONE)).date()
        self.user_agents: set[str] = set()

    def authorized(self, request: httpx.Request) -> bool:
        return True  # no key: the API is open

    def no_credits(self) -> tuple[int, dict[str, Any]]:
        return 429, {"erreur": "Trop de requêtes"}

    def answer(self, request: httpx.Request) -> tuple[int, Any, str | None]:
        self.user_agents.add(request.headers.get("User-Agent", ""))
        if request.method != "GET" or request.url.path.rstrip("/") != "/search":
            return 404, {"erreur": "Not Found"}, None
        params = request.url.params
        query = params.get("q", "").replace(" ", "")
        try:
            per_page = int(params.get("per_page", "10"))
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= 25:
            return 400, {"erreur": "Veuillez indiquer un nombre de résultats entre 1 et 25."}, None
        if params.get("include") and params.get("minimal") != "true":
            return 400, {"erreur": "include ne peut être utilisé qu'avec minimal=True."}, None
        if len(query) != 9 or not query.isdigit():
            return 400, {"erreur": "The sandbox only looks up SIRENs (9 digits)."}, None
        payload = entreprise(self.world, query, self.as_of)
        if payload is None:
            return 200, _page([], per_page), None
        admin = set(filter(None, params.get("include_admin", "").split(",")))
        unit = unite_legale(payload, admin, self.as_of)
        i = self.world.row(query)
        assert i is not None
        if opted_out(query, str(self.world.legal[i])):
            unit = masked(unit)
        return 200, _page([unit], per_page), query
