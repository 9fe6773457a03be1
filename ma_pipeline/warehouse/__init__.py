"""The warehouse: tables per asset on DuckDB or PostgreSQL, with one partition contract."""

from ma_pipeline.contracts.tables import PARTITION_COLUMN, TableRef
from ma_pipeline.warehouse.base import Warehouse, WriteReport
from ma_pipeline.warehouse.errors import MissingTableError, SchemaMismatchError, WarehouseError
from ma_pipeline.warehouse.io_manager import WarehouseIOManager, WarehouseViewIOManager, table_for
from ma_pipeline.warehouse.resource import WarehouseResource, connect_warehouse

# Dagster pool shared by every step that opens the warehouse: DuckDB allows one writing process,
# so the local instance limits this pool to 1 (deploy/dagster.local.yaml).
WAREHOUSE_POOL = "warehouse"

__all__ = [
    "PARTITION_COLUMN",
    "WAREHOUSE_POOL",
    "MissingTableError",
    "SchemaMismatchError",
    "TableRef",
    "Warehouse",
    "WarehouseError",
    "WarehouseIOManager",
    "WarehouseResource",
    "WarehouseViewIOManager",
    "WriteReport",
    "connect_warehouse",
    "table_for",
]
