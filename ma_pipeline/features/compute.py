"""Company features as of a date, in polars: the one function the pipeline and training share.

Point-in-time rules (``FeatureConfig`` holds the numbers):

- accounts: a fiscal year is known on D only if ``date_de_cloture_exercice + filing_lag <= D``
  (default 7 months: 6 to approve the accounts, 1 to file them); a year without a closing date
  closes on 31 December of its ``annee``;
- dirigeants: a person counts on D if ``date_prise_de_poste <= D`` (or the date is unknown); ages
  are taken on D from the birth month (a birth year alone counts from July);
- collective procedures: counted if ``date_debut <= D``, in progress on D if not ended by D;
- company age on D from ``date_creation``; a company created after D has no row.

An empty headcount band of a company SIRENE marks as non-employer (``caractere_employeur`` N)
reads as NN.

Known limits. Undated snapshot attributes are taken as they are: NAF code, legal form, capital,
headcount band and head office. Pappers lists current representatives only, so someone who left
before the snapshot is missing on every earlier D.
"""

from dataclasses import dataclass
from datetime import date

import polars as pl

from ma_pipeline.contracts.tables import DAYS_PER_YEAR
from ma_pipeline.features.codes import (
    HEADCOUNT_BANDS,
    LEGAL_FAMILIES_BY_1_DIGIT,
    LEGAL_FAMILIES_BY_2_DIGITS,
    OTHER_LEGAL_FAMILY,
)
from ma_pipeline.features.schemas import FEATURE_DTYPES
from ma_pipeline.reference import departements, naf_hierarchy

SENIOR_AGE = 60  # part_dirigeants_60_plus
# Revenue history: the last fiscal years known on D that the trend is fitted on, and the fewest.
HISTORY_YEARS, HISTORY_MIN_YEARS = 6, 3
# SIRENs are 9 digits: joined and grouped as integers, three times faster than as text.
KEY = "siren_key"

# The model's inputs: numbers and flags (booleans are 0/1), then categories.
MODEL_FEATURES = [
    "anciennete",
    "capital",
    "log_ca",
    "croissance_ca_1an",
    "cagr_ca_3ans",
    "pente_log_ca",
    "residu_log_ca",
    "volatilite_log_ca",
    "marge_nette",
    "tresorerie_sur_ca",
    "dettes_financieres_sur_ca",
    "effectif",
    "ca_par_salarie",
    "tranche_effectifs_rang",
    "nb_dirigeants",
    "age_dirigeant_max",
    "part_dirigeants_60_plus",
    "dirigeant_unique",
    "anciennete_dirigeant_max",
    "dirigeant_personne_morale",
    "annees_depuis_derniers_comptes",
    "comptes_confidentiels",
    "nb_procedures_collectives",
    "procedure_collective_en_cours",
]
CATEGORICAL_FEATURES = ["naf_section", "naf_division", "forme_juridique_famille", "region"]


@dataclass(frozen=True)
class FeatureConfig:
    """The point-in-time rules' numbers; training and scoring must use the same ones."""

    filing_lag_months: int = 7


@dataclass(frozen=True)
class FeatureInputs:
    """The companies to compute features for, and one Pappers snapshot of them.

    ``companies`` are raw_companies rows (the caller chooses the universe: the asset passes the
    active companies of a day); the Pappers frames have the columns of ``enrichment.pappers``'s
    schemas and hold one row per company (or per year, person, procedure), whatever the
    snapshot's date: the module's rules drop what was not yet known on the day.
    """

    companies: pl.DataFrame | pl.LazyFrame
    pappers_companies: pl.DataFrame | pl.LazyFrame
    finances: pl.DataFrame | pl.LazyFrame
    dirigeants: pl.DataFrame | pl.LazyFrame
    procedures: pl.DataFrame | pl.LazyFrame


