"""Who is worth enriching and scoring: the rules of the target universe, from SIRENE alone.

The rules run in order on a day's raw_companies; each keeps the units that pass it, and the
funnel (units before and after each rule) is the asset's metadata. An empty list means "any".
The départements of a unit are not in StockUniteLegale (they are its establishments'), so they
are not a rule here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline.reference import naf_hierarchy

# INSEE catégories juridiques (niveau II) of companies that are bought and sold: SNC (52),
# sociétés en commandite (53), SARL and EURL (54), SA (55, 56), SAS and SASU (57), SE (58).
# Left out by default: entrepreneurs individuels (10), public bodies (71-74), sociétés civiles
# such as SCI (65), associations (92), and every other form.
TRADED_LEGAL_FORM_FAMILIES = ["52", "53", "54", "55", "56", "57", "58"]
UNKNOWN_HEADCOUNT = "NN"
# The raw_companies columns the rules read: target_companies reads only these.
RULE_COLUMNS = [
    "partition_date",
    "siren",
    "etat_administratif",
    "date_creation",
    "statut_diffusion",
    "categorie_juridique",
    "tranche_effectifs",
    "caractere_employeur",
    "activite_principale",
    "categorie_entreprise",
]
FUNNEL_SCHEMA = {"rule": pl.String, "kept": pl.Int64, "dropped": pl.Int64}


class TargetRules(dg.Config):
    """The rules, one run's config; the defaults select active, diffusible companies of traded
    legal forms that employ people."""

    legal_form_families: list[str] = Field(
        default=TRADED_LEGAL_FORM_FAMILIES,
        description="First two digits of categorie_juridique kept (empty: every form)",
    )
    diffusible_only: bool = Field(
        default=True,
        description="Keep only units whose owners allow publication (statut_diffusion O)",
    )
    with_employees: bool = Field(
        default=True,
        description="Keep only units with a known headcount band or that declare employees",
    )
    headcount_bands: list[str] = Field(
        default=[], description="tranche_effectifs codes kept (empty: any)"
    )
    naf_sections: list[str] = Field(default=[], description="NAF sections kept (empty: any)")
    naf_divisions: list[str] = Field(default=[], description="NAF divisions kept (empty: any)")
    categories_entreprise: list[str] = Field(
        default=[], description="catégories d'entreprise kept, PME, ETI or GE (empty: any)"
    )


@dataclass(frozen=True)
class Selection:
    targets: pl.DataFrame  # partition_date, siren
    funnel: pl.DataFrame  # rule, kept, dropped


def _naf(level: str) -> pl.Expr:
    """The NAF ``division`` or ``section`` of a unit's activite_principale (null if unknown)."""
    codes = naf_hierarchy().select("code_sous_classe", f"code_{level}")
    mapping = dict(codes.iter_rows())
    return pl.col("activite_principale").replace_strict(mapping, default=None)


def _rules(rules: TargetRules, day: date) -> list[tuple[str, pl.Expr]]:
    """(name, condition) of each rule that applies, in order."""
    created = pl.col("date_creation").is_null() | (pl.col("date_creation") <= day)
    conditions: list[tuple[str, pl.Expr]] = [
        ("active", (pl.col("etat_administratif") == "A") & created),
    ]
    if rules.diffusible_only:
        conditions.append(("diffusible", pl.col("statut_diffusion") == "O"))
    if rules.legal_form_families:
        family = pl.col("categorie_juridique").str.slice(0, 2)
        conditions.append(("legal_form_family", family.is_in(rules.legal_form_families)))
    if rules.with_employees:
        known = pl.col("tranche_effectifs").is_not_null() & (
            pl.col("tranche_effectifs") != UNKNOWN_HEADCOUNT
        )
        conditions.append(("employees", known | (pl.col("caractere_employeur") == "O")))
    listed: dict[str, tuple[list[str], Callable[[], pl.Expr]]] = {
        "headcount_band": (rules.headcount_bands, lambda: pl.col("tranche_effectifs")),
        "naf_section": (rules.naf_sections, lambda: _naf("section")),
        "naf_division": (rules.naf_divisions, lambda: _naf("division")),
        "categorie_entreprise": (
            rules.categories_entreprise,
            lambda: pl.col("categorie_entreprise"),
        ),
    }
    for name, (values, column) in listed.items():
        if values:
            conditions.append((name, column().is_in(values)))
    return conditions


def select_targets(companies: pl.DataFrame, day: date, rules: TargetRules) -> Selection:
    """The SIRENs of ``companies`` (one day of raw_companies) that pass every rule, and how many
    units each rule kept and dropped."""
    remaining = companies
    funnel = []
    for name, condition in _rules(rules, day):
        before = remaining.height
        remaining = remaining.filter(condition.fill_null(False))
        funnel.append((name, remaining.height, before - remaining.height))
    targets = remaining.select(pl.lit(day).alias("partition_date"), "siren").sort("siren")
    return Selection(targets, pl.DataFrame(funnel, schema=FUNNEL_SCHEMA, orient="row"))
