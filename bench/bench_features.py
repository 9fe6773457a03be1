"""Company features for 1M companies (3M fiscal years, ~2M dirigeants): polars against pandas.

    python bench/bench_features.py [--companies 1000000] [--repeat 2]

Builds synthetic tables shaped like raw_companies and the four Pappers tables (columns and types
of the pipeline's, plausible mixes), then times ``compute_features`` (the pipeline's polars code)
and a pandas version of the same computation written here, in this process, on the same rows;
each keeps its best time of ``--repeat`` runs and its highest peak memory: the resident set
size sampled every 2 ms during a run, minus the size before it (Linux: /proc/self/statm). The
pandas output is checked against the polars one, column by column, before any figure is printed.
"""

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ma_pipeline.contracts.tables import DAYS_PER_YEAR
from ma_pipeline.features.codes import (
    HEADCOUNT_BANDS,
    LEGAL_FAMILIES_BY_1_DIGIT,
    LEGAL_FAMILIES_BY_2_DIGITS,
    OTHER_LEGAL_FAMILY,
)
from ma_pipeline.features.compute import (
    SENIOR_AGE,
    FeatureConfig,
    FeatureInputs,
    compute_features,
)
from ma_pipeline.features.schemas import FEATURE_DTYPES
from ma_pipeline.reference import departements, naf_hierarchy

AS_OF = date(2025, 6, 2)
PAGE = os.sysconf("SC_PAGE_SIZE")
STATM = Path("/proc/self/statm")


# ------------------------------------------------------------------------------ synthetic data
def tables(n: int, seed: int = 0, first_siren: int = 100_000_000) -> dict[str, pl.DataFrame]:
    """raw_companies and the Pappers tables for ``n`` active companies (95 % known to Pappers),
    SIRENs from ``first_siren`` on."""
    rng = np.random.default_rng(seed)
    siren = pl.Series("siren", np.arange(first_siren, first_siren + n)).cast(pl.String)
    created = pl.Series(rng.integers(-7_000, 20_000, n)).cast(pl.Date)
    naf = naf_hierarchy()["code_sous_classe"].to_numpy()
    bands = np.array([b for b in HEADCOUNT_BANDS if b != "NN"] + [None], dtype=object)
    legal = np.array(["5710", "5499", "5599", "5202", "1000", "6540", "9220"])
    raw = pl.DataFrame(
        {
            "siren": siren,
            "nom_entreprise": pl.Series(rng.integers(0, 10**6, n)).cast(pl.String),
            "etat_administratif": ["A"] * n,
            "activite_principale": rng.choice(naf, n),
            "categorie_juridique": rng.choice(legal, n, p=[0.4, 0.35, 0.04, 0.01, 0.1, 0.08, 0.02]),
            "tranche_effectifs": rng.choice(bands, n),
            "caractere_employeur": rng.choice(["O", "N"], n),
            "date_creation": created,
        }
    )
    known = rng.random(n) < 0.95
    communes = departements()["cheflieu"].to_numpy()
    companies = raw.filter(pl.Series(known)).select(
        "siren",
        "nom_entreprise",
        pl.col("activite_principale").alias("code_naf"),
        "categorie_juridique",
        pl.col("tranche_effectifs").alias("tranche_effectif"),
        "date_creation",
        pl.Series(rng.choice([1e3, 1e4, 5e4, 1e5, np.nan], known.sum()))
        .fill_nan(None)
        .alias("capital"),
        pl.Series(rng.choice(communes, known.sum())).alias("siege_code_commune"),
        pl.lit(None, pl.String).alias("siege_code_departement"),
    )

    # Fiscal years: 3 per company on average, the latest closing in 2024 or 2025.
    years = np.minimum(rng.poisson(3.2, n), 8) * known
    row = np.repeat(np.arange(n), years)
    back = np.arange(len(row)) - np.repeat(np.cumsum(years) - years, years)
    month = rng.choice([12, 6, 3, 9], n, p=[0.8, 0.08, 0.06, 0.06])[row]
    annee = 2025 - back - (month == 12)
    closing = pl.date_range(date(2000, 1, 1), date(2025, 12, 1), "1mo", eager=True)
    month_end = closing.dt.month_end().to_numpy()
    scale = rng.lognormal(13, 1.5, n)[row] * np.exp(-0.04 * back)
    finances = pl.DataFrame(
        {
            "siren": siren.gather(row),
            "annee": annee,
            "date_de_cloture_exercice": month_end[(annee - 2000) * 12 + month - 1],
            "duree_exercice": rng.choice([12, 12, 12, 18], len(row)),
            "chiffre_affaires": np.round(scale * rng.lognormal(0, 0.1, len(row))).astype(np.int64),
            "resultat": np.round(scale * rng.normal(0.04, 0.06, len(row))).astype(np.int64),
            "effectif": rng.integers(0, 200, len(row)),
        }
    ).with_columns(pl.col("chiffre_affaires").replace(0, None))

    # Dirigeants: 2.1 a company, one in five a legal person (most of them auditors).
    people = rng.choice([1, 2, 3, 4], n, p=[0.3, 0.4, 0.2, 0.1]) * known
    row = np.repeat(np.arange(n), people)
    legal_person = rng.random(len(row)) < 0.2
    dirigeants = pl.DataFrame(
        {
            "siren": siren.gather(row),
            "personne_morale": legal_person,
            "commissaire_aux_comptes": legal_person & (rng.random(len(row)) < 0.7),
            "annee_naissance": rng.integers(1940, 2000, len(row)),
            "mois_naissance": rng.integers(1, 13, len(row)),
            "date_prise_de_poste": pl.Series(rng.integers(5_000, 20_500, len(row))).cast(pl.Date),
        }
    ).with_columns(
        pl.when(~pl.col("personne_morale")).then(pl.col(c)).alias(c)
        for c in ("annee_naissance", "mois_naissance")
    )
    sick = np.flatnonzero(known & (rng.random(n) < 0.03))
    start = rng.integers(14_000, 20_400, len(sick))
    procedures = pl.DataFrame(
        {
            "siren": siren.gather(sick),
            "date_debut": pl.Series(start).cast(pl.Date),
            "date_fin": pl.Series(start + 700).cast(pl.Date),
            "ended": rng.random(len(sick)) < 0.5,
        }
    ).select("siren", "date_debut", pl.when("ended").then("date_fin").alias("date_fin"))
    return {
        "companies": raw,
        "pappers_companies": companies,
        "finances": finances,
        "dirigeants": dirigeants,
        "procedures": procedures,
    }


