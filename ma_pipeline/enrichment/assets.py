"""Registry enrichment of each day's target companies (Pappers or the API Recherche
d'entreprises), fetching only what changed: four tables and the failures; and the API cache that
every enrichment client shares."""

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from ma_pipeline.contracts import keys, tables
from ma_pipeline.contracts.personal import shareable
from ma_pipeline.enrichment import (
    cache,
    pappers,
    recherche_entreprises,
    records,
    registry,
    runner,
)
from ma_pipeline.enrichment.records import (
    RATIO_YEAR_COLUMNS,
    TABLES,
    RegistryRecord,
    partition_tables,
    with_ratio_years,
)
from ma_pipeline.enrichment.refresh import LAST_EVENT, LAST_SCORE, VERSION_COLUMN
from ma_pipeline.enrichment.registry import RegistryApi, RegistryResource
from ma_pipeline.enrichment.runner import BadApiKey, EnrichmentRun
from ma_pipeline.lib import owners
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.warehouse import PARTITION_COLUMN, WAREHOUSE_POOL, Warehouse, WarehouseResource

GROUP = "enrichment"
FAILURES_TABLE = tables.ENRICHMENT_FAILURES.name
PERSONAL_TABLES = {tables.PAPPERS_DIRIGEANTS.name}  # never previewed in metadata
FAILURE_SCHEMA: dict[str, pl.DataType] = {
    "siren": pl.String(),
    "source": pl.String(),
    "kind": pl.String(),
    "status": pl.Int64(),
    "message": pl.String(),
}
_DESCRIPTIONS = {
    "pappers_companies": "One row per active company enriched that day, from the registry"
    " provider named in `source` (Pappers or the API Recherche d'entreprises): identity, NAF"
    " (NN.NNL), legal form (INSEE code, Pappers' own beside), capital, headcount, status, dates,"
    " head office, and whether the answer was partial.",
    "pappers_finances": "One row per SIREN and fiscal year published: revenue, net income,"
    " headcount, closing date, and the ratios when Pappers gives them (the API Recherche"
    " d'entreprises gives one year, revenue and net income only); years the provider did not"
    " give come from INPI's ratios when the inpi_ratios asset has stored them (source"
    " inpi_ratios).",
    "pappers_dirigeants": "One row per representative, person or company: roles (qualite and"
    " qualites), birth date or month, age at the partition date, start date.",
    "pappers_procedures": "One row per collective procedure: type, start and end dates.",
    FAILURES_TABLE: "Companies whose enrichment failed that day: source, kind, HTTP status and"
    " message. They do not fail the run unless their share passes the threshold.",
}


def _api_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    """A table written by the API clients (``enrichment.cache``) of every step that calls a
    paid API; each such step reports a materialization of it when it stored answers."""
    return dg.AssetSpec(
        key,
        group_name=GROUP,
        owners=owners.DATA,
        code_version=source_version(cache),
        kinds={"duckdb", "postgres"},
        description=description,
    )


api_cache = _api_spec(
    keys.API_CACHE,
    "The latest answer per (source, key) of Pappers, the API Recherche d'entreprises and Kaspr,"
    " with the version of the key it was fetched for, so that no unchanged answer is paid for"
    " twice. Written by pappers_enrichment, kaspr_contacts and score_requests_job.",
)
api_usage = _api_spec(
    keys.API_USAGE,
    "Calls and estimated credits per API source and day: what Kaspr's daily credit budget"
    " reads. Written with api_cache.",
)


def api_cache_events(runs: Iterable[EnrichmentRun[Any] | None]) -> list[dg.AssetMaterialization]:
    """Materializations of api_cache and api_usage for the runs that called an API."""
    called = [run for run in runs if run is not None and run.counters.calls]
    if not called:
        return []
    sources = sorted({run.source for run in called})
    metadata = {
        "sources": sources,
        "answers_stored": sum(run.fetched for run in called),
        "calls": sum(run.counters.calls for run in called),
        "estimated_credits": sum(run.credits for run in called),
    }
    return [
        dg.AssetMaterialization(key, metadata=metadata) for key in (keys.API_CACHE, keys.API_USAGE)
    ]