def _keyed(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return frame.lazy().with_columns(pl.col("siren").cast(pl.UInt32).alias(KEY))


def _years_since(column: str, as_of: date) -> pl.Expr:
    """What ``warehouse.changes`` computes for the columns stored as their anchor date."""
    return (pl.lit(as_of) - pl.col(column)).dt.total_days() / DAYS_PER_YEAR


def _accounts(finances: pl.LazyFrame, as_of: date, config: FeatureConfig) -> pl.LazyFrame:
    """Per SIREN: the last fiscal year known on ``as_of``, its growth over 1 and 3 years, the
    revenue history's trend, and the balance sheet against revenue.

    Growth compares revenues annualised by ``duree_exercice`` with the fiscal years whose
    ``annee`` is one and three less; when a year closes twice (a change of closing date), its
    last closing is kept. The trend is the least-squares line of ln(annualised revenue) over the
    last ``HISTORY_YEARS`` years known (at least ``HISTORY_MIN_YEARS``): its slope (a yearly
    growth rate in log terms), the last year's residual from it (a break from the trend), and the
    spread of the yearly log changes (volatility).
    """
    yearly = (
        finances.with_columns(
            cloture=pl.coalesce("date_de_cloture_exercice", pl.date(pl.col("annee"), 12, 31))
        )
        .filter(pl.col("cloture").dt.offset_by(f"{config.filing_lag_months}mo") <= as_of)
        .with_columns(
            ca_annuel=pl.col("chiffre_affaires")
            * 12.0
            / pl.col("duree_exercice").clip(1, 36).fill_null(12)
        )
        .sort("cloture")
        .unique([KEY, "annee"], keep="last")
    )
    last = yearly.filter(pl.col("cloture") == pl.col("cloture").max().over(KEY))
    x, y = pl.col("annee").cast(pl.Float64), pl.col("log_ca_annuel")
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    trend = (
        yearly.filter(pl.col("ca_annuel") > 0)
        .with_columns(log_ca_annuel=pl.col("ca_annuel").log())
        .sort("annee")
        .group_by(KEY)
        .tail(HISTORY_YEARS)
        .group_by(KEY)
        .agg(
            pl.len().alias("annees_connues"),
            slope.alias("pente_log_ca"),
            (y.last() - (y.mean() + slope * (x.last() - x.mean()))).alias("residu_log_ca"),
            y.diff().std().alias("volatilite_log_ca"),
        )
        .filter(pl.col("annees_connues") >= HISTORY_MIN_YEARS)
        .drop("annees_connues")
    )

    def earlier(years: int) -> pl.LazyFrame:
        return yearly.select(
            KEY,
            (pl.col("annee") + years).alias("annee"),
            pl.col("ca_annuel").alias(f"ca_annuel_moins_{years}"),
        )

    ca_now = pl.col("ca_annuel")
    return (
        last.join(earlier(1), on=[KEY, "annee"], how="left")
        .join(earlier(3), on=[KEY, "annee"], how="left")
        .join(trend, on=KEY, how="left")
        .select(
            KEY,
            pl.col("chiffre_affaires").cast(pl.Float64),
            pl.col("effectif").cast(pl.Float64).alias("effectif_comptes"),
            pl.when(pl.col("ca_annuel_moins_1") > 0)
            .then(ca_now / pl.col("ca_annuel_moins_1") - 1)
            .alias("croissance_ca_1an"),
            pl.when((pl.col("ca_annuel_moins_3") > 0) & (ca_now >= 0))
            .then((ca_now / pl.col("ca_annuel_moins_3")).pow(1 / 3) - 1)
            .alias("cagr_ca_3ans"),
            pl.when(pl.col("chiffre_affaires") > 0)
            .then(pl.col("resultat") / pl.col("chiffre_affaires"))
            .alias("marge_nette"),
            "pente_log_ca",
            "residu_log_ca",
            "volatilite_log_ca",
            *(
                pl.when(pl.col("chiffre_affaires") > 0)
                .then(pl.col(column) / pl.col("chiffre_affaires"))
                .alias(f"{column}_sur_ca")
                for column in ("tresorerie", "dettes_financieres")
            ),
            pl.col("cloture").alias("date_derniers_comptes"),
            _years_since("cloture", as_of).alias("annees_depuis_derniers_comptes"),
            pl.col("chiffre_affaires").is_null().alias("comptes_confidentiels"),
        )
    )


def _dirigeants(dirigeants: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Per SIREN: the natural persons in post on ``as_of`` (auditors aside), and whether a
    legal person (a holding, say) holds a role."""
    in_post = dirigeants.filter(
        ~pl.col("commissaire_aux_comptes").fill_null(False)
        & (pl.col("date_prise_de_poste").is_null() | (pl.col("date_prise_de_poste") <= as_of))
    )
    born_later_in_year = pl.col("mois_naissance").fill_null(7) > as_of.month
    age = (as_of.year - pl.col("annee_naissance") - born_later_in_year.cast(pl.Int64)).cast(
        pl.Float64
    )
    person = ~pl.col("personne_morale").fill_null(False)
    return in_post.group_by(KEY).agg(
        person.sum().alias("nb_dirigeants"),
        age.filter(person).max().alias("age_dirigeant_max"),
        (age.filter(person) >= SENIOR_AGE).mean().alias("part_dirigeants_60_plus"),
        pl.col("date_prise_de_poste").filter(person).min().alias("date_premier_dirigeant"),
        (~person).any().alias("dirigeant_personne_morale"),
    )


def _procedures(procedures: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    started = procedures.filter(pl.col("date_debut") <= as_of)
    return started.group_by(KEY).agg(
        pl.len().alias("nb_procedures_collectives"),
        (pl.col("date_fin").is_null() | (pl.col("date_fin") > as_of))
        .any()
        .alias("procedure_collective_en_cours"),
    )


def _place() -> pl.LazyFrame:
    """COG département -> région."""
    return departements().lazy().select(pl.col("dep").alias("departement"), pl.col("reg"))


def _naf() -> pl.LazyFrame:
    return (
        naf_hierarchy()
        .lazy()
        .select(
            pl.col("code_sous_classe").alias("activite_principale"),
            pl.col("code_section").alias("naf_section"),
            pl.col("code_division").alias("naf_division"),
        )
    )


def _legal_family(code: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        code.str.slice(0, 2).replace_strict(LEGAL_FAMILIES_BY_2_DIGITS, default=None),
        code.str.slice(0, 1).replace_strict(LEGAL_FAMILIES_BY_1_DIGIT, default=None),
        pl.when(code.is_not_null()).then(pl.lit(OTHER_LEGAL_FAMILY)),
    )


def _departement(commune: pl.Expr) -> pl.Expr:
    """COG département of a commune code: 2 characters (2A/2B kept), 3 for 97x."""
    return (
        pl.when(commune.str.starts_with("97"))
        .then(commune.str.slice(0, 3))
        .otherwise(commune.str.slice(0, 2))
    )


def compute_features(
    inputs: FeatureInputs, as_of: date, config: FeatureConfig | None = None
) -> pl.DataFrame:
    """One row per company of ``inputs.companies`` created on or before ``as_of``, by SIREN, with
    the columns of ``schemas.CompanyFeatures`` (``partition_date`` set to ``as_of``).

    Only what was known on ``as_of`` is used (see the module's rules). Counts and flags from
    Pappers are 0/false for a company Pappers knows with nothing to count, and null for one it
    does not know; ratios are null when their denominator is not positive.
    """
    config = config or FeatureConfig()
    bands = {code: rank for code, (rank, _, _) in HEADCOUNT_BANDS.items()}
    midpoints = {code: (low + high) / 2 for code, (_, low, high) in HEADCOUNT_BANDS.items()}
    pappers = _keyed(inputs.pappers_companies).select(
        KEY,
        pl.col("nom_entreprise").alias("nom_pappers"),
        pl.col("code_naf"),
        pl.col("categorie_juridique").alias("categorie_pappers"),
        pl.col("tranche_effectif").alias("tranche_pappers"),
        pl.col("date_creation").alias("creation_pappers"),
        "capital",
        _departement(pl.col("siege_code_commune"))
        .fill_null(pl.col("siege_code_departement"))
        .alias("departement"),
        pl.lit(True).alias("connue_de_pappers"),
    )
    companies = (
        _keyed(inputs.companies)
        .select(
            KEY,
            "siren",
            "nom_entreprise",
            "activite_principale",
            "categorie_juridique",
            "tranche_effectifs",
            "caractere_employeur",
            "date_creation",
        )
        .join(pappers, on=KEY, how="left")
        .with_columns(
            nom_entreprise=pl.coalesce("nom_entreprise", "nom_pappers"),
            activite_principale=pl.coalesce("activite_principale", "code_naf"),
            categorie_juridique=pl.coalesce("categorie_juridique", "categorie_pappers"),
            tranche_effectifs=pl.coalesce(
                "tranche_effectifs",
                "tranche_pappers",
                pl.when(pl.col("caractere_employeur") == "N").then(pl.lit("NN")),
            ),
            date_creation=pl.coalesce("date_creation", "creation_pappers"),
        )
        .filter(pl.col("date_creation").is_null() | (pl.col("date_creation") <= as_of))
    )
    known = pl.col("connue_de_pappers").fill_null(False)

    def counted(column: str) -> pl.Expr:
        return pl.when(known).then(pl.col(column).fill_null(0)).alias(column)

    def flagged(column: str) -> pl.Expr:
        return pl.when(known).then(pl.col(column).fill_null(False)).alias(column)

    band = pl.col("tranche_effectifs")
    effectif = pl.coalesce(
        "effectif_comptes", band.replace_strict(midpoints, default=None, return_dtype=pl.Float64)
    )
    features = (
        companies.join(_naf(), on="activite_principale", how="left")
        .join(_place(), on="departement", how="left")
        .join(_accounts(_keyed(inputs.finances), as_of, config), on=KEY, how="left")
        .join(_dirigeants(_keyed(inputs.dirigeants), as_of), on=KEY, how="left")
        .join(_procedures(_keyed(inputs.procedures), as_of), on=KEY, how="left")
        .with_columns(
            partition_date=pl.lit(as_of),
            departement=pl.when(pl.col("reg").is_not_null()).then("departement"),
            region=pl.col("reg"),
            forme_juridique_famille=_legal_family(pl.col("categorie_juridique")),
            anciennete=_years_since("date_creation", as_of),
            anciennete_dirigeant_max=_years_since("date_premier_dirigeant", as_of),
            log_ca=pl.col("chiffre_affaires").log1p(),
            effectif=effectif,
            ca_par_salarie=pl.when(effectif >= 1).then(pl.col("chiffre_affaires") / effectif),
            tranche_effectifs_rang=band.replace_strict(bands, default=None),
            dirigeant_unique=pl.when(known).then(pl.col("nb_dirigeants").fill_null(0) == 1),
        )
        .with_columns(
            counted("nb_dirigeants"),
            flagged("dirigeant_personne_morale"),
            counted("nb_procedures_collectives"),
            flagged("procedure_collective_en_cours"),
        )
    )
    return (
        features.select(list(FEATURE_DTYPES))
        .cast(FEATURE_DTYPES)  # type: ignore[arg-type]
        .sort("siren")
        .collect()
    )


def companies_from_pappers(pappers_companies: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """raw_companies rows written from Pappers identities, for companies SIRENE's stock does not
    hold yet (a score request for a company created since): the NAF code, INSEE legal form,
    headcount band, employer flag and creation date Pappers repeats from SIRENE, and ceased
    (``etat_administratif`` C) once its ``date_cessation`` is passed on ``as_of``.

    Fed to ``compute_features`` they give the features the SIRENE rows give; only sole
    proprietors' names differ (Pappers writes the first name first).
    """
    employer = pl.col("entreprise_employeuse")
    ceased = pl.col("entreprise_cessee").fill_null(False) & (
        pl.col("date_cessation").is_null() | (pl.col("date_cessation") <= as_of)
    )
    return pappers_companies.select(
        "siren",
        "nom_entreprise",
        pl.when(ceased).then(pl.lit("C")).otherwise(pl.lit("A")).alias("etat_administratif"),
        pl.col("code_naf").alias("activite_principale"),
        "categorie_juridique",
        pl.col("tranche_effectif").alias("tranche_effectifs"),
        pl.when(employer)
        .then(pl.lit("O"))
        .when(~employer)
        .then(pl.lit("N"))
        .alias("caractere_employeur"),
        "date_creation",
    )
