"""SIREN validation, shared by ingestion and the API so both say the same thing."""

from stdnum import luhn
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError
from stdnum.fr import siren as stdnum_siren

_PROBLEMS: dict[type[ValidationError], str] = {
    InvalidLength: "must be 9 digits",
    InvalidFormat: "must be 9 digits",
    InvalidChecksum: "check digit is wrong (Luhn)",
}


def siren_problem(value: str | None) -> str | None:
    """Why ``value`` is not a valid SIREN, or None when it is.

    python-stdnum's Luhn check also accepts La Poste's SIREN 356000000 (the La Poste exception
    applies to its SIRETs, not to the SIREN).
    """
    if value is None or value == "":
        return "missing"
    if len(value) != 9 or not value.isdigit():  # stdnum would strip spaces and dots first
        return "must be 9 digits"
    try:
        stdnum_siren.validate(value)
    except ValidationError as exc:
        return _PROBLEMS.get(type(exc), str(exc))
    return None


def with_check_digit(body: str) -> str:
    """``body`` followed by its Luhn check digit (8 digits -> a valid SIREN)."""
    return body + luhn.calc_check_digit(body)
