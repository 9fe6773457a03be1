"""Score requests: the API records them, the pipeline scores them.

``POST /v1/score-requests`` only records a pending request in the API's database: the API never
runs a model. ``score_requests_sensor`` hands the pending requests, a batch at a time, to
``score_requests_job``, whose op scores each SIREN as the nightly run scores a company (Pappers
cache first, ``compute_features`` as of today in Paris, the champions or the rule baseline through
``score_day``), so a requested score equals the nightly score of the same company on the same data.
Each request ends ``completed`` with the Company payload the API serves for a company, or
``failed`` with a reason for the client; nothing else marks them.

A request is never handed to two runs at once: a tick leaves out the requests that an unfinished
run of the job holds (their ids are in its run config), and the run key is the digest of the
batch's ids plus the number of earlier runs given that same batch. A tick that sees the batch of
a run still going requests nothing; a run that ended without finishing its requests (a killed
worker, a cancelled run) gets its batch handed again, under a new key, at the next tick.
"""

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field, ValidationError

from ma_pipeline import settings
from ma_pipeline.enrichment.pappers import TABLES as PAPPERS_TABLES
from ma_pipeline.enrichment.pappers import PappersResource, partition_tables
from ma_pipeline.enrichment.resource import today
from ma_pipeline.features.assets import RAW_COMPANIES_KEY
from ma_pipeline.features.compute import FeatureInputs, companies_from_pappers, compute_features
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.ml.scorer import Scorer
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.warehouse import (
    PARTITION_COLUMN,
    WAREHOUSE_POOL,
    Warehouse,
    WarehouseResource,
    table_for,
)
from serving.config import ApiSettings
from serving.schemas import Company, company_json
from serving.store import PENDING, ApiStore

JOB = "score_requests_job"
OP = "score_requests"
BATCH_TAG = "ma/score_requests_batch"  # digest of a run's request ids
RAW_COMPANIES = table_for(RAW_COMPANIES_KEY)
_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
UNFINISHED = [status for status in dg.DagsterRunStatus if status not in _FINISHED]


class ApiStoreResource(dg.ConfigurableResource):
    """The API's database (keys and score requests), found as the API finds it
    (``serving.config.ApiSettings.api_database``)."""

    data_dir: str = Field(default="data", description="MA_DATA_DIR: api.sqlite on DuckDB")
    warehouse_url: str = Field(
        default="", description="MA_WAREHOUSE_URL: on PostgreSQL, its schema serving"
    )
    api_db_url: str = Field(default="", description="MA_API_DB_URL: overrides both")

    @contextmanager
    def open(self) -> Iterator[ApiStore]:
        """The store, its tables created if the API has not run yet, disposed after use."""
        config = ApiSettings(
            data_dir=Path(self.data_dir),
            warehouse_url=self.warehouse_url,
            api_db_url=self.api_db_url,
        )
        store = ApiStore(config.api_database)
        try:
            store.create_tables()
            yield store
        finally:
            store.dispose()


class ScoreRequestsConfig(dg.Config):
    request_ids: list[str] = Field(description="The score requests to handle (ids of the API)")
    as_of: str = Field(
        default="",
        description="Day the features are computed as of (YYYY-MM-DD); empty: today in Paris",
    )


