"""What is personal data in the pipeline's tables, and the copy of a frame that may be shown.

Names of sole traders and dirigeants, ages and birth dates are personal data (contacts live in
their own tables): they stay in the tables that hold them and are served only to API keys with
``contacts:read``. Scores, marts and the metadata anyone can read in the Dagster UI hold none.
"""

import polars as pl

# Features whose value is a person's age, or says whether they are 60 or more.
PERSONAL_FEATURES = frozenset({"age_dirigeant_max", "part_dirigeants_60_plus"})
# Every column, in any table, whose values are personal data.
PERSONAL_COLUMNS = PERSONAL_FEATURES | {
    "nom",
    "prenom",
    "nom_complet",
    "sexe",
    "date_de_naissance",
    "annee_naissance",
    "mois_naissance",
    "age",
}
# The legal-form family of a sole trader, whose company name is the person's own name.
SOLE_TRADER_FAMILY = "EI"
MASKED = "(personal data)"


def shareable(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without its personal columns, and without a sole trader's company name (told
    by ``forme_juridique_famille``, or by ``personne_morale`` false in the registry tables)."""
    out = frame.drop([c for c in frame.columns if c in PERSONAL_COLUMNS])
    if "nom_entreprise" not in out.columns:
        return out
    if "forme_juridique_famille" in out.columns:
        person = pl.col("forme_juridique_famille") == SOLE_TRADER_FAMILY
    elif "personne_morale" in out.columns:
        person = ~pl.col("personne_morale")
    else:
        return out
    return out.with_columns(nom_entreprise=pl.when(~person).then(pl.col("nom_entreprise")))
