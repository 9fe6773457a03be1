"""`make serve` (the end of `make run`): one Ctrl-C or one SIGTERM stops the Dagster UI, the API,
the app and every process they started within 10 seconds."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ma_pipeline_tests.processes import (
    REPO,
    alive,
    descendants,
    free_port,
    local_instance,
    wait_until_up,
)

STOPPED_WITHIN = 10.0


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_one_signal_stops_every_service_and_their_children(stop: str, tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    ports = {name: free_port() for name in ("DAGSTER", "API", "APP")}
    env = local_instance(tmp_path)
    make = subprocess.Popen(
        ["make", "-s", "serve", *(f"{k}_PORT={v}" for k, v in ports.items())],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, as a terminal's foreground job
    )
    try:
        wait_until_up(
            [
                f"http://127.0.0.1:{ports['API']}/health",
                f"http://127.0.0.1:{ports['DAGSTER']}/server_info",
                f"http://127.0.0.1:{ports['APP']}/_stcore/health",
            ],
            make,
        )
        started = descendants(make.pid)
        assert len(started) >= 5  # the launcher, dagster dev and its webserver, the API, the app

        if stop == "ctrl-c":  # the terminal sends SIGINT to the foreground group
            os.killpg(make.pid, signal.SIGINT)
        else:
            make.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOPPED_WITHIN
        while time.monotonic() < deadline and (make.poll() is None or any(map(alive, started))):
            time.sleep(0.2)
        lingering = sorted(pid for pid in started if alive(pid))
        assert make.poll() is not None, "make serve is still running"
        assert lingering == [], f"still alive {STOPPED_WITHIN:.0f} s after {stop}: {lingering}"
        output = make.stdout.read().decode() if make.stdout else ""
        assert "Stopping" in output
        assert (tmp_path / "data" / "logs" / "dagster_ui.log").stat().st_size > 0
    finally:
        for pid in descendants(make.pid) | {make.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        make.wait()
