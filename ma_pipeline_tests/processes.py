"""Servers the tests start as processes: free ports, waiting until they answer, their children."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ma_pipeline_tests.conftest import SANDBOX_UNITS

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def local_instance(root: Path) -> dict[str, str]:
    """`make run`'s setting under ``root``: a Dagster instance of ``deploy/dagster.local.yaml``,
    the DuckDB warehouse and the test sandbox's size; the environment its processes get."""
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MA_DATA_DIR": str(root / "data"),
        "MA_SANDBOX_COMPANIES": str(SANDBOX_UNITS),
    }
    env.pop("MA_WAREHOUSE_URL", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(urls: list[str], process: subprocess.Popen, timeout: float = 180.0) -> None:
    """Until each of ``urls`` answers (any status), failing if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting:
        assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"not answering after {timeout:.0f} s: {waiting}"
        try:
            httpx.get(waiting[0], timeout=2.0)
            waiting.pop(0)
        except httpx.TransportError:
            time.sleep(0.5)


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, or stopped: not gone and not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