def failures_frame(run: EnrichmentRun[Any], companies_by_day: pl.DataFrame) -> pl.DataFrame:
    """One row per (day, SIREN) the run failed to enrich."""
    failed = pl.DataFrame(
        [(f.key, run.source, f.kind, f.status, f.message) for f in run.failures.values()],
        schema=FAILURE_SCHEMA,
        orient="row",
    )
    return (
        companies_by_day.select(PARTITION_COLUMN, "siren")
        .join(failed, on="siren", how="inner")
        .sort(PARTITION_COLUMN, "siren")
    )


def targets_with_versions(
    backend: Warehouse, companies_by_day: pl.DataFrame, since: date
) -> pl.DataFrame:
    """Each target SIREN with its SIRENE record's last processing, as of the run's last day
    that holds it (what a stored answer is compared with), its last M&A score, and its newest
    BODACC notice published on or after ``since``."""
    rows = backend.lookup(
        tables.RAW_COMPANIES,
        companies_by_day,
        columns=[PARTITION_COLUMN, "siren", VERSION_COLUMN],
    )
    targets = rows.sort(PARTITION_COLUMN).unique("siren", keep="last")
    first_day = companies_by_day[PARTITION_COLUMN].min()
    scores = last_scores(backend, targets.select("siren"), first_day)
    return (
        targets.select("siren", VERSION_COLUMN)
        .join(scores, on="siren", how="left")
        .join(last_notices(backend, since), on="siren", how="left")
    )


def ratio_years(backend: Warehouse, companies: pl.DataFrame) -> pl.DataFrame:
    """INPI's ratio rows of the SIRENs of ``companies`` (empty until the ``inpi_ratios`` asset
    has stored them: read without a dependency, as that ingestion runs on demand)."""
    columns = ["siren", "annee", "date_cloture_exercice", "chosen", "implausible"]
    return backend.lookup(
        tables.INPI_RATIOS,
        companies.select("siren").unique(),
        columns=[*columns, *RATIO_YEAR_COLUMNS],
    )


def last_notices(backend: Warehouse, since: date) -> pl.DataFrame:
    """``siren``, ``last_event``: the newest BODACC notice about each SIREN published on or
    after ``since`` (older news is older than any answer the refresh would keep). Empty until
    the ``bodacc`` asset has stored notices: a trigger for fetches, read without a dependency,
    as the ingestion of notices runs on demand."""
    empty = pl.DataFrame(schema={"siren": pl.String, LAST_EVENT: pl.Date})
    if not backend.columns(tables.BODACC_NOTICES):
        return empty
    notices = backend.query(
        f"SELECT unnest(sirens) AS siren, dateparution FROM {tables.BODACC_NOTICES.sql}"
        " WHERE dateparution >= $1",
        (since,),
    )
    if notices.is_empty():
        return empty
    return notices.group_by("siren").agg(pl.col("dateparution").max().alias(LAST_EVENT))


def last_scores(backend: Warehouse, sirens: pl.DataFrame, before: date) -> pl.DataFrame:
    """``siren``, ``last_score``: the score_ma of each SIREN on the newest day scored before
    ``before``. Only an order for the fetches, read without a dependency: ml_scores is
    downstream of the enrichment."""
    empty = pl.DataFrame(schema={"siren": pl.String, LAST_SCORE: pl.Float64})
    newest = max(
        (day for day in backend.partitions(tables.ML_SCORES) if day < before), default=None
    )
    if newest is None:
        return empty
    keys = sirens.select(pl.lit(newest).alias(PARTITION_COLUMN), "siren")
    found = backend.lookup(tables.ML_SCORES, keys, columns=["siren", "score_ma"])
    return found.select("siren", pl.col("score_ma").cast(pl.Float64).alias(LAST_SCORE))


def _problem(run: EnrichmentRun[RegistryRecord], api: RegistryApi) -> str | None:
    """Why the asset must fail after saving what it has, or None."""
    saved = f"{len(run.records)} companies enriched were saved"
    if run.fatal is not None:
        not_fetched = sum(f.kind == run.fatal.kind for f in run.failures.values())
        return (
            f"{run.fatal}. Stopped after {run.counters.calls} calls: {saved},"
            f" {not_fetched} were not fetched."
        )
    threshold = api.max_failure_rate
    if run.failure_rate > threshold:
        causes = ", ".join(f"{kind} {n}" for kind, n in list(run.failures_by_kind().items())[:3])
        return (
            f"{api.label} enrichment failed for {len(run.failures)} of {run.requested} companies"
            f" ({run.failure_rate:.1%}, above the {threshold:.1%} threshold); main causes:"
            f" {causes}. The {saved}; re-run to retry the others (cached answers are not"
            " fetched again)."
        )
    return None


