"""Where the company universe comes from: SIRENE files in the landing folder, or the sandbox."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ma_pipeline.ingestion.landing import LandingFile, stock_file_for, stock_files
from ma_pipeline.ingestion.sirene import StockFile, ValidatedStock, read_stock_file, validate
from ma_pipeline.sandbox import universe
from ma_pipeline.settings import LaunchSettings


@dataclass
class DailyStock:
    day: date
    origin: str  # the file's name, or "sandbox"
    stock: ValidatedStock


class SireneSource(LaunchSettings):
    """The StockUniteLegale of each day: the newest landing file dated on or before it, or, when
    the landing folder holds no SIRENE file at all, the sandbox universe."""

    from_settings: ClassVar[dict[str, str]] = {
        "data_dir": "MA_DATA_DIR",
        "sandbox_companies": "MA_SANDBOX_COMPANIES",
    }

    data_dir: str | None = Field(
        default="data", description="Files go in <data_dir>/landing; None: MA_DATA_DIR at launch"
    )
    sandbox_companies: int | None = Field(
        default=20_000,
        description="Active companies in the sandbox; None: MA_SANDBOX_COMPANIES at launch",
    )
    sandbox_seed: int = Field(default=2026, description="Seed of the sandbox population")

    @property
    def landing_dir(self) -> Path:
        return Path(self.data_dir).resolve() / "landing"

    def stock_files(self) -> list[LandingFile]:
        return stock_files(self.landing_dir)

    def daily_stocks(self, days: list[date]) -> Iterator[DailyStock]:
        """The validated stock of each day; a file used by several days is read once."""
        files = self.stock_files()
        validated: dict[Path, ValidatedStock] = {}
        for day in days:
            if not files:
                rows = universe.stock(day, self.sandbox_companies, self.sandbox_seed)
                yield DailyStock(day, "sandbox", validate(StockFile("sandbox", rows, "utf-8")))
                continue
            chosen = stock_file_for(files, day)
            if chosen is None:
                raise FileNotFoundError(
                    f"no SIRENE file in {self.landing_dir} is dated on or before {day}; the oldest"
                    f" is {files[0].path.name} ({files[0].dated})"
                )
            if chosen.path not in validated:
                validated[chosen.path] = validate(read_stock_file(chosen.path))
            yield DailyStock(day, chosen.path.name, validated[chosen.path])
