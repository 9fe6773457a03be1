"""What the web app reads beyond the first routes: the région filter, reasons in lists and in
history, sectors per région, and the day's movers."""

from datetime import date
from typing import Any

import polars as pl
import pytest

from ma_pipeline.contracts.personal import PERSONAL_FEATURES
from ma_pipeline_tests.serving.conftest import COMPANIES, D1, D2, SPARSE, Api
from ma_pipeline_tests.serving.test_api_routes import pages, row

SIREN = COMPANIES[7]


def test_the_list_filters_on_region(api: Api, published: dict[date, pl.DataFrame]) -> None:
    expected = (
        published[D2]
        .filter(pl.col("region") == "84")
        .sort(["score_ma", "siren"], descending=[True, False])
    )

    seen, _ = pages(api, region="84")

    assert seen == expected["siren"].to_list()
    assert expected.height > 0
    refused = api.client.get("/v1/scores", params={"region": "8"}, headers=api.key("scores:read"))
    assert refused.status_code == 422


def test_a_list_with_reasons_gives_those_of_the_sorted_score(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    plain = api.get("/v1/scores", limit=3, sort="score_croissance")
    page = api.get("/v1/scores", limit=3, sort="score_croissance", reasons=True)

    assert all(item["reasons"] is None for item in plain["items"])
    for item in page["items"]:
        expected = row(published[D2], item["siren"])
        assert [r["contribution"] for r in item["reasons"]] == [
            expected[f"croissance_reason_{k}_contribution"] for k in range(1, 6)
        ]
    # Asking for reasons is not another query: the cursor follows either way.
    after = api.get("/v1/scores", sort="score_croissance", cursor=plain["next_cursor"])
    assert after["items"][0]["siren"] != page["items"][-1]["siren"]


def test_history_gives_each_days_reasons_without_personal_values(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    history = api.get(f"/v1/companies/{SIREN}/scores")["items"]
    sparse = api.get(f"/v1/companies/{SPARSE}/scores")["items"]

    for point, day in zip(history, (D1, D2), strict=True):
        expected = row(published[day], SIREN)
        ma = point["reasons"]["ma"]
        assert [r["contribution"] for r in ma] == [
            expected[f"ma_reason_{k}_contribution"] for k in range(1, 6)
        ]
        assert all(r["value"] is None for r in ma if r["feature"] in PERSONAL_FEATURES)
    assert [len(p["reasons"]["ma"]) for p in sparse] == [3, 3]


def test_sectors_by_region_split_each_division(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    frame = published[D2]
    cell = frame.filter((pl.col("naf_division") == "62") & (pl.col("region") == "11"))

    items = api.get("/v1/sectors", by_region=True)["items"]

    shown = {(s["naf_division"], s["region"]): s for s in items}
    assert set(shown) == set(frame.select("naf_division", "region").unique().rows())
    assert shown["62", "11"]["companies"] == cell.height
    assert shown["62", "11"]["share_score_ma_75"] == pytest.approx((cell["score_ma"] >= 75).mean())
    assert all(s["region"] is None for s in api.get("/v1/sectors")["items"])


def changes(published: dict[date, pl.DataFrame], score: str) -> pl.DataFrame:
    column = f"score_{score}"
    return (
        published[D2]
        .select("siren", column)
        .join(published[D1].select("siren", pl.col(column).alias("before")), on="siren")
        .with_columns(change=pl.col(column) - pl.col("before"))
    )


def test_movers_are_the_largest_changes_since_the_previous_day_with_their_reasons(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    expected = changes(published, "croissance")

    movers = api.get("/v1/movers", score="croissance", limit=5)

    assert (movers["date"], movers["previous_date"]) == (D2.isoformat(), D1.isoformat())
    rises = expected.filter(pl.col("change") > 0).sort("change", descending=True)
    falls = expected.filter(pl.col("change") < 0).sort("change")
    assert [m["siren"] for m in movers["rises"]] == rises["siren"][:5].to_list()
    assert [m["siren"] for m in movers["falls"]] == falls["siren"][:5].to_list()
    top = movers["rises"][0]
    assert top["change"] == pytest.approx(rises["change"][0])
    now, before = (row(published[day], top["siren"]) for day in (D2, D1))

    def moved(reason: dict[str, Any]) -> float:
        return abs(reason["contribution"] - reason["previous_contribution"])

    assert len(top["reasons"]) == 3
    assert [moved(r) for r in top["reasons"]] == sorted(map(moved, top["reasons"]), reverse=True)
    feature = top["reasons"][0]["feature"]
    k = 1 + [now[f"croissance_reason_{k}_feature"] for k in range(1, 6)].index(feature)
    assert top["reasons"][0]["contribution"] == now[f"croissance_reason_{k}_contribution"]
    assert (
        top["reasons"][0]["previous_contribution"] == before[f"croissance_reason_{k}_contribution"]
    )


def test_the_first_published_day_has_no_movers_and_limits_are_bounded(api: Api) -> None:
    first = api.get("/v1/movers", date=D1)
    too_many = api.client.get("/v1/movers", params={"limit": 501}, headers=api.key("scores:read"))
    unscoped = api.client.get("/v1/movers", headers=api.key("contacts:read"))

    assert first == {
        "date": D1.isoformat(),
        "previous_date": None,
        "score": "ma",
        "rises": [],
        "falls": [],
    }
    assert too_many.status_code == 422
    assert unscoped.status_code == 403
