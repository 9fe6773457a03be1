"""Personal data is served only with ``contacts:read``: every GET route of the OpenAPI document,
asked by a key holding every other scope, answers without a contact's field or value, and with no
value for a reason drawn from personal data."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ma_pipeline.contracts.personal import PERSONAL_FEATURES
from ma_pipeline.warehouse import Warehouse
from ma_pipeline_tests.serving.conftest import D1, D2, Api
from ma_pipeline_tests.serving.test_api_routes import SIREN, write_contacts

CONTACT_FIELDS = {"nom", "prenom", "linkedin_slug", "work_email", "phone"}
WITHOUT_CONTACTS = ("scores:read", "requests:write")
# Parameters that make a route answer the most: both days, and every list's reasons.
PARAMS: dict[str, dict[str, Any]] = {
    "/v1/companies/{siren}/scores": {"from": D1, "to": D2},
    "/v1/scores": {"reasons": "true"},
}


def walk(answer: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a JSON answer."""
    if isinstance(answer, dict):
        yield answer
        for value in answer.values():
            yield from walk(value)
    elif isinstance(answer, list):
        for item in answer:
            yield from walk(item)


def test_no_route_serves_personal_data_to_a_key_without_contacts_read(
    api: Api, warehouse: Warehouse, data_dir: Path
) -> None:
    write_contacts(warehouse, data_dir)
    api.refresh()
    headers = api.key(*WITHOUT_CONTACTS)
    request = api.client.post("/v1/score-requests", headers=headers, json={"siren": SIREN}).json()
    values = {"siren": SIREN, "request_id": request["id"]}
    contact_values = {"MARTIN", "DURAND", "claire.martin@exemple.fr", "+33 1 23 45 67 89"}

    swept = {}
    for path, operations in api.app.openapi()["paths"].items():
        if "get" not in operations or not path.startswith("/v1/"):
            continue
        response = api.client.get(
            path.format(**values), params=PARAMS.get(path, {}), headers=headers
        )
        swept[path] = response.status_code
        if response.status_code != 200:
            continue
        assert not contact_values & set(response.text.split('"')), path
        for item in walk(response.json()):
            assert not CONTACT_FIELDS & item.keys(), (path, item)
            if item.get("feature") in PERSONAL_FEATURES:
                assert item.get("value") is None, (path, item)

    assert swept.pop("/v1/companies/{siren}/contacts") == 403
    assert set(swept.values()) == {200}, swept
    assert len(swept) >= 6  # companies, history, scores, sectors, models, movers, requests
