"""Sensors: a new SIRENE file, feature drift, pending score requests, and failed runs.

The first two keep a cursor, so a tick never requests again what an earlier tick handled, and
each request has a run key, so Dagster would drop a repeat even without the cursor.

Score requests need no cursor: the API's request store says what is pending and the run storage
what is held. A request is never handed to two runs at once: a tick leaves out the requests that
an unfinished run of the job holds (their ids are in its run config), and the run key is the
digest of the batch's ids plus the number of earlier runs given that same batch. A tick that sees
the batch of a run still going requests nothing; a run that ended without finishing its requests
(a killed worker, a cancelled run) gets its batch handed again, under a new key, at the next tick.
"""

import hashlib
import json

import dagster as dg

from ma_pipeline.automation.alerts import AlertWebhook, failure_message
from ma_pipeline.contracts import keys
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.jobs import daily_job, training_job
from ma_pipeline.lib.checks import ERROR
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.on_demand import (
    OP,
    ApiStoreResource,
    ScoreRequestsConfig,
    score_requests_job,
)

DRIFT_CHECK = dg.AssetCheckKey(keys.COMPANY_FEATURES, "drift")
BATCH_TAG = "ma/score_requests_batch"  # digest of a run's request ids
_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
UNFINISHED = [status for status in dg.DagsterRunStatus if status not in _FINISHED]
# Failed drift evaluations read per tick; a 30-day backfill writes 30 at most.
DRIFT_PAGE = 200


@dg.sensor(
    job=daily_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new or replaced SIRENE stock file in the landing folder: one daily_job run"
    " for the partition of the file's date.",
)
def landing_file_sensor(
    context: dg.SensorEvaluationContext, sirene: SireneSource
) -> dg.SensorResult:
    """One run per file version: the run key and the cursor are the file's name and mtime, so a
    file is never run twice and a file replaced in place (new mtime) is run again. A file dated
    after the newest partition waits for the nightly schedule, which will read it."""
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    requests, waiting = [], []
    for landing in sirene.stock_files():
        name, mtime = landing.path.name, landing.path.stat().st_mtime_ns
        if seen.get(name) == mtime:
            continue
        seen[name] = mtime
        key = landing.dated.isoformat()
        if first is None or last is None or not first <= key <= last:
            waiting.append(f"{name} ({key})")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{name}@{mtime}",
                partition_key=key,
                tags={"ma/trigger": "landing_file", "ma/landing_file": name},
            )
        )
    cursor = json.dumps(seen, sort_keys=True)
    if waiting:
        context.log.info(f"outside the partitions {first}..{last}, not run: {waiting}")
    if not requests:
        return dg.SensorResult(skip_reason="no new SIRENE file", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A feature-drift check failing with ERROR on company_features: one retraining.",
)
def feature_drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """The cursor is the id of the newest drift evaluation seen; the failed ERROR evaluations
    recorded since then (one per partition: a backfill can add many) make one request, keyed
    by the newest of them."""
    after = int(context.cursor or 0)
    # No public read of check evaluations in 1.13 (get_event_records is deprecated; dagster#17005).
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        DRIFT_CHECK, limit=DRIFT_PAGE
    )
    new = [r for r in history if r.id > after]
    cursor = str(max((r.id for r in new), default=after))
    errors = [
        r
        for r in new
        if r.event is not None
        and (evaluation := r.event.asset_check_evaluation) is not None
        and not evaluation.passed
        and evaluation.severity == ERROR
    ]
    if not errors:
        return dg.SensorResult(skip_reason="no new feature-drift ERROR", cursor=cursor)
    newest = max(errors, key=lambda r: r.id)
    partitions = sorted({r.partition for r in errors if r.partition})
    context.log.info(f"feature drift ERROR on {partitions}: requesting one retraining")
    request = dg.RunRequest(
        run_key=f"feature-drift-{newest.id}",
        tags={"ma/trigger": "feature_drift", "ma/drift_partitions": ",".join(partitions)},
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts every failed run of the code location to MA_ALERT_WEBHOOK_URL.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertWebhook) -> None:
    """Job, run id, failed steps, the error and a link to the run; logged when the webhook is
    unset or unreachable (a broken webhook must not stop the sensor's other alerts)."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    steps = sorted({e.step_key for e in failures if e.step_key})
    error = failures[0].step_failure_data.error if failures else None
    while error is not None and error.cause is not None:  # the user's exception, not the wrapper
        error = error.cause
    message = error.message if error else context.failure_event.message
    text = failure_message(run.job_name, run.run_id, steps, message, alerts.ui_url)
    problem = alerts.send(text)
    if problem:
        context.log.warning(f"alert not delivered ({problem}): {text}")


def held_requests(instance: dg.DagsterInstance) -> set[str]:
    """Ids of the requests handed to a run of the job that has not finished."""
    runs = instance.get_runs(dg.RunsFilter(job_name=score_requests_job.name, statuses=UNFINISHED))
    return {i for run in runs for i in run.run_config["ops"][OP]["config"]["request_ids"]}


@dg.sensor(
    job=score_requests_job,
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
    size = api_store.batch_size
    with api_store.open() as store:
        pending = store.pending_requests(limit=size + len(held))
    batch = sorted([str(r.id) for r in pending if str(r.id) not in held][:size])
    if not batch:
        waiting = "every pending request is held by a run still going" if pending else ""
        return dg.SensorResult(skip_reason=waiting or "no pending score request")
    digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
    attempts = context.instance.get_runs_count(
        dg.RunsFilter(job_name=score_requests_job.name, tags={BATCH_TAG: digest})
    )
    context.log.info(f"{len(batch)} pending score request(s): one run (attempt {attempts + 1})")
    request = dg.RunRequest(
        run_key=f"{digest}-{attempts}",
        run_config=dg.RunConfig(ops={OP: ScoreRequestsConfig(request_ids=batch)}),
        tags={"ma/trigger": "score_requests", BATCH_TAG: digest},
    )
    return dg.SensorResult(run_requests=[request])
