"""The published snapshot: Parquet files the API reads on DuckDB, where it cannot open the
warehouse while the pipeline writes. The publication step writes the scores before the
publications record lists their day, each file replaced atomically; a day's scores are the
versions valid that day."""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SnapshotPaths:
    """Where the published snapshot lives, for the pipeline that writes it and the API."""

    root: Path

    @property
    def publications(self) -> Path:
        return self.root / "publications.parquet"

    @property
    def score_versions(self) -> Path:
        """published_scores as it is stored (``warehouse.changes``): each version of a company's
        row with the days it holds, [valid_from, valid_to), sorted by SIREN."""
        return self.root / "score_versions.parquet"

    @property
    def score_days(self) -> Path:
        """Where earlier releases kept one full file per published day (removed on publication)."""
        return self.root / "scores"

    @property
    def model_versions(self) -> Path:
        return self.root / "model_versions.parquet"

    @property
    def contacts(self) -> Path:
        return self.root / "contacts.parquet"


def snapshot_paths(data_dir: str | Path) -> SnapshotPaths:
    return SnapshotPaths(Path(data_dir).resolve() / "published")
