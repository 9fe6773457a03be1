"""The API's settings, read from the environment (names and defaults: ma_pipeline.settings)."""

from dataclasses import dataclass
from pathlib import Path

from ma_pipeline import settings
from ma_pipeline.contracts import api_store
from ma_pipeline.contracts.snapshot import SnapshotPaths, snapshot_paths


@dataclass(frozen=True)
class ApiSettings:
    data_dir: Path
    warehouse_url: str = ""
    api_db_url: str = ""
    cors_origins: tuple[str, ...] = ()
    refresh_seconds: float = 5.0
    rate_per_second: float = 20.0
    rate_burst: float = 40.0
    key_cache_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> "ApiSettings":
        origins = settings.value("MA_API_CORS_ORIGINS")
        return cls(
            data_dir=Path(settings.value("MA_DATA_DIR")),
            warehouse_url=settings.value("MA_WAREHOUSE_URL"),
            api_db_url=settings.value("MA_API_DB_URL"),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            refresh_seconds=float(settings.value("MA_API_REFRESH_SECONDS")),
            rate_per_second=float(settings.value("MA_API_RATE_PER_SECOND")),
            rate_burst=float(settings.value("MA_API_RATE_BURST")),
            key_cache_seconds=float(settings.value("MA_API_KEY_CACHE_SECONDS")),
        )

    @property
    def on_postgres(self) -> bool:
        """PostgreSQL mode; otherwise the warehouse is DuckDB and the API reads its snapshot."""
        return api_store.on_postgres(self.warehouse_url)

    @property
    def snapshot(self) -> SnapshotPaths:
        return snapshot_paths(self.data_dir)

    @property
    def api_database(self) -> str:
        """Where API keys and score requests live: never the DuckDB warehouse, which the API
        must not write while the pipeline holds its lock."""
        return api_store.api_database(self.data_dir, self.warehouse_url, self.api_db_url)
