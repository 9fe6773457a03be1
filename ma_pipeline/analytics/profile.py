"""Where dbt builds the marts: its target and connection, derived from the warehouse's URL.

``dbt_project/profiles.yml`` reads only the variables named here, and only this module sets them,
from the ``connect_warehouse(url, data_dir)`` the pipeline itself writes through: the DuckDB
target attaches exactly the pipeline's file, the PostgreSQL one the same server and database.
"""

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline.warehouse.duckdb_backend import DuckDBWarehouse

TARGET = "MA_DBT_TARGET"  # the profile's output: duckdb or postgres
DUCKDB_PATH = "MA_DBT_DUCKDB_PATH"
PG_HOST = "MA_DBT_PG_HOST"
PG_PORT = "MA_DBT_PG_PORT"
PG_USER = "MA_DBT_PG_USER"
PG_PASSWORD = "DBT_ENV_SECRET_MA_PG_PASSWORD"  # dbt scrubs DBT_ENV_SECRET_* from its logs
PG_DBNAME = "MA_DBT_PG_DBNAME"
PG_SSLMODE = "MA_DBT_PG_SSLMODE"
VARIABLES = (TARGET, DUCKDB_PATH, PG_HOST, PG_PORT, PG_USER, PG_PASSWORD, PG_DBNAME, PG_SSLMODE)


def dbt_env(url: str, data_dir: str | Path) -> dict[str, str]:
    """The profile variables for the warehouse at ``url`` (MA_WAREHOUSE_URL: empty for the DuckDB
    file under ``data_dir``, ``duckdb:///<path>`` or ``postgresql://...``)."""
    warehouse = connect_warehouse(url, data_dir)
    if isinstance(warehouse, DuckDBWarehouse):
        return {TARGET: "duckdb", DUCKDB_PATH: str(warehouse.path)}
    parts = urlsplit(warehouse.url)
    options = parse_qs(parts.query)
    unsupported = sorted(set(options) - {"sslmode"})
    if unsupported:
        raise ValueError(
            f"MA_WAREHOUSE_URL: the dbt marts support only the sslmode option of a PostgreSQL"
            f" URL, not {', '.join(unsupported)}"
        )
    user = unquote(parts.username) if parts.username else getpass.getuser()
    env = {
        TARGET: "postgres",
        PG_HOST: parts.hostname or "localhost",
        PG_PORT: str(parts.port or 5432),
        PG_USER: user,
        PG_PASSWORD: unquote(parts.password or ""),
        PG_DBNAME: unquote(parts.path.lstrip("/")) or user,  # libpq's defaults
    }
    if "sslmode" in options:
        env[PG_SSLMODE] = options["sslmode"][-1]
    return env


@contextmanager
def dbt_environment(url: str, data_dir: str | Path) -> Iterator[dict[str, str]]:
    """The process environment as dbt must see it, for the block: ``dbt_env``'s variables set,
    the profile's other variables unset (none can leak in from the shell).

    ``DbtCliResource.cli`` gives the dbt process a copy of ``os.environ`` and takes no environment
    of its own, so the variables go there for the time it takes to start dbt, then are restored.
    """
    values = dbt_env(url, data_dir)
    saved = {name: os.environ.pop(name, None) for name in VARIABLES}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
