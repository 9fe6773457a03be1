"""Published scores as the API reads them: two stores behind one interface, and the newest
published partition served from a file the workers share.

DuckDB mode reads the Parquet snapshot under ``$MA_DATA_DIR/published/`` and never opens the
warehouse file, whose lock the pipeline holds while it writes; PostgreSQL mode reads
``serving.published_scores`` through SQLAlchemy, joined to ``serving.score_publications``. Either
way only partitions listed in the publications record are served.

Scores change once a day, so ``Served`` serves the newest published partition from its partition
file (``serving.partition_file``: written once by the first worker that needs it, mapped by every
worker), checks the publications record every few seconds (never per request) and swaps in a
newer partition with one assignment: a request sees the old partition or the new one, never a mix.
"""

import fcntl
import functools
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import anyio
import cachetools
import orjson
import polars as pl
import psycopg
import pyarrow.parquet as pq
import sqlalchemy as sa

from ma_pipeline.contracts.api_store import sqlalchemy_url
from ma_pipeline.contracts.scores import SCORES, reason_columns
from ma_pipeline.contracts.snapshot import SnapshotPaths
from ma_pipeline.contracts.tables import (
    PARTITION_COLUMN,
    PUBLISHED_CONTACTS,
    PUBLISHED_MODEL_VERSIONS,
    PUBLISHED_SCORES,
    SCORE_PUBLICATIONS,
    VALID_FROM,
    VALID_TO,
    TableRef,
)
from ma_pipeline.warehouse import connect_warehouse
from serving.config import ApiSettings
from serving.partition_file import (
    FILE_FORMAT,
    LIST_COLUMNS,
    SCORE_COLUMNS,
    PartitionFile,
    remove_stale,
    write_partition_file,
)

log = logging.getLogger(__name__)

BLOCK_ROWS = 100_000  # rows of a partition read and rendered at a time into its file
HISTORY_COLUMNS = (
    "partition_date",
    *SCORE_COLUMNS,
    "confidence",
    "scorer",
    *(f"model_version_{s}" for s in SCORES),
    *(column for s in SCORES for column in reason_columns(s)),
)
CONTACT_COLUMNS = (
    "partition_date",
    "nom",
    "prenom",
    "qualite",
    "linkedin_slug",
    "work_email",
    "phone",
    "status",
    "fetched_at",
)
PUBLICATION_COLUMNS = ("partition_date", "published_at")
MODEL_COLUMNS = (
    "score",
    "model_name",
    "version",
    "run_id",
    "created_at",
    "metrics_json",
    "decision",
)


class Publication(NamedTuple):
    day: date
    published_at: datetime


class NotPublished(LookupError):
    """A date that no publication lists."""


class PublishedStore(Protocol):
    """Where the published tables are read from."""

    def publications(self) -> list[Publication]:
        """Every publication, newest partition first (empty before the first one)."""

    def blocks(self, day: date, rows: int) -> Iterator[pl.DataFrame]:
        """Every row of a published partition, in blocks of at most ``rows`` in SIREN order;
        the first block is yielded even when empty."""

    def history(self, siren: str, start: date, end: date) -> list[dict[str, Any]]:
        """``HISTORY_COLUMNS`` of one company in the published partitions of [start, end]."""

    def champions(self) -> list[dict[str, Any]]:
        """``MODEL_COLUMNS`` of the champion model versions (empty until training writes them)."""

    def contacts(self, siren: str) -> list[dict[str, Any]]:
        """``CONTACT_COLUMNS`` of the company's latest contact fetch (empty if none)."""

    def check(self) -> None:
        """Raise, saying why, when the store cannot be read."""

    def close(self) -> None: ...


