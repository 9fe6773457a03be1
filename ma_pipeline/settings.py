"""Environment variables the pipeline reads and their embedded defaults: the one place naming them.

Resources receive ``dg.EnvVar`` for every variable that is set, so Dagster resolves the value at
launch and shows the variable's name (never a secret's value) in the UI; unset variables fall back
to the defaults below, which run the whole pipeline on a fresh machine with no services.
"""

import os

import dagster as dg

DEFAULTS: dict[str, str] = {
    # Where things live. MA_WAREHOUSE_URL unset: the DuckDB file $MA_DATA_DIR/warehouse.duckdb.
    "MA_DATA_DIR": "data",
    "MA_WAREHOUSE_URL": "",
    "MA_PARTITIONS_START": "2025-01-01",
    # The sandbox: active companies, and the day its APIs answer as of (empty: today).
    "MA_SANDBOX_COMPANIES": "20000",
    "MA_SANDBOX_AS_OF": "",
    # Enrichment. Unset rates mean the mode's default (Pappers: 10/s live, 200/s on the sandbox).
    "MA_PAPPERS_CONCURRENCY": "8",
    "MA_PAPPERS_RATE_PER_SECOND": "",
    "MA_PAPPERS_RATE_PER_MINUTE": "",
    "MA_PAPPERS_CACHE_TTL_HOURS": "24",
    "MA_PAPPERS_MAX_FAILURE_RATE": "0.05",
    "MA_KASPR_DAILY_CREDITS": "200",
    # Feature drift: PSI of a feature above which the drift check warns, and fails as an error.
    "MA_FEATURE_DRIFT_PSI_WARN": "0.1",
    "MA_FEATURE_DRIFT_PSI_ERROR": "0.25",
    # Training. MLFLOW_TRACKING_URI unset: SQLite and artifacts under $MA_DATA_DIR/mlflow. The
    # look-back is the oldest as-of date, in months before the snapshot; the margin is the
    # holdout ROC-AUC a challenger must gain over the champion and the baseline.
    "MLFLOW_TRACKING_URI": "",
    "MA_MLFLOW_EXPERIMENT": "ma_pipeline",
    "MA_TRAINING_LOOKBACK_MONTHS": "60",
    "MA_EVENTS_HISTORY_MONTHS": "72",
    "MA_PROMOTION_MARGIN": "0.005",
    # Scoring and automation: the score PSI above which a day is not published, the companies
    # whose dirigeants Kaspr enriches per day, where failed runs are posted (unset: logged) and
    # the Dagster UI's address used in alerts.
    "MA_SCORE_PSI_MAX": "0.25",
    "MA_KASPR_TOP_N": "20",
    "MA_ALERT_WEBHOOK_URL": "",
    "MA_DAGSTER_UI_URL": "http://localhost:3000",
    # Serving API. MA_API_DB_URL unset: SQLite under MA_DATA_DIR on DuckDB, else the warehouse's
    # PostgreSQL (schema serving).
    "MA_API_DB_URL": "",
    "MA_API_CORS_ORIGINS": "",
    "MA_API_REFRESH_SECONDS": "5",
    "MA_API_RATE_PER_SECOND": "20",
    "MA_API_RATE_BURST": "40",
    "MA_API_KEY_CACHE_SECONDS": "10",
    # Score requests: the most pending requests one score_requests_job run handles.
    "MA_SCORE_REQUESTS_BATCH": "50",
}


def value(name: str) -> str:
    """The variable's value now, or its default (for code outside resources)."""
    return os.environ.get(name) or DEFAULTS[name]


def env(name: str) -> str | dg.EnvVar:
    """A resource field: the variable when set, else its default."""
    return dg.EnvVar(name) if os.environ.get(name) else DEFAULTS[name]


def env_int(name: str) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if os.environ.get(name) else int(DEFAULTS[name])


def env_float(name: str) -> float | None:
    """A float field, read when the definitions load (Dagster has no float EnvVar); None when
    neither the variable nor its default gives a value."""
    raw = value(name)
    return float(raw) if raw else None


def secret(name: str) -> dg.EnvVar | None:
    """A secret field: the variable when set (resolved at launch, its value never shown), or
    None, which the API resources read as 'no key: use the sandbox'."""
    return dg.EnvVar(name) if os.environ.get(name) else None
