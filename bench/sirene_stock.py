"""A StockUniteLegale file of national size in the real 35-column layout, for the ingestion bench.

The legal forms and headcount bands follow the sandbox's mix (``ma_pipeline.sandbox.universe``:
more than half sole traders, most headcount bands unknown). Ceased units are included (about a
third), some units are not diffusible (mostly individuals), and a few rows are bad (a wrong check
digit, a duplicated SIREN with an older processing date) so that validation has work to do.
Written in chunks, so a 28M-row file needs little memory.
"""

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from ma_pipeline.contracts.siren import with_check_digits
from ma_pipeline.contracts.sirene import INSEE_COLUMNS
from ma_pipeline.sandbox import universe

NAF = ["62.01Z", "47.11F", "56.10A", "43.21A", "68.20B", "70.22Z", "86.21Z", "41.20A", "10.71C"]
WORDS = ["ATELIERS", "SOCIETE", "GROUPE", "CABINET", "MAISON", "SERVICES", "TRANSPORTS", "BATIMENT"]
NAMES = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND"]
FIRST = ["JEAN", "MARIE", "PIERRE", "ANNE", "LUC", "CLAIRE", "PAUL", "SOPHIE"]


def chunk(start: int, size: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed + start)
    index = np.arange(start, start + size, dtype=np.int64)
    siren = with_check_digits(index * 3 + 1_000_003, 8)  # unique up to 33M rows
    bad = rng.random(size) < 0.0005
    legal = universe.draw(rng, universe.LEGAL_FORMS, size)
    person = legal == universe.SOLE_TRADER
    ceased = rng.random(size) < 0.35
    opted_out = np.where(person, rng.random(size) < 0.3, rng.random(size) < 0.01)
    created = np.datetime64("1950-01-01") + rng.integers(0, 27_700, size).astype("timedelta64[D]")
    processed = np.datetime64("2020-01-01") + rng.integers(0, 2_500, size).astype("timedelta64[D]")
    word = np.array(WORDS)[rng.integers(0, len(WORDS), size)]
    name = np.array(NAMES)[rng.integers(0, len(NAMES), size)]
    first = np.array(FIRST)[rng.integers(0, len(FIRST), size)]
    frame = pl.DataFrame(
        {
            "siren": siren,
            "statutDiffusionUniteLegale": np.where(opted_out, "P", "O"),
            "dateCreationUniteLegale": created.astype(str),
            "trancheEffectifsUniteLegale": universe.headcount_bands(rng, legal),
            "dateDernierTraitementUniteLegale": np.char.add(processed.astype(str), "T08:15:00"),
            "etatAdministratifUniteLegale": np.where(ceased, "C", "A"),
            "nomUniteLegale": np.where(person, name, ""),
            "prenom1UniteLegale": np.where(person, first, ""),
            "denominationUniteLegale": np.where(person, "", np.char.add(word, " EXEMPLE")),
            "categorieJuridiqueUniteLegale": legal,
            "activitePrincipaleUniteLegale": np.array(NAF)[rng.integers(0, len(NAF), size)],
            "nicSiegeUniteLegale": np.char.zfill(rng.integers(1, 99_999, size).astype(str), 5),
            "categorieEntreprise": np.where(person, "", "PME"),
            "caractereEmployeurUniteLegale": np.where(rng.random(size) < 0.2, "O", "N"),
        }
    )
    # A wrong check digit on some rows, and some SIRENs repeated with an older processing date.
    frame = frame.with_columns(
        siren=pl.when(pl.Series(bad)).then(pl.col("siren").str.slice(0, 8) + "9").otherwise("siren")
    )
    repeats = frame.filter(pl.Series(rng.random(size) < 0.001)).with_columns(
        dateDernierTraitementUniteLegale=pl.lit("2019-01-01T00:00:00")
    )
    frame = pl.concat([frame, repeats])
    missing = [pl.lit("", pl.String).alias(c) for c in INSEE_COLUMNS if c not in frame.columns]
    return frame.with_columns(missing).select(INSEE_COLUMNS)


def write_stock(path: Path, rows: int, *, seed: int = 2026, chunk_rows: int = 1_000_000) -> Path:
    """Write about ``rows`` units (plus the repeated ones) to ``path``, chunk by chunk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for start in range(0, rows, chunk_rows):
            part = chunk(start, min(chunk_rows, rows - start), seed)
            part.write_csv(out, include_header=start == 0)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=28_000_000)
    args = parser.parse_args()
    write_stock(args.path, args.rows)
    print(f"{args.path}: {args.path.stat().st_size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