class SnapshotStore:
    """The Parquet snapshot that ``publish`` writes on DuckDB."""

    def __init__(self, paths: SnapshotPaths) -> None:
        self.paths = paths

    def publications(self) -> list[Publication]:
        if not self.paths.publications.exists():
            return []
        frame = pl.read_parquet(self.paths.publications, columns=list(PUBLICATION_COLUMNS))
        return [Publication(*row) for row in frame.sort("partition_date", descending=True).rows()]

    def blocks(self, day: date, rows: int) -> Iterator[pl.DataFrame]:
        # publish writes the versions sorted by SIREN: the day's rows come out in SIREN order.
        parquet = pq.ParquetFile(self.paths.score_versions)
        yield _on_day(pl.from_arrow(parquet.schema_arrow.empty_table()), day)  # type: ignore[arg-type]
        for batch in parquet.iter_batches(batch_size=rows):
            yield _on_day(pl.from_arrow(batch), day)  # type: ignore[arg-type]

    def history(self, siren: str, start: date, end: date) -> list[dict[str, Any]]:
        # Only listed days: a day's scores are complete before the record lists it.
        days = [p.day for p in self.publications() if start <= p.day <= end]
        if not days:
            return []
        # The company's few versions, read once (row-group statistics skip the rest of the
        # file), then expanded over the listed days.
        versions = (
            pl.scan_parquet(self.paths.score_versions).filter(pl.col("siren") == siren).collect()
        )
        return (
            pl.concat([_on_day(versions, day) for day in days])
            .select(HISTORY_COLUMNS)
            .sort("partition_date")
            .to_dicts()
        )

    def champions(self) -> list[dict[str, Any]]:
        if not self.paths.model_versions.exists():
            return []
        return (
            pl.scan_parquet(self.paths.model_versions)
            .filter(pl.col("alias") == "champion")
            .select(MODEL_COLUMNS)
            .sort("score")
            .collect()
            .to_dicts()
        )

    def contacts(self, siren: str) -> list[dict[str, Any]]:
        if not self.paths.contacts.exists():
            return []
        return (
            pl.scan_parquet(self.paths.contacts)
            .filter(pl.col("siren") == siren)
            .filter(pl.col("partition_date") == pl.col("partition_date").max())
            .select(CONTACT_COLUMNS)
            .sort("nom")
            .collect()
            .to_dicts()
        )

    def check(self) -> None:
        if self.paths.publications.exists():
            pl.read_parquet_schema(self.paths.publications)

    def close(self) -> None:
        """Nothing to release: every read opens and closes its files."""


def _on_day(versions: pl.DataFrame, day: date) -> pl.DataFrame:
    """The rows of the snapshot's score versions valid on ``day``, as that day's rows."""
    valid = (pl.col(VALID_FROM) <= day) & (pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) > day))
    return versions.filter(valid).select(
        pl.lit(day).alias(PARTITION_COLUMN), pl.exclude(PARTITION_COLUMN, VALID_FROM, VALID_TO)
    )


def _table(ref: TableRef, columns: Iterable[str]) -> sa.TableClause:
    return sa.table(ref.name, *(sa.column(c) for c in columns), schema=ref.schema)


