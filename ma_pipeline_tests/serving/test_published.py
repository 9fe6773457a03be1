"""The partition file: written once per publication in SIREN blocks, mapped by every worker, each
company's answer found by SIREN."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from ma_pipeline.contracts.scores import SCORES
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.partition_file import PartitionFile, UnsortedPartition, write_partition_file
from serving.published import Publication, Served, file_name

DAY = date(2026, 11, 20)


def blocks(frame: pl.DataFrame, *sizes: int) -> Iterator[pl.DataFrame]:
    """``frame`` sorted by SIREN, cut into blocks of ``sizes`` (then the rest)."""
    frame = frame.sort("siren")
    start = 0
    for size in [*sizes, frame.height]:
        yield frame[start : start + size]
        start += size


def test_every_company_gets_its_own_answer_from_a_file_written_in_blocks(tmp_path: Path) -> None:
    """Blocks of uneven sizes (an empty first one, as the stores give): each answer must still
    line up with the SIREN it is looked up by, and a SIREN between or beyond them is absent."""
    companies = sirens(150_000)
    frame = ml_scores(DAY, companies).sample(fraction=1.0, shuffle=True, seed=1)
    path = tmp_path / "day.arrow"

    written = write_partition_file(blocks(frame, 0, 50_000, 40_000), path)
    loaded = PartitionFile(path)

    assert written == loaded.rows == 150_000
    prefix = len(b'{"siren":"')
    assert all(loaded.answer(s)[prefix : prefix + 9] == s.encode() for s in companies)
    expected = frame.row(by_predicate=pl.col("siren") == companies[1234], named=True)
    answer = orjson.loads(loaded.answer(companies[1234]))
    assert {s: answer["scores"][s]["value"] for s in SCORES} == {
        s: expected[f"score_{s}"] for s in SCORES
    }
    assert answer["calculated_at"] == "2026-11-20T02:00:00.000000+00:00"
    absent = [sirens(1, start=90_000_000)[0], "000000000", "999999999"]
    assert [loaded.answer(s) for s in absent] == [None, None, None]
    assert loaded.frame.sort("siren")["siren"].to_list() == sorted(companies)


def test_a_missing_number_is_null_in_the_answer_never_nan(tmp_path: Path) -> None:
    """NaN is not JSON: a client's parser would refuse the whole answer."""
    companies = sirens(3)
    frame = ml_scores(DAY, companies).with_columns(
        score_ma=pl.when(pl.col("siren") == companies[0]).then(np.nan).otherwise("score_ma"),
        ma_reason_2_contribution=pl.lit(np.nan),
        ma_reason_5_feature=pl.lit(None, pl.String),
    )
    write_partition_file(blocks(frame), tmp_path / "day.arrow")

    answer = orjson.loads(PartitionFile(tmp_path / "day.arrow").answer(companies[0]))

    assert answer["scores"]["ma"]["value"] is None
    reasons = answer["scores"]["ma"]["reasons"]
    assert [r["contribution"] is None for r in reasons] == [False, True, False, False]


def test_blocks_out_of_siren_order_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    frame = ml_scores(DAY, sirens(1_000)).sort("siren")
    path = tmp_path / "day.arrow"

    with pytest.raises(UnsortedPartition, match=r"day\.arrow: .* not in increasing SIREN order"):
        write_partition_file(iter([frame[500:], frame[:500]]), path)

    assert list(tmp_path.iterdir()) == []


class Store:
    """A published store of whole partitions, counting the partitions it is asked for."""

    def __init__(self, frames: dict[Publication, pl.DataFrame]) -> None:
        self.frames = frames
        self.asked: list[date] = []

    def publications(self) -> list[Publication]:
        return sorted(self.frames, reverse=True)

    def blocks(self, day: date, rows: int) -> Iterator[pl.DataFrame]:
        self.asked.append(day)
        [frame] = [f for p, f in self.frames.items() if p.day == day]
        return blocks(frame, rows)


def publication(day: date) -> Publication:
    return Publication(day, datetime(day.year, day.month, day.day, 3, tzinfo=UTC))


def test_workers_share_one_file_per_publication_and_old_files_are_removed(
    tmp_path: Path,
) -> None:
    """The second worker maps the file the first wrote, without reading the store; as newer
    partitions are published, the directory keeps only the newest few files."""
    days = [date(2026, 11, d) for d in range(10, 16)]
    frames = {publication(d): ml_scores(d, sirens(300)) for d in days}
    store = Store({p: f for p, f in frames.items() if p.day == days[0]})
    first, second = Served(store, tmp_path), Served(store, tmp_path)

    first.refresh()
    second.refresh()

    assert store.asked == [days[0]]
    name = file_name(publication(days[0]))
    assert sorted(p.name for p in tmp_path.glob("*.arrow")) == [name]
    siren = sirens(300)[7]
    assert first.partition(None).company(siren) == second.partition(None).company(siren)
    for day in days[1:]:
        store.frames[publication(day)] = frames[publication(day)]
        first.refresh()
    kept = {file_name(publication(d)) for d in days[-first.kept_files :]}
    assert {p.name for p in tmp_path.glob("*.arrow")} == kept
    assert second.partition(None).company(siren) is not None  # its mapped file still reads


def test_a_partition_with_no_company_is_served_empty(tmp_path: Path) -> None:
    empty = ml_scores(DAY, sirens(3)).clear()

    assert write_partition_file(iter([empty]), tmp_path / "day.arrow") == 0

    loaded = PartitionFile(tmp_path / "day.arrow")
    assert loaded.rows == 0 and loaded.answer(sirens(1)[0]) is None
    assert loaded.frame.columns[:4] == [
        "siren",
        "nom_entreprise",
        "activite_principale",
        "departement",
    ]
