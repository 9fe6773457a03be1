"""SIREN validation, shared by ingestion, score requests and the API so all say the same thing."""

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
