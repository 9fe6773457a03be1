"""What a hostile or careless client cannot do: make huge answers and log lines, slip Unicode
digits through the filters, guess keys at will, or exceed its rates by spreading over workers."""

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
from fastapi.testclient import TestClient

from ma_pipeline.contracts.api_store import score_requests
from ma_pipeline_tests.conftest import IN_CI
from ma_pipeline_tests.serving.conftest import COMPANIES, D1, TESTING, Api
from serving import published as published_module
from serving.app import create_app
from serving.config import ApiSettings
from serving.observability import JsonFormatter
from serving.partition_file import PartitionFile
from serving.store import paris_day

SIREN = COMPANIES[7]
HUGE = "4" * 60_000
duckdb_only = pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)


@duckdb_only
def test_a_huge_input_makes_a_small_422_and_a_small_log_line(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api.key("scores:read", "requests:write")
    with caplog.at_level(logging.INFO, logger="serving.access"):
        answers = [
            api.client.get(f"/v1/companies/{HUGE}", headers=headers),
            api.client.get("/v1/scores", params={"naf": HUGE}, headers=headers),
            api.client.get("/v1/scores", params={HUGE: "1"}, headers=headers),
            api.client.post("/v1/score-requests", json={"siren": HUGE}, headers=headers),
        ]

    for answer in answers:
        assert answer.status_code == 422
        assert len(answer.content) < 500, answer.text[:1000]
        assert "4" * 60 + "…" in answer.json()["detail"]
        assert "4" * 61 not in answer.json()["detail"]
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "serving.access"]
    assert len(lines) == 4
    assert all(len(line) < 1000 for line in lines), max(map(len, lines))


@duckdb_only
def test_many_problems_make_one_short_422(api: Api) -> None:
    params = {f"unknown{i}": "x" for i in range(500)}
    answer = api.client.get("/v1/scores", params=params, headers=api.key("scores:read"))

    assert answer.status_code == 422
    assert len(answer.content) < 2000
    assert answer.json()["detail"].endswith("and 490 more problems")


@duckdb_only
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("naf", "６２"),  # fullwidth
        ("naf", "٦٢"),  # Arabic-Indic
        ("naf", "٦٢.٠١Z"),
        ("departement", "７５"),
        ("departement", "۹۷۴"),  # extended Arabic-Indic
        ("departement", "９7٤"),
        ("region", "١١"),
    ],
)
def test_filters_take_ascii_digits_only(api: Api, name: str, value: str) -> None:
    answer = api.client.get("/v1/scores", params={name: value}, headers=api.key("scores:read"))

    assert answer.status_code == 422, answer.text
    assert "String should match pattern" in answer.json()["detail"]
    parameters = api.client.get("/openapi.json").json()["paths"]["/v1/scores"]["get"]["parameters"]
    [documented] = [p for p in parameters if p["name"] == name]
    pattern = next(s["pattern"] for s in documented["schema"]["anyOf"] if "pattern" in s)
    assert "\\d" not in pattern and "[0-9]" in pattern


@duckdb_only
def test_bad_keys_are_limited_per_client_address(
    serve: Callable[..., Api], published: dict[date, pl.DataFrame]
) -> None:
    api = serve(auth_failures_per_minute=5)
    good = api.key("scores:read")
    path = f"/v1/companies/{SIREN}"
    guesses = [f"ma_{uuid.uuid4().hex[:12]}_guess{i}" for i in range(8)]

    statuses = [api.client.get(path, headers={"X-API-Key": g}).status_code for g in guesses]
    blocked = api.client.get(path, headers=good)  # a valid key from that address: blocked too
    elsewhere = TestClient(api.app, client=("192.0.2.7", 50000))

    assert statuses == [401] * 5 + [429] * 3
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert blocked.json()["detail"].startswith("too many invalid API keys from this address")
    assert elsewhere.get(path, headers=good).status_code == 200
    assert elsewhere.get(path, headers={"X-API-Key": guesses[0]}).status_code == 401


