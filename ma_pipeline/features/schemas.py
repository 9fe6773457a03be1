"""Pandera models (polars) of the tables the features read and of company_features itself.

Each contract model holds what must be true of every row (types, required values, impossible
values such as a negative revenue or an age of 180): a breach is an ERROR. Null-rate ceilings sit
in each field's ``metadata["null_rate_max"]``: passing one is a WARN, as are the plausibility
bounds of ``CompanyFeaturesPlausible``. Keys (unique per partition) are checked on their own, see
``quality.TABLES``. Only the columns the features rely on are declared; others may exist.
"""

from datetime import date
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.polars import PolarsData

from ma_pipeline.features.codes import (
    HEADCOUNT_BANDS,
    LEGAL_FAMILIES,
    MAX_BAND_RANK,
    SIREN_PATTERN,
)
from ma_pipeline.reference import departements, naf_hierarchy, regions

NULL_RATE_MAX = "null_rate_max"
BANDS = list(HEADCOUNT_BANDS)
SECTIONS = sorted(set(naf_hierarchy()["code_section"]))
DEPARTEMENTS = departements()["dep"].to_list()
REGIONS = regions()["reg"].to_list()
COMMUNE_PATTERN = r"^(\d{5}|2[AB]\d{3})$"


def _ceiling(rate: float) -> dict[str, Any]:
    return {NULL_RATE_MAX: rate}


def _not_after(later: str, earlier: str, data: PolarsData) -> pl.LazyFrame:
    """Rows where ``earlier`` is not after ``later`` (nulls pass)."""
    first, second = pl.col(earlier), pl.col(later)
    return data.lazyframe.select(first.is_null() | second.is_null() | (first <= second))


class _Partitioned(pa.DataFrameModel):
    partition_date: date = pa.Field(description="The day the row describes (Paris time).")
    siren: str = pa.Field(str_matches=SIREN_PATTERN, description="SIREN, 9 digits.")

    class Config:
        strict = False  # other columns may exist: only these are relied on


class RawCompanies(_Partitioned):
    nom_entreprise: str = pa.Field(nullable=True, metadata=_ceiling(0.01))
    etat_administratif: str = pa.Field(isin=["A", "C"])
    date_creation: date = pa.Field(nullable=True, metadata=_ceiling(0.01))
    activite_principale: str = pa.Field(nullable=True, metadata=_ceiling(0.01))
    categorie_juridique: str = pa.Field(str_matches=r"^\d{4}$")
    # Most units of the stock (sole traders above all) have no headcount band: about two thirds.
    tranche_effectifs: str = pa.Field(nullable=True, isin=BANDS, metadata=_ceiling(0.8))

    @pa.dataframe_check(description="a company in the stock of D was created on or before D")
    def created_by_partition_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_after("partition_date", "date_creation", data)


class PappersCompanies(_Partitioned):
    nom_entreprise: str = pa.Field(nullable=True, metadata=_ceiling(0.05))
    code_naf: str = pa.Field(nullable=True, metadata=_ceiling(0.05))
    categorie_juridique: str = pa.Field(nullable=True, str_matches=r"^\d{4}$")
    capital: pl.Float64 = pa.Field(nullable=True, ge=0, metadata=_ceiling(0.7))
    effectif_min: pl.Int64 = pa.Field(nullable=True, ge=0)
    effectif_max: pl.Int64 = pa.Field(nullable=True, ge=0)
    date_creation: date = pa.Field(nullable=True, metadata=_ceiling(0.05))
    siege_code_commune: str = pa.Field(
        nullable=True, str_matches=COMMUNE_PATTERN, metadata=_ceiling(0.2)
    )
    siege_code_departement: str = pa.Field(nullable=True)

    @pa.dataframe_check(description="effectif_min <= effectif_max")
    def headcount_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_after("effectif_max", "effectif_min", data)


class PappersFinances(_Partitioned):
    annee: pl.Int64 = pa.Field(in_range={"min_value": 1900, "max_value": 2100})
    date_de_cloture_exercice: date = pa.Field(nullable=True, metadata=_ceiling(0.01))
    duree_exercice: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 36})
    chiffre_affaires: pl.Int64 = pa.Field(nullable=True, ge=0, metadata=_ceiling(0.5))
    resultat: pl.Int64 = pa.Field(nullable=True, metadata=_ceiling(0.5))
    effectif: pl.Int64 = pa.Field(nullable=True, ge=0)


class PappersDirigeants(_Partitioned):
    rang: pl.Int64 = pa.Field(ge=1)
    personne_morale: bool
    commissaire_aux_comptes: bool
    annee_naissance: pl.Int64 = pa.Field(
        nullable=True, in_range={"min_value": 1900, "max_value": 2100}
    )
    mois_naissance: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 1, "max_value": 12})
    date_prise_de_poste: date = pa.Field(nullable=True, metadata=_ceiling(0.2))
    age: pl.Int64 = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 120})


