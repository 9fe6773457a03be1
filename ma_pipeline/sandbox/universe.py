"""The sandbox company universe, in the INSEE StockUniteLegale layout.

A population is drawn once from ``(n_companies, seed)``: SIREN, NAF sous-classe, legal form,
headcount band, creation date and, for some, a cessation date. The stock on a date D holds every
unit created on or before D, ceased ones marked ``C`` as in the real stock, so partitions differ
from day to day (creations, cessations) while each unit keeps its identity. About
``n_companies`` legal units are active on any date: creations and cessations both run at 5 % a
year from 2020.

The mixes below are rounded shares chosen to look like the stock of French legal units (more than
half sole traders, then companies, sociétés civiles, associations and public bodies; most
headcounts unknown, a fifth of individuals not diffusible), so that the target rules have units to
drop; they are not official statistics. ``bench/sirene_stock.py`` draws the national file from the
same mixes.
"""

from datetime import date
from functools import cache

import numpy as np
import polars as pl

from ma_pipeline.contracts.siren import with_check_digits
from ma_pipeline.contracts.sirene import INSEE_COLUMNS
from ma_pipeline.reference import naf_hierarchy

EPOCH = date(2020, 1, 1)  # the base population exists before; daily flows start here
HORIZON = date(2040, 12, 31)  # flows are drawn up to here, so any partition date works
CREATION_RATE = 0.05  # new companies a year, as a share of n_companies
CESSATION_RATE = 0.05  # yearly hazard of cessation, from EPOCH or creation
CHANGE_RATE = 1 / 365  # share of units whose SIRENE record is processed again on a day
_1900 = (date(1900, 1, 1) - date(1970, 1, 1)).days

SECTION_WEIGHTS = {
    "G": 17,
    "M": 13,
    "F": 12,
    "L": 10,
    "I": 7,
    "C": 7,
    "N": 6,
    "Q": 5,
    "S": 5,
    "K": 5,
    "J": 4,
    "H": 3,
    "R": 2,
    "P": 1.5,
    "A": 1.5,
    "E": 0.5,
    "D": 0.3,
    "B": 0.1,
    "O": 0.05,
}
# INSEE codes (Sirene writes SASU as 5710 and EURL as 5499, like SAS and SARL): sole traders
# (1000), companies (5xxx), sociétés civiles (65xx), associations (9220), public bodies (7210).
LEGAL_FORMS = {
    "1000": 53,
    "5710": 15.5,
    "5499": 13,
    "5599": 1.5,
    "5202": 0.5,
    "5498": 1,
    "6540": 6,
    "6599": 1,
    "9220": 8,
    "7210": 0.5,
}
SOLE_TRADER = "1000"
# Headcount bands by kind of unit; NN: unknown (empty in the stock).
COMPANY_TRANCHES = {
    "NN": 33,
    "00": 8,
    "01": 18,
    "02": 12,
    "03": 8,
    "11": 8,
    "12": 6.5,
    "21": 2.8,
    "22": 1.7,
    "31": 0.5,
    "32": 0.6,
    "41": 0.4,
    "42": 0.2,
    "51": 0.12,
    "52": 0.05,
    "53": 0.03,
}
SOLE_TRADER_TRANCHES = {"NN": 85, "00": 9, "01": 4.5, "02": 1.2, "03": 0.3}
OTHER_TRANCHES = {
    "NN": 70,
    "00": 8,
    "01": 7,
    "02": 5,
    "03": 3.5,
    "11": 3,
    "12": 2,
    "21": 0.8,
    "22": 0.5,
    "31": 0.1,
    "32": 0.1,
}
OPTED_OUT_PERSONS, OPTED_OUT_OTHERS = 20, 1  # % of units not diffusible (statutDiffusion P)
_ETI_TRANCHES, _GE_TRANCHES = {"32", "41", "42", "51"}, {"52", "53"}
_WORDS_A = (
    "ATELIERS",
    "SOCIETE",
    "GROUPE",
    "ETABLISSEMENTS",
    "CABINET",
    "COMPAGNIE",
    "MAISON",
    "INDUSTRIES",
    "SERVICES",
    "TRANSPORTS",
    "HOLDING",
    "BUREAU",
    "COMPTOIR",
    "LABORATOIRES",
)
_WORDS_B = (
    "DU RHONE",
    "MARTIN",
    "BERNARD",
    "DUBOIS",
    "LEROY",
    "MOREAU",
    "DE LA LOIRE",
    "ATLANTIQUE",
    "DES ALPES",
    "PETIT",
    "GIRARD",
    "MERCIER",
    "DU NORD",
    "BLANC",
    "FAURE",
    "AUVERGNE",
    "GARNIER",
    "ROUSSEL",
    "DE PROVENCE",
    "LAMBERT",
    "BONNET",
    "OCCITANIE",
    "FONTAINE",
)
_FIRST_NAMES = {
    "M": ("JEAN", "PIERRE", "MICHEL", "PHILIPPE", "ALAIN", "NICOLAS", "THOMAS"),
    "F": ("MARIE", "NATHALIE", "ISABELLE", "SYLVIE", "CATHERINE", "JULIE", "SOPHIE"),
}


