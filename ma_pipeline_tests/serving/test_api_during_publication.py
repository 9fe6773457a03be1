"""The API keeps answering while the pipeline writes and publishes a partition on DuckDB, and
switches from the old partition to the new one at once."""

import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from ma_pipeline.warehouse import Warehouse
from ma_pipeline_tests.factories import ml_scores, sirens
from ma_pipeline_tests.serving.conftest import D1, D2, Api, publish_day

SIREN = sirens(1)[0]


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_reads_go_on_while_a_large_partition_is_written_and_published(
    serve: Callable[..., Api], warehouse: Warehouse, data_dir: Path
) -> None:
    old = ml_scores(D1, sirens(1_000), seed=1)
    new = ml_scores(D2, sirens(30_000), seed=2)
    expected = {
        str(frame["partition_date"][0]): frame.filter(pl.col("siren") == SIREN)["score_ma"].item()
        for frame in (old, new)
    }
    publish_day(warehouse, data_dir, old)
    api = serve(refresh_seconds=0.01)  # the real background refresh, checking all the time
    headers = api.key("scores:read")
    writer = threading.Thread(target=publish_day, args=(warehouse, data_dir, new))

    answers: list[tuple[int, str, float, bool]] = []
    writer.start()
    while writer.is_alive() or not answers or answers[-1][1] != str(D2):
        writing = writer.is_alive()
        response = api.client.get(f"/v1/companies/{SIREN}", headers=headers)
        body = response.json()
        answers.append(
            (
                response.status_code,
                body.get("date"),
                body.get("scores", {}).get("ma", {}).get("value"),
                writing and writer.is_alive(),
            )
        )
        assert len(answers) < 1_000_000, "the new partition was never served"
    writer.join()

    assert {status for status, *_ in answers} == {200}
    assert sum(during for *_, during in answers) > 0  # answered while the write was under way
    dates = [day for _, day, _, _ in answers]
    assert dates[0] == str(D1) and dates == sorted(dates)  # old, then new, never back
    assert all(score == expected[day] for _, day, score, _ in answers)  # never a mix