class PostgresStore:
    """The published tables of the PostgreSQL warehouse, read through SQLAlchemy."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_size=8, pool_pre_ping=True)
        # Whole partitions are loaded through the warehouse's own reader (ADBC, Arrow): for 1M
        # rows x 63 columns it took 15 s here against 38 s and ~10 GB of Python rows for
        # polars.read_database over SQLAlchemy, and it yields the snapshot's exact dtypes.
        self.warehouse = connect_warehouse(url, data_dir)

    def publications(self) -> list[Publication]:
        table = _table(SCORE_PUBLICATIONS, PUBLICATION_COLUMNS)
        rows = self._rows(sa.select(*table.c).order_by(table.c.partition_date.desc()))
        return [Publication(*row.values()) for row in rows]

    def blocks(self, day: date, rows: int) -> Iterator[pl.DataFrame]:
        sql = (
            f"SELECT * FROM {PUBLISHED_SCORES.sql} WHERE partition_date = $1 AND siren > $2"
            " ORDER BY siren LIMIT $3"
        )
        last = ""
        while True:
            block = self.warehouse.query(sql, [day, last, rows])
            yield block
            if block.height < rows:
                return
            last = block["siren"][-1]

    def history(self, siren: str, start: date, end: date) -> list[dict[str, Any]]:
        scores = _table(PUBLISHED_SCORES, ("siren", *HISTORY_COLUMNS))
        published = _table(SCORE_PUBLICATIONS, ["partition_date"])
        return self._rows(
            sa.select(*(scores.c[c] for c in HISTORY_COLUMNS))
            .select_from(
                scores.join(published, published.c.partition_date == scores.c.partition_date)
            )
            .where(scores.c.siren == siren, scores.c.partition_date.between(start, end))
            .order_by(scores.c.partition_date)
        )

    def champions(self) -> list[dict[str, Any]]:
        versions = _table(PUBLISHED_MODEL_VERSIONS, ("partition_date", "alias", *MODEL_COLUMNS))
        newest = sa.select(sa.func.max(versions.c.partition_date)).scalar_subquery()
        return self._rows(
            sa.select(*(versions.c[c] for c in MODEL_COLUMNS))
            .where(versions.c.alias == "champion", versions.c.partition_date == newest)
            .order_by(versions.c.score)
        )

    def contacts(self, siren: str) -> list[dict[str, Any]]:
        contacts = _table(PUBLISHED_CONTACTS, ("siren", *CONTACT_COLUMNS))
        latest = (
            sa.select(sa.func.max(contacts.c.partition_date))
            .where(contacts.c.siren == siren)
            .scalar_subquery()
        )
        return self._rows(
            sa.select(*(contacts.c[c] for c in CONTACT_COLUMNS))
            .where(contacts.c.siren == siren, contacts.c.partition_date == latest)
            .order_by(contacts.c.nom)
        )

    def check(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, statement: sa.Select[Any]) -> list[dict[str, Any]]:
        """The statement's rows; none while its table has not been written yet."""
        try:
            with self.engine.connect() as conn:
                return [dict(row) for row in conn.execute(statement).mappings()]
        except sa.exc.ProgrammingError as exc:
            if isinstance(exc.orig, psycopg.errors.UndefinedTable):
                return []
            raise


def open_store(settings: ApiSettings) -> PublishedStore:
    if settings.on_postgres:
        return PostgresStore(settings.warehouse_url, settings.data_dir)
    return SnapshotStore(settings.snapshot)


