"""Routes on both backends: what a client reads, and every error it can get."""

import functools
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ma_pipeline.contracts.scores import PROFILE, SCORES, TOP_REASONS
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import KASPR_CONTACTS, ML_SCORES, MODEL_VERSIONS, PUBLISHED_SCORES
from ma_pipeline.scoring.publication import publish, write_score_versions
from ma_pipeline.warehouse import Warehouse
from ma_pipeline_tests.factories import FEATURES, sirens
from ma_pipeline_tests.serving.conftest import (
    COMPANIES,
    D1,
    D2,
    D3,
    SPARSE,
    Api,
    partition,
    publish_day,
)

SIREN = COMPANIES[7]
UNKNOWN = sirens(1, start=90_000_000)[0]  # valid, never scored


def row(frame: pl.DataFrame, siren: str) -> dict[str, Any]:
    return frame.filter(pl.col("siren") == siren).row(0, named=True)


def test_a_company_has_its_profile_latest_scores_and_reasons(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    expected = row(published[D2], SIREN)

    company = api.get(f"/v1/companies/{SIREN}")

    assert company["date"] == D2.isoformat()
    assert company["profile"] == {c: expected[c] for c in PROFILE}
    assert company["confidence"] == expected["confidence"]
    for score in SCORES:
        shown = company["scores"][score]
        assert shown["value"] == expected[f"score_{score}"]
        assert shown["model_version"] == expected[f"model_version_{score}"]
        assert [r["feature"] for r in shown["reasons"]] == [
            expected[f"{score}_reason_{k}_feature"] for k in range(1, TOP_REASONS + 1)
        ]
        assert shown["reasons"][0]["contribution"] == expected[f"{score}_reason_1_contribution"]


def test_missing_values_show_as_null_and_absent_reasons_are_left_out(api: Api) -> None:
    company = api.get(f"/v1/companies/{SPARSE}")

    assert company["profile"]["region"] is None
    assert company["confidence"] is None
    assert [r["feature"] for r in company["scores"]["ma"]["reasons"]] == list(FEATURES[:3])
    assert len(company["scores"]["croissance"]["reasons"]) == TOP_REASONS


def test_a_bad_or_unknown_siren_says_what_is_wrong(api: Api) -> None:
    headers = api.key("scores:read", "contacts:read")
    invalid = {
        "443061842": "siren '443061842': check digit is wrong (Luhn)",
        "44306184": "siren '44306184': must be 9 digits",
        "4430618AB": "siren '4430618AB': must be 9 digits",
    }
    for siren, detail in invalid.items():
        for route in ("", "/scores", "/contacts"):
            response = api.client.get(f"/v1/companies/{siren}{route}", headers=headers)
            assert (response.status_code, response.json()) == (422, {"detail": detail})

    unknown = api.client.get(f"/v1/companies/{UNKNOWN}", headers=headers)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"detail": f"siren '{UNKNOWN}' is not in the scores published for {D2}"},
    )
    assert api.get(f"/v1/companies/{UNKNOWN}/scores") == {"siren": UNKNOWN, "items": []}


def test_nothing_is_served_before_the_first_publication(serve: Callable[..., Api]) -> None:
    api = serve()
    headers = api.key("scores:read")

    for path in (f"/v1/companies/{SIREN}", "/v1/scores", "/v1/sectors"):
        response = api.client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "no partition has been published yet"}
    assert api.client.get("/health").json()["served_date"] is None


def test_history_shows_published_days_only(
    api: Api, warehouse: Warehouse, data_dir: Path, published: dict[date, pl.DataFrame]
) -> None:
    # D3 is scored, and its copy for readers written, but no publication lists it yet (a
    # publication under way, or one that stopped half-way): it must not show.
    unlisted = partition(D3, seed=3)
    warehouse.replace_partitions(ML_SCORES, unlisted, [D3])
    warehouse.replace_partitions(PUBLISHED_SCORES, unlisted, [D3])
    if warehouse.dialect == "duckdb":
        write_score_versions(warehouse, snapshot_paths(data_dir))

    history = api.get(f"/v1/companies/{SIREN}/scores")
    bounded = api.get(f"/v1/companies/{SIREN}/scores", **{"from": D2, "to": D3})

    assert [p["date"] for p in history["items"]] == [D1.isoformat(), D2.isoformat()]
    assert [p["scores"]["ma"] for p in history["items"]] == [
        row(published[day], SIREN)["score_ma"] for day in (D1, D2)
    ]
    assert [p["date"] for p in bounded["items"]] == [D2.isoformat()]
    response = api.client.get(
        f"/v1/companies/{SIREN}/scores",
        params={"from": D2, "to": D1},
        headers=api.key("scores:read"),
    )
    assert response.status_code == 422
    assert response.json() == {"detail": f"from ({D2}) is after to ({D1})"}


