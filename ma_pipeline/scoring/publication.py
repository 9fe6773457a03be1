"""Publication: everything the API and the marts read, written together by one step.

``scoring.ml_scores`` keeps every scoring run's output, good or bad. A day becomes visible only
when the ``publication`` step copies it, after its blocking checks passed, into the ``serving``
schema: its scores, the model versions of the registry and the day's Kaspr contacts, then its
record in ``serving.score_publications``, which tells every reader the newest good day. A later
run of the same day that fails its checks is never published, so readers keep the last good copy.

On DuckDB, where the API cannot open the warehouse while the pipeline writes, publication also
writes the read-only snapshot (``contracts.snapshot``): the scores' versions first (as
published_scores stores them: by change, so the file grows with what changed, not with days),
then the model versions, the contacts and the publications record, each replaced atomically, so
a day's scores are complete before it is listed.
"""

import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.scores import (
    CONTACTS_DESCRIPTIONS,
    CONTACTS_SCHEMA,
    MODEL_VERSIONS_DESCRIPTIONS,
    MODEL_VERSIONS_SCHEMA,
    PUBLICATIONS_DESCRIPTIONS,
    PUBLICATIONS_SCHEMA,
    SCORES,
)
from ma_pipeline.contracts.snapshot import SnapshotPaths, snapshot_paths
from ma_pipeline.contracts.tables import VALID_FROM
from ma_pipeline.lib import owners
from ma_pipeline.lib.checks import passed_partitions
from ma_pipeline.lib.metadata import declared_schema, preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.assets import BLOCKING_CHECKS, COLUMN_SCHEMA
from ma_pipeline.warehouse import (
    PARTITION_COLUMN,
    WAREHOUSE_POOL,
    Warehouse,
    WarehouseResource,
    changes,
)
from ma_pipeline.warehouse.duckdb_backend import DuckDBWarehouse

GROUP = "serving"
PERSONAL_DATA_COMMENT = (
    "PERSONAL DATA (names, work e-mails, phones of dirigeants): never copy into a mart;"
    " served only to API keys with the contacts:read scope."
)


def publication_record(scores: pl.DataFrame, day: date, run_id: str) -> pl.DataFrame:
    """The publications row of ``day``: when, by which run, how many companies, which models."""
    if scores.is_empty():
        raise ValueError(f"{tables.ML_SCORES} has no rows for {day}: nothing to publish")
    first = scores.row(0, named=True)
    return pl.DataFrame(
        [
            {
                "partition_date": day,
                "published_at": datetime.now(UTC),
                "run_id": run_id,
                "companies": scores.height,
                "scorer": first["scorer"],
                **{f"model_version_{s}": first[f"model_version_{s}"] for s in SCORES},
            }
        ],
        schema=PUBLICATIONS_SCHEMA,
    )


def _read_as(
    warehouse: Warehouse, table: tables.TableRef, schema: dict[str, pl.DataType], **where: date
) -> pl.DataFrame:
    """Rows of ``table`` in the published ``schema``: its columns, null where the table has none
    (a table written before a column was added), empty before the table exists."""
    if not warehouse.columns(table):
        return pl.DataFrame(schema=schema)
    rows = warehouse.read(table, **where)
    return rows.select(
        pl.col(c).cast(t) if c in rows.columns else pl.lit(None, t).alias(c)
        for c, t in schema.items()
    )


