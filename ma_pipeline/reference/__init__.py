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
