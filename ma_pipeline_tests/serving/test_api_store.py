"""The API's own store (keys, score requests) on SQLite and PostgreSQL, and the ma-api CLI."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ma_pipeline.contracts.api_store import sqlalchemy_url
from serving.auth import KeyRing
from serving.cli import main
from serving.store import ApiKey, ApiStore, IdempotencyConflict, TooManyPending, api_keys

SIREN, OTHER = "443061841", "552100554"


@pytest.fixture
def cli_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DuckDB mode, whatever the shell running the tests exports."""
    for name in ("MA_WAREHOUSE_URL", "MA_API_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    return data_dir


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'api' / 'api.sqlite'}"
    else:
        url = sqlalchemy_url(request.getfixturevalue("pg_url"))
    store = ApiStore(url)
    store.create_tables()
    store.create_tables()  # idempotent: every process creates them at start
    yield store
    store.dispose()


def test_keys_are_stored_hashed_and_checked_by_id(store: ApiStore) -> None:
    key, token = store.create_key("crm", ["scores:read", "contacts:read"], rate_per_second=5)
    _, key_id, secret = token.split("_", 2)

    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys)).mappings().one()
    found = store.get_key(key_id)

    assert key_id == key.id and len(secret) >= 43
    assert secret not in str(dict(stored)) and stored["secret_sha256"] != secret
    assert found is not None and found.matches(secret) and not found.matches(secret + "x")
    assert found.scopes == {"scores:read", "contacts:read"} and found.rate_per_second == 5
    assert store.revoke_key(key_id) and not store.revoke_key(key_id)
    assert store.get_key(key_id).revoked_at is not None


def test_one_query_per_key_at_a_time_and_expired_rows_answer_while_it_runs(
    store: ApiStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load every request in flight finds an expired row at once: one query for them all,
    and none of them waits for it."""
    key, token = store.create_key("crm", ["scores:read"])
    asked = []
    get_key = store.get_key

    def slow_get_key(key_id: str) -> ApiKey | None:
        asked.append(key_id)
        time.sleep(0.05)
        if len(asked) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database restarting"))
        return get_key(key_id)

    monkeypatch.setattr(store, "get_key", slow_get_key)
    ring = KeyRing(store, cache_seconds=0.5)

    async def requests(n: int) -> list[ApiKey | BaseException | None]:
        return await asyncio.gather(*(ring.verify(token) for _ in range(n)), return_exceptions=True)

    async def after_expiry() -> tuple[list[ApiKey | BaseException | None], ApiKey | None]:
        during = await requests(64)
        await asyncio.sleep(0.3)  # the refresh lands
        return during, await ring.verify(token)

    failed = asyncio.run(requests(64))
    answered = asyncio.run(requests(64))
    assert len(asked) == 2  # one query for the 64 that failed, one for the 64 answered
    assert all(isinstance(f, sa.exc.OperationalError) for f in failed)
    assert all(isinstance(a, ApiKey) and a.id == key.id for a in answered)
    assert asyncio.run(ring.verify(token + "x")) is None and len(asked) == 2

    store.revoke_key(key.id)
    time.sleep(0.6)  # the cached row expires
    during, after = asyncio.run(after_expiry())

    assert all(isinstance(d, ApiKey) for d in during)  # the last row read, while asking again
    assert after is None and len(asked) == 3  # the revocation, read by one query


def test_unknown_scopes_are_refused(store: ApiStore) -> None:
    with pytest.raises(ValueError, match=r"unknown scope\(s\) scores:write; use scores:read"):
        store.create_key("crm", ["scores:write"])


def test_a_request_is_pending_until_completed_or_failed_once(store: ApiStore) -> None:
    key, _ = store.create_key("crm", ["requests:write"])
    first, created = store.create_request(SIREN, key.id, idempotency_key="k1")
    again, created_again = store.create_request(SIREN, key.id, idempotency_key="k1")
    second, _ = store.create_request(OTHER, key.id)

    assert created and not created_again and again == first
    with pytest.raises(IdempotencyConflict, match="'k1' was used for siren '443061841'"):
        store.create_request(OTHER, key.id, idempotency_key="k1")
    assert [r.id for r in store.pending_requests()] == [first.id, second.id]

    completed = store.complete_request(first.id, {"score_ma": 70.0})
    failed = store.fail_request(second.id, "no financial statements")

    assert (completed.status, completed.result) == ("completed", {"score_ma": 70.0})
    assert (failed.status, failed.failure_reason) == ("failed", "no financial statements")
    assert completed.updated_at >= completed.created_at
    assert store.pending_requests() == []
    with pytest.raises(LookupError, match="is not pending"):
        store.fail_request(first.id, "too late")
    assert store.get_request(first.id) == completed


def test_a_pending_request_for_the_same_siren_is_returned_and_pending_ones_are_bounded(
    store: ApiStore,
) -> None:
    """Each request costs an enrichment call when scored: a key asking again for a SIREN it is
    waiting for gets its pending request back, and may have ``max_pending`` requests at most."""
    key, _ = store.create_key("crm", ["requests:write"])
    other, _ = store.create_key("erp", ["requests:write"])
    first, created = store.create_request(SIREN, key.id, max_pending=2)
    again, created_again = store.create_request(SIREN, key.id, max_pending=2)
    assert created and not created_again and again == first
    store.create_request(OTHER, key.id, max_pending=2)

    with pytest.raises(TooManyPending, match="has 2 pending score requests"):
        store.create_request("552032534", key.id, max_pending=2)
    assert store.create_request("552032534", other.id, max_pending=2)[1]  # per key

    store.complete_request(first.id, {"score_ma": 70.0})
    assert store.create_request("552032534", key.id, max_pending=2)[1]  # room again
    fresh, created_fresh = store.create_request(SIREN, key.id)  # the first one is done
    assert created_fresh and fresh.id != first.id


def test_the_cli_creates_lists_and_revokes_keys(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--name", "crm", "--scopes", "scores:read,contacts:read"]) == 0
    created = capsys.readouterr().out
    token = created.splitlines()[-1]
    key_id = token.split("_")[1]
    assert created.startswith(f"key {key_id} (crm) with scopes contacts:read, scores:read")

    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert main(["keys", "revoke", key_id]) == 0
    assert main(["keys", "revoke", key_id]) == 1
    assert main(["keys", "list"]) == 0
    after = capsys.readouterr()

    assert listed.startswith(f"{key_id}  crm  contacts:read,scores:read  default rate")
    assert listed.rstrip().endswith("active")
    assert token.split("_", 2)[2] not in listed
    assert f"no active key '{key_id}'" in after.err
    assert "revoked" in after.out.splitlines()[-1]
    assert (cli_env / "api.sqlite").exists()  # DuckDB mode: never in the warehouse


def test_the_cli_refuses_an_unknown_scope(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--name", "x", "--scopes", "admin"]) == 2
    assert "unknown scope(s) admin" in capsys.readouterr().err
