"""Kaspr: defensive parsing, the sandbox through the shared client, cache, budget and errors."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ma_pipeline.contracts.tables import API_CACHE, API_USAGE
from ma_pipeline.enrichment.kaspr import (
    KasprQuery,
    KasprResource,
    contacts_frame,
    linkedin_slug,
    parse_profile,
)
from ma_pipeline.enrichment.runner import BadApiKey, CreditsExhausted
from ma_pipeline.partitions import TIMEZONE
from ma_pipeline.sandbox.kaspr_api import KasprSandbox
from ma_pipeline.sandbox.transport import Faults
from ma_pipeline.warehouse import Warehouse, connect_warehouse
from ma_pipeline_tests.conftest import FAST_API

NOW = datetime.now(UTC)  # answers are stamped with the real time they arrive
KEY = "kaspr-secret-key-91d2"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return connect_warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}", tmp_path)


def people(n: int, offset: int = 0) -> list[KasprQuery]:
    return [KasprQuery(f"jean-dupont-{k:05d}", "Jean Dupont") for k in range(offset, offset + n)]


def kaspr(transport: KasprSandbox, **fields: Any) -> KasprResource:
    return KasprResource(**{**FAST_API, "transport": transport, **fields})


def test_parsing_reads_every_alias_and_never_keeps_a_masked_value() -> None:
    payload = {
        "profile": {
            "name": "Jean Dupont",
            "title": "Président",
            "fetchedAt": "2026-01-01T00:00:00Z",
            "company": {"name": "DUPONT SAS"},
            "professionalEmails": ["jean.dupont@dupont.fr", "j***@dupont.fr"],
            "workEmails": ["jean.dupont@dupont.fr", "jd@dupont.fr"],
            "directEmails": ["jean.d@mail.fr"],
            "emails": [{"email": "old@dupont.fr"}, {"email": "perso@mail.fr", "type": "personal"}],
            "phones": ["+33 6 12 34 56 78", {"phoneNumber": "+33 1 23 45 67 89"}, "+336****5678"],
            "starryProfessionalEmail": "j***@dupont.fr",
            "starryPhone": "+336****5678",
        }
    }
    contact = parse_profile(payload, "jean-dupont-12345", NOW)
    assert contact is not None
    assert contact.work_emails == ["jean.dupont@dupont.fr", "jd@dupont.fr", "old@dupont.fr"]
    assert contact.personal_emails == ["jean.d@mail.fr", "perso@mail.fr"]
    assert contact.phones == ["+33 6 12 34 56 78", "+33 1 23 45 67 89"]
    assert (contact.name, contact.title, contact.company_name) == (
        "Jean Dupont",
        "Président",
        "DUPONT SAS",
    )
    stored = contacts_frame([contact])
    assert not any("*" in str(v) for v in stored.row(0))


def test_an_empty_profile_is_a_miss() -> None:
    assert parse_profile({"profile": {}}, "x-y-z", NOW) is None
    assert parse_profile({"profile": {"starryPhone": "+336****5678"}}, "x-y-z", NOW) is None


@pytest.mark.parametrize(
    ("given", "slug"),
    [
        ("jean-dupont-12345", "jean-dupont-12345"),
        ("https://www.linkedin.com/in/jean-dupont-12345/", "jean-dupont-12345"),
        ("https://www.linkedin.com/sales/lead/ACwAAA,NAME", None),
        ("", None),
    ],
)
def test_only_bare_slugs_are_sent(given: str, slug: str | None) -> None:
    assert linkedin_slug(given) == slug


def test_lookups_through_the_sandbox_then_the_cache(warehouse: Warehouse) -> None:
    """The sandbox refuses requests without the Bearer key or accept-version: a success shows
    the headers are right."""
    transport = KasprSandbox(seed=1, api_key=KEY)
    resource = kaspr(transport, api_key=KEY)
    run = resource.lookup(people(12), warehouse, now=NOW)
    assert transport.requests == 12 == run.counters.calls
    assert len(run.records) + len(run.negatives) == 12 and not run.failures
    assert run.records and all(c.work_emails or c.phones for c in run.records.values())
    assert run.credits == sum(c.data_types for c in run.records.values())

    again = resource.lookup(people(12), warehouse, now=NOW + timedelta(hours=5))
    assert transport.requests == 12 and again.cache_hits == 12
    later = resource.lookup(people(12), warehouse, now=NOW + timedelta(hours=7))
    assert transport.requests == 24 and later.cache_hits == 0  # the 6-hour TTL has passed


def test_the_daily_budget_caps_the_calls(warehouse: Warehouse) -> None:
    noon = datetime.now(ZoneInfo(TIMEZONE)).replace(hour=12)  # budgets count Paris days
    transport = KasprSandbox(seed=1)
    resource = kaspr(transport, daily_credit_budget=10)  # 2 data types: 5 calls at most
    run = resource.lookup(people(8), warehouse, now=noon)
    assert transport.requests == 5
    assert [f.kind for f in run.failures.values()] == ["over_budget"] * 3
    spent = warehouse.read(API_USAGE)["credits"].sum()
    assert 0 < spent <= 10
    next_run = resource.lookup(people(8, offset=100), warehouse, now=noon + timedelta(hours=1))
    assert transport.requests == 5 + int((10 - spent) // 2)
    tomorrow = resource.lookup(people(3, offset=200), warehouse, now=noon + timedelta(days=1))
    assert not tomorrow.failures and next_run.failures


def test_no_credits_stops_the_run_and_keeps_what_was_fetched(warehouse: Warehouse) -> None:
    transport = KasprSandbox(seed=1, api_key=KEY, credits=4)
    run = kaspr(transport, api_key=KEY).lookup(people(10), warehouse, now=NOW)
    assert isinstance(run.fatal, CreditsExhausted) and "402" in str(run.fatal)
    assert transport.requests == 5  # four answers, then the 402 that stopped the run
    assert warehouse.read(API_CACHE).height == 4
    assert sum(f.kind == "credits_exhausted" for f in run.failures.values()) == 6


def test_a_bad_key_is_told_apart_and_never_shown(warehouse: Warehouse) -> None:
    transport = KasprSandbox(seed=1, api_key="the-right-one")
    run = kaspr(transport, api_key=KEY).lookup(people(5), warehouse, now=NOW)
    assert isinstance(run.fatal, BadApiKey) and "bad API key" in str(run.fatal)
    assert transport.requests == 1
    assert KEY not in str(run.fatal) and KEY not in repr(run)
    assert KEY not in repr(kaspr(transport, api_key=KEY))


def test_rate_limits_and_server_errors_are_retried(warehouse: Warehouse) -> None:
    faults = Faults(rate_429=0.3, rate_500=0.2, retry_after_s=0)
    transport = KasprSandbox(seed=1, faults=faults, fault_seed=2)
    run = kaspr(transport, max_attempts=10).lookup(people(20), warehouse, now=NOW)
    assert not run.failures and run.counters.retries == transport.requests - 20 > 0


def test_not_found_is_cached_as_a_negative_answer(warehouse: Warehouse) -> None:
    transport = KasprSandbox(seed=1)
    resource = kaspr(transport)
    run = resource.lookup(people(40), warehouse, now=NOW)
    assert transport.statuses[404] > 0 and len(run.negatives) >= transport.statuses[404]
    again = resource.lookup(people(40), warehouse, now=NOW + timedelta(hours=1))
    assert again.negatives == run.negatives and transport.requests == 40


def test_a_person_without_a_usable_slug_is_not_sent(warehouse: Warehouse) -> None:
    transport = KasprSandbox(seed=1)
    queries = [KasprQuery("https://www.linkedin.com/sales/people/abc", "Jean Dupont")]
    run = kaspr(transport).lookup([*queries, *people(1)], warehouse, now=NOW)
    assert transport.requests == 1
    assert [f.kind for f in run.failures.values()] == ["invalid_slug"]