@pytest.fixture
def redis_url() -> str:
    """The local Redis (``MA_TEST_REDIS_URL``, default 127.0.0.1:6379/0): required under CI."""
    url = os.environ.get("MA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"no Redis answers at {url} ({type(exc).__name__})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def two_workers(
    redis_url: str, warehouse_url: str, data_dir: Path, published: dict[date, pl.DataFrame]
) -> Iterator[Callable[..., list[TestClient]]]:
    """Two apps as two workers would run them: same databases, same Redis, a prefix of
    their own so that tests running at once do not share counters."""
    prefix = f"ma_api_test_{uuid.uuid4().hex[:12]}"
    clients: list[TestClient] = []

    def start(**settings: object) -> list[TestClient]:
        config = TESTING | {"redis_url": redis_url, "rate_limit_prefix": prefix} | settings
        for _ in range(2):
            app = create_app(ApiSettings(data_dir=data_dir, warehouse_url=warehouse_url, **config))
            clients.append(TestClient(app).__enter__())
        return clients

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    keys = redis.Redis.from_url(redis_url)
    for key in keys.scan_iter(f"{prefix}*"):
        keys.delete(key)


@duckdb_only
def test_two_workers_on_one_redis_give_a_key_its_rate_once(
    two_workers: Callable[..., list[TestClient]],
) -> None:
    first, second = two_workers(rate_burst=4)
    # 0.05/s with a burst of 4: 4 requests per window of 80 s, whichever worker answers.
    _, token = first.app.state.api_store.create_key("shared", ["scores:read"], 0.05)
    headers = {"X-API-Key": token}
    path = f"/v1/companies/{SIREN}"
    statuses = [
        (first if i % 2 else second).get(path, headers=headers).status_code for i in range(8)
    ]

    assert statuses == [200] * 4 + [429] * 4
    limited = first.get(path, headers=headers)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 80


@duckdb_only
def test_bad_keys_are_counted_across_workers(
    two_workers: Callable[..., list[TestClient]],
) -> None:
    first, second = two_workers(auth_failures_per_minute=4)
    bad = {"X-API-Key": "ma_000000000000_wrong"}
    statuses = [
        (first if i % 2 else second).get(f"/v1/companies/{SIREN}", headers=bad).status_code
        for i in range(6)
    ]

    assert statuses == [401] * 4 + [429] * 2


@duckdb_only
def test_score_requests_are_capped_per_key_per_paris_day(
    serve: Callable[..., Api], published: dict[date, pl.DataFrame]
) -> None:
    api = serve(max_requests_per_day=3)
    headers = api.key("requests:write")
    key_id = headers["X-API-Key"].split("_")[1]
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    with api.store.engine.begin() as conn:  # yesterday's requests do not count
        conn.execute(
            score_requests.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "siren": siren,
                    "status": "completed",
                    "key_id": key_id,
                    "created_at": yesterday,
                    "updated_at": yesterday,
                }
                for siren in COMPANIES[10:15]
            ],
        )

    def ask(siren: str, key: dict[str, str] = headers) -> Any:
        return api.client.post("/v1/score-requests", json={"siren": siren}, headers=key)

    made = [ask(siren) for siren in COMPANIES[:3]]
    for answer in made:  # none pending any more: the daily cap, not the pending one, applies
        api.store.complete_request(uuid.UUID(answer.json()["id"]), {"score_ma": 1.0})
    over = ask(COMPANIES[3])

    assert [a.status_code for a in made] == [202] * 3
    assert over.status_code == 429
    assert over.json()["detail"].startswith("this API key has made 3 score requests today")
    _, midnight = paris_day(datetime.now(UTC))
    to_midnight = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(int(over.headers["Retry-After"]) - to_midnight) <= 5
    assert ask(COMPANIES[3], api.key("requests:write")).status_code == 202


def test_a_paris_day_starts_at_midnight_in_paris() -> None:
    summer = paris_day(datetime(2026, 7, 1, 21, 59, tzinfo=UTC))
    short = paris_day(datetime(2026, 3, 29, 12, tzinfo=UTC))  # 23 hours: clocks go forward

    assert summer == (datetime(2026, 6, 30, 22, tzinfo=UTC), datetime(2026, 7, 1, 22, tzinfo=UTC))
    assert short == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))


@duckdb_only
def test_concurrent_requests_for_an_old_date_share_one_load(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []

    def slow_mapping(path: Path) -> PartitionFile:
        loads.append(path)
        time.sleep(0.3)  # long enough for every request to arrive while it loads
        return PartitionFile(path)

    monkeypatch.setattr(published_module, "PartitionFile", slow_mapping)
    headers = api.key("scores:read")
    start = threading.Barrier(20)

    def ask(_: int) -> int:
        start.wait()
        return api.client.get("/v1/scores", params={"date": D1}, headers=headers).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(ask, range(20)))

    assert statuses == [200] * 20
    assert len(loads) == 1
    assert D1.isoformat() in loads[0].name
    assert api.client.get("/v1/sectors", params={"date": D1}, headers=headers).status_code == 200
    assert len(loads) == 1  # cached since
