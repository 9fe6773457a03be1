"""The API's settings: its environment variables (MA_API_*, MA_DATA_DIR, MA_WAREHOUSE_URL) read
by pydantic-settings when ``ApiSettings()`` is built, at start-up, not when this module loads."""

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ma_pipeline.contracts import api_store
from ma_pipeline.contracts.snapshot import SnapshotPaths, snapshot_paths


class ApiSettings(BaseSettings):
    """Each field reads the variable named by its alias; keyword (or positional ``data_dir``,
    ``warehouse_url``) arguments override the environment. Unset or empty: the default."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("data"), alias="MA_DATA_DIR")
    warehouse_url: str = Field(default="", alias="MA_WAREHOUSE_URL", repr=False)
    api_db_url: str = Field(default="", alias="MA_API_DB_URL", repr=False)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), alias="MA_API_CORS_ORIGINS", description="comma-separated"
    )
    refresh_seconds: float = Field(default=5.0, alias="MA_API_REFRESH_SECONDS")
    rate_per_second: float = Field(default=20.0, alias="MA_API_RATE_PER_SECOND")
    rate_burst: float = Field(default=40.0, alias="MA_API_RATE_BURST")
    key_cache_seconds: float = Field(default=10.0, alias="MA_API_KEY_CACHE_SECONDS")
    max_pending_requests: int = Field(default=100, alias="MA_API_MAX_PENDING_REQUESTS", ge=1)
    max_requests_per_day: int = Field(default=1000, alias="MA_API_MAX_REQUESTS_PER_DAY", ge=1)
    auth_failures_per_minute: int = Field(default=30, alias="MA_API_AUTH_FAILURES_PER_MINUTE", ge=1)
    redis_url: str = Field(default="", alias="MA_API_REDIS_URL", repr=False)
    rate_limit_prefix: str = Field(default="ma_api", alias="MA_API_RATE_LIMIT_PREFIX")

    def __init__(
        self, data_dir: Path | str | None = None, warehouse_url: str | None = None, **values: Any
    ) -> None:
        given = {"data_dir": data_dir, "warehouse_url": warehouse_url, **values}
        fields = type(self).model_fields
        super().__init__(**{fields[k].alias or k: v for k, v in given.items() if v is not None})

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, origins: Any) -> Any:
        if isinstance(origins, str):
            return tuple(o.strip() for o in origins.split(",") if o.strip())
        return origins

    @property
    def on_postgres(self) -> bool:
        """PostgreSQL mode; otherwise the warehouse is DuckDB and the API reads its snapshot."""
        return api_store.on_postgres(self.warehouse_url)

    @property
    def snapshot(self) -> SnapshotPaths:
        return snapshot_paths(self.data_dir)

    @property
    def partition_files(self) -> Path:
        """Where the workers share the published partitions they serve (``Served``)."""
        return self.data_dir / "serving"

    @property
    def api_database(self) -> str:
        """Where API keys and score requests live: never the DuckDB warehouse, which the API
        must not write while the pipeline holds its lock."""
        return api_store.api_database(self.data_dir, self.warehouse_url, self.api_db_url)
