"""Public Dagster APIs only: each use of a private one (``dagster._``, the instance's event-log
storage) carries, on the line above, why and the upstream issue it waits on, so an upgrade
knows what to revisit."""

import re
from pathlib import Path

import ma_pipeline
import serving

PRIVATE = re.compile(r"dagster\._|\.event_log_storage\b")
JUSTIFIED = re.compile(r"#.*\bdagster#\d+")


def private_uses() -> dict[str, str]:
    """``path:line`` -> the line, for every private use not justified on the line above."""
    found = {}
    for package in (ma_pipeline, serving):
        for path in Path(package.__file__).parent.rglob("*.py"):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines):
                if not PRIVATE.search(line) or line.lstrip().startswith("#"):
                    continue
                if number == 0 or not JUSTIFIED.search(lines[number - 1]):
                    found[f"{path.name}:{number + 1}"] = line.strip()
    return found


def test_every_private_dagster_api_use_names_its_upstream_issue() -> None:
    assert private_uses() == {}