class PappersProcedures(_Partitioned):
    rang: pl.Int64 = pa.Field(ge=1)
    type: str = pa.Field(nullable=True)
    date_debut: date = pa.Field(nullable=True, metadata=_ceiling(0.05))
    date_fin: date = pa.Field(nullable=True)

    @pa.dataframe_check(description="a procedure ends after it starts")
    def ends_after_start(cls, data: PolarsData) -> pl.LazyFrame:
        return _not_after("date_fin", "date_debut", data)


class CompanyFeatures(pa.DataFrameModel):
    """company_features: one row per active company and day, computed as of that day."""

    partition_date: date = pa.Field(
        description="Day D the features are computed as of; only data known on D is used."
    )
    siren: str = pa.Field(str_matches=SIREN_PATTERN, description="SIREN, 9 digits.")
    nom_entreprise: str = pa.Field(
        nullable=True, metadata=_ceiling(0.01), description="Display name (SIRENE, else Pappers)."
    )
    activite_principale: str = pa.Field(
        nullable=True,
        metadata=_ceiling(0.01),
        description="NAF rév. 2 sous-classe NN.NNL (SIRENE, else Pappers).",
    )
    naf_section: str = pa.Field(
        nullable=True,
        isin=SECTIONS,
        metadata=_ceiling(0.02),
        description="NAF section letter A-U, from the shipped NAF rév. 2 nomenclature.",
    )
    naf_division: str = pa.Field(
        nullable=True,
        str_matches=r"^\d{2}$",
        metadata=_ceiling(0.02),
        description="NAF division, 2 digits, from the shipped nomenclature.",
    )
    departement: str = pa.Field(
        nullable=True,
        isin=DEPARTEMENTS,
        metadata=_ceiling(0.1),
        description="COG 2025 département of the head office (75, 2A, 974), from its commune"
        " code (Pappers' own département code when the commune is missing); never the postcode.",
    )
    region: str = pa.Field(
        nullable=True,
        isin=REGIONS,
        metadata=_ceiling(0.1),
        description="COG 2025 région code of the département.",
    )
    forme_juridique_famille: str = pa.Field(
        nullable=True,
        isin=LEGAL_FAMILIES,
        metadata=_ceiling(0.01),
        description="Legal-form family of the INSEE category: " + ", ".join(LEGAL_FAMILIES) + ".",
    )
    tranche_effectifs: str = pa.Field(
        nullable=True,
        isin=BANDS,
        metadata=_ceiling(0.6),
        description="INSEE headcount band code (NN: no employee).",
    )
    date_creation: date = pa.Field(
        nullable=True, metadata=_ceiling(0.01), description="Creation date (SIRENE, else Pappers)."
    )
    anciennete: pl.Float64 = pa.Field(
        nullable=True, ge=0, metadata=_ceiling(0.01), description="Company age on D, years."
    )
    capital: pl.Float64 = pa.Field(
        nullable=True, ge=0, metadata=_ceiling(0.7), description="Share capital, euros (Pappers)."
    )
    chiffre_affaires: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.8),
        description="Revenue of the last fiscal year known on D, euros.",
    )
    log_ca: pl.Float64 = pa.Field(
        nullable=True, ge=0, metadata=_ceiling(0.8), description="ln(1 + chiffre_affaires)."
    )
    croissance_ca_1an: pl.Float64 = pa.Field(
        nullable=True,
        ge=-1,
        metadata=_ceiling(0.9),
        description="Revenue growth over the year before, ratio (0.1 = +10 %), on revenues"
        " annualised by fiscal-year length.",
    )
    cagr_ca_3ans: pl.Float64 = pa.Field(
        nullable=True,
        ge=-1,
        metadata=_ceiling(0.95),
        description="Compound annual revenue growth over 3 fiscal years, ratio per year.",
    )
    pente_log_ca: pl.Float64 = pa.Field(
        nullable=True,
        metadata=_ceiling(0.95),
        description="Slope of ln(revenue) over the last 6 fiscal years known on D (3 at least),"
        " per year: the revenue trend.",
    )
    residu_log_ca: pl.Float64 = pa.Field(
        nullable=True,
        metadata=_ceiling(0.95),
        description="The last known year's ln(revenue) minus the trend line's: a break from it.",
    )
    volatilite_log_ca: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.95),
        description="Standard deviation of the yearly changes of ln(revenue) in that window.",
    )
    marge_nette: pl.Float64 = pa.Field(
        nullable=True,
        metadata=_ceiling(0.8),
        description="Net income / revenue of the last known fiscal year, ratio.",
    )
    tresorerie_sur_ca: pl.Float64 = pa.Field(
        nullable=True,
        description="Cash / revenue of the last known fiscal year (when the registry gives"
        " the ratio), ratio.",
    )
    dettes_financieres_sur_ca: pl.Float64 = pa.Field(
        nullable=True,
        description="Financial debt / revenue of the last known fiscal year (when given), ratio.",
    )
    effectif: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.6),
        description="Headcount of the last known fiscal year, else the middle of the band.",
    )
    ca_par_salarie: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.9),
        description="Revenue per employee, euros (companies with at least 1 employee).",
    )
    tranche_effectifs_rang: pl.Int64 = pa.Field(
        nullable=True,
        in_range={"min_value": 0, "max_value": MAX_BAND_RANK},
        metadata=_ceiling(0.6),
        description=f"Headcount band as a rank, 0 (none) to {MAX_BAND_RANK} (10,000 and more).",
    )
    nb_dirigeants: pl.Int64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.1),
        description="Natural persons in post on D (auditors aside); null if unknown to Pappers.",
    )
    age_dirigeant_max: pl.Int64 = pa.Field(
        nullable=True,
        in_range={"min_value": 0, "max_value": 120},
        metadata=_ceiling(0.3),
        description="Age on D of the oldest dirigeant, years.",
    )
    part_dirigeants_60_plus: pl.Float64 = pa.Field(
        nullable=True,
        in_range={"min_value": 0, "max_value": 1},
        metadata=_ceiling(0.3),
        description="Share of dirigeants (of known age) aged 60 or more on D, 0-1.",
    )
    dirigeant_unique: bool = pa.Field(
        nullable=True, metadata=_ceiling(0.1), description="Exactly one dirigeant in post on D."
    )
    date_premier_dirigeant: date = pa.Field(
        nullable=True,
        metadata=_ceiling(0.3),
        description="Earliest start in post among the dirigeants in post on D.",
    )
    anciennete_dirigeant_max: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.3),
        description="Longest tenure on D among dirigeants, years.",
    )
    dirigeant_personne_morale: bool = pa.Field(
        nullable=True,
        metadata=_ceiling(0.1),
        description="A legal person (a holding, not the auditor) holds a role on D.",
    )
    date_derniers_comptes: date = pa.Field(
        nullable=True,
        metadata=_ceiling(0.8),
        description="Close of the last fiscal year known on D.",
    )
    annees_depuis_derniers_comptes: pl.Float64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.8),
        description="Years from the close of the last fiscal year known on D to D.",
    )
    comptes_confidentiels: bool = pa.Field(
        nullable=True,
        metadata=_ceiling(0.8),
        description="The last known accounts publish no revenue (confidential).",
    )
    nb_procedures_collectives: pl.Int64 = pa.Field(
        nullable=True,
        ge=0,
        metadata=_ceiling(0.1),
        description="Collective procedures opened on or before D.",
    )
    procedure_collective_en_cours: bool = pa.Field(
        nullable=True,
        metadata=_ceiling(0.1),
        description="A collective procedure is open on D.",
    )

    class Config:
        strict = True  # the table is exactly this