# ------------------------------------------------------------------------ the pandas version
def features_pandas(t: dict[str, pd.DataFrame], as_of: date, config: FeatureConfig) -> pd.DataFrame:
    """compute_features written with pandas: same rules, same columns."""
    day = pd.Timestamp(as_of)
    pappers = t["pappers_companies"].rename(
        columns={
            "nom_entreprise": "nom_pappers",
            "categorie_juridique": "categorie_pappers",
            "tranche_effectif": "tranche_pappers",
            "date_creation": "creation_pappers",
        }
    )
    commune = pappers["siege_code_commune"]
    dep = commune.str.slice(0, 2).where(
        ~commune.str.startswith("97", na=False), commune.str.slice(0, 3)
    )
    pappers = pappers.assign(
        departement=dep.fillna(pappers["siege_code_departement"]), connue_de_pappers=True
    ).drop(columns=["siege_code_commune", "siege_code_departement"])
    c = t["companies"].drop(columns=["etat_administratif"]).merge(pappers, on="siren", how="left")
    c["nom_entreprise"] = c["nom_entreprise"].fillna(c["nom_pappers"])
    c["activite_principale"] = c["activite_principale"].fillna(c["code_naf"])
    c["categorie_juridique"] = c["categorie_juridique"].fillna(c["categorie_pappers"])
    non_employer = c["caractere_employeur"].eq("N").map({True: "NN", False: None})
    c["tranche_effectifs"] = (
        c["tranche_effectifs"].fillna(c["tranche_pappers"]).fillna(non_employer)
    )
    c["date_creation"] = c["date_creation"].fillna(c["creation_pappers"])
    c = c[c["date_creation"].isna() | (c["date_creation"] <= day)]

    naf = naf_hierarchy().to_pandas()[["code_sous_classe", "code_section", "code_division"]]
    c = c.merge(
        naf.set_axis(["activite_principale", "naf_section", "naf_division"], axis=1),
        on="activite_principale",
        how="left",
    )
    cog = departements().to_pandas()[["dep", "reg"]].set_axis(["departement", "region"], axis=1)
    c = c.merge(cog, on="departement", how="left")
    c["departement"] = c["departement"].where(c["region"].notna())

    # Accounts known on the day.
    f = t["finances"]
    cloture = f["date_de_cloture_exercice"].fillna(
        pd.to_datetime(pd.DataFrame({"year": f["annee"], "month": 12, "day": 31}))
    )
    f = f.assign(cloture=cloture)[cloture + pd.DateOffset(months=config.filing_lag_months) <= day]
    f["ca_annuel"] = f["chiffre_affaires"] * 12.0 / f["duree_exercice"].clip(1, 36).fillna(12)
    f = f.sort_values("cloture").drop_duplicates(["siren", "annee"], keep="last")
    last = f[f["cloture"] == f.groupby("siren")["cloture"].transform("max")]
    for back in (1, 3):
        earlier = f[["siren", "annee", "ca_annuel"]].assign(annee=f["annee"] + back)
        last = last.merge(
            earlier.rename(columns={"ca_annuel": f"ca_{back}"}), on=["siren", "annee"], how="left"
        )
    ca = last["chiffre_affaires"].astype(float)
    accounts = pd.DataFrame(
        {
            "siren": last["siren"],
            "chiffre_affaires": ca,
            "effectif_comptes": last["effectif"].astype(float),
            "croissance_ca_1an": (last["ca_annuel"] / last["ca_1"] - 1).where(last["ca_1"] > 0),
            "cagr_ca_3ans": ((last["ca_annuel"] / last["ca_3"]) ** (1 / 3) - 1).where(
                (last["ca_3"] > 0) & (last["ca_annuel"] >= 0)
            ),
            "marge_nette": (last["resultat"] / ca).where(ca > 0),
            "date_derniers_comptes": last["cloture"],
            "annees_depuis_derniers_comptes": (day - last["cloture"]).dt.days / DAYS_PER_YEAR,
            "comptes_confidentiels": ca.isna(),
        }
    )

    # Dirigeants in post on the day.
    d = t["dirigeants"]
    start = d["date_prise_de_poste"]
    d = d[~d["commissaire_aux_comptes"].fillna(False) & (start.isna() | (start <= day))]
    person = ~d["personne_morale"].fillna(False)
    later = (d["mois_naissance"].fillna(7) > as_of.month).astype(int)
    d = d.assign(
        person=person,
        legal=~person,
        age=(as_of.year - d["annee_naissance"] - later).where(person),
        start=d["date_prise_de_poste"].where(person),
    )
    d["senior"] = (d["age"] >= SENIOR_AGE).where(d["age"].notna())
    people = d.groupby("siren").agg(
        nb_dirigeants=("person", "sum"),
        age_dirigeant_max=("age", "max"),
        part_dirigeants_60_plus=("senior", "mean"),
        date_premier_dirigeant=("start", "min"),
        dirigeant_personne_morale=("legal", "any"),
    )

    p = t["procedures"]
    p = p[p["date_debut"] <= day]
    p = p.assign(open=p["date_fin"].isna() | (p["date_fin"] > day))
    procedures = p.groupby("siren").agg(
        nb_procedures_collectives=("open", "size"), procedure_collective_en_cours=("open", "any")
    )

    c = c.merge(accounts, on="siren", how="left")
    c = c.merge(people, left_on="siren", right_index=True, how="left")
    c = c.merge(procedures, left_on="siren", right_index=True, how="left")
    known = c["connue_de_pappers"].eq(True)
    legal = c["categorie_juridique"]
    family = legal.str.slice(0, 2).map(LEGAL_FAMILIES_BY_2_DIGITS)
    family = family.fillna(legal.str.slice(0, 1).map(LEGAL_FAMILIES_BY_1_DIGIT))
    band = c["tranche_effectifs"]
    midpoints = {code: (low + high) / 2 for code, (_, low, high) in HEADCOUNT_BANDS.items()}
    effectif = c["effectif_comptes"].fillna(band.map(midpoints))
    c = c.assign(
        partition_date=day,
        forme_juridique_famille=family.where(legal.isna() | family.notna(), OTHER_LEGAL_FAMILY),
        anciennete=(day - c["date_creation"]).dt.days / DAYS_PER_YEAR,
        anciennete_dirigeant_max=(day - c["date_premier_dirigeant"]).dt.days / DAYS_PER_YEAR,
        log_ca=np.log1p(c["chiffre_affaires"]),
        effectif=effectif,
        ca_par_salarie=(c["chiffre_affaires"] / effectif).where(effectif >= 1),
        tranche_effectifs_rang=band.map({code: r for code, (r, _, _) in HEADCOUNT_BANDS.items()}),
        dirigeant_unique=(c["nb_dirigeants"].fillna(0) == 1).astype("boolean").where(known),
        comptes_confidentiels=c["comptes_confidentiels"].astype("boolean"),
    )
    for column in ("nb_dirigeants", "nb_procedures_collectives"):
        c[column] = c[column].fillna(0).where(known)
    for column in ("dirigeant_personne_morale", "procedure_collective_en_cours"):
        c[column] = c[column].astype("boolean").fillna(False).where(known)
    return c[list(FEATURE_DTYPES)].sort_values("siren", ignore_index=True)


