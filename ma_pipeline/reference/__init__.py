"""Official reference tables shipped with the package (see PROVENANCE.md)."""

from functools import cache
from pathlib import Path

import polars as pl

REFERENCE_DIR = Path(__file__).parent


@cache
def naf_hierarchy() -> pl.DataFrame:
    """NAF rév. 2: one row per sous-classe (``01.11Z``) with its classe, groupe, division and
    section."""
    return pl.read_csv(REFERENCE_DIR / "naf_rev2_hierarchie.csv", infer_schema=False)


@cache
def departements() -> pl.DataFrame:
    """COG 2025 départements: ``dep``, ``libelle``, chef-lieu commune, ``reg`` and its label."""
    return pl.read_csv(REFERENCE_DIR / "cog_departements_2025.csv", infer_schema=False)


@cache
def regions() -> pl.DataFrame:
    """COG 2025 régions: ``reg``, ``libelle``, chef-lieu commune."""
    return pl.read_csv(REFERENCE_DIR / "cog_regions_2025.csv", infer_schema=False)
