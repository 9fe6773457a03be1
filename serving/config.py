"""The API's settings: its environment variables (MA_API_*, MA_DATA_DIR, MA_WAREHOUSE_URL) read
by pydantic-settings when ``ApiSettings()`` is built, at start-up, not when this module loads."""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ma_pipeline.scoring.publication import SnapshotPaths, snapshot_paths


def sqlalchemy_url(url: str) -> str:
    """Name the psycopg 3 driver in ``postgresql://`` URLs (SQLAlchemy defaults to psycopg2)."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


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

    @classmethod
    def from_env(cls) -> "ApiSettings":
        """The environment now (same as ``ApiSettings()``)."""
        return cls()

    @property
    def on_postgres(self) -> bool:
        """PostgreSQL mode; otherwise the warehouse is DuckDB and the API reads its snapshot."""
        return urlsplit(self.warehouse_url).scheme.split("+", 1)[0] in ("postgresql", "postgres")

    @property
    def snapshot(self) -> SnapshotPaths:
        return snapshot_paths(self.data_dir)

    @property
    def api_database(self) -> str:
        """Where API keys and score requests live: never the DuckDB warehouse, which the API
        must not write while the pipeline holds its lock."""
        if self.api_db_url:
            return sqlalchemy_url(self.api_db_url)
        if self.on_postgres:
            return sqlalchemy_url(self.warehouse_url)
        return f"sqlite:///{self.data_dir.resolve() / 'api.sqlite'}"