# --------------------------------------------------------------------------------- measuring
def resident() -> int:
    return int(STATM.read_text().split()[1]) * PAGE


def measured(run: Callable[[], Any]) -> tuple[Any, float, int]:
    """The result of ``run``, its seconds, and its peak resident memory above the start."""
    gc.collect()
    base = peak = resident()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, resident())

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return result, seconds, max(peak, resident()) - base


def same_values(polars_out: pl.DataFrame, pandas_out: pd.DataFrame) -> None:
    """Raise unless both outputs hold the same values (floats to 1e-9 relative)."""
    other = pl.from_pandas(pandas_out)
    for name, dtype in FEATURE_DTYPES.items():
        mine, theirs = polars_out[name], other[name].cast(dtype)
        if dtype.is_float():
            close = np.isclose(
                mine.to_numpy(), theirs.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True
            )
            assert close.all(), f"{name}: {(~close).sum()} values differ"
        else:
            assert mine.equals(theirs, check_names=False), f"{name} differs"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    frames = tables(args.companies)
    as_pandas = {name: frame.to_pandas() for name, frame in frames.items()}
    config = FeatureConfig()
    inputs = FeatureInputs(**frames)

    runs = {
        "polars (compute_features)": lambda: compute_features(inputs, AS_OF, config),
        "pandas (same rules)": lambda: features_pandas(as_pandas, AS_OF, config),
    }
    best: dict[str, tuple[float, int]] = {}
    outputs: dict[str, Any] = {}
    for _ in range(args.repeat):
        for label, run in runs.items():
            outputs[label], seconds, memory = measured(run)
            previous = best.get(label, (float("inf"), 0))
            best[label] = (min(previous[0], seconds), max(previous[1], memory))
    same_values(*outputs.values())

    sizes = ", ".join(f"{name} {frame.height:,}" for name, frame in frames.items())
    print(f"rows in: {sizes}; features out: {outputs['polars (compute_features)'].height:,}")
    print(f"{'implementation':<27} {'seconds':>8} {'peak MiB':>9}")
    for label, (seconds, memory) in best.items():
        print(f"{label:<27} {seconds:>8.2f} {memory / 2**20:>9.0f}")
    polars_s, pandas_s = best["polars (compute_features)"][0], best["pandas (same rules)"][0]
    print(f"pandas / polars time: {pandas_s / polars_s:.1f}x")


if __name__ == "__main__":
    main()
