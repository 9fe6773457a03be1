"""The CSV export of the Targets page, against the real API: every filtered company once, read
page by page."""

import csv
import io

import polars as pl
import pytest

from app import client
from app.client import Api
from app.export import export_csv
from ma_pipeline_tests.app.conftest import D3, LiveApi


def test_the_export_follows_every_page_of_the_filtered_list(
    live_api: LiveApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client, "PAGE_LIMIT", 7)  # many pages out of a small day
    expected = (
        live_api.days[D3]
        .filter(pl.col("naf_division") == "62")
        .sort(["score_ma", "siren"], descending=[True, False])
    )

    text = export_csv(Api(live_api.url, live_api.key("scores:read")), {"naf": "62"}).decode()

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["siren"] for r in rows] == expected["siren"].to_list()
    assert all(r["top_reasons"] for r in rows)


def test_an_export_that_fails_says_so_in_the_file(live_api: LiveApi) -> None:
    text = export_csv(Api(live_api.url, "ma_0_bad"), {}).decode()

    assert text.splitlines()[-1].startswith("# export stopped: The API key is missing, invalid")
