"""Mapping between polars dtypes and warehouse column types, shared by both backends.

Types are compared by *family* (integer, float, text, ...) rather than by exact name, so that a
frame whose integers come out as Int32 one day and Int64 the next still writes, while a text
value headed for a date column is refused before anything is deleted.
"""

import polars as pl

from ma_pipeline.warehouse.errors import SchemaMismatchError

# family -> (DuckDB type, PostgreSQL type) used when a table is created from a frame.
_SQL_TYPES: dict[str, tuple[str, str]] = {
    "boolean": ("BOOLEAN", "BOOLEAN"),
    "integer": ("BIGINT", "BIGINT"),
    "float": ("DOUBLE", "DOUBLE PRECISION"),
    "text": ("VARCHAR", "TEXT"),
    "date": ("DATE", "DATE"),
    "timestamp": ("TIMESTAMP", "TIMESTAMP"),
    "timestamptz": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
}


def dtype_family(dtype: pl.DataType) -> str:
    """The family of a polars dtype; lists are ``list<inner family>``."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "text"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if isinstance(dtype, pl.List):
        return f"list<{dtype_family(dtype.inner)}>"
    return f"unsupported:{dtype}"


def sql_family(data_type: str) -> str:
    """The family of a column type as ``information_schema.columns.data_type`` spells it.

    PostgreSQL reports arrays as ``ARRAY`` with the element in ``udt_name`` (``_text``); the
    PostgreSQL backend passes that element name as ``ARRAY:_text``.
    """
    t = data_type.strip().upper()
    if t.endswith("[]"):
        return f"list<{sql_family(t[:-2])}>"
    if t.startswith("ARRAY:_"):
        return f"list<{sql_family(_PG_UDT.get(t[7:].lower(), t[7:]))}>"
    if t in ("BOOLEAN", "BOOL"):
        return "boolean"
    if t in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "INT",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "INT2",
        "INT4",
        "INT8",
    ):
        return "integer"
    if t in ("REAL", "FLOAT", "DOUBLE", "DOUBLE PRECISION", "FLOAT4", "FLOAT8", "NUMERIC") or (
        t.startswith(("DECIMAL", "NUMERIC"))
    ):
        return "float"
    if t in ("VARCHAR", "TEXT", "CHARACTER VARYING", "STRING") or t.startswith("VARCHAR"):
        return "text"
    if t == "DATE":
        return "date"
    if t in ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"):
        return "timestamp"
    if t in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return "timestamptz"
    return f"other:{t.lower()}"


_PG_UDT = {
    "text": "TEXT",
    "int8": "BIGINT",
    "int4": "INTEGER",
    "float8": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "date": "DATE",
    "varchar": "TEXT",
}


def untyped(dtype: pl.DataType) -> bool:
    """Whether polars could not infer a type: all values null, or all lists empty."""
    return dtype == pl.Null or (isinstance(dtype, pl.List) and untyped(dtype.inner))


def sql_type(column: str, dtype: pl.DataType, dialect: str) -> str:
    """The SQL type to create ``column`` with; raises for dtypes the warehouse does not store."""
    family = dtype_family(dtype)
    index = 0 if dialect == "duckdb" else 1
    if family.startswith("list<"):
        inner = family[5:-1]
        if inner in _SQL_TYPES:
            return f"{_SQL_TYPES[inner][index]}[]"
    elif family in _SQL_TYPES:
        return _SQL_TYPES[family][index]
    if untyped(dtype):
        raise SchemaMismatchError(
            f"column '{column}' has no type (every value is null or empty); cast it to the"
            " intended dtype"
        )
    raise SchemaMismatchError(
        f"column '{column}' has dtype {dtype}, which the warehouse does not store"
    )


def compatible(frame_family: str, table_family: str) -> bool:
    """Whether values of ``frame_family`` can be written into a column of ``table_family``."""
    if frame_family == table_family:
        return True
    # Integers widen into floats without loss of meaning; nothing else converts silently.
    return frame_family == "integer" and table_family == "float"


_EXACT_DTYPES: dict[str, pl.DataType] = {
    "TINYINT": pl.Int8(),
    "SMALLINT": pl.Int16(),
    "INT2": pl.Int16(),
    "INTEGER": pl.Int32(),
    "INT": pl.Int32(),
    "INT4": pl.Int32(),
    "REAL": pl.Float32(),
    "FLOAT4": pl.Float32(),
    "FLOAT": pl.Float32(),
}
_FAMILY_DTYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "text": pl.String(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us"),
    "timestamptz": pl.Datetime("us", "UTC"),
}


def polars_dtype(data_type: str) -> pl.DataType:
    """The polars dtype that holds a column of SQL type ``data_type`` without loss."""
    exact = _EXACT_DTYPES.get(data_type.strip().upper())
    if exact is not None:
        return exact
    family = sql_family(data_type)
    if family.startswith("list<"):
        return pl.List(_FAMILY_DTYPES.get(family[5:-1], pl.String()))
    if family not in _FAMILY_DTYPES:
        raise SchemaMismatchError(f"the warehouse does not read columns of type {data_type}")
    return _FAMILY_DTYPES[family]
