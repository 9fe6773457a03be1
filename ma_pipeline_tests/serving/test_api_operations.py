"""What operators rely on: health, metrics, request ids in JSON logs, CORS."""

import json
import logging
import re
import socket
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline_tests.serving.conftest import COMPANIES, D2, Api
from serving.app import create_app
from serving.config import ApiSettings
from serving.observability import JsonFormatter

SIREN = COMPANIES[3]


def test_health_checks_the_store_and_the_api_database(api: Api) -> None:
    response = api.client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"scores": "ok", "api_db": "ok"},
        "served_date": D2.isoformat(),
    }


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_health_is_503_with_the_reason_when_the_snapshot_is_unreadable(
    api: Api, data_dir: Path
) -> None:
    snapshot_paths(data_dir).publications.write_bytes(b"not parquet")

    response = api.client.get("/health")

    assert response.status_code == 503
    health = response.json()
    assert health["status"] == "degraded"
    assert health["checks"] == {"scores": "failing", "api_db": "ok"}
    # The partition in memory keeps being served meanwhile.
    assert api.get(f"/v1/companies/{SIREN}")["date"] == D2.isoformat()


def test_health_tells_no_internals_when_the_warehouse_does_not_answer(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ApiSettings(
        data_dir=data_dir,
        warehouse_url=f"postgresql://secret_user@127.0.0.1:{port}/secret_db?connect_timeout=2",
        api_db_url=f"sqlite:///{data_dir / 'api.sqlite'}",
    )

    with (
        TestClient(create_app(settings)) as client,
        caplog.at_level(logging.WARNING, logger="serving.routes"),
    ):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "checks": {"scores": "failing", "api_db": "ok"},
        "served_date": None,
    }
    for internal in (str(port), "127.0.0.1", "secret_db", "secret_user", "Error", "connect"):
        assert internal not in response.text
    assert "OperationalError" in caplog.text  # the reason is in the server's log


def test_metrics_count_requests_by_route_and_show_the_served_date(api: Api) -> None:
    for _ in range(3):
        api.get(f"/v1/companies/{SIREN}")
    api.client.get("/v1/companies/443061842", headers=api.key("scores:read"))

    metrics = api.client.get("/metrics")

    assert metrics.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.text)
        for s in family.samples
    }
    route = (("method", "GET"), ("route", "/v1/companies/{siren}"))
    assert samples["ma_api_requests_total", (*route, ("status", "200"))] == 3
    assert samples["ma_api_requests_total", (*route, ("status", "422"))] == 1
    midnight = datetime(D2.year, D2.month, D2.day, tzinfo=UTC).timestamp()
    assert samples["ma_api_served_partition_date", ()] == midnight
    assert samples["ma_api_served_companies", ()] == len(COMPANIES)


def test_each_request_is_one_json_log_line_with_its_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api.key("scores:read")
    token = headers["X-API-Key"]
    with caplog.at_level(logging.INFO, logger="serving.access"):
        echoed = api.client.get(
            f"/v1/companies/{SIREN}", headers=headers | {"X-Request-ID": "crm-1"}
        )
        generated = api.client.get(f"/v1/companies/{SIREN}", headers=headers)

    assert echoed.headers["X-Request-ID"] == "crm-1"
    assert len(generated.headers["X-Request-ID"]) == 32
    first, second = (
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "serving.access"
    )
    assert first["request_id"] == "crm-1"
    assert second["request_id"] == generated.headers["X-Request-ID"]
    assert {k: first[k] for k in ("method", "path", "route", "status", "key_id")} == {
        "method": "GET",
        "path": f"/v1/companies/{SIREN}",
        "route": "/v1/companies/{siren}",
        "status": 200,
        "key_id": token.split("_")[1],
    }
    assert first["duration_ms"] > 0
    assert token.split("_", 2)[2] not in caplog.text


def test_cors_answers_only_the_configured_origins(
    serve: Callable[..., Api], published: dict[date, pl.DataFrame]
) -> None:
    preflight = {
        "Origin": "https://crm.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    closed = serve().client.options(f"/v1/companies/{SIREN}", headers=preflight)
    opened = serve(cors_origins=("https://crm.example",)).client.options(
        f"/v1/companies/{SIREN}", headers=preflight
    )

    assert "access-control-allow-origin" not in closed.headers
    assert opened.status_code == 200
    assert opened.headers["access-control-allow-origin"] == "https://crm.example"
    assert "x-api-key" in opened.headers["access-control-allow-headers"].lower()


def test_the_docs_page_loads_everything_from_this_server(api: Api) -> None:
    """No CDN: on a machine without internet the interactive docs still work."""
    page = api.client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        assert api.client.get(url).status_code == 200, url
    assert api.client.get("/openapi.json").json()["info"]["title"] == "ma_pipeline scores API"
