"""`python -m ma_pipeline.bootstrap` (`make run`): the latest partition end to end, then the
day's top targets.

Three runs on the local instance (DAGSTER_HOME), so they show in the UI afterwards: the day's
ingestion, enrichment and features; training (ma_events, training_set, ma_models), which needs
that day's Pappers snapshot; then scoring, publication, contacts and the marts. Without a
champion (training did not promote one) the rule baseline scores, and the summary says so.
"""

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import dagster as dg

from ma_pipeline import settings
from ma_pipeline.contracts.personal import MASKED
from ma_pipeline.contracts.scores import SCORES
from ma_pipeline.contracts.tables import PUBLISHED_SCORES
from ma_pipeline.definitions import defs
from ma_pipeline.jobs import daily_job
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.scoring.compute import RULE_BASELINE
from ma_pipeline.scoring.publication import latest_published
from ma_pipeline.warehouse import connect_warehouse

UPSTREAM = dg.AssetSelection.groups("ingestion", "enrichment", "features")
TOP = 10
REASONS = 3


@contextmanager
def _logged_to(log: Path) -> Iterator[TextIO]:
    """Send the process's stdout and stderr (Dagster's event log, dbt's output, warnings) to
    ``log``; the stream yielded still reaches the terminal, for the progress lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with os.fdopen(os.dup(1), "w", buffering=1) as terminal, log.open("a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in enumerate(saved, start=1):
                os.dup2(original, fd)
                os.close(original)


def _run(
    title: str, job: dg.JobDefinition, instance: dg.DagsterInstance, out: TextIO, **execute: object
) -> bool:
    """One run, summed up in a few lines: seconds, rows per table, checks (failed ones named)."""
    print(f"{title} ...", end=" ", file=out, flush=True)
    started = time.monotonic()
    result = job.execute_in_process(instance=instance, raise_on_error=False, **execute)
    print(f"{time.monotonic() - started:.0f} s", file=out)
    tables, others = [], 0  # others: dbt views and marts, without a row count
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        rows, table = metadata.get("dagster/row_count"), metadata.get("dagster/table_name")
        served = metadata.get("served_date")
        name = (table.value if table else event.asset_key.to_user_string()).split(".")[-1]
        if served:
            tables.append(f"{name} serving {served.value}")
        elif rows:
            tables.append(f"{name} {rows.value:,}")
        else:
            others += 1
    if others:
        tables.append(f"{others} dbt views and marts")
    if tables:
        print(f"    rows: {' · '.join(tables)}", file=out)
    checks = result.get_asset_check_evaluations()
    failed = [check for check in checks if not check.passed]
    print(f"    checks: {len(checks) - len(failed)} passed, {len(failed)} failed", file=out)
    for check in failed:
        severity = check.severity.value
        print(f"    check {check.check_name} ({severity}): {check.description}", file=out)
    if not result.success:
        print(f"Run {result.run_id} failed; see it in the Dagster UI.", file=out)
    return result.success


def _reason(row: dict, score: str, rank: int) -> str | None:
    feature = row[f"{score}_reason_{rank}_feature"]
    if feature is None:
        return None
    value = row[f"{score}_reason_{rank}_value"]
    shown = MASKED if value is None else value
    return f"{feature} = {shown} ({row[f'{score}_reason_{rank}_contribution']:+.2f})"


def _shown(row: dict, score: str) -> str:
    """A score as a deal team reads it: band and rank, the probability beside."""
    value = row[f"score_{score}"]
    if value is None:
        return "not scored"
    band, rank = row[f"band_{score}"], row[f"rank_{score}"]
    ranked = f"{band} (rank {rank:.0f}), " if band is not None else ""
    return f"{ranked}{value:.1f} %"


def top_targets(n: int = TOP) -> str:
    """The served day's ``n`` best ``score_ma`` companies with their top reasons."""
    warehouse = connect_warehouse(settings.value("MA_WAREHOUSE_URL"), settings.value("MA_DATA_DIR"))
    served = latest_published(warehouse)
    if served is None:
        return "No published partition yet."
    scores = warehouse.read(PUBLISHED_SCORES, start=served, end=served)
    best = scores.sort(["score_ma", "siren"], descending=[True, False]).head(n)
    models = ", ".join(f"{s} {scores[f'model_version_{s}'][0]}" for s in SCORES)
    if scores["scorer"][0] == RULE_BASELINE:
        models = "the rule baseline: no champion model yet"
    lines = [f"Top {best.height} M&A targets of {served} ({scores.height:,} scored by {models})"]
    for rank, row in enumerate(best.iter_rows(named=True), start=1):
        lines.append(
            f"{rank:>2}. {row['nom_entreprise'] or '?'} (SIREN {row['siren']},"
            f" {row['activite_principale']}, dép. {row['departement']}):"
            f" M&A {_shown(row, 'ma')}; croissance {_shown(row, 'croissance')};"
            f" stabilité {_shown(row, 'stabilite')}; confidence {row['confidence']:.0f}"
        )
        reasons = filter(None, (_reason(row, "ma", k) for k in range(1, REASONS + 1)))
        lines.append(f"    why: {'; '.join(reasons) or 'no reason (base rate only)'}")
    return "\n".join(lines)


def main() -> int:
    partition = daily_partitions.get_last_partition_key()
    if partition is None:
        print("No partition yet: MA_PARTITIONS_START is in the future.", file=sys.stderr)
        return 1
    graph = defs.resolve_asset_graph()
    day_assets = daily_job.selection.resolve(graph)
    upstream = UPSTREAM.resolve(graph) & day_assets
    daily = defs.resolve_job_def("daily_job")
    day = {"partition_key": partition}
    steps = [
        (
            f"Partition {partition}: ingestion, enrichment, features",
            daily,
            {**day, "asset_selection": list(upstream)},
        ),
        (
            "Training: labels, training set, models (MLflow)",
            defs.resolve_job_def("training_job"),
            {},
        ),
        (
            f"Partition {partition}: scores, publication, contacts, marts",
            daily,
            {**day, "asset_selection": list(day_assets - upstream)},
        ),
    ]
    log = Path(settings.value("MA_DATA_DIR")) / "logs" / "bootstrap.log"
    print(f"Full logs: {log}", flush=True)
    with dg.DagsterInstance.get() as instance, _logged_to(log) as out:
        for step, (title, job, execute) in enumerate(steps, start=1):
            if not _run(f"[{step}/{len(steps)}] {title}", job, instance, out, **execute):
                print(f"Details: {log}", file=out)
                return 1
    print()
    print(top_targets())
    ui = settings.value("MA_DAGSTER_UI_URL")
    print(f"\nDagster UI: {ui} (`make run` starts it now: assets, runs, checks, schedules).")
    print(
        "API: http://localhost:8000/docs, and the app: http://localhost:8501, with a key from"
        " .venv/bin/ma-api keys create --name me --scopes scores:read,contacts:read"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
