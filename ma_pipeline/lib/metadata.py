"""Dagster metadata built from polars frames."""

from collections.abc import Mapping

import dagster as dg
import polars as pl


def declared_schema(
    schema: Mapping[str, pl.DataType], descriptions: Mapping[str, str]
) -> dg.TableSchema:
    """An asset's declared columns: each with its type and description. A column without a
    description fails when the definitions load, so the UI never shows one undescribed."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions[name])
            for name, dtype in schema.items()
        ]
    )


def column_schema(frame: pl.DataFrame, described: dg.TableSchema | None = None) -> dg.TableSchema:
    """The frame's columns and dtypes, shown by the UI as the table's schema; descriptions and
    constraints come from ``described`` (an asset's declared schema) where it names the column."""
    declared = {c.name: c for c in described.columns} if described else {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(dtype),
                description=declared[name].description if name in declared else None,
                constraints=declared[name].constraints if name in declared else None,
            )
            for name, dtype in frame.schema.items()
        ]
    )


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MarkdownMetadataValue:
    """The first ``rows`` rows as a Markdown table."""
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=rows,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=60,
    ):
        return dg.MetadataValue.md(str(frame.head(rows)))