def draw(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(weights))
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=p / p.sum())]


def headcount_bands(rng: np.random.Generator, legal: np.ndarray) -> np.ndarray:
    """A headcount band per unit, from the mix of its kind (sole trader, company, other)."""
    company = np.char.startswith(legal.astype(str), "5")
    return np.select(
        [legal == SOLE_TRADER, company],
        [draw(rng, SOLE_TRADER_TRANCHES, legal.size), draw(rng, COMPANY_TRANCHES, legal.size)],
        draw(rng, OTHER_TRANCHES, legal.size),
    )


def _days(values: np.ndarray) -> pl.Series:
    """Days since 1970-01-01 as a polars Date series."""
    return pl.Series(values.astype(np.int32)).cast(pl.Date)


@cache
def population(n_companies: int, seed: int) -> pl.DataFrame:
    """Every company the sandbox will ever hold, with the dates that place it in time."""
    rng = np.random.default_rng(seed)
    epoch = (EPOCH - date(1970, 1, 1)).days
    horizon = (HORIZON - date(1970, 1, 1)).days
    flow = int(rng.poisson(CREATION_RATE * n_companies * (horizon - epoch) / 365.25))
    size = n_companies + flow

    bodies = rng.choice(100_000_000, size=size, replace=False)
    sirens = with_check_digits(bodies, 8)
    siret_bodies = sirens.astype(np.int64) * 10_000 + rng.integers(1, 100, size)
    nics = pl.Series(with_check_digits(siret_bodies, 13)).str.slice(9)

    base = np.maximum(epoch - 1 - rng.exponential(14 * 365.25, n_companies), _1900)
    creation = np.concatenate([base, np.sort(rng.uniform(epoch, horizon, flow))])
    start = np.maximum(creation, epoch)
    cessation = start + rng.exponential(365.25 / CESSATION_RATE, size)

    naf = naf_hierarchy()
    section = draw(rng, SECTION_WEIGHTS, size)
    sous_classe = np.empty(size, dtype=object)
    for (code,), group in naf.group_by("code_section", maintain_order=True):
        codes = group["code_sous_classe"].to_numpy()
        rows = np.flatnonzero(section == code)
        sous_classe[rows] = codes[rng.integers(0, len(codes), rows.size)]
    legal = draw(rng, LEGAL_FORMS, size)
    estate = (section == "L") & (legal != SOLE_TRADER)  # real estate: mostly SCI
    legal[estate] = np.where(rng.random(estate.sum()) < 0.7, "6540", "5499")
    sexe = np.where(rng.random(size) < 0.6, "M", "F")
    bands = headcount_bands(rng, legal)

    frame = pl.DataFrame(
        {
            "siren": sirens,
            "nic_siege": nics,
            "creation": _days(creation),
            "cessation": _days(np.where(cessation > horizon, -1, cessation)),
            "activite_principale": sous_classe.astype(str),
            "categorie_juridique": legal,
            "tranche_effectifs": bands,
            "name_a": np.array(_WORDS_A)[rng.integers(0, len(_WORDS_A), size)],
            "name_b": np.array(_WORDS_B)[rng.integers(0, len(_WORDS_B), size)],
            "sexe": sexe,
            "prenom": [
                _FIRST_NAMES[s][i % 7] for s, i in zip(sexe, rng.integers(0, 7, size), strict=False)
            ],
            "ess": np.where(rng.random(size) < 0.03, "O", "N"),
            "mission": np.where(rng.random(size) < 0.005, "O", ""),
            "jitter": rng.integers(0, 700, size),
        }
    )
    # Drawn last, so that the draws above stay as they were.
    updates = {"update_period": rng.random(size), "update_phase": rng.random(size)}
    # Cessations drawn past the horizon never happen.
    return frame.with_columns(
        cessation=pl.when(pl.col("cessation") >= EPOCH).then("cessation"),
        **{name: pl.Series(values) for name, values in updates.items()},
    )


