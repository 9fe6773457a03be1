"""A run whose worker is killed does not stall the pipeline: under the instance config of `make
run` and the real daemon, run monitoring marks the run failed and frees its slot of the
``warehouse`` pool, and the run waiting behind it gets the warehouse."""

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from ma_pipeline.automation.run_launcher import is_alive, run_worker
from ma_pipeline.warehouse import WAREHOUSE_POOL
from ma_pipeline_tests.processes import REPO, VENV_BIN, local_instance

# Run monitoring polls every 15 s and frees a dead run's slots 5 s after it ended.
RECOVERED_WITHIN = 90.0


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`dagster-daemon run` over the code location, on a fresh instance of `make run`'s config;
    its environment."""
    env = local_instance(tmp_path)
    with (tmp_path / "daemon.log").open("wb") as log:
        process = subprocess.Popen(
            [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server and run workers share its group
        )
    try:
        yield env
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def launch(env: dict[str, str], partition: str) -> str:
    """Queue a daily_job run for ``partition``, as the UI would; its run id."""
    run_id = str(uuid.uuid4())
    tags = json.dumps({"dagster/partition": partition})
    subprocess.run(
        [
            *(str(VENV_BIN / "dagster"), "job", "launch", "-w", "workspace.yaml"),
            *("-j", "daily_job", "--tags", tags, "--run-id", run_id),
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    return run_id


def test_a_killed_run_is_failed_and_the_next_run_gets_the_warehouse(
    daemon: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", daemon["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:

        def holders() -> set[str]:
            return instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids

        killed = launch(daemon, "2026-12-01")
        wait_for(lambda: killed in holders(), 180, "the first run takes the warehouse")
        worker = run_worker(instance, killed)
        assert worker is not None and is_alive(worker)
        os.kill(worker.pid, signal.SIGKILL)
        waiting = launch(daemon, "2026-12-02")

        wait_for(lambda: waiting in holders(), RECOVERED_WITHIN, "the next run gets the warehouse")
        run = instance.get_run_by_id(killed)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        assert killed not in holders()
        assert not is_alive(worker)