@dataclass(frozen=True)
class Partition:
    """One published partition, served from its partition file: the list columns as a polars
    frame over the file's mapped pages, each company's answer by SIREN."""

    publication: Publication
    file: PartitionFile

    @property
    def frame(self) -> pl.DataFrame:
        return self.file.frame

    @property
    def day(self) -> date:
        return self.publication.day

    def company(self, siren: str) -> bytes | None:
        """The company's answer (JSON), or None when it is not in the partition."""
        return self.file.answer(siren)

    def reasons(self, siren: str, score: str) -> list[dict[str, Any]]:
        """The company's top reasons for ``score``, from its answer (none when not here)."""
        answer = self.company(siren)
        return [] if answer is None else orjson.loads(answer)["scores"][score]["reasons"]

    def page(
        self, sort: str, where: list[pl.Expr], after: tuple[float, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows by ``sort`` descending then SIREN, after the keyset ``after``."""
        conditions = [pl.col(sort).is_not_null(), *where]
        if after is not None:
            score, siren = after
            conditions.append(
                (pl.col(sort) < score) | ((pl.col(sort) == score) & (pl.col("siren") > siren))
            )
        return (
            self.frame.lazy()
            .filter(*conditions)
            .sort([sort, "siren"], descending=[True, False])
            .head(limit)
            .select(LIST_COLUMNS)
            .collect()
            .to_dicts()
        )

    @functools.cached_property
    def sectors(self) -> list[dict[str, Any]]:
        """Per NAF division: companies, mean and p90 of score_ma, share of score_ma >= 75."""
        return self._sectors("naf_division")

    @functools.cached_property
    def sectors_by_region(self) -> list[dict[str, Any]]:
        """The same per NAF division and région."""
        return self._sectors("naf_division", "region")

    def _sectors(self, *by: str) -> list[dict[str, Any]]:
        return (
            self.frame.group_by(by)
            .agg(
                companies=pl.len(),
                mean_score_ma=pl.col("score_ma").mean(),
                p90_score_ma=pl.col("score_ma").quantile(0.9, interpolation="linear"),
                share_score_ma_75=(pl.col("score_ma") >= 75).mean(),
            )
            .sort(by, nulls_last=True)
            .to_dicts()
        )


@dataclass(frozen=True)
class View:
    """What the API serves at one moment: the publications and the newest partition."""

    publications: tuple[Publication, ...] = ()
    latest: Partition | None = None

    def publication(self, day: date) -> Publication:
        for publication in self.publications:
            if publication.day == day:
                return publication
        raise NotPublished(f"no published scores for {day}")

    def before(self, day: date) -> date | None:
        """The newest published day before ``day``, if any."""
        return next((p.day for p in self.publications if p.day < day), None)


def file_name(publication: Publication) -> str:
    """A publication's partition file: a re-publication of a day is a new file."""
    stamp = f"{publication.published_at:%Y%m%dT%H%M%S%f}"
    return f"scores_{publication.day}_{stamp}_v{FILE_FORMAT}.arrow"


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """The directory's lock, across the workers (and servers) that share it."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Served:
    """The newest published partition, refreshed when a newer publication appears; partitions
    are served from the files under ``directory``, shared by every worker that names it."""

    def __init__(self, store: PublishedStore, directory: Path, other_partitions: int = 2) -> None:
        self.store = store
        self.directory = directory
        self.kept_files = other_partitions + 1
        self.view = View()
        # Partitions asked for by date= stay cached too (the least recently used leaves); a
        # re-publication changes the key. The condition makes it a single flight: requests for
        # a publication being loaded wait for that load rather than start their own.
        loading = threading.Condition()
        self._load = cachetools.cached(
            cachetools.LRUCache(maxsize=other_partitions), lock=loading, condition=loading
        )(self._load_partition)

    def refresh(self) -> None:
        """Read the publications record; load its newest partition unless already served."""
        publications = tuple(self.store.publications())
        latest = self.view.latest
        if publications and (latest is None or latest.publication != publications[0]):
            latest = self._load_partition(publications[0])
            log.info(
                "serving a new partition",
                extra={"partition_date": latest.day.isoformat(), "companies": latest.frame.height},
            )
        self.view = View(publications, latest)  # one assignment: the switch is atomic

    async def keep_fresh(self, interval_s: float) -> None:
        """Refresh every ``interval_s`` seconds in a worker thread, so loading never blocks
        requests; a failed refresh keeps serving what was there."""
        while True:
            await anyio.sleep(interval_s)
            try:
                await anyio.to_thread.run_sync(self.refresh)
            except Exception:
                log.exception("refreshing the published partition failed")

    def partition(self, day: date | None) -> Partition:
        """The partition of ``day`` (default: the newest); blocking when it is not mapped yet."""
        view = self.view
        if view.latest is None:
            raise NotPublished("no partition has been published yet")
        if day is None or day == view.latest.day:
            return view.latest
        return self._load(view.publication(day))

    def _load_partition(self, publication: Publication) -> Partition:
        """The publication's partition file, written first if no worker has written it yet; the
        files kept then are this one and those of the newest publications (as many as a worker
        caches), so the directory holds a few partitions, not every day ever served."""
        path = self.directory / file_name(publication)
        with _locked(self.directory):
            if not path.exists():
                rows = write_partition_file(self.store.blocks(publication.day, BLOCK_ROWS), path)
                log.info(
                    "partition file written",
                    extra={"partition_date": publication.day.isoformat(), "companies": rows},
                )
                newest = self.store.publications()[: self.kept_files]
                remove_stale(self.directory, {path.name, *map(file_name, newest)})
            return Partition(publication, PartitionFile(path))
