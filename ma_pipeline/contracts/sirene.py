"""The INSEE StockUniteLegale layout and the columns of raw_companies: what ingestion reads, what
the sandbox generates, and what every table built from SIRENE can rely on."""

from dataclasses import dataclass
from typing import Literal

import polars as pl

Kind = Literal["text", "date", "datetime", "int"]


@dataclass(frozen=True)
class Column:
    insee: str
    name: str
    kind: Kind = "text"
    required: bool = False


# Every column of the 2026 layout (35), in INSEE order. Required columns exist in every layout
# since 2019; the others may be absent from older files and are then null.
COLUMNS: tuple[Column, ...] = (
    Column("siren", "siren", required=True),
    Column("statutDiffusionUniteLegale", "statut_diffusion", required=True),
    Column("unitePurgeeUniteLegale", "unite_purgee"),
    Column("dateCreationUniteLegale", "date_creation", "date", required=True),
    Column("sigleUniteLegale", "sigle"),
    Column("sexeUniteLegale", "sexe"),
    Column("prenom1UniteLegale", "prenom1"),
    Column("prenom2UniteLegale", "prenom2"),
    Column("prenom3UniteLegale", "prenom3"),
    Column("prenom4UniteLegale", "prenom4"),
    Column("prenomUsuelUniteLegale", "prenom_usuel"),
    Column("pseudonymeUniteLegale", "pseudonyme"),
    Column("identifiantAssociationUniteLegale", "identifiant_association"),
    Column("trancheEffectifsUniteLegale", "tranche_effectifs", required=True),
    Column("anneeEffectifsUniteLegale", "annee_effectifs", "int"),
    Column("dateDernierTraitementUniteLegale", "date_dernier_traitement", "datetime"),
    Column("nombrePeriodesUniteLegale", "nombre_periodes", "int"),
    Column("categorieEntreprise", "categorie_entreprise"),
    Column("anneeCategorieEntreprise", "annee_categorie_entreprise", "int"),
    Column("dateDebut", "date_debut", "date"),
    Column("etatAdministratifUniteLegale", "etat_administratif", required=True),
    Column("nomUniteLegale", "nom", required=True),
    Column("nomUsageUniteLegale", "nom_usage"),
    Column("denominationUniteLegale", "denomination", required=True),
    Column("denominationUsuelle1UniteLegale", "denomination_usuelle1"),
    Column("denominationUsuelle2UniteLegale", "denomination_usuelle2"),
    Column("denominationUsuelle3UniteLegale", "denomination_usuelle3"),
    Column("categorieJuridiqueUniteLegale", "categorie_juridique", required=True),
    Column("activitePrincipaleUniteLegale", "activite_principale", required=True),
    Column("nomenclatureActivitePrincipaleUniteLegale", "nomenclature_activite_principale"),
    Column("nicSiegeUniteLegale", "nic_siege", required=True),
    Column("economieSocialeSolidaireUniteLegale", "economie_sociale_solidaire"),
    Column("societeMissionUniteLegale", "societe_mission"),
    Column("caractereEmployeurUniteLegale", "caractere_employeur"),
    Column("activitePrincipaleNAF25UniteLegale", "activite_principale_naf25"),
)
INSEE_COLUMNS = [c.insee for c in COLUMNS]
REQUIRED_COLUMNS = [c.insee for c in COLUMNS if c.required]
# Values without which a row is not a usable company.
REQUIRED_VALUES = ("siren", "etat_administratif", "categorie_juridique")

# The columns of raw_companies, after partition_date; `source` says which file (or sandbox).
OUTPUT_COLUMNS = ["siren", "nom_entreprise", *[c.name for c in COLUMNS[1:]], "source"]
REJECTED_SCHEMA = {
    "source": pl.String,
    "row_number": pl.Int64,
    "siren": pl.String,
    "reason": pl.String,
    "detail": pl.String,
    "raw": pl.String,
}
