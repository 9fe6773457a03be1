"""The places where the OpenAPI document and the server disagreed (issue 20): each is now
documented as served, and the server answers as documented."""

from pathlib import Path
from typing import Any

import pytest

from ma_pipeline_tests.serving.conftest import D1, D2, Api
from serving.app import create_app
from serving.config import ApiSettings
from serving.schemas import EXAMPLE_SIREN

HISTORY = "/v1/companies/{siren}/scores"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(ApiSettings(data_dir=Path("unused"), api_db_url="sqlite://")).openapi()


def parameter(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    return next(p for p in openapi["paths"][path]["get"]["parameters"] if p["name"] == name)


def test_the_siren_is_documented_as_nine_ascii_digits(openapi: dict[str, Any]) -> None:
    for path in ("/v1/companies/{siren}", HISTORY, "/v1/companies/{siren}/contacts"):
        assert parameter(openapi, path, "siren")["schema"]["pattern"] == "^[0-9]{9}$"
    body = openapi["components"]["schemas"]["ScoreRequestIn"]["properties"]["siren"]
    assert body["pattern"] == "^[0-9]{9}$"


def test_from_after_to_is_a_documented_422(api: Api, openapi: dict[str, Any]) -> None:
    response = api.client.get(
        HISTORY.format(siren=EXAMPLE_SIREN),
        params={"from": D2, "to": D1},
        headers=api.key("scores:read"),
    )
    assert response.status_code == 422
    assert "from is after to" in openapi["paths"][HISTORY]["get"]["responses"]["422"]["description"]


def test_an_empty_cursor_is_a_documented_422(api: Api, openapi: dict[str, Any]) -> None:
    response = api.client.get("/v1/scores", params={"cursor": ""}, headers=api.key("scores:read"))
    assert (response.status_code, response.json()["detail"]) == (
        422,
        "cursor '': String should have at least 1 character",
    )
    cursor = next(s for s in parameter(openapi, "/v1/scores", "cursor")["schema"]["anyOf"])
    assert cursor["minLength"] == 1


@pytest.mark.parametrize(
    ("path", "name"),
    [(HISTORY, "to"), (HISTORY, "from"), ("/v1/scores", "date"), ("/v1/sectors", "date")],
)
def test_a_date_is_yyyy_mm_dd_never_a_unix_time(api: Api, path: str, name: str) -> None:
    headers = api.key("scores:read")
    for value in ("0", "1700000000"):
        response = api.client.get(
            path.format(siren=EXAMPLE_SIREN), params={name: value}, headers=headers
        )
        assert (response.status_code, response.json()["detail"]) == (
            422,
            f"{name} '{value}': must be a date as YYYY-MM-DD",
        )


def test_a_body_that_is_not_json_is_a_documented_422(api: Api, openapi: dict[str, Any]) -> None:
    headers = {**api.key("requests:write"), "Content-Type": "application/json"}
    not_json = api.client.post("/v1/score-requests", content=b"siren=443061841", headers=headers)
    assert not_json.status_code == 422
    not_utf8 = api.client.post("/v1/score-requests", content=b"\xff\xfe{", headers=headers)
    assert not_utf8.status_code == 400
    responses = openapi["paths"]["/v1/score-requests"]["post"]["responses"]
    assert "not JSON" in responses["422"]["description"]
    assert "not JSON" not in responses["400"]["description"]
