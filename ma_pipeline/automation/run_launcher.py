"""The run launcher of the instance configs (``deploy/``): Dagster's default launcher, plus the
health check that run monitoring needs to see a run whose worker died.

Without it a killed or out-of-memory run stays STARTED for ever and keeps its slot of the
``warehouse`` pool, so every later run waits. The worker records its pid when it starts (the
"Started process for run" engine event); the check looks for that process on this machine, so
it fits deployments whose code servers run beside the daemon (both configs of ``deploy/``).
"""

import os
from pathlib import Path
from typing import NamedTuple

import dagster as dg

# A custom launcher's health check answers with types Dagster does not export publicly (custom
# launchers under run monitoring: dagster#6632); revisit on upgrades.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

WORKER_STARTED = "Started process for run"


class Worker(NamedTuple):
    pid: int
    recorded_at: float  # when it recorded its pid (epoch seconds)


def run_worker(instance: dg.DagsterInstance, run_id: str) -> Worker | None:
    """The run's worker, as it recorded itself when it started."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if entry.message.startswith(WORKER_STARTED):
            pid = entry.dagster_event.engine_event_data.metadata.get("pid")
            return None if pid is None else Worker(int(pid.value), entry.timestamp)
    return None


def is_alive(worker: Worker) -> bool:
    """The worker's process still runs: its pid is live, not a zombie, and the process under it
    started before the worker recorded itself (not a later one that got the pid since)."""
    try:
        fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = Path("/proc/stat").read_text().split("btime ", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    started = float(boot) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0] != "Z" and started <= worker.recorded_at + 1.0


class LocalRunLauncher(dg.DefaultRunLauncher):
    """Runs in a process of the code server, as ``DefaultRunLauncher``; run monitoring marks a
    run failed once its worker process is gone (its pool slots are then freed)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None:  # STARTED before its pid is read: give it the benefit of the doubt
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid recorded yet")
        if is_alive(worker):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the run's worker process (pid {worker.pid}) is gone"
        )
