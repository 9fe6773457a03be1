"""Environment variables the pipeline reads and their embedded defaults: the one place naming them.

Resources receive ``dg.EnvVar`` for every variable that is set, so Dagster resolves the value at
launch and shows the variable's name (never a secret's value) in the UI; unset variables fall back
to the defaults below, which run the whole pipeline on a fresh machine with no services.
"""

import os

import dagster as dg

DEFAULTS: dict[str, str] = {
    "MA_DATA_DIR": "data",
    "MA_WAREHOUSE_URL": "",
    "MA_PARTITIONS_START": "2025-01-01",
    "MA_SANDBOX_COMPANIES": "20000",
}


def value(name: str) -> str:
    """The variable's value now, or its default (for code outside resources)."""
    return os.environ.get(name) or DEFAULTS[name]


def env(name: str) -> str | dg.EnvVar:
    """A resource field: the variable when set, else its default."""
    return dg.EnvVar(name) if os.environ.get(name) else DEFAULTS[name]


def env_int(name: str) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else int(DEFAULTS[name])


# Enrichment. Unset rates mean the mode's default (Pappers: 10/s live, 200/s on the sandbox).
DEFAULTS.update(
    {
        "MA_PAPPERS_CONCURRENCY": "8",
        "MA_PAPPERS_RATE_PER_SECOND": "",
        "MA_PAPPERS_RATE_PER_MINUTE": "",
        "MA_PAPPERS_CACHE_TTL_HOURS": "24",
        "MA_PAPPERS_MAX_FAILURE_RATE": "0.05",
        "MA_KASPR_DAILY_CREDITS": "200",
        "MA_SANDBOX_AS_OF": "",
    }
)


def secret(name: str) -> dg.EnvVar | None:
    """A secret field: the variable when set (resolved at launch, its value never shown), or
    None, which the API resources read as 'no key: use the sandbox'."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def env_float(name: str) -> float | None:
    """A float field, read when the definitions load (Dagster has no float EnvVar); None when
    neither the variable nor its default gives a value."""
    raw = value(name)
    return float(raw) if raw else None


# Feature drift: PSI of a feature above which the drift check warns, and fails as an error.
DEFAULTS.update({"MA_FEATURE_DRIFT_PSI_WARN": "0.1", "MA_FEATURE_DRIFT_PSI_ERROR": "0.25"})
