"""Where the company universe comes from: SIRENE files in the landing folder, or the sandbox."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ma_pipeline.ingestion.landing import LandingFile, stock_file_for, stock_files
from ma_pipeline.ingestion.sirene import StockLoad, stock_batches, stock_load
from ma_pipeline.sandbox import universe
from ma_pipeline.settings import SANDBOX_UNITS, LaunchSettings, current


@dataclass(frozen=True)
class Stock:
    """One source of the universe: a landing file, or one day of the sandbox."""

    dated: date  # the file's date (the sandbox: its day): the date it is stored under
    origin: str  # the file's name, or "sandbox"
    fingerprint: str  # changes when the file is replaced: name, size and modification time
    path: Path | None = None  # None: the sandbox


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


class SireneSource(LaunchSettings):
    """The StockUniteLegale of each day: the newest landing file dated on or before it, or, when
    the landing folder holds no SIRENE file at all, the sandbox universe."""

    from_settings: ClassVar[dict[str, str]] = {
        "data_dir": "MA_DATA_DIR",
        "sandbox_companies": "MA_SANDBOX_COMPANIES",
        "min_rows_ratio": "MA_SIRENE_MIN_ROWS_RATIO",
    }

    data_dir: str | None = Field(
        default="data", description="Files go in <data_dir>/landing; None: MA_DATA_DIR at launch"
    )
    sandbox_companies: int | None = Field(
        default=SANDBOX_UNITS,
        description="Active legal units in the sandbox; None: MA_SANDBOX_COMPANIES at launch",
    )
    min_rows_ratio: float | None = Field(
        default=None,
        ge=0,
        description="A stock keeping fewer rows than this share of the stock served before it"
        " fails, and is not stored (0: no check); None: MA_SIRENE_MIN_ROWS_RATIO at launch",
    )
    sandbox_seed: int = Field(default=2026, description="Seed of the sandbox population")
    sandbox_change_rate: float = Field(
        default=universe.CHANGE_RATE,
        gt=0,
        description="Share of the sandbox's units whose SIRENE record changes on a day",
    )

    @property
    def rows_ratio(self) -> float:
        """``min_rows_ratio``, or its variable's value now when it is unset."""
        if self.min_rows_ratio is not None:
            return self.min_rows_ratio
        return float(current("MA_SIRENE_MIN_ROWS_RATIO"))

    @property
    def landing_dir(self) -> Path:
        return Path(self.data_dir).resolve() / "landing"

    def stock_files(self) -> list[LandingFile]:
        return stock_files(self.landing_dir)

    def stock_for(self, day: date) -> Stock:
        """The stock that serves ``day``: the newest landing file dated on or before it, or the
        sandbox's stock of that day when the landing folder holds no SIRENE file."""
        files = self.stock_files()
        if not files:
            drawn = (self.sandbox_companies, self.sandbox_seed, self.sandbox_change_rate)
            seed = "sandbox:" + ":".join(map(str, drawn))
            return Stock(day, "sandbox", seed)
        chosen = stock_file_for(files, day)
        if chosen is None:
            raise FileNotFoundError(
                f"no SIRENE file in {self.landing_dir} is dated on or before {day}; the oldest"
                f" is {files[0].path.name} ({files[0].dated})"
            )
        return Stock(chosen.dated, chosen.path.name, _fingerprint(chosen.path), chosen.path)

    @contextmanager
    def load(self, stock: Stock) -> Iterator[StockLoad]:
        """``stock`` read and validated, in bounded memory; readable inside the block."""
        if stock.path is None:
            rows = universe.stock(
                stock.dated, self.sandbox_companies, self.sandbox_seed, self.sandbox_change_rate
            )
            with stock_load("sandbox", "utf-8", [rows]) as load:
                yield load
            return
        with (
            stock_batches(stock.path) as read,
            stock_load(read.name, read.encoding, read.batches) as load,
        ):
            yield load