def last_update(day: date, change_rate: float) -> pl.Expr:
    """The day each unit's SIRENE record was last processed again on or before ``day``: every
    unit is updated periodically, every 0.5 to 1.5 times ``1 / change_rate`` days, so about
    ``change_rate`` of the units change a day and a record stays the same between updates."""
    today = (day - date(1970, 1, 1)).days
    period = (0.5 + pl.col("update_period")) / change_rate
    since = (today - pl.col("update_phase") * period) % period
    return (pl.lit(today) - since).floor().cast(pl.Int32).cast(pl.Date)


def opted_out(siren: str, legal_form: str) -> bool:
    """Whether the unit's owner opted out of publication (``stock``'s rule, for one unit)."""
    threshold = OPTED_OUT_PERSONS if legal_form == SOLE_TRADER else OPTED_OUT_OTHERS
    return int(siren[2:4]) < threshold


def stock(day: date, n_companies: int, seed: int, change_rate: float = CHANGE_RATE) -> pl.DataFrame:
    """The StockUniteLegale file of ``day``: 35 text columns, as INSEE would publish them."""
    companies = population(n_companies, seed).filter(pl.col("creation") <= day)
    ceased = pl.col("cessation").is_not_null() & (pl.col("cessation") <= day)
    person = pl.col("categorie_juridique") == SOLE_TRADER
    employer = ~pl.col("tranche_effectifs").is_in(["NN", "00"])
    # Units whose owners opted out of publication: mostly individuals, as in the real stock.
    centile = pl.col("siren").str.slice(2, 2).cast(pl.Int32)
    opted_out = centile < pl.when(person).then(pl.lit(OPTED_OUT_PERSONS)).otherwise(
        OPTED_OUT_OTHERS
    )
    processed = pl.max_horizontal(
        pl.when(ceased).then("cessation").otherwise("creation"), last_update(day, change_rate)
    )
    categorie = (
        pl.when(pl.col("tranche_effectifs").is_in(list(_GE_TRANCHES)))
        .then(pl.lit("GE"))
        .when(pl.col("tranche_effectifs").is_in(list(_ETI_TRANCHES)))
        .then(pl.lit("ETI"))
        .otherwise(pl.lit("PME"))
    )
    year_before_last = pl.lit(str(day.year - 2))
    frame = companies.select(
        siren="siren",
        statutDiffusionUniteLegale=pl.when(opted_out).then(pl.lit("P")).otherwise(pl.lit("O")),
        dateCreationUniteLegale=pl.col("creation").dt.to_string("%Y-%m-%d"),
        sexeUniteLegale=pl.when(person).then("sexe"),
        prenom1UniteLegale=pl.when(person).then("prenom"),
        prenomUsuelUniteLegale=pl.when(person).then("prenom"),
        trancheEffectifsUniteLegale=pl.col("tranche_effectifs").replace("NN", None),
        anneeEffectifsUniteLegale=pl.when(employer).then(year_before_last),
        dateDernierTraitementUniteLegale=pl.format(
            "{}T{}:{}:00",
            processed.dt.to_string("%Y-%m-%d"),
            (pl.col("jitter") % 24).cast(pl.String).str.zfill(2),
            (pl.col("jitter") % 60).cast(pl.String).str.zfill(2),
        ),
        nombrePeriodesUniteLegale=pl.format("{}", 1 + ceased.cast(pl.Int32) + pl.col("jitter") % 4),
        categorieEntreprise=categorie,
        anneeCategorieEntreprise=year_before_last,
        dateDebut=pl.when(ceased).then("cessation").otherwise("creation").dt.to_string("%Y-%m-%d"),
        etatAdministratifUniteLegale=pl.when(ceased).then(pl.lit("C")).otherwise(pl.lit("A")),
        nomUniteLegale=pl.when(person).then("name_b"),
        denominationUniteLegale=pl.when(~person).then(pl.format("{} {}", "name_a", "name_b")),
        categorieJuridiqueUniteLegale="categorie_juridique",
        activitePrincipaleUniteLegale="activite_principale",
        nomenclatureActivitePrincipaleUniteLegale=pl.lit("NAFRev2"),
        nicSiegeUniteLegale="nic_siege",
        economieSocialeSolidaireUniteLegale="ess",
        societeMissionUniteLegale="mission",
        caractereEmployeurUniteLegale=pl.when(employer).then(pl.lit("O")).otherwise(pl.lit("N")),
    )
    missing = [pl.lit(None, pl.String).alias(c) for c in INSEE_COLUMNS if c not in frame.columns]
    return frame.with_columns(missing).select(INSEE_COLUMNS)
