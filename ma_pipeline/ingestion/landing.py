"""The landing folder: which SIRENE stock file serves which partition date.

Naming convention: ``StockUniteLegale*.csv``, ``.csv.gz`` or ``.parquet`` in
``$MA_DATA_DIR/landing/``.
A file is dated by the first date in its name, read as ``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYY-MM``
(the 1st of the month) or ``YYYY`` (1 January); a name without a date is dated by the file's
modification time (Europe/Paris). A partition uses the newest file dated on or before its date;
two files with the same date are ordered by name.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

PARIS = ZoneInfo("Europe/Paris")
STOCK_FILE = re.compile(r"^StockUniteLegale.*\.(csv|csv\.gz|parquet)$", re.IGNORECASE)
_DATE_IN_NAME = (
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})-(\d{2})(?![\d-])"),
    re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)"),
)


@dataclass(frozen=True)
class LandingFile:
    path: Path
    dated: date
    dated_by: str  # "name" or "mtime"


def landed(landing_dir: Path, pattern: re.Pattern[str]) -> list[Path]:
    """The files of ``landing_dir`` whose name matches ``pattern``, in name order."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and pattern.match(p.name))


@dataclass(frozen=True)
class Download:
    """Files a user downloads into the landing folder: which names, said how to a user, the
    function that reads them all, and the error it raises for a bad file."""

    pattern: re.Pattern[str]
    named: str
    read: Callable[[list[Path]], pl.DataFrame]
    error: type[Exception]

    def files(self, landing_dir: Path) -> list[Path]:
        return landed(landing_dir, self.pattern)


def file_date(path: Path) -> tuple[date, str]:
    """The date a landing file stands for, and whether its name or its mtime gave it."""
    for pattern in _DATE_IN_NAME:
        match = pattern.search(path.name)
        if match:
            year, month, day = (int(g) for g in (*match.groups(), 1, 1)[:3])
            try:
                return date(year, month, day), "name"
            except ValueError:
                continue  # e.g. 20261399: not a date, try the next form
    return datetime.fromtimestamp(path.stat().st_mtime, PARIS).date(), "mtime"


def stock_files(landing_dir: Path) -> list[LandingFile]:
    """SIRENE stock files in ``landing_dir``, oldest first."""
    if not landing_dir.is_dir():
        return []
    files = [
        LandingFile(path, *file_date(path))
        for path in landing_dir.iterdir()
        if path.is_file() and STOCK_FILE.match(path.name)
    ]
    return sorted(files, key=lambda f: (f.dated, f.path.name))


def stock_file_for(files: list[LandingFile], day: date) -> LandingFile | None:
    """The newest file dated on or before ``day``."""
    eligible = [f for f in files if f.dated <= day]
    return eligible[-1] if eligible else None