def pages(api: Api, **query: Any) -> tuple[list[str], int]:
    """Every SIREN of a listing, following cursors, and how many pages it took."""
    headers = api.key("scores:read")
    seen: list[str] = []
    count, cursor = 0, None
    while True:
        params = {**query, "limit": 7} | ({"cursor": cursor} if cursor else {})
        response = api.client.get("/v1/scores", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["siren"] for item in page["items"]]
        count += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, count


LISTINGS: list[tuple[dict[str, Any], pl.Expr]] = [
    ({}, pl.lit(True)),
    (
        {"min_score_ma": 40, "departement": "75"},
        (pl.col("score_ma") >= 40) & (pl.col("departement") == "75"),
    ),
    ({"naf": "62.01Z"}, pl.col("activite_principale") == "62.01Z"),
    ({"naf": "47", "sort": "score_croissance"}, pl.col("naf_division") == "47"),
    (
        {"naf": "J", "min_score_stabilite": 30, "sort": "score_stabilite"},
        (pl.col("naf_section") == "J") & (pl.col("score_stabilite") >= 30),
    ),
]


def test_pages_list_every_match_once_in_order(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    for query, where in LISTINGS:
        sort = query.get("sort", "score_ma")
        expected = published[D2].filter(where).sort([sort, "siren"], descending=[True, False])

        seen, count = pages(api, **query)

        # None twice, none missed, ties (60 companies share score_ma 50) broken by SIREN.
        assert seen == expected["siren"].to_list(), query
        assert count == max(1, -(-expected.height // 7))  # pages of 7, one when empty


def test_a_cursor_keeps_its_date_when_a_newer_day_is_published(
    api: Api, warehouse: Warehouse, data_dir: Path, published: dict[date, pl.DataFrame]
) -> None:
    headers = api.key("scores:read")
    first = api.client.get("/v1/scores", params={"limit": 100}, headers=headers).json()

    publish_day(warehouse, data_dir, partition(D3, seed=3))
    api.refresh()
    second = api.client.get(
        "/v1/scores", params={"limit": 200, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    fresh = api.client.get("/v1/scores", headers=headers).json()

    assert second["date"] == D2.isoformat()
    listed = [i["siren"] for i in first["items"] + second["items"]]
    assert (
        listed
        == published[D2].sort(["score_ma", "siren"], descending=[True, False])["siren"].to_list()
    )
    assert fresh["date"] == D3.isoformat()


def test_an_older_published_date_can_be_listed(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    page = api.get("/v1/scores", date=D1, limit=3, sort="score_croissance")

    assert page["date"] == D1.isoformat()
    assert [i["scores"]["croissance"] for i in page["items"]] == published[D1][
        "score_croissance"
    ].sort(descending=True)[:3].to_list()


def test_scores_errors_say_what_is_wrong(api: Api) -> None:
    headers = api.key("scores:read")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"cursor": "not-a-cursor"}, 400, "cursor is not valid: pass next_cursor as returned"),
        ({"date": "2026-01-01"}, 404, "no published scores for 2026-01-01"),
        ({"limit": 501}, 422, "limit '501': Input should be less than or equal to 500"),
        ({"min_score_ma": 101}, 422, "min_score_ma '101': Input should be less than or equal"),
        ({"naf": "6201"}, 422, "naf '6201': String should match pattern"),
        ({"departement": "7"}, 422, "departement '7': String should match pattern"),
        ({"sort": "nom"}, 422, "sort 'nom': Input should be 'score_ma'"),
        ({"colour": "red"}, 422, "colour 'red': Extra inputs are not permitted"),
    ]
    for params, status, detail in cases:
        response = api.client.get("/v1/scores", params=params, headers=headers)
        assert response.status_code == status, params
        assert response.json()["detail"].startswith(detail)
    sectors = api.client.get("/v1/sectors", params={"date": "2026-01-01"}, headers=headers)
    assert (sectors.status_code, sectors.json()) == (
        404,
        {"detail": "no published scores for 2026-01-01"},
    )


def test_a_cursor_from_another_query_is_refused(api: Api) -> None:
    headers = api.key("scores:read")
    cursor = api.get("/v1/scores", min_score_ma=10, limit=5)["next_cursor"]

    for params in ({"min_score_ma": 20}, {"min_score_ma": 10, "date": D1}, {"sort": "score_ma"}):
        response = api.client.get(
            "/v1/scores", params={**params, "cursor": cursor}, headers=headers
        )
        assert response.status_code == 400
        assert response.json() == {
            "detail": "cursor belongs to another query: keep the filters and sort"
        }


def test_sectors_summarise_score_ma_per_naf_division(
    api: Api, published: dict[date, pl.DataFrame]
) -> None:
    frame = published[D1]
    division = frame.filter(pl.col("naf_division") == "62")["score_ma"]

    sectors = api.get("/v1/sectors", date=D1)

    assert sectors["date"] == D1.isoformat()
    shown = {s["naf_division"]: s for s in sectors["items"]}
    assert set(shown) == set(frame["naf_division"])
    assert shown["62"]["companies"] == division.len()
    assert shown["62"]["mean_score_ma"] == pytest.approx(division.mean())
    assert shown["62"]["p90_score_ma"] == pytest.approx(division.quantile(0.9, "linear"))
    assert shown["62"]["share_score_ma_75"] == pytest.approx((division >= 75).mean())
    assert api.get("/v1/sectors")["date"] == D2.isoformat()


def test_models_lists_the_champions_once_training_wrote_them(
    api: Api, warehouse: Warehouse, data_dir: Path
) -> None:
    assert api.get("/v1/models") == {"items": []}
    versions = pl.DataFrame(
        {
            "score": ["ma", "ma", "croissance"],
            "model_name": ["ma_pipeline_ma", "ma_pipeline_ma", "ma_pipeline_croissance"],
            "version": ["3", "4", "2"],
            "alias": ["champion", "challenger", "champion"],
            "run_id": ["r3", "r4", "r2"],
            "created_at": pl.Series([D1, D2, D1]).cast(pl.Datetime("us", "UTC")),
            "metrics_json": ['{"auc": 0.81}', '{"auc": 0.79}', '{"rmse": 4.2}'],
            "decision": ["promoted", "kept as challenger", "promoted"],
        }
    )
    warehouse.replace_table(MODEL_VERSIONS, versions)
    republish(warehouse, data_dir, D2)  # the API reads what the publication step wrote

    models = api.get("/v1/models")["items"]

    assert [(m["score"], m["version"], m["metrics"]) for m in models] == [
        ("croissance", "2", {"rmse": 4.2}),
        ("ma", "3", {"auc": 0.81}),
    ]


def write_contacts(warehouse: Warehouse, data_dir: Path) -> None:
    """Two lookups of SIREN's contacts: only the latest (D2) is served."""
    contacts = pl.DataFrame(
        {
            "partition_date": [D1, D2, D2],
            "siren": [SIREN] * 3,
            "nom": ["ANCIEN", "MARTIN", "DURAND"],
            "prenom": ["Paul", "Claire", "Luc"],
            "qualite": ["Gérant", "Présidente", "Directeur général"],
            "linkedin_slug": ["paul-ancien", "claire-martin", None],
            "work_email": ["paul@old.fr", "claire.martin@exemple.fr", None],
            "phone": [None, "+33 1 23 45 67 89", None],
            "status": ["found", "found", "no_slug"],
            "fetched_at": pl.Series([D1, D2, D2]).cast(pl.Datetime("us", "UTC")),
        }
    )
    warehouse.replace_partitions(KASPR_CONTACTS, contacts, [D1, D2])
    republish(warehouse, data_dir, D1, D2)


def republish(warehouse: Warehouse, data_dir: Path, *days: date) -> None:
    """Publish ``days`` again, as the nightly run does once contacts or models changed."""
    snapshot = snapshot_paths(data_dir) if warehouse.dialect == "duckdb" else None
    for day in days:
        publish(warehouse, day, run_id=f"again-{day}", snapshot=snapshot)


def test_contacts_need_the_contacts_scope_and_appear_nowhere_else(
    api: Api, warehouse: Warehouse, data_dir: Path
) -> None:
    path = f"/v1/companies/{SIREN}/contacts"
    assert api.get(path, "contacts:read") == {"siren": SIREN, "items": []}
    write_contacts(warehouse, data_dir)

    refused = api.client.get(path, headers=api.key("scores:read", "requests:write"))
    contacts = api.get(path, "contacts:read")["items"]

    assert refused.status_code == 403
    assert refused.json() == {"detail": "this API key lacks the scope contacts:read"}
    assert [(c["nom"], c["status"]) for c in contacts] == [
        ("DURAND", "no_slug"),
        ("MARTIN", "found"),
    ]
    everything = api.key("scores:read", "contacts:read", "requests:write")
    for other in (f"/v1/companies/{SIREN}", f"/v1/companies/{SIREN}/scores", "/v1/scores"):
        assert "claire" not in api.client.get(other, headers=everything).text.lower()


def test_keys_are_required_valid_active_and_scoped(api: Api) -> None:
    path = f"/v1/companies/{SIREN}"
    token = api.key("contacts:read")["X-API-Key"]
    key_id = token.split("_")[1]

    missing = api.client.get(path)
    forged = api.client.get(path, headers={"X-API-Key": token[:-4] + "AAAA"})
    unscoped = api.client.get(path, headers={"X-API-Key": token})
    api.store.revoke_key(key_id)
    revoked = api.client.get(path, headers={"X-API-Key": token})

    assert (missing.status_code, missing.json()) == (
        401,
        {"detail": "missing API key: send it in the X-API-Key header"},
    )
    assert missing.headers["WWW-Authenticate"] == "APIKey"
    assert forged.status_code == revoked.status_code == 401
    assert revoked.json() == {"detail": "invalid or revoked API key"}
    assert (unscoped.status_code, unscoped.json()) == (
        403,
        {"detail": "this API key lacks the scope scores:read"},
    )


def test_a_key_over_its_rate_gets_429_with_retry_after(
    serve: Callable[..., Api], published: dict[date, pl.DataFrame]
) -> None:
    api = serve(rate_burst=3)
    slow = api.key("scores:read", rate=0.01)  # 3 requests (the burst) per window of 300 s
    other = api.key("scores:read")

    statuses = [
        api.client.get(f"/v1/companies/{SIREN}", headers=slow).status_code for _ in range(4)
    ]
    limited = api.client.get("/v1/scores", headers=slow)

    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    assert limited.json()["detail"].startswith("rate limit of this API key exceeded")
    assert api.client.get(f"/v1/companies/{SIREN}", headers=other).status_code == 200


def test_score_requests_go_from_pending_to_completed_or_failed(api: Api) -> None:
    headers = api.key("requests:write")
    post = {"headers": headers | {"Idempotency-Key": "crm-42"}, "json": {"siren": UNKNOWN}}

    created = api.client.post("/v1/score-requests", **post)
    retried = api.client.post("/v1/score-requests", **post)
    other_siren = api.client.post(
        "/v1/score-requests", headers=post["headers"], json={"siren": SIREN}
    )
    failing = api.client.post("/v1/score-requests", headers=headers, json={"siren": SIREN}).json()

    assert created.status_code == retried.status_code == 202
    request_id = created.json()["id"]
    assert created.headers["Location"] == f"/v1/score-requests/{request_id}"
    assert retried.json() == created.json()
    assert created.json()["status"] == "pending"
    assert other_siren.status_code == 422
    assert "was used for siren" in other_siren.json()["detail"]
    assert [str(r.id) for r in api.store.pending_requests()] == [request_id, failing["id"]]

    # What the sensor does once it has scored (or failed to score) each pending request.
    pending = {str(r.id): r.id for r in api.store.pending_requests()}
    api.store.complete_request(pending[request_id], {"score_ma": 71.5})
    api.store.fail_request(pending[failing["id"]], "siren unknown to SIRENE")

    done = api.client.get(f"/v1/score-requests/{request_id}", headers=headers).json()
    failed = api.client.get(f"/v1/score-requests/{failing['id']}", headers=headers).json()
    assert (done["status"], done["result"]) == ("completed", {"score_ma": 71.5})
    assert (failed["status"], failed["failure_reason"]) == ("failed", "siren unknown to SIRENE")
    assert api.store.pending_requests() == []
    stranger = api.client.get(f"/v1/score-requests/{request_id}", headers=api.key("requests:write"))
    assert stranger.status_code == 404


def test_a_key_cannot_pile_up_score_requests(serve: Callable[..., Api]) -> None:
    api = serve(max_pending_requests=2)
    headers = api.key("requests:write")
    post = functools.partial(api.client.post, "/v1/score-requests", headers=headers)

    first = post(json={"siren": SIREN}).json()
    assert [post(json={"siren": SIREN}).json()["id"] for _ in range(5)] == [first["id"]] * 5
    assert post(json={"siren": UNKNOWN}).status_code == 202
    refused = post(json={"siren": "552032534"})

    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "2 pending score requests" in refused.json()["detail"]
    assert len(api.store.pending_requests()) == 2


def test_a_score_request_for_a_bad_siren_is_refused(api: Api) -> None:
    headers = api.key("requests:write")
    for body, detail in (
        ({"siren": "443061842"}, "siren '443061842': check digit is wrong (Luhn)"),
        ({}, "siren: Field required"),
    ):
        response = api.client.post("/v1/score-requests", headers=headers, json=body)
        assert (response.status_code, response.json()) == (422, {"detail": detail})
    assert api.store.pending_requests() == []


def test_score_requests_need_the_requests_scope(api: Api) -> None:
    response = api.client.post(
        "/v1/score-requests", headers=api.key("scores:read"), json={"siren": SIREN}
    )

    assert (response.status_code, response.json()) == (
        403,
        {"detail": "this API key lacks the scope requests:write"},
    )
