"""Schemathesis over the app's own OpenAPI: no server error, and no answer that breaks the schema
(status codes, content types, headers and bodies all as documented).

The schema is the app's OpenAPI document, loaded at import; each case is sent to an app over
published data built by a fixture. (``schemathesis.pytest.from_fixture`` would load it from the
fixture directly, but schemathesis 4.32 sets ``Node._nodeid``, which pytest 9.2 no longer has.)
"""

from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_honours_its_openapi(
    case: schemathesis.Case, app_and_token: tuple[FastAPI, str]
) -> None:
    app, token = app_and_token
    case.call_and_validate(app=app, headers={"X-API-Key": token}, checks=CHECKS)
