"""Publication: the partitions of ml_scores that passed their blocking checks, for every reader.

``scoring.ml_scores`` keeps every scoring run's output, good or bad. A partition becomes visible
only when it is published: its rows are copied into ``scoring.published_scores`` and recorded in
``scoring.score_publications``, which tells every reader (the API, the dbt marts) the newest good
day. A later run of the same day that fails its checks is never published, so the copy readers
see stays the last good one.

On DuckDB, where the API cannot open the warehouse while the pipeline writes, publication also
writes a read-only snapshot under ``<data_dir>/published/``: one Parquet file per published
partition, then the publications record, each replaced atomically. Readers of the snapshot read
``publications.parquet`` first, so a partition's file is complete before it is listed.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from ma_pipeline.contracts.scores import SCORES
from ma_pipeline.warehouse import TableRef, Warehouse

ML_SCORES = TableRef("scoring", "ml_scores")
PUBLISHED_SCORES = TableRef("scoring", "published_scores", lookup=("siren",))
PUBLICATIONS = TableRef("scoring", "score_publications")
CONTACTS = TableRef("scoring", "kaspr_contacts", lookup=("siren",))
# Written by the training code: one row per registered model version, its alias and metrics.
MODEL_VERSIONS = TableRef("ml", "model_versions")

PUBLICATIONS_SCHEMA: dict[str, pl.DataType] = {
    "partition_date": pl.Date(),
    "published_at": pl.Datetime("us", "UTC"),
    "run_id": pl.String(),
    "companies": pl.Int64(),
    "scorer": pl.String(),
    **{f"model_version_{s}": pl.String() for s in SCORES},
}


@dataclass(frozen=True)
class SnapshotPaths:
    """Where the published snapshot lives, for the pipeline that writes it and the API."""

    root: Path

    @property
    def publications(self) -> Path:
        return self.root / "publications.parquet"

    def scores(self, day: date) -> Path:
        return self.root / "scores" / f"partition_date={day.isoformat()}" / "scores.parquet"

    @property
    def scores_glob(self) -> str:
        return str(self.root / "scores" / "*" / "scores.parquet")

    @property
    def model_versions(self) -> Path:
        return self.root / "model_versions.parquet"

    @property
    def contacts(self) -> Path:
        return self.root / "contacts.parquet"


def snapshot_paths(data_dir: str | Path) -> SnapshotPaths:
    return SnapshotPaths(Path(data_dir).resolve() / "published")


def publish(
    warehouse: Warehouse, day: date, run_id: str, snapshot: SnapshotPaths | None = None
) -> pl.DataFrame:
    """Publish the ``day`` partition of ml_scores; return its publication record."""
    scores = warehouse.read(ML_SCORES, start=day, end=day)
    if scores.is_empty():
        raise ValueError(f"{ML_SCORES} has no rows for {day}: nothing to publish")
    first = scores.row(0, named=True)
    record = pl.DataFrame(
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
    warehouse.replace_partitions(PUBLISHED_SCORES, scores, [day])
    warehouse.upsert(PUBLICATIONS, record, ["partition_date"])
    if snapshot is not None:
        # By SIREN: the row groups' statistics then let the API's history read skip most of a day.
        _write_atomically(scores.sort("siren"), snapshot.scores(day))
        _write_atomically(publications(warehouse), snapshot.publications)
    return record


def export_model_versions(warehouse: Warehouse, snapshot: SnapshotPaths) -> pl.DataFrame:
    """Copy ``ml.model_versions`` into the snapshot, where the API reads the champions in DuckDB
    mode; the training code calls it after each change to the registry."""
    versions = warehouse.read(MODEL_VERSIONS)
    _write_atomically(versions, snapshot.model_versions)
    return versions


def export_contacts(contacts: pl.DataFrame, snapshot: SnapshotPaths) -> None:
    """Replace the snapshot's contacts, which the API reads in DuckDB mode, with ``contacts``
    (every row of ``scoring.kaspr_contacts``); ``kaspr_contacts`` calls it after each write."""
    _write_atomically(contacts, snapshot.contacts)


def publications(warehouse: Warehouse) -> pl.DataFrame:
    """Every publication, newest partition first (empty before the first one)."""
    if not warehouse.columns(PUBLICATIONS):
        return pl.DataFrame(schema=PUBLICATIONS_SCHEMA)
    return warehouse.read(PUBLICATIONS).sort("partition_date", descending=True)


def latest_published(warehouse: Warehouse) -> date | None:
    """The newest published partition: the one every reader serves."""
    record = publications(warehouse)
    return None if record.is_empty() else record["partition_date"][0]


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    frame.write_parquet(partial)
    partial.replace(path)
