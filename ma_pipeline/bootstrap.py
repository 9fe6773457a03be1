"""`python -m ma_pipeline.bootstrap` (`make run`): the latest partition end to end, then the
day's top targets.

Three runs on the local instance (DAGSTER_HOME), so they show in the UI afterwards: the day's
ingestion, enrichment and features; training (ma_events, training_set, ma_models), which needs
that day's Pappers snapshot; then scoring, publication, contacts and the marts. Without a
champion (training did not promote one) the rule baseline scores, and the summary says so.
"""

import sys
import warnings

import dagster as dg

# The pipeline uses partitioned asset checks (preview in 1.13) and backfill policies (beta) on
# purpose; their warnings tell someone running the quick start nothing.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from ma_pipeline import settings  # noqa: E402
from ma_pipeline.contracts.personal import MASKED  # noqa: E402
from ma_pipeline.contracts.scores import SCORES  # noqa: E402
from ma_pipeline.contracts.tables import PUBLISHED_SCORES  # noqa: E402
from ma_pipeline.definitions import defs  # noqa: E402
from ma_pipeline.jobs import daily_job  # noqa: E402
from ma_pipeline.partitions import daily_partitions  # noqa: E402
from ma_pipeline.scoring.compute import RULE_BASELINE  # noqa: E402
from ma_pipeline.scoring.publication import latest_published  # noqa: E402
from ma_pipeline.warehouse import connect_warehouse  # noqa: E402

UPSTREAM = dg.AssetSelection.groups("ingestion", "enrichment", "features")
TOP = 10
REASONS = 3


def _run(
    title: str, job: dg.JobDefinition, instance: dg.DagsterInstance, **execute: object
) -> bool:
    print(f"{title}...", flush=True)
    result = job.execute_in_process(instance=instance, raise_on_error=False, **execute)
    unsized = 0  # dbt models: views and marts without a row count
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        rows, table = metadata.get("dagster/row_count"), metadata.get("dagster/table_name")
        served = metadata.get("served_date")
        name = table.value if table else event.asset_key.to_user_string()
        if served:
            print(f"  {name}: serving {served.value}")
        elif rows:
            print(f"  {name}: {rows.value} rows")
        else:
            unsized += 1
    if unsized:
        checks = len(result.get_asset_check_evaluations())
        print(f"  {unsized} more assets built (dbt views and marts); {checks} checks evaluated")
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"  check {check.check_name} ({check.severity.value}): {check.description}")
    if not result.success:
        print(f"Run {result.run_id} failed; see it in the Dagster UI.", file=sys.stderr)
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
    with dg.DagsterInstance.get() as instance:
        for title, job, execute in steps:
            if not _run(title, job, instance, **execute):
                return 1
    print()
    print(top_targets())
    ui = settings.value("MA_DAGSTER_UI_URL")
    print(f"\nDagster UI: {ui} (`make run` starts it now: assets, runs, checks, schedules).")
    print(
        "API: http://localhost:8000/docs; a key for a first request:"
        " .venv/bin/ma-api keys create --name me --scopes scores:read"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
