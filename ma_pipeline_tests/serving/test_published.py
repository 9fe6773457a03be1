"""The partition in memory: each company's answer, rendered once when the partition is loaded."""

from datetime import UTC, date, datetime

import numpy as np
import orjson
import polars as pl

from ma_pipeline.contracts.scores import SCORES
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.published import Partition, Publication

DAY = date(2026, 11, 20)


def partition(frame: pl.DataFrame) -> Partition:
    return Partition.build(Publication(DAY, datetime(2026, 11, 20, 3, tzinfo=UTC)), frame)


def test_every_company_gets_its_own_answer_in_a_partition_loaded_in_chunks() -> None:
    """Rendering runs in parallel over a shuffled, multi-chunk frame: the answers must still
    line up with the sorted SIRENs they are looked up by."""
    companies = sirens(150_000)
    frame = ml_scores(DAY, companies).sample(fraction=1.0, shuffle=True, seed=1)
    chunked = pl.concat([frame[:50_000], frame[50_000:90_000], frame[90_000:]], rechunk=False)
    loaded = partition(chunked)

    prefix = len(b'{"siren":"')
    assert all(loaded.company(s)[prefix : prefix + 9] == s.encode() for s in companies)
    expected = frame.row(by_predicate=pl.col("siren") == companies[1234], named=True)
    answer = orjson.loads(loaded.company(companies[1234]))
    assert {s: answer["scores"][s]["value"] for s in SCORES} == {
        s: expected[f"score_{s}"] for s in SCORES
    }
    assert answer["calculated_at"] == "2026-11-20T02:00:00.000000+00:00"
    assert loaded.company(sirens(1, start=90_000_000)[0]) is None


def test_a_missing_number_is_null_in_the_answer_never_nan() -> None:
    """NaN is not JSON: a client's parser would refuse the whole answer."""
    companies = sirens(3)
    frame = ml_scores(DAY, companies).with_columns(
        score_ma=pl.when(pl.col("siren") == companies[0]).then(np.nan).otherwise("score_ma"),
        ma_reason_2_contribution=pl.lit(np.nan),
        ma_reason_5_feature=pl.lit(None, pl.String),
    )

    answer = orjson.loads(partition(frame).company(companies[0]))

    assert answer["scores"]["ma"]["value"] is None
    reasons = answer["scores"]["ma"]["reasons"]
    assert [r["contribution"] is None for r in reasons] == [False, True, False, False]
