"""The quick start as a new user meets it: `python -m ma_pipeline.bootstrap` on a small sandbox
prints a short summary (its logs go to a file), every table it writes is an asset, and every
example of the README runs as written against what it built, and returns data."""

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from ma_pipeline.definitions import defs
from ma_pipeline.scoring.on_demand import ApiStoreResource
from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline_tests.processes import REPO, VENV_BIN, free_port, local_instance, wait_until_up

# The README's own two commands are what CI runs; every other example runs here.
QUICK_START_COMMANDS = "make run"

# One bootstrap for the module: its tests run on one worker.
pytestmark = pytest.mark.xdist_group("quick_start")


@dataclass(frozen=True)
class QuickStart:
    data_dir: Path
    env: dict[str, str]
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> QuickStart:
    root = tmp_path_factory.mktemp("quick_start")
    env = local_instance(root)
    done = subprocess.run(
        [sys.executable, "-m", "ma_pipeline.bootstrap"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    return QuickStart(root / "data", env, done.stdout, done.stderr)


def test_the_quick_start_prints_progress_and_its_top_targets_and_logs_to_a_file(
    quick_start: QuickStart,
) -> None:
    lines = quick_start.stdout.splitlines()
    log = quick_start.data_dir / "logs" / "bootstrap.log"
    assert lines[0] == f"Full logs: {log}"
    stages = [line for line in lines if re.match(r"\[\d/3\] .* \.\.\. \d+ s$", line)]
    assert len(stages) == 3
    assert sum(line.startswith("    checks: ") for line in lines) == 3
    assert any(line.startswith("Top 10 M&A targets of ") for line in lines)
    assert len(lines) <= 40  # the summary, not the event log
    assert "DEBUG" not in quick_start.stdout
    assert "Warning" not in quick_start.stderr  # Dagster's beta and preview warnings included
    logged = log.read_text()
    assert "STEP_SUCCESS" in logged
    assert "dbt build" in logged


def test_every_table_the_quick_start_writes_is_an_asset(quick_start: QuickStart) -> None:
    warehouse = connect_warehouse("", quick_start.data_dir)
    tables = warehouse.query(
        "SELECT table_schema || '/' || table_name AS key FROM information_schema.tables"
        " WHERE table_schema NOT IN ('information_schema', 'pg_catalog', 'main')"
    )["key"].to_list()
    assets = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert len(tables) > 30
    # A table stored by change keeps its versions and days beside the view of its name.
    stored = {key.removesuffix("__versions").removesuffix("__days") for key in tables}
    assert sorted(stored - assets) == []


def readme_blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def json_answers(output: str) -> Iterator[dict]:
    """The JSON objects in a block's output (curl ends none of them with a newline)."""
    decoder, at = json.JSONDecoder(), output.find("{")
    while at >= 0:
        body, end = decoder.raw_decode(output, at)
        yield body
        at = output.find("{", end)


@pytest.fixture
def api(quick_start: QuickStart) -> Iterator[str]:
    """``ma-api serve`` over the quick start's data, as `make run` serves it."""
    port = free_port()
    server = subprocess.Popen(
        [str(VENV_BIN / "ma-api"), "serve", "--port", str(port)],
        env=quick_start.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up([f"http://127.0.0.1:{port}/health"], server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


@pytest.fixture
def sensor_daemon(quick_start: QuickStart, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What the Dagster daemon of `make run` does for score requests: the sensor's ticks, and
    the runs they ask for."""
    for name in ("DAGSTER_HOME", "MA_DATA_DIR", "MA_SANDBOX_COMPANIES"):
        monkeypatch.setenv(name, quick_start.env[name])
    monkeypatch.delenv("MA_WAREHOUSE_URL", raising=False)
    sensor = defs.resolve_sensor_def("score_requests_sensor")
    job = defs.resolve_job_def("score_requests_job")
    api_store = ApiStoreResource(data_dir=str(quick_start.data_dir))
    stop, failures = threading.Event(), []

    def tick() -> None:
        with dg.DagsterInstance.get() as instance:
            while not stop.wait(1.0):
                context = dg.build_sensor_context(
                    instance=instance, resources={"api_store": api_store}, definitions=defs
                )
                for request in sensor.evaluate_tick(context).run_requests or []:
                    result = job.execute_in_process(
                        run_config=request.run_config,
                        instance=instance,
                        tags=request.tags,
                        raise_on_error=False,
                    )
                    if not result.success:
                        failures.append(result.run_id)

    daemon = threading.Thread(target=tick, daemon=True)
    daemon.start()
    yield
    stop.set()
    daemon.join()
    assert failures == []


def test_every_readme_example_runs_as_written_and_returns_data(
    quick_start: QuickStart, api: str, sensor_daemon: None
) -> None:
    """The SQL on the warehouse, then each shell block in order (keys, requests, the score
    request, a backfill), as `bash -e`; an error, an HTTP error or an empty list fails it."""
    [sql] = readme_blocks("sql")
    with duckdb.connect(str(quick_start.data_dir / "warehouse.duckdb"), read_only=True) as db:
        assert db.sql(sql).fetchall(), f"no rows: {sql}"

    shells = [b for b in readme_blocks("bash") if not b.startswith(QUICK_START_COMMANDS)]
    assert len(shells) >= 3
    env = {**quick_start.env, "PATH": f"{VENV_BIN}{os.pathsep}{quick_start.env['PATH']}"}
    for block in shells:
        script = block.replace("http://localhost:8000", api).replace(".venv/bin/", f"{VENV_BIN}/")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{block}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        for body in json_answers(done.stdout):
            assert body.get("items", [None]), f"an empty list from:\n{block}"
            assert body.get("status", "completed") == "completed", body
    assert httpx.get(f"{api}/health").status_code == 200