@dg.multi_asset(
    outs={
        name: dg.AssetOut(
            key_prefix=GROUP,
            kinds={"polars"},
            description=description,
            owners=owners.DATA,
            code_version=source_version(
                sys.modules[__name__],
                records,
                registry,
                pappers,
                recherche_entreprises,
                runner,
                cache,
            ),
        )
        for name, description in _DESCRIPTIONS.items()
    },
    ins={"target_companies": dg.AssetIn(key=keys.TARGET_COMPANIES)},
    deps=[keys.API_CACHE, keys.BODACC_NOTICES, keys.INPI_RATIOS],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP,
    pool=WAREHOUSE_POOL,
)
def pappers_enrichment(
    context: dg.AssetExecutionContext,
    target_companies: pl.DataFrame,
    registry: RegistryResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetMaterialization]:
    """Registry data for the target companies of each partition, from the provider that
    MA_REGISTRY_PROVIDER names (Pappers by default) (``target_companies``: never a
    ceased, non-diffusible or out-of-scope unit).

    Credits follow change (``enrichment.refresh``): a target is fetched when it is new, when
    its SIRENE record was processed again, when its answer was partial or is older than
    ``max_age_days``, highest priority first within ``daily_calls``; every other target is
    served from its stored answer. Each SIREN is asked for at most once per run, however many
    days the run covers; every day then gets the rows of its own targets, with ages computed at
    that day. Per-company failures go to enrichment_failures; the asset fails, after saving
    what it got, when credits run out or when the share of failures passes
    ``max_failure_rate``; a bad key fails it at once.
    """
    days = [date.fromisoformat(k) for k in context.partition_keys]
    companies_by_day = target_companies.select(PARTITION_COLUMN, "siren")
    api = registry.api()
    if api.mode == "sandbox":
        context.log.warning(f"{api.label}: answers come from its sandbox ({api.provenance})")
    backend = warehouse.backend()
    since = datetime.now(UTC).date() - timedelta(days=api.max_age_days)
    plan, run = api.refresh(targets_with_versions(backend, companies_by_day, since), backend)
    if isinstance(run.fatal, BadApiKey):
        raise dg.Failure(description=str(run.fatal), metadata=run.metadata(), allow_retries=False)

    frames = partition_tables(list(run.records.values()), companies_by_day, source=api.provenance)
    companies = frames["pappers_companies"]
    frames["pappers_finances"] = with_ratio_years(
        frames["pappers_finances"], companies, ratio_years(backend, companies)
    )
    frames[FAILURES_TABLE] = failures_frame(run, companies_by_day)
    summary: dict[str, Any] = {
        "provider": api.source,
        "mode": f"sandbox: answers generated by {api.provenance}, no calls to the real API"
        if api.mode == "sandbox"
        else f"live: {api.label}",
        **run.metadata(),
        **plan.metadata(),
        "rows": {name: frame.height for name, frame in frames.items()},
    }
    if len(days) > 1:
        summary["run_partitions"] = len(days)  # the counts above are the whole run's
    context.log.info(
        f"{len(run.records)} of {plan.targets} target companies enriched:"
        f" {run.cache_hits} from stored answers, {run.counters.calls} calls"
        f" (due: {plan.due_by_reason}), {len(run.failures)} failures, backlog {plan.backlog}"
    )
    if plan.backlog:
        context.log.warning(
            f"{plan.backlog} due target(s) left for the next day by the daily_calls budget"
            f" ({plan.backlog_by_reason})"
        )

    yield from api_cache_events([run])
    for name in (*TABLES, FAILURES_TABLE):  # saved even when the run fails below
        # Dirigeants' names and birth dates stay out of the metadata anyone can read in the UI.
        shown = (
            {"personal_data": True}
            if name in PERSONAL_TABLES
            else {"preview": preview(shareable(frames[name]))}
        )
        yield dg.Output(frames[name], output_name=name, metadata={**summary, **shown})
    problem = _problem(run, api)
    if problem is not None:
        raise dg.Failure(description=problem, metadata=summary)
