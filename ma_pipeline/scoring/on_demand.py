"""On-demand scoring: the score requests of the API, scored with the nightly graph's functions.

``POST /v1/score-requests`` only records a pending request in the API's request store
(``contracts.api_store``): the API never runs a model. ``score_requests_sensor`` hands the
pending requests, a batch at a time, to ``score_requests_job``, whose op scores each SIREN with
the functions the nightly assets use (the registry provider and its cache, ``compute_features``
as of today in Paris, the champions or the rule baseline through ``score_day``), so a requested
score equals the nightly score of the same company on the same data. Each request ends ``completed``
with the Company answer (``contracts.answers``), or ``failed`` with a reason for the client.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import dagster as dg
import polars as pl
from pydantic import Field, ValidationError

from ma_pipeline.contracts.answers import Company, company_json
from ma_pipeline.contracts.api_store import PENDING, RequestStore, api_database
from ma_pipeline.contracts.tables import RAW_COMPANIES
from ma_pipeline.enrichment.assets import api_cache_events
from ma_pipeline.enrichment.records import TABLES as PAPPERS_TABLES
from ma_pipeline.enrichment.records import partition_tables
from ma_pipeline.enrichment.registry import RegistryApi, RegistryResource
from ma_pipeline.enrichment.resource import today
from ma_pipeline.features.compute import FeatureInputs, companies_from_pappers, compute_features
from ma_pipeline.ml.registry import MlflowResource
from ma_pipeline.ml.scorer import Scorer
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.settings import LaunchSettings
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

OP = "score_requests"


class ApiStoreResource(LaunchSettings):
    """The API's request store, found as the API finds it (``contracts.api_store``), and how
    many pending requests one run handles. None: the variable when the run launches."""

    from_settings: ClassVar[dict[str, str]] = {
        "data_dir": "MA_DATA_DIR",
        "warehouse_url": "MA_WAREHOUSE_URL",
        "api_db_url": "MA_API_DB_URL",
        "batch_size": "MA_SCORE_REQUESTS_BATCH",
    }

    data_dir: str | None = Field(default="data", description="MA_DATA_DIR: api.sqlite on DuckDB")
    warehouse_url: str | None = Field(
        default="", repr=False, description="MA_WAREHOUSE_URL: on PostgreSQL, its schema serving"
    )
    api_db_url: str | None = Field(
        default="", repr=False, description="MA_API_DB_URL: overrides both"
    )
    batch_size: int | None = Field(
        default=50, description="MA_SCORE_REQUESTS_BATCH: most pending requests one run handles"
    )

    @contextmanager
    def open(self) -> Iterator[RequestStore]:
        """The store, its tables created if the API has not run yet, disposed after use."""
        store = RequestStore(api_database(self.data_dir, self.warehouse_url, self.api_db_url))
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
    events: list[dg.AssetMaterialization] = field(default_factory=list)  # api_cache writes


OPTED_OUT = "the company's owner opted out of SIRENE diffusion: it is neither enriched nor scored"


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
    api: RegistryApi,
    backend: Warehouse,
    scorers: dict[str, Scorer],
    as_of: date,
    now: datetime,
) -> Scored:
    """Enrich, compute the features of and score ``sirens``, each on its own terms.

    A company is its row in the newest raw_companies partition, else its registry identity
    (``companies_from_pappers``), so one unknown to SIRENE's stock yet is scored too and one
    the registry does not know is scored from SIRENE, as the nightly run does. Unknown to both,
    ceased, or not fetched (timeouts, errors, credits: try again later), it gets a
    reason instead; so does a company whose features or scores fail, without failing the others.
    A unit whose owner opted out of diffusion (SIRENE's ``statut_diffusion``, or the registry's
    ``diffusable``) is neither enriched nor scored: its request fails with that reason.
    """
    sirene = sirene_rows(backend, sirens)
    known = "statut_diffusion" in sirene.columns  # not before the first raw_companies partition
    hidden = sirene.filter(pl.col("statut_diffusion") != "O")["siren"] if known else []
    reasons = dict.fromkeys(hidden, OPTED_OUT)
    run = api.enrich([s for s in sirens if s not in reasons], backend, now=now)
    reasons |= {
        siren: f"the company's data could not be fetched from {api.label} ({failure.kind});"
        " send a new request later"
        for siren, failure in run.failures.items()
    }
    reasons |= {
        siren: OPTED_OUT
        for siren, record in run.records.items()
        if record.company["diffusable"] is False
    }
    records = [run.records[s] for s in sirens if s in run.records and s not in reasons]
    day = pl.DataFrame(
        {"siren": [r.company["siren"] for r in records]}, schema={"siren": pl.String}
    )
    tables = partition_tables(
        records,
        day.select(pl.lit(as_of).alias(PARTITION_COLUMN), "siren"),
        source=api.provenance,
    )
    from_pappers = companies_from_pappers(tables["pappers_companies"], as_of)
    companies = pl.concat(
        [sirene, from_pappers.filter(~pl.col("siren").is_in(sirene["siren"].implode()))],
        how="diagonal_relaxed",
    ).filter(~pl.col("siren").is_in(pl.Series(list(reasons), dtype=pl.String).implode()))
    for siren in set(sirens) - set(companies["siren"]) - set(reasons):
        reasons[siren] = f"siren {siren}: no such company (unknown to SIRENE and to {api.label})"
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
    return Scored(results, reasons, str(run.fatal) if run.fatal else None, api_cache_events([run]))


@dg.op(name=OP, pool=WAREHOUSE_POOL, out=dg.Out(dg.Nothing))
def score_requests(
    context: dg.OpExecutionContext,
    config: ScoreRequestsConfig,
    api_store: ApiStoreResource,
    registry: RegistryResource,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
) -> Iterator[dg.Output[None] | dg.AssetMaterialization]:
    """Score the pending requests of ``request_ids`` with the champions, loaded once, and mark
    each completed (its result: the Company payload, dated ``as_of``) or failed with its reason.

    Requests no longer pending are skipped. An error that stops the whole batch (MLflow or the
    warehouse unreachable) fails its requests, so no client waits forever, then fails the run;
    so does, after every request is marked, a registry key refused or out of credits. In the pool
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
                sirens, api=registry.api(), backend=backend, scorers=scorers, as_of=as_of, now=now
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
    yield from scored.events
    if scored.fatal is not None:
        raise dg.Failure(description=scored.fatal, metadata=summary)
    yield dg.Output(None, metadata=summary)


@dg.job(
    description="The API's pending score requests that score_requests_sensor hands over (their ids"
    " in the run config): each SIREN enriched, featured and scored with the champions, each"
    " request marked completed or failed in the API's request store."
)
def score_requests_job() -> None:
    score_requests()
