"""SIREN validation, shared by ingestion, score requests and the API so all say the same thing."""

import numpy as np
import polars as pl
from stdnum import luhn


def siren_problem(value: str | None) -> str | None:
    """Why ``value`` is not a valid SIREN, or None when it is.

    A SIREN is 9 digits with a Luhn check digit (python-stdnum's ``fr.siren``, whose clean-up and
    checks this repeats cheaply: it runs on every API look-up). La Poste's SIREN 356000000 is
    valid by Luhn too (the La Poste exception applies to its SIRETs, not to the SIREN).
    """
    if value is None or value == "":
        return "missing"
    if len(value) != 9 or not value.isascii() or not value.isdigit():  # no spaces or dots
        return "must be 9 digits"
    if luhn.checksum(value) != 0:
        return "check digit is wrong (Luhn)"
    return None


def with_check_digit(body: str) -> str:
    """``body`` followed by its Luhn check digit (8 digits -> a valid SIREN)."""
    return body + luhn.calc_check_digit(body)


def with_check_digits(bodies: np.ndarray, width: int) -> np.ndarray:
    """Each integer of ``bodies``, written on ``width`` digits and followed by its Luhn check
    digit, as text (8 digits -> SIRENs, 13 -> SIRETs): ``with_check_digit`` for whole arrays."""
    bodies = np.asarray(bodies, dtype=np.int64)
    total = np.zeros(bodies.shape, dtype=np.int64)
    rest = bodies.copy()
    # From the right: the body's last digit sits next to the check digit and is doubled.
    for position in range(width):
        digit = rest % 10
        rest //= 10
        if position % 2 == 0:
            digit = digit * 2 - 9 * (digit >= 5)
        total += digit
    check = (10 - total % 10) % 10
    return np.char.zfill((bodies * 10 + check).astype(str), width + 1)


def siren_problem_expr(column: str) -> pl.Expr:
    """``siren_problem`` as a column expression, for whole files: no Python call per row."""
    value = pl.col(column)
    digits = [value.str.slice(i, 1).cast(pl.Int32, strict=False) for i in range(9)]
    # Luhn from the right: the 2nd, 4th... digits are doubled, i.e. indices 1, 3, 5, 7 of nine.
    terms = [d * 2 - 9 * (d >= 5).cast(pl.Int32) if i % 2 else d for i, d in enumerate(digits)]
    return (
        pl.when(value.is_null() | (value == ""))
        .then(pl.lit("missing"))
        .when(~value.str.contains(r"^[0-9]{9}$"))
        .then(pl.lit("must be 9 digits"))
        .when(pl.sum_horizontal(terms) % 10 != 0)
        .then(pl.lit("check digit is wrong (Luhn)"))
        .otherwise(pl.lit(None, pl.String))
    )


def siren_blocks(sirens: pl.Series, block_rows: int) -> list[tuple[str, str]]:
    """[first, last] SIRENs of consecutive blocks of at most ``block_rows`` of ``sirens`` in
    order (at least one block): a universe too large for memory is read block by block, and
    only its SIRENs are held to cut it. Cut on the SIRENs themselves, since real ones cluster."""
    ordered = sirens.unique().sort()
    if ordered.is_empty():
        return [("000000000", "999999999")]
    return [
        (ordered[start], ordered[min(start + block_rows, ordered.len()) - 1])
        for start in range(0, ordered.len(), block_rows)
    ]