class CompanyFeaturesPlausible(pa.DataFrameModel):
    """Bounds that real companies stay within: a breach is a WARN (a data problem, likely)."""

    age_dirigeant_max: pl.Int64 = pa.Field(
        nullable=True, in_range={"min_value": 16, "max_value": 100}
    )
    croissance_ca_1an: pl.Float64 = pa.Field(nullable=True, le=50)
    cagr_ca_3ans: pl.Float64 = pa.Field(nullable=True, le=10)
    marge_nette: pl.Float64 = pa.Field(nullable=True, in_range={"min_value": -10, "max_value": 10})
    ca_par_salarie: pl.Float64 = pa.Field(nullable=True, le=50e6)
    anciennete_dirigeant_max: pl.Float64 = pa.Field(nullable=True, le=80)

    class Config:
        strict = False


FEATURE_COLUMNS = CompanyFeatures.to_schema().columns
FEATURE_DTYPES: dict[str, pl.DataType] = {
    name: column.dtype.type for name, column in FEATURE_COLUMNS.items()
}


def null_rate_ceilings(model: type[pa.DataFrameModel]) -> dict[str, float]:
    """Column -> highest acceptable share of nulls, from the fields' metadata."""
    return {
        name: column.metadata[NULL_RATE_MAX]
        for name, column in model.to_schema().columns.items()
        if column.metadata and NULL_RATE_MAX in column.metadata
    }
