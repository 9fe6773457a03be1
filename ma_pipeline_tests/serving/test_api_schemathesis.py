"""Schemathesis over the app's own OpenAPI, with positive and negative data: no server error, no
answer that breaks the schema (status codes, content types, headers and bodies all as
documented), every request the schema allows accepted and every one it forbids rejected.

Positive cases are made valid where the schema cannot say what valid is; nothing else is
excluded (``_make_valid``):

- a SIREN's last digit is a Luhn check digit: JSON Schema has no checksum, so the generated
  9 digits get the right last digit (a wrong one is a 422, tested in test_api_routes);
- ``from`` after ``to`` on ``/v1/companies/{siren}/scores`` is a 422: the schema cannot relate
  two parameters, so they are put in order (the 422 is tested in test_api_openapi_matches);
- a ``cursor`` is opaque, only a ``next_cursor`` the server returned is valid: it is dropped
  from positive cases (any other string is a 400, tested in test_api_routes);
- an ``Idempotency-Key`` used again for another SIREN is a 422 (as the IETF idempotency-key
  draft says): state, not schema, so each positive case gets a key of its own.

The schema is the app's OpenAPI document, loaded at import; each case is sent to an app over
published data built by a fixture. (``schemathesis.pytest.from_fixture`` would load it from the
fixture directly, but schemathesis 4.32 sets ``Node._nodeid``, which pytest 9.2 no longer has.)
"""

import uuid
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ma_pipeline.contracts.siren import siren_problem
from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline_tests.factories import ml_scores
from ma_pipeline_tests.serving.conftest import COMPANIES, D1, D2, TESTING, publish_day
from serving.app import create_app
from serving.config import ApiSettings
from serving.schemas import EXAMPLE_SIREN
from serving.store import SCOPES, ApiStore

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]


@pytest.fixture
def app_and_token(data_dir: Path) -> tuple[FastAPI, str]:
    """An app over two published days (DuckDB snapshot) that include the SIREN of the OpenAPI
    examples, and a key with every scope."""
    warehouse = connect_warehouse("", data_dir)
    for day, seed in ((D1, 1), (D2, 2)):
        publish_day(warehouse, data_dir, ml_scores(day, [*COMPANIES[:50], EXAMPLE_SIREN], seed))
    config = ApiSettings(data_dir=data_dir, **TESTING)
    store = ApiStore(config.api_database)
    store.create_tables()
    _, token = store.create_key("schemathesis", list(SCOPES))
    return create_app(config), token


schema = schemathesis.openapi.from_dict(
    create_app(ApiSettings(data_dir=Path("unused"), api_db_url="sqlite://")).openapi()
)
schema.config.generation.update(modes=list(GenerationMode))


def _luhn(siren: str) -> str:
    """9 digits: ``siren``'s first 8 and the check digit that makes them a valid SIREN."""
    return next(
        candidate for digit in "0123456789" if siren_problem(candidate := siren[:8] + digit) is None
    )


def _nine_digits(value: object) -> bool:
    return isinstance(value, str) and len(value) == 9 and value.isascii() and value.isdigit()


def _make_valid(case: schemathesis.Case) -> None:
    """A positive case made valid where the schema cannot say what valid is (see the module)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.path_parameters and _nine_digits(siren := case.path_parameters.get("siren")):
        case.path_parameters["siren"] = _luhn(siren)
    if isinstance(case.body, dict) and _nine_digits(siren := case.body.get("siren")):
        case.body["siren"] = _luhn(siren)
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.query:
        case.query.pop("cursor", None)
        start, end = case.query.get("from"), case.query.get("to")
        if isinstance(start, str) and isinstance(end, str) and start > end:
            case.query["from"], case.query["to"] = end, start


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_honours_its_openapi(
    case: schemathesis.Case, app_and_token: tuple[FastAPI, str]
) -> None:
    app, token = app_and_token
    _make_valid(case)
    case.call_and_validate(app=app, headers={"X-API-Key": token}, checks=CHECKS)
