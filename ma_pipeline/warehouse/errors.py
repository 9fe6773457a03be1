"""Errors raised by the warehouse, each naming the table and the problem."""


class WarehouseError(Exception):
    """Base class for warehouse errors."""


class SchemaMismatchError(WarehouseError):
    """A frame does not fit the table it is written to (missing column, wrong type...)."""


class MissingTableError(WarehouseError):
    """A read asked for a table that has never been written."""
