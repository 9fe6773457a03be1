"""A backfill of the daily job, as a user launches it, against its steps' own durations.

`python -m bench.bench_backfill --units 5000 --days 5 30` runs the quick start (`python -m
ma_pipeline.bootstrap`: the newest day and a training) on a sandbox of ``--units`` legal units in
a temporary folder, then backfills each ``--days`` range of days before it with the README's
command, `dg launch --job daily_job --partition-range A...B` (one run for the range). The floor is
the sum of the run's steps' own durations (STEP_START to STEP_SUCCESS, read from the instance);
it prints the command's wall time, the run's (RUN_START to its end), and their overhead against
the floor, in all and per step.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).with_name("dg")


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, float], float]:
    """Each step's own duration, and the run's from its start to its end."""
    started: dict[str, float] = {}
    steps: dict[str, float] = {}
    run_start = run_end = 0.0
    for entry in instance.all_logs(run_id):
        kind, at = entry.dagster_event_type, entry.timestamp
        if kind == dg.DagsterEventType.RUN_START:
            run_start = at
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = at
        elif kind == dg.DagsterEventType.STEP_START:
            started[entry.step_key] = at
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            steps[entry.step_key] = at - started[entry.step_key]
    return steps, run_end - run_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--days", type=int, nargs="+", default=[5, 30])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder:
        home = Path(folder) / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MA_DATA_DIR": str(Path(folder) / "data"),
            "MA_SANDBOX_COMPANIES": str(args.units),
        }
        env.pop("MA_WAREHOUSE_URL", None)
        subprocess.run(
            [sys.executable, "-m", "ma_pipeline.bootstrap"],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        os.environ["DAGSTER_HOME"] = str(home)
        newest = date.today() - timedelta(days=1)
        end = newest - timedelta(days=1)
        print(f"{args.units:,} legal units; daily_job backfilled as one run by `dg launch`")
        print(
            "days | steps | steps' own time | run: time, overhead | command: time, overhead"
            " | overhead per step (command)"
        )
        for days in args.days:
            start = end - timedelta(days=days - 1)
            began = time.perf_counter()
            subprocess.run(
                [str(DG), "launch", "--job", "daily_job", "--partition-range", f"{start}...{end}"],
                cwd=REPO,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - began
            with dg.DagsterInstance.get() as instance:
                [run] = instance.get_runs(limit=1)
                assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
                steps, run_seconds = step_seconds(instance, run.run_id)
            floor = sum(steps.values())
            print(
                f"{days:>4} | {len(steps):>5} | {floor:>13.1f} s |"
                f" {run_seconds:.1f} s, {run_seconds - floor:+.1f} s"
                f" ({(run_seconds - floor) / floor:.1%}) |"
                f" {wall:.1f} s, {wall - floor:+.1f} s ({(wall - floor) / floor:.1%}) |"
                f" {(wall - floor) / len(steps):.2f} s",
                flush=True,
            )
            end = start - timedelta(days=1)


if __name__ == "__main__":
    main()
