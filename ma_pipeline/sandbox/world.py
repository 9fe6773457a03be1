"""The sandbox's latent truth: what each sandbox company really is, and what will happen to it.

Every company of the universe (``universe.population``) gets hidden traits, drawn once from the
seed: a revenue trend (growing, flat or declining), a revenue scale that fits its headcount band
and sector, a margin, a distress level, a propensity to sell, its dirigeants (birth and start
dates), its head office, and its collective procedures. The Pappers sandbox answers from these
facts, and the labels of a later issue sample M&A events from ``sale_hazard``, so a model can only
learn what the API shows: old dirigeants, flat revenue and mid size make a sale likelier.

All dates are anchored on ``REF``; nothing depends on the day the code runs. The mixes are
plausible, not official statistics.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import numpy as np
import polars as pl

from ma_pipeline.contracts.siren import with_check_digit
from ma_pipeline.reference import departements, naf_hierarchy
from ma_pipeline.sandbox.universe import population

REF = date(2026, 1, 1)  # tenures, revenue scales and ages are drawn relative to this day
_EPOCH = date(1970, 1, 1)
_REF_DAYS = (REF - _EPOCH).days
_YEAR = 365.25
YEARS = np.arange(2000, 2041)  # fiscal years the finances can cover
MAX_FINANCE_YEARS = 10

GROWING, FLAT, DECLINING = "growing", "flat", "declining"
TRENDS = np.array([GROWING, FLAT, DECLINING])

# Mid-point of each INSEE headcount band (NN: non-employer).
HEADCOUNT = {
    "NN": 0.0,
    "00": 0.0,
    "01": 1.5,
    "02": 4.0,
    "03": 7.5,
    "11": 14.5,
    "12": 34.5,
    "21": 74.5,
    "22": 149.5,
    "31": 224.5,
    "32": 374.5,
    "41": 749.5,
    "42": 1_499.5,
    "51": 3_499.5,
    "52": 7_499.5,
    "53": 14_000.0,
}
SMALL_BANDS = {"NN", "00", "01", "02", "03"}
MID_BANDS = {"11", "12", "21", "22"}  # 10 to 199 employees: the sweet spot of small-cap M&A
# Revenue per employee (euros) by NAF section; 150 k€ elsewhere.
REVENUE_PER_EMPLOYEE = {"G": 300e3, "K": 400e3, "L": 250e3, "C": 200e3, "J": 180e3, "F": 140e3}
REVENUE_PER_EMPLOYEE |= {"I": 80e3, "Q": 70e3, "N": 60e3, "P": 60e3, "S": 70e3}

# Monthly sale hazard: base rate and its multipliers (the latent truth the labels follow).
BASE_MONTHLY_HAZARD = 0.003
AGE_MULTIPLIERS = ((65.0, 3.0), (60.0, 1.6))  # oldest dirigeant in post at least that old
TREND_MULTIPLIERS = {GROWING: 0.8, FLAT: 1.8, DECLINING: 1.2}
SIZE_MULTIPLIERS = {"small": 0.6, "mid": 2.0, "large": 1.0}
MAX_MONTHLY_HAZARD = 0.2

PROCEDURE_TYPES = ("Redressement judiciaire", "Procédure de sauvegarde", "Liquidation judiciaire")

_MALE = ("JEAN", "PIERRE", "MICHEL", "PHILIPPE", "ALAIN", "NICOLAS", "THOMAS", "LAURENT")
_MALE += ("FRANCOIS", "OLIVIER", "JULIEN", "ERIC", "PATRICK", "CHRISTOPHE", "ANTOINE")
_FEMALE = ("MARIE", "NATHALIE", "ISABELLE", "SYLVIE", "CATHERINE", "JULIE", "SOPHIE")
_FEMALE += ("CHRISTINE", "VALERIE", "SANDRINE", "CELINE", "AURELIE", "CAMILLE", "LAURA", "ANNE")
_SURNAMES = ("MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS")
_SURNAMES += ("MOREAU", "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID")
_SURNAMES += ("BERTRAND", "MOREL", "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT")
_SURNAMES += ("FONTAINE", "ROUSSEAU", "VINCENT", "MULLER", "LEFEVRE", "FAURE", "ANDRE")
_SURNAMES += ("MERCIER", "BLANC", "GUERIN", "BOYER", "GARNIER", "CHEVALIER", "FRANCOIS")
_AUDITORS = ("AUDIT ET CONSEIL", "EXPERTISE COMPTABLE ET AUDIT", "COMMISSARIAT AUX COMPTES")
_AUDITORS += ("FIDUCIAIRE DE REVISION", "CABINET D'AUDIT", "SOCIETE DE REVISION")
# Relative weights of head-office départements (more companies in Paris and big cities).
_DEPARTEMENT_WEIGHTS = {"75": 14.0, "92": 5.0, "69": 5.0, "13": 5.0, "59": 4.0, "33": 3.5}
_DEPARTEMENT_WEIGHTS |= {"31": 3.5, "06": 3.5, "94": 3.0, "93": 3.0, "44": 3.0, "34": 3.0}
_DEPARTEMENT_WEIGHTS |= {"67": 2.5, "78": 2.5, "91": 2.5, "95": 2.5, "77": 2.5, "35": 2.2}
_DEPARTEMENT_WEIGHTS |= {"38": 2.2, "62": 2.0, "83": 2.0, "76": 2.0, "57": 1.8, "74": 1.8}


def _as_date(days: float) -> date:
    return _EPOCH + timedelta(days=int(days))


def _days(day: date) -> int:
    return (day - _EPOCH).days


def closing_day(year: int, month: int) -> date:
    """The last day of ``month`` in ``year``: the close of a fiscal year."""
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


@dataclass(frozen=True)
class Dirigeant:
    """A representative as the register shows it."""

    kind: str  # "person", "holding" (a company chairing this one) or "auditor"
    qualites: tuple[str, ...]
    start: date
    birth: date | None = None
    nom: str | None = None
    prenom: str | None = None
    sexe: str | None = None
    nationalite: str | None = None
    denomination: str | None = None
    siren: str | None = None
    forme_juridique: str | None = None


@dataclass(frozen=True)
class FinanceYear:
    annee: int
    cloture: date
    chiffre_affaires: int
    resultat: int
    effectif: int | None
    ebitda: int
    ebit: int
    tresorerie: int
    dettes_financieres: int
    fonds_propres: int
    with_ratios: bool


@dataclass(frozen=True)
class Procedure:
    type: str
    debut: date
    fin: date | None


class World:
    """The latent truth of the universe ``population(n_companies, seed)``."""

    def __init__(self, n_companies: int, seed: int) -> None:
        companies = population(n_companies, seed)
        self.companies = companies
        self.sirens: np.ndarray = companies["siren"].to_numpy()
        self._row = {siren: i for i, siren in enumerate(self.sirens.tolist())}
        n = len(self.sirens)
        rng = np.random.default_rng([seed, 0x70A7E5])

        self.creation = companies["creation"].cast(pl.Int32).to_numpy().astype(np.int64)
        cessation = companies["cessation"].cast(pl.Int32).fill_null(2**31 - 1).to_numpy()
        self.cessation = cessation.astype(np.int64)
        self.legal = companies["categorie_juridique"].to_numpy().astype(str)
        self.band = companies["tranche_effectifs"].to_numpy().astype(str)
        section_of = dict(naf_hierarchy().select("code_sous_classe", "code_section").iter_rows())
        self.section = np.array([section_of[c] for c in companies["activite_principale"]])

        # Revenue: a trend, a scale that fits the band and sector, yearly noise.
        u = rng.random(n)
        self.trend = TRENDS[np.where(u < 0.35, 0, np.where(u < 0.75, 1, 2))]
        self.growth = np.select(
            [self.trend == GROWING, self.trend == FLAT],
            [rng.uniform(0.03, 0.15, n), rng.uniform(-0.015, 0.015, n)],
            rng.uniform(-0.10, -0.03, n),
        )
        self.distress = np.clip(rng.beta(2, 6, n) + 0.25 * (self.trend == DECLINING), 0, 1)
        self.openness = rng.lognormal(0.0, 0.5, n)
        headcount = np.array([HEADCOUNT[b] for b in self.band])
        per_employee = np.array([REVENUE_PER_EMPLOYEE.get(s, 150e3) for s in self.section])
        self.headcount = headcount
        self.scale = np.maximum(headcount, 0.5) * per_employee * rng.lognormal(0.0, 0.35, n)
        self.margin = rng.normal(0.05, 0.04, n) - 0.08 * self.distress
        self.closing_month = rng.choice([12, 6, 3, 9], size=n, p=[0.8, 0.08, 0.06, 0.06])
        # Accounts are filed months after the close; distressed companies file late.
        self.filing_delay = rng.uniform(120, 240, n) + 240 * (self.distress > 0.6)
        self.files_accounts = ~np.isin(self.legal, ["1000", "6540"]) & (rng.random(n) > 0.12)
        self.with_ratios = rng.random(n) < 0.75
        self.year_noise = rng.normal(0.0, 0.06, (n, len(YEARS)))
        self.balance = rng.uniform(0.0, 1.0, (n, 3))  # cash, debt and equity draws

        # Head office.
        deps = departements()
        weights = np.array([_DEPARTEMENT_WEIGHTS.get(d, 1.0) for d in deps["dep"]])
        self.departement = rng.choice(deps.height, size=n, p=weights / weights.sum())
        self.street = rng.integers(0, 10_000, n)

        # Dirigeants: up to three people, maybe a holding as président, maybe an auditor.
        small, mid = np.isin(self.band, list(SMALL_BANDS)), np.isin(self.band, list(MID_BANDS))
        people = np.where(
            small,
            rng.choice([1, 2], n, p=[0.75, 0.25]),
            np.where(mid, rng.choice([1, 2, 3], n, p=[0.4, 0.4, 0.2]), rng.choice([2, 3], n)),
        )
        self.people = np.where(self.legal == "1000", 1, people)
        tenure = rng.exponential(12 * _YEAR, n)
        first_start = np.maximum(self.creation, _REF_DAYS - tenure)
        first_start = np.where(self.legal == "1000", self.creation, first_start)
        later = (
            first_start[:, None]
            + rng.random((n, 3)) * np.maximum(_REF_DAYS - first_start, 3 * _YEAR)[:, None]
        )
        self.person_start = np.concatenate([first_start[:, None], later[:, 1:]], axis=1)
        age_at_start = np.concatenate(
            [rng.uniform(30, 62, (n, 1)), rng.uniform(25, 55, (n, 2))], axis=1
        )
        birth = self.person_start - age_at_start * _YEAR
        self.person_birth = np.maximum(birth, _REF_DAYS - 82 * _YEAR)  # nobody older than 82
        # A clipped birth must not leave anyone in post before turning 18 (nor before birth).
        self.person_start = np.maximum(self.person_start, self.person_birth + 18 * _YEAR)
        self.person_in_slot = np.arange(3)[None, :] < self.people[:, None]
        self.person_male = rng.random((n, 3)) < 0.65
        self.person_name = rng.integers(0, 1_000_000, (n, 3, 2))  # first name, surname draws
        self.person_foreign = rng.random((n, 3)) < 0.08
        self.holding = (self.legal == "5710") & (rng.random(n) < 0.12)
        # SASU and EURL: one partner (Sirene codes them as SAS and SARL, Pappers does not).
        self.single_member = (
            np.isin(self.legal, ["5710", "5499"]) & (self.people == 1) & (rng.random(n) < 0.6)
        ) | (self.legal == "5498")
        self.auditor = ~small | (self.legal == "5599")
        self.auditor_draw = rng.integers(0, 1_000_000, n)
        self.holding_siren = np.array(
            [with_check_digit(f"{b:08d}") for b in rng.choice(100_000_000, n)]
        )

        # Collective procedures: a yearly hazard that rises steeply with distress.
        hazard = 0.003 * np.exp(4.5 * self.distress)
        exposure_start = np.maximum(self.creation, _days(date(2010, 1, 1)))
        first = exposure_start + rng.exponential(1 / hazard) * _YEAR
        self.procedure_start = np.where(
            first < np.minimum(self.cessation, _days(date(2040, 12, 31))), first, np.nan
        )
        self.procedure_type = rng.choice(3, n, p=[0.55, 0.2, 0.25])
        self.procedure_length = np.where(
            self.procedure_type == 2, rng.uniform(365, 1460, n), rng.uniform(180, 900, n)
        )
        self.procedure_converts = (self.procedure_type == 0) & (rng.random(n) < 0.3)
        self.liquidation_length = rng.uniform(365, 1460, n)

        self._static_hazard = (
            BASE_MONTHLY_HAZARD
            * self.openness
            * np.array([TREND_MULTIPLIERS[t] for t in self.trend])
            * np.select(
                [small, mid],
                [SIZE_MULTIPLIERS["small"], SIZE_MULTIPLIERS["mid"]],
                SIZE_MULTIPLIERS["large"],
            )
            * np.where(np.isin(self.legal, ["1000", "6540"]), 0.5, 1.0)
        )

    # ------------------------------------------------------------------------------ lookups
    def row(self, siren: str) -> int | None:
        return self._row.get(siren)

    def rows(self, sirens: np.ndarray) -> np.ndarray:
        """Row of each SIREN (any shape); raises KeyError for a SIREN outside the universe."""
        flat = [self._row[s] for s in np.asarray(sirens, dtype=object).ravel().tolist()]
        return np.array(flat, dtype=np.int64).reshape(np.shape(sirens))

    def traits(self) -> pl.DataFrame:
        """The hidden traits of every company, for the labels and for checking the sandbox."""
        return pl.DataFrame(
            {
                "siren": self.sirens,
                "trend": self.trend,
                "growth": self.growth,
                "distress": self.distress,
                "openness": self.openness,
                "revenue_scale": self.scale,
                "margin": self.margin,
            }
        )

    # ------------------------------------------------------------------------------- facts
    def dirigeants(self, siren: str) -> list[Dirigeant]:
        """Everyone who ever held a role, with start dates (the caller filters by date)."""
        i = self._row[siren]
        legal = self.legal[i]
        out: list[Dirigeant] = []
        if self.holding[i]:
            name = _SURNAMES[self.person_name[i, 0, 1] % len(_SURNAMES)]
            out.append(
                Dirigeant(
                    kind="holding",
                    qualites=("Président",),
                    start=_as_date(self.creation[i]),
                    denomination=f"{name} HOLDING",
                    siren=str(self.holding_siren[i]),
                    forme_juridique="Société par actions simplifiée",
                )
            )
        for k in range(int(self.people[i])):
            male = bool(self.person_male[i, k])
            names = _MALE if male else _FEMALE
            first = names[self.person_name[i, k, 0] % len(names)]
            out.append(
                Dirigeant(
                    kind="person",
                    qualites=_roles(legal, k, chaired=bool(self.holding[i])),
                    start=_as_date(self.person_start[i, k]),
                    birth=_as_date(self.person_birth[i, k]),
                    nom=_SURNAMES[self.person_name[i, k, 1] % len(_SURNAMES)],
                    prenom=first,
                    sexe="M" if male else "F",
                    nationalite="Belge" if self.person_foreign[i, k] else "Française",
                )
            )
        if self.auditor[i]:
            draw = int(self.auditor_draw[i])
            firm = f"{_AUDITORS[draw % len(_AUDITORS)]} {_SURNAMES[draw % len(_SURNAMES)]}"
            out.append(
                Dirigeant(
                    kind="auditor",
                    qualites=("Commissaire aux comptes titulaire",),
                    start=_as_date(self.creation[i] + draw % 2_000),
                    denomination=firm,
                    siren=with_check_digit(f"{draw * 97 % 100_000_000:08d}"),
                    forme_juridique="Société par actions simplifiée",
                )
            )
        return out

    def finances(self, siren: str, as_of: date) -> list[FinanceYear]:
        """The fiscal years whose accounts are public on ``as_of``, most recent first."""
        i = self._row[siren]
        if not self.files_accounts[i]:
            return []
        as_of_days = _days(as_of)
        month = int(self.closing_month[i])
        years: list[FinanceYear] = []
        for column in range(len(YEARS) - 1, -1, -1):
            year = int(YEARS[column])
            close = _days(closing_day(year, month))
            if close + self.filing_delay[i] > as_of_days or close > self.cessation[i]:
                continue
            age = (close - self.creation[i]) / _YEAR
            if age < 0.5 or len(years) == MAX_FINANCE_YEARS:
                break
            years.append(self._year(i, column, year, close, age))
        return years

    def _year(self, i: int, column: int, year: int, close: int, age: float) -> FinanceYear:
        ramp = 1.0 - np.exp(-age / 1.5)  # young companies grow into their size
        revenue = (
            self.scale[i]
            * ramp
            * np.exp(self.growth[i] * (year - REF.year + 1) + self.year_noise[i, column])
        )
        margin = self.margin[i] + 0.3 * self.year_noise[i, column]
        ebitda = revenue * (margin + 0.05)
        cash, debt, equity = self.balance[i]
        headcount = self.headcount[i] * np.exp(0.5 * self.growth[i] * (year - REF.year + 1))
        return FinanceYear(
            annee=year,
            cloture=_as_date(close),
            chiffre_affaires=round(revenue),
            resultat=round(revenue * margin),
            effectif=round(headcount) if self.band[i] not in ("NN", "00") else None,
            ebitda=round(ebitda),
            ebit=round(ebitda - 0.03 * revenue),
            tresorerie=round(revenue * (0.02 + 0.23 * cash) * (1 - self.distress[i])),
            dettes_financieres=round(revenue * 0.5 * debt * (0.5 + self.distress[i])),
            fonds_propres=round(revenue * (0.05 + 0.55 * equity) * (1 - self.distress[i])),
            with_ratios=bool(self.with_ratios[i]),
        )

    def procedures(self, siren: str) -> list[Procedure]:
        """Collective procedures, oldest first, with their true dates."""
        i = self._row[siren]
        start = self.procedure_start[i]
        if np.isnan(start):
            return []
        end = start + self.procedure_length[i]
        out = [Procedure(PROCEDURE_TYPES[self.procedure_type[i]], _as_date(start), _as_date(end))]
        if self.procedure_converts[i]:
            out.append(
                Procedure(
                    PROCEDURE_TYPES[2], _as_date(end), _as_date(end + self.liquidation_length[i])
                )
            )
        return out

    def procedures_frame(self) -> pl.DataFrame:
        """Every collective procedure of the universe: siren, type, date_debut, date_fin."""
        rows = [
            (siren, p.type, p.debut, p.fin)
            for i in np.flatnonzero(~np.isnan(self.procedure_start))
            for siren in (str(self.sirens[i]),)
            for p in self.procedures(siren)
        ]
        return pl.DataFrame(
            rows,
            schema={
                "siren": pl.String,
                "type": pl.String,
                "date_debut": pl.Date,
                "date_fin": pl.Date,
            },
            orient="row",
        )

    # ------------------------------------------------------------------------------- hazard
    def oldest_age(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Age in years of the oldest person in post at ``days`` (NaN if none)."""
        start = self.person_start[rows]
        birth = self.person_birth[rows]
        in_post = self.person_in_slot[rows] & (start <= days[..., None])
        ages = np.where(in_post, (days[..., None] - birth) / _YEAR, -np.inf)
        oldest = ages.max(axis=-1)
        return np.where(np.isfinite(oldest), oldest, np.nan)

    def sale_hazard(self, sirens: str | np.ndarray, on: date | np.ndarray) -> float | np.ndarray:
        """Monthly probability that the company changes hands, as of ``on``.

        Broadcasts: SIRENs of shape (n, 1) and dates of shape (1, m) give an (n, m) array. The
        multipliers are the truth the labels follow: the oldest dirigeant reaching 60 and 65,
        a flat (or declining) revenue trend, a mid size; zero outside the company's life.
        """
        rows = self.rows(np.asarray(sirens, dtype=object))
        days = np.asarray(on, dtype="datetime64[D]").astype(np.int64)
        rows, days = np.broadcast_arrays(rows, days)
        oldest = self.oldest_age(rows, days)
        age_multiplier = np.ones_like(oldest)
        for threshold, multiplier in reversed(AGE_MULTIPLIERS):
            age_multiplier = np.where(oldest >= threshold, multiplier, age_multiplier)
        alive = (self.creation[rows] <= days) & (days < self.cessation[rows])
        hazard = np.minimum(self._static_hazard[rows] * age_multiplier, MAX_MONTHLY_HAZARD)
        result = np.where(alive, hazard, 0.0)
        return float(result) if result.ndim == 0 else result


def _roles(legal: str, slot: int, *, chaired: bool) -> tuple[str, ...]:
    """The roles of the ``slot``-th person of a company of legal form ``legal``."""
    if legal == "5710":
        if slot == 0 and not chaired:
            return ("Président",)
        return ("Directeur général",) if slot == 0 else ("Directeur général délégué",)
    if legal == "5599":
        if slot == 0:
            return ("Président du conseil d'administration", "Directeur général")
        return ("Administrateur",)
    if legal == "5202" and slot > 0:
        return ("Associé en nom",)
    if legal == "1000":
        return ("Entrepreneur individuel",)
    return ("Gérant",)


@cache
def world(n_companies: int, seed: int) -> World:
    """The world of a sandbox universe, built once per process."""
    return World(n_companies, seed)
