"""Nomenclatures the features and their checks share: headcount bands and legal-form families."""

from ma_pipeline.contracts.personal import SOLE_TRADER_FAMILY

SIREN_PATTERN = r"^\d{9}$"

# INSEE headcount bands (CONTRACTS §3.4): code -> (rank, lowest, highest headcount); the open top
# band (10,000 and more) counts as 10,000.
HEADCOUNT_BANDS: dict[str, tuple[int, int, int]] = {
    "NN": (0, 0, 0),
    "00": (0, 0, 0),
    "01": (1, 1, 2),
    "02": (2, 3, 5),
    "03": (3, 6, 9),
    "11": (4, 10, 19),
    "12": (5, 20, 49),
    "21": (6, 50, 99),
    "22": (7, 100, 199),
    "31": (8, 200, 249),
    "32": (9, 250, 499),
    "41": (10, 500, 999),
    "42": (11, 1_000, 1_999),
    "51": (12, 2_000, 4_999),
    "52": (13, 5_000, 9_999),
    "53": (14, 10_000, 10_000),
}
MAX_BAND_RANK = max(rank for rank, _, _ in HEADCOUNT_BANDS.values())

# INSEE legal categories (4 digits) grouped into families: by the first two digits, else by the
# first one, else AUTRE (cooperatives, GIE, foreign or undivided entities...).
LEGAL_FAMILIES_BY_2_DIGITS = {
    "52": "SNC_SCS",
    "53": "SNC_SCS",
    "54": "SARL",  # SARL and EURL
    "55": "SA",
    "56": "SA",
    "57": "SAS",  # SAS and SASU
    "58": "SA",  # société européenne
    "65": "SC",  # sociétés civiles (SCI...)
    "92": "ASSOCIATION",
}
LEGAL_FAMILIES_BY_1_DIGIT = {"1": SOLE_TRADER_FAMILY, "4": "PUBLIC", "7": "PUBLIC"}
OTHER_LEGAL_FAMILY = "AUTRE"
LEGAL_FAMILIES = sorted(
    {*LEGAL_FAMILIES_BY_2_DIGITS.values(), *LEGAL_FAMILIES_BY_1_DIGIT.values(), OTHER_LEGAL_FAMILY}
)