def stamped(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    return frame.select(pl.lit(day).alias(PARTITION_COLUMN), pl.exclude(PARTITION_COLUMN))


def publish(
    warehouse: Warehouse, day: date, run_id: str, snapshot: SnapshotPaths | None = None
) -> pl.DataFrame:
    """Publish the ``day`` partition of ml_scores with the current model versions and the day's
    contacts, outside Dagster (the quick start's summary and tests); return its record."""
    frames = publication_frames(warehouse, day, run_id)
    for table, frame in frames.items():
        warehouse.replace_partitions(table, frame, [day])
    if snapshot is not None:
        write_snapshot(warehouse, snapshot)
    return frames[tables.SCORE_PUBLICATIONS]


def publication_frames(
    warehouse: Warehouse, day: date, run_id: str
) -> dict[tables.TableRef, pl.DataFrame]:
    """The rows each published table gets for ``day``, the publications record last."""
    scores = warehouse.read(tables.ML_SCORES, start=day, end=day)
    versions = _read_as(warehouse, tables.MODEL_VERSIONS, MODEL_VERSIONS_SCHEMA)
    contacts = _read_as(warehouse, tables.KASPR_CONTACTS, CONTACTS_SCHEMA, start=day, end=day)
    return {
        tables.PUBLISHED_SCORES: scores,
        tables.PUBLISHED_MODEL_VERSIONS: stamped(versions, day),
        tables.PUBLISHED_CONTACTS: contacts,
        tables.SCORE_PUBLICATIONS: publication_record(scores, day, run_id),
    }


def write_snapshot(warehouse: Warehouse, snapshot: SnapshotPaths) -> None:
    """The API's read-only copy of what is published: the scores' versions, then the newest
    model versions, every published contact, and the publications record."""
    write_score_versions(warehouse, snapshot)
    newest = latest_published(warehouse)
    versions = warehouse.read(tables.PUBLISHED_MODEL_VERSIONS, start=newest, end=newest)
    _write_atomically(versions.drop(PARTITION_COLUMN), snapshot.model_versions)
    _write_atomically(warehouse.read(tables.PUBLISHED_CONTACTS), snapshot.contacts)
    _write_atomically(publications(warehouse), snapshot.publications)


def write_score_versions(warehouse: Warehouse, snapshot: SnapshotPaths) -> None:
    """published_scores' versions, copied by the database itself, sorted by SIREN (the row
    groups' statistics then let the API's history read skip most of the file)."""
    if not isinstance(warehouse, DuckDBWarehouse):
        raise TypeError(f"the published snapshot is written from DuckDB, not {warehouse!r}")
    path = snapshot.score_versions
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    warehouse.to_parquet(
        tables.PUBLISHED_SCORES.versions,
        partial,
        order_by=("siren", VALID_FROM),
        exclude=(changes.ROW_HASH,),  # the warehouse's own bookkeeping
    )
    partial.replace(path)
    shutil.rmtree(snapshot.score_days, ignore_errors=True)  # superseded by the versions


def publications(warehouse: Warehouse) -> pl.DataFrame:
    """Every publication, newest partition first (empty before the first one)."""
    if not warehouse.columns(tables.SCORE_PUBLICATIONS):
        return pl.DataFrame(schema=PUBLICATIONS_SCHEMA)
    return warehouse.read(tables.SCORE_PUBLICATIONS).sort("partition_date", descending=True)


def latest_published(warehouse: Warehouse) -> date | None:
    """The newest published partition: the one every reader serves."""
    record = publications(warehouse)
    return None if record.is_empty() else record["partition_date"][0]


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    frame.write_parquet(partial)
    partial.replace(path)


_OUTPUTS = {
    tables.PUBLISHED_SCORES: "The checked ml_scores partitions, as every reader serves them.",
    tables.PUBLISHED_MODEL_VERSIONS: "The registry's model versions (champion, challenger) when"
    " the day was published: the API's model list.",
    tables.PUBLISHED_CONTACTS: "PERSONAL DATA. The day's kaspr_contacts, served only to API keys"
    " with the contacts:read scope.",
    tables.SCORE_PUBLICATIONS: "One row per published day (when, by which run, how many"
    " companies, which models): written last, it is what makes the day visible.",
}
_COLUMNS = {
    tables.PUBLISHED_SCORES: COLUMN_SCHEMA,
    tables.PUBLISHED_MODEL_VERSIONS: declared_schema(
        {PARTITION_COLUMN: pl.Date(), **MODEL_VERSIONS_SCHEMA}, MODEL_VERSIONS_DESCRIPTIONS
    ),
    tables.PUBLISHED_CONTACTS: declared_schema(CONTACTS_SCHEMA, CONTACTS_DESCRIPTIONS),
    tables.SCORE_PUBLICATIONS: declared_schema(PUBLICATIONS_SCHEMA, PUBLICATIONS_DESCRIPTIONS),
}


@dg.multi_asset(
    outs={
        table.name: dg.AssetOut(
            key=keys.key(table),
            description=description,
            kinds={"polars"},
            owners=owners.DATA,
            code_version=source_version(sys.modules[__name__]),
            tags={"ma/personal_data": "true"} if table == tables.PUBLISHED_CONTACTS else None,
            metadata={"dagster/column_schema": _COLUMNS[table]},
        )
        for table, description in _OUTPUTS.items()
    },
    deps=[keys.ML_SCORES, keys.MODEL_VERSIONS, keys.KASPR_CONTACTS],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    pool=WAREHOUSE_POOL,
)
def publication(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.Output[pl.DataFrame]]:
    """Publish the run's days whose latest ml_scores materialization passed every blocking
    check; refuse the whole run otherwise (the case of a UI user materializing it alone after a
    failed run). The newest published day is the served date."""
    days = sorted(context.partition_keys)
    passed = passed_partitions(context.instance, BLOCKING_CHECKS, days)
    unchecked = [day for day in days if day not in passed]
    if unchecked:
        raise dg.Failure(
            description="not published: these ml_scores partitions have not passed their"
            f" blocking checks on their latest materialization: {unchecked}",
            allow_retries=False,
        )
    backend = warehouse.backend()
    by_table: dict[tables.TableRef, list[pl.DataFrame]] = {table: [] for table in _OUTPUTS}
    for day in days:
        for table, frame in publication_frames(
            backend, date.fromisoformat(day), context.run.run_id
        ).items():
            by_table[table].append(frame)
    served = max(date.fromisoformat(days[-1]), latest_published(backend) or date.min)
    records = pl.concat(by_table[tables.SCORE_PUBLICATIONS])
    for table in _OUTPUTS:  # the publications record last: it makes the days visible
        metadata = {"served_date": str(served)} if table == tables.PUBLISHED_SCORES else {}
        if table == tables.SCORE_PUBLICATIONS:
            metadata["publications"] = preview(records, records.height)
        yield dg.Output(pl.concat(by_table[table]), output_name=table.name, metadata=metadata)
    backend.execute(
        f"COMMENT ON TABLE {tables.PUBLISHED_CONTACTS.sql} IS '{PERSONAL_DATA_COMMENT}'"
    )
    if backend.dialect == "duckdb":
        snapshot = snapshot_paths(warehouse.data_dir)
        write_snapshot(backend, snapshot)
        context.log.info(f"snapshot for the API written under {snapshot.root}")
    context.log.info(f"published {', '.join(days)}; readers now serve {served}")