@dataclass(frozen=True)
class Scored:
    """What became of each SIREN of a batch."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # the Company payload
    reasons: dict[str, str] = field(default_factory=dict)  # why it was not scored
    fatal: str | None = None  # an API error that stopped the enrichment: bad key, credits


def sirene_rows(backend: Warehouse, sirens: list[str]) -> pl.DataFrame:
    """The raw_companies rows of ``sirens`` in its newest partition (none before the first)."""
    keys = pl.DataFrame({"siren": sirens}, schema={"siren": pl.String})
    if not backend.columns(RAW_COMPANIES):
        return keys.clear()
    newest = backend.query(f'SELECT max("{PARTITION_COLUMN}") AS day FROM {RAW_COMPANIES.sql}')
    day = pl.lit(newest["day"][0], pl.Date).alias(PARTITION_COLUMN)
    return backend.lookup(RAW_COMPANIES, keys.with_columns(day))


def _scored_rows(
    companies: pl.DataFrame,
    tables: dict[str, pl.DataFrame],
    scorers: dict[str, Scorer],
    as_of: date,
    now: datetime,
) -> pl.DataFrame:
    """ml_scores rows of ``companies``, computed as the nightly company_features and ml_scores
    compute them (from scratch: nothing carried over)."""
    inputs = FeatureInputs(companies, *(tables[name] for name in PAPPERS_TABLES))
    return score_day(compute_features(inputs, as_of), scorers, None, now).frame


def score_sirens(
    sirens: list[str],
    *,
    pappers: PappersResource,
    backend: Warehouse,
    scorers: dict[str, Scorer],
    as_of: date,
    now: datetime,
) -> Scored:
    """Enrich, compute the features of and score ``sirens``, each on its own terms.

    A company is its row in the newest raw_companies partition, else its Pappers identity
    (``companies_from_pappers``), so one unknown to SIRENE's stock yet is scored too and one
    Pappers does not know is scored from SIRENE, as the nightly run does. Unknown to both,
    ceased, or not fetched from Pappers (timeouts, errors, credits: try again later), it gets a
    reason instead; so does a company whose features or scores fail, without failing the others.
    """
    run = pappers.enrich(sirens, backend, now=now)
    reasons = {
        siren: f"the company's data could not be fetched from Pappers ({failure.kind});"
        " send a new request later"
        for siren, failure in run.failures.items()
    }
    records = [run.records[siren] for siren in sirens if siren in run.records]
    day = pl.DataFrame(
        {"siren": [r.company["siren"] for r in records]}, schema={"siren": pl.String}
    )
    tables = partition_tables(records, day.select(pl.lit(as_of).alias(PARTITION_COLUMN), "siren"))
    sirene = sirene_rows(backend, sirens)
    from_pappers = companies_from_pappers(tables["pappers_companies"], as_of)
    companies = pl.concat(
        [sirene, from_pappers.filter(~pl.col("siren").is_in(sirene["siren"].implode()))],
        how="diagonal_relaxed",
    ).filter(~pl.col("siren").is_in(pl.Series(list(reasons), dtype=pl.String).implode()))
    for siren in set(sirens) - set(companies["siren"]) - set(reasons):
        reasons[siren] = f"siren {siren}: no such company (unknown to SIRENE and to Pappers)"
    for siren in companies.filter(pl.col("etat_administratif") != "A")["siren"]:
        reasons[siren] = f"the company {siren} has ceased: only active companies are scored"
    active = companies.filter(pl.col("etat_administratif") == "A")
    try:
        frames = [_scored_rows(active, tables, scorers, as_of, now)]
    except Exception:  # one company's data must not fail the batch: score each on its own
        frames = []
        for siren in active["siren"]:
            try:
                frames.append(_scored_rows(active.filter(siren=siren), tables, scorers, as_of, now))
            except Exception as exc:
                reasons[siren] = f"the company could not be scored ({type(exc).__name__})"
    results = {}
    for siren, answer in (r for f in frames for r in f.select("siren", company_json()).rows()):
        try:
            payload = Company.model_validate_json(answer)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(map(str, problem["loc"]))
            reasons[siren] = f"the model gave no valid result ({where}: {problem['msg']})"
            continue
        results[siren] = payload.model_dump(mode="json")
    for siren in set(active["siren"]) - set(results) - set(reasons):
        reasons[siren] = f"the company {siren} was created after {as_of}: nothing to score yet"
    return Scored(results, reasons, str(run.fatal) if run.fatal else None)


@dg.op(name=OP, pool=WAREHOUSE_POOL)
def score_requests(
    context: dg.OpExecutionContext,
    config: ScoreRequestsConfig,
    api_store: ApiStoreResource,
    pappers: PappersResource,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> dg.Output[None]:
    """Score the pending requests of ``request_ids`` with the champions, loaded once, and mark
    each completed (its result: the Company payload, dated ``as_of``) or failed with its reason.

    Requests no longer pending are skipped. An error that stops the whole batch (MLflow or the
    warehouse unreachable) fails its requests, so no client waits forever, then fails the run;
    so does, after every request is marked, a Pappers key refused or out of credits. In the pool
    ``warehouse``: the Pappers cache is written, which on DuckDB waits for the nightly writes.
    """
    now = datetime.now(UTC)
    as_of = date.fromisoformat(config.as_of) if config.as_of else today(now)
    with api_store.open() as store:
        found = [store.get_request(uuid.UUID(i)) for i in config.request_ids]
        requests = [r for r in found if r is not None and r.status == PENDING]
        try:
            scorers = mlflow.scorers()
            sirens = sorted({r.siren for r in requests})
            backend = warehouse.backend()
            scored = score_sirens(
                sirens, pappers=pappers, backend=backend, scorers=scorers, as_of=as_of, now=now
            )
        except Exception as exc:
            reason = f"scoring is unavailable ({type(exc).__name__}); send a new request later"
            for request in requests:
                store.fail_request(request.id, reason)
            raise
        completed = failed = 0
        for request in requests:
            if request.siren in scored.results:
                store.complete_request(request.id, scored.results[request.siren])
                completed += 1
            else:
                store.fail_request(request.id, scored.reasons[request.siren])
                failed += 1
    summary = {
        "completed": completed,
        "failed": failed,
        "skipped_not_pending": len(config.request_ids) - len(requests),
        "as_of": as_of.isoformat(),
        "models": {score: scorer.version for score, scorer in scorers.items()},
    }
    context.log.info(f"score requests: {completed} completed, {failed} failed, as of {as_of}")
    if scored.fatal is not None:
        raise dg.Failure(description=scored.fatal, metadata=summary)
    return dg.Output(None, metadata=summary)


def held_requests(instance: dg.DagsterInstance) -> set[str]:
    """Ids of the requests handed to a run of the job that has not finished."""
    runs = instance.get_runs(dg.RunsFilter(job_name=JOB, statuses=UNFINISHED))
    return {i for run in runs for i in run.run_config["ops"][OP]["config"]["request_ids"]}


@dg.sensor(
    job_name=JOB,  # jobs.py imports this module's op: named, not imported
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Pending score requests of the API: one score_requests_job run per batch of at"
    " most MA_SCORE_REQUESTS_BATCH, oldest first, never a request held by a run still going.",
)
def score_requests_sensor(
    context: dg.SensorEvaluationContext, api_store: ApiStoreResource
) -> dg.SensorResult:
    """No cursor: the API's database says what is pending and the run storage what is held. The
    held ids are read before the pending ones, so a run finishing in between leaves nothing
    pending twice."""
    held = held_requests(context.instance)
    size = int(settings.value("MA_SCORE_REQUESTS_BATCH"))
    with api_store.open() as store:
        pending = store.pending_requests(limit=size + len(held))
    batch = sorted([str(r.id) for r in pending if str(r.id) not in held][:size])
    if not batch:
        waiting = "every pending request is held by a run still going" if pending else ""
        return dg.SensorResult(skip_reason=waiting or "no pending score request")
    digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
    attempts = context.instance.get_runs_count(
        dg.RunsFilter(job_name=JOB, tags={BATCH_TAG: digest})
    )
    context.log.info(f"{len(batch)} pending score request(s): one run (attempt {attempts + 1})")
    request = dg.RunRequest(
        run_key=f"{digest}-{attempts}",
        run_config=dg.RunConfig(ops={OP: ScoreRequestsConfig(request_ids=batch)}),
        tags={"ma/trigger": "score_requests", BATCH_TAG: digest},
    )
    return dg.SensorResult(run_requests=[request])
