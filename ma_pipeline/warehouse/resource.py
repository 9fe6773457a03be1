"""The warehouse as a Dagster resource: which backend, from one URL."""

from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from ma_pipeline.settings import LaunchSettings
from ma_pipeline.warehouse.base import Warehouse
from ma_pipeline.warehouse.duckdb_backend import DuckDBWarehouse
from ma_pipeline.warehouse.postgres_backend import PostgresWarehouse, redact


def connect_warehouse(url: str, data_dir: str | Path) -> Warehouse:
    """The warehouse behind ``url``: empty for ``<data_dir>/warehouse.duckdb``,
    ``duckdb:///<path>`` for another DuckDB file, ``postgresql://...`` for PostgreSQL."""
    if not url:
        return DuckDBWarehouse(Path(data_dir).resolve() / "warehouse.duckdb")
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if scheme == "duckdb":
        return DuckDBWarehouse(Path(url.removeprefix("duckdb:///")).resolve())
    if scheme in ("postgresql", "postgres"):
        return PostgresWarehouse(url)
    raise ValueError(
        f"MA_WAREHOUSE_URL {redact(url)!r}: unsupported scheme {scheme!r}; use postgresql://...,"
        " duckdb:///<path>, or leave it unset for the DuckDB file under MA_DATA_DIR"
    )


class WarehouseResource(LaunchSettings):
    """Where every table of the pipeline lives (MA_WAREHOUSE_URL)."""

    from_settings: ClassVar[dict[str, str]] = {"url": "MA_WAREHOUSE_URL", "data_dir": "MA_DATA_DIR"}

    url: str | None = Field(
        default="",
        repr=False,
        description="Empty: the DuckDB file <data_dir>/warehouse.duckdb; or duckdb:///<path>;"
        " or postgresql://user:password@host:port/db; None: MA_WAREHOUSE_URL at launch",
    )
    data_dir: str | None = Field(
        default="data", description="Home of the DuckDB file; None: MA_DATA_DIR at launch"
    )

    def backend(self) -> Warehouse:
        return connect_warehouse(self.url, self.data_dir)
