"""`python -m ma_pipeline.serve` (`make run`, after the bootstrap): the Dagster UI, the API and
the web app in the foreground, each one's output in a log file.

Each service runs in a process group of its own, so one Ctrl-C (SIGINT) or SIGTERM reaches every
process it started (webserver, daemon, code server, run workers, dbt): they get SIGTERM, and what
is still alive ``GRACE_SECONDS`` later is killed. A service that exits on its own stops the others.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ma_pipeline import settings

GRACE_SECONDS = 5.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


def services(dagster_port: int, api_port: int, app_port: int) -> list[Service]:
    """What `make run` serves, from the venv of this interpreter."""
    venv = Path(sys.executable).parent
    return [
        Service(
            "Dagster UI",
            f"http://localhost:{dagster_port}",
            [str(venv / "dagster"), "dev", "-w", "workspace.yaml", "--port", str(dagster_port)],
        ),
        Service(
            "API",
            f"http://localhost:{api_port}/docs",
            [str(venv / "ma-api"), "serve", "--port", str(api_port)],
        ),
        Service(
            "App",
            f"http://localhost:{app_port}",
            [str(venv / "ma-app"), "--server.port", str(app_port)],
            {"MA_APP_API_URL": f"http://localhost:{api_port}"},
        ),
    ]


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to every group, then SIGKILL to the groups still alive after the grace period."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    # The leader may be gone while its children linger: the group, not the leader, is killed.
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(process.pid, signum)


def serve(to_serve: list[Service], logs: Path) -> int:
    """Start ``to_serve`` with their output under ``logs``; return when a signal asks or one of
    them exits (then 1), after stopping them all."""
    logs.mkdir(parents=True, exist_ok=True)
    asked = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: asked.set())
    processes = []
    try:
        for service in to_serve:
            log = logs / f"{service.name.lower().replace(' ', '_')}.log"
            with log.open("ab") as out:
                processes.append(
                    subprocess.Popen(
                        service.command,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, **service.env},
                    )
                )
            print(f"{service.name}: {service.url}   (log: {log})", flush=True)
        print("Ctrl-C stops them all.", flush=True)
        while not asked.wait(POLL_SECONDS):
            exited = [s for s, p in zip(to_serve, processes, strict=True) if p.poll() is not None]
            if exited:
                print(f"{exited[0].name} exited; stopping the others.", file=sys.stderr)
                return 1
        return 0
    finally:
        print("Stopping...", flush=True)
        _stop(processes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dagster-port", type=int, default=3000)
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--app-port", type=int, default=8501)
    args = parser.parse_args()
    logs = Path(settings.value("MA_DATA_DIR")) / "logs"
    return serve(services(args.dagster_port, args.api_port, args.app_port), logs)


if __name__ == "__main__":
    sys.exit(main())
