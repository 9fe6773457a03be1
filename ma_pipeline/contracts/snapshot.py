"""The published snapshot: Parquet files the API reads on DuckDB, where it cannot open the
warehouse while the pipeline writes. The publication step writes a partition's file before the
publications record lists it, each file replaced atomically."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class SnapshotPaths:
    """Where the published snapshot lives, for the pipeline that writes it and the API."""

    root: Path

    @property
    def publications(self) -> Path:
        return self.root / "publications.parquet"

    def scores(self, day: date) -> Path:
        return self.root / "scores" / f"partition_date={day.isoformat()}" / "scores.parquet"

    @property
    def scores_glob(self) -> str:
        return str(self.root / "scores" / "*" / "scores.parquet")

    @property
    def model_versions(self) -> Path:
        return self.root / "model_versions.parquet"

    @property
    def contacts(self) -> Path:
        return self.root / "contacts.parquet"


def snapshot_paths(data_dir: str | Path) -> SnapshotPaths:
    return SnapshotPaths(Path(data_dir).resolve() / "published")
