"""Environment variables the pipeline reads and their embedded defaults: the one place naming them.

Read when a run launches or a sensor ticks, never when the definitions load (except
MA_PARTITIONS_START, which Dagster needs for the partitions): resource and run-config fields left
None take their variable then (``LaunchSettings``, ``launch_defaults``); unset or empty variables
take the defaults below. The API reads its own variables (serving/config.py).
"""

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import dagster as dg
from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The sandbox's default size in legal units, with the stock's mix: about a fifth are targets.
SANDBOX_UNITS = 50_000


class Settings(BaseSettings):
    """Each field is the variable of its name in upper case; secrets (keys, URLs that may embed a
    password) are ``SecretStr``, never shown in a repr."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    # Where things live. MA_WAREHOUSE_URL unset: the DuckDB file $MA_DATA_DIR/warehouse.duckdb.
    ma_data_dir: str = "data"
    ma_warehouse_url: SecretStr = SecretStr("")
    ma_partitions_start: str = "2025-01-01"
    # The sandbox: active legal units, and the day its APIs answer as of (empty: today).
    ma_sandbox_companies: int = SANDBOX_UNITS
    ma_sandbox_as_of: str = ""
    # A SIRENE stock keeping fewer rows than this share of the stock before it fails (0: off).
    ma_sirene_min_rows_ratio: float = 0.5
    # Enrichment. No key: the sandbox. Unset rates mean the mode's default (Pappers: 10/s live,
    # 200/s on the sandbox).
    ma_pappers_api_key: SecretStr | None = None
    ma_pappers_concurrency: int = 8
    ma_pappers_rate_per_second: float | None = None
    ma_pappers_rate_per_minute: float | None = None
    ma_pappers_cache_ttl_hours: float = 24.0
    # The daily enrichment fetches new, changed and old targets only (enrichment.refresh).
    ma_pappers_max_age_days: float = 30.0
    ma_pappers_daily_calls: int | None = None
    ma_pappers_max_failure_rate: float = 0.05
    # The registry provider: pappers (its sandbox without a key) or recherche_entreprises (the
    # free API Recherche d'entreprises, 7 requests/s; its in-process twin when _SANDBOX is set).
    ma_registry_provider: Literal["pappers", "recherche_entreprises"] = "pappers"
    ma_recherche_entreprises_sandbox: bool = False
    ma_recherche_entreprises_rate_per_second: float | None = None
    ma_recherche_entreprises_max_age_days: float = 30.0
    ma_recherche_entreprises_daily_calls: int | None = None
    ma_recherche_entreprises_contact: str | None = None
    ma_kaspr_api_key: SecretStr | None = None
    ma_kaspr_daily_credits: int = 200
    # Feature drift: PSI of a feature above which the drift check warns, and fails as an error.
    ma_feature_drift_psi_warn: float = 0.1
    ma_feature_drift_psi_error: float = 0.25
    # Training. MLFLOW_TRACKING_URI unset: SQLite and artifacts under $MA_DATA_DIR/mlflow. The
    # look-back is the oldest as-of date, in months before the snapshot; the margin is the
    # holdout ROC-AUC a challenger must gain over the champion and the baseline.
    mlflow_tracking_uri: SecretStr = SecretStr("")
    ma_mlflow_experiment: str = "ma_pipeline"
    ma_training_lookback_months: int = 60
    ma_events_history_months: int = 72
    ma_promotion_margin: float = 0.005
    # Scoring and automation: the score PSI above which a day is not published, the companies
    # whose dirigeants Kaspr enriches per day, where failed runs are posted (unset: logged) and
    # the Dagster UI's address used in alerts.
    ma_score_psi_max: float = 0.25
    ma_kaspr_top_n: int = 20
    ma_alert_webhook_url: SecretStr | None = None
    ma_dagster_ui_url: str = "http://localhost:3000"
    # Score requests: the API's database (unset: SQLite under MA_DATA_DIR on DuckDB, else the
    # warehouse's PostgreSQL, schema serving) and the most pending requests one run handles.
    ma_api_db_url: SecretStr = SecretStr("")
    ma_score_requests_batch: int = 50


def _plain(found: Any) -> Any:
    return found.get_secret_value() if isinstance(found, SecretStr) else found


def current(name: str) -> Any:
    """The variable's value now, or its default (secrets revealed: for resources, not logs)."""
    return _plain(getattr(Settings(), name.lower()))


def value(name: str) -> str:
    """``current`` as text ('' for none): for partitions.py and the command-line entry points."""
    found = current(name)
    return "" if found is None else str(found)


class LaunchSettings(dg.ConfigurableResource):
    """A resource whose fields named in ``from_settings`` (field -> variable) take their
    variable's value when the resource is created for a run or a sensor tick, if left None."""

    from_settings: ClassVar[Mapping[str, str]] = {}

    def create_resource(self, context: dg.InitResourceContext) -> Any:
        return self.resolved()

    def resolved(self) -> Self:
        """This resource with its unset fields read from the environment now."""
        now = Settings()
        update = {
            field: _plain(getattr(now, name.lower()))
            for field, name in self.from_settings.items()
            if getattr(self, field) is None
        }
        if not update:
            return self
        fields = {field: getattr(self, field) for field in type(self).model_fields}
        return type(self)(**{**fields, **update})


def launch_defaults(**variables: str) -> Any:
    """A ``dg.Config`` validator: the fields named (field=variable) left None take the variable's
    value when the config is built, that is when the run launches (a launchpad value wins)."""

    def fill(cls: type, data: Any) -> Any:
        if not isinstance(data, dict) or all(data.get(f) is not None for f in variables):
            return data
        now = Settings()
        return {
            **data,
            **{f: getattr(now, v.lower()) for f, v in variables.items() if data.get(f) is None},
        }

    return model_validator(mode="before")(classmethod(fill))
