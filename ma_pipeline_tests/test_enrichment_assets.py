"""pappers_enrichment as Dagster runs it, on DuckDB and PostgreSQL, against the Pappers sandbox.

What is asserted comes from the sandbox transport's own counters (requests, arrival times,
answers per SIREN) and from the tables, not from the asset's report of itself.
"""

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.contracts.keys import COMPANY_FEATURES as FEATURES
from ma_pipeline.contracts.tables import API_CACHE, BODACC_NOTICES, ML_SCORES, PAPPERS_COMPANIES
from ma_pipeline.contracts.tables import COMPANY_FEATURES as FEATURES_TABLE
from ma_pipeline.enrichment.assets import last_scores, pappers_enrichment
from ma_pipeline.enrichment.pappers import PappersResource
from ma_pipeline.features.assets import company_features
from ma_pipeline.ingestion.assets import raw_companies, target_companies
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.sandbox.pappers_api import PappersSandbox
from ma_pipeline.sandbox.transport import Faults
from ma_pipeline.warehouse import TableRef, Warehouse, connect_warehouse
from ma_pipeline_tests.conftest import SANDBOX_AS_OF, SANDBOX_UNITS, make_resources
from ma_pipeline_tests.factories import ml_scores, sirens

DAY = "2025-06-02"
COMPANIES = TableRef("enrichment", "pappers_companies")
DIRIGEANTS = TableRef("enrichment", "pappers_dirigeants")
FAILURES = TableRef("enrichment", "enrichment_failures")
TARGETS = TableRef("ingestion", "target_companies")
ENRICHMENT_KEYS = [
    dg.AssetKey(["enrichment", name])
    for name in (
        "pappers_companies",
        "pappers_finances",
        "pappers_dirigeants",
        "pappers_procedures",
        "enrichment_failures",
    )
]
KEY = "pk_live_do-not-leak-7f3a9c"


def sandbox(n: int = SANDBOX_UNITS, **kwargs: Any) -> PappersSandbox:
    return PappersSandbox(n, 2026, as_of=SANDBOX_AS_OF, **kwargs)


def materialize(
    resources: dict[str, Any],
    partition: str = DAY,
    *,
    with_raw: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_companies, target_companies, pappers_enrichment],
        selection=None if with_raw else ENRICHMENT_KEYS,
        partition_key=partition,
        resources=resources,
        raise_on_error=False,
        instance=instance,
    )


def metadata(result: dg.ExecuteInProcessResult, table: str = "pappers_companies") -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["enrichment", table])
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [event] = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data.description or ""


def targets(warehouse: Warehouse, day: str = DAY) -> set[str]:
    """The day's target companies: the only ones enriched."""
    rows = warehouse.read(TARGETS, start=date.fromisoformat(day), end=date.fromisoformat(day))
    return set(rows["siren"])


def test_a_partition_is_enriched_then_served_from_the_cache(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    transport = sandbox()
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": transport})
    first = materialize(resources)
    assert first.success
    companies = targets(warehouse)
    assert transport.requests == len(companies) and max(transport.answered.values()) == 1
    day = date.fromisoformat(DAY)
    raw = warehouse.read(TableRef("ingestion", "raw_companies"), start=day, end=day)
    opted_out = set(raw.filter(pl.col("statut_diffusion") == "P")["siren"])
    assert opted_out and not opted_out & set(transport.answered)  # never enriched
    stored = warehouse.read(COMPANIES)
    assert set(stored["siren"]) == companies
    assert warehouse.read(DIRIGEANTS)["age"].drop_nulls().min() >= 18
    facts = metadata(first)
    assert facts["mode"].startswith("sandbox")
    assert (facts["calls"], facts["cache_hits"]) == (len(companies), 0)
    assert facts["estimated_credits"] == len(companies)
    assert facts["rows"]["pappers_companies"] == len(companies)
    people = metadata(first, "pappers_dirigeants")
    assert people["personal_data"] is True and "preview" not in people
    names = warehouse.read(DIRIGEANTS)["nom"].drop_nulls()
    assert not any(name in str(people) for name in names.head(50))  # no dirigeant shown

    again = materialize(resources, with_raw=False)
    assert again.success
    assert transport.requests == len(companies)  # not one more HTTP call
    assert (metadata(again)["calls"], metadata(again)["cache_hits"]) == (0, len(companies))
    assert warehouse.read(COMPANIES).height == len(companies)


def processed(warehouse: Warehouse, day: str) -> dict[str, object]:
    """SIREN -> its SIRENE record's last processing, in that day's raw_companies."""
    rows = warehouse.read(
        TableRef("ingestion", "raw_companies"),
        start=date.fromisoformat(day),
        end=date.fromisoformat(day),
        columns=["siren", "date_dernier_traitement"],
    )
    return dict(rows.iter_rows())


def test_a_later_partition_fetches_only_what_is_new_changed_or_old(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """Credits follow change: of a later day's targets, only those never fetched, those whose
    SIRENE record was processed again and those whose answer passed the maximum age are asked
    for; the others are served from their stored answers."""
    transport = sandbox()
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": transport})
    assert materialize(resources).success
    features = [raw_companies, target_companies, pappers_enrichment, company_features]
    assert dg.materialize(features, selection=[FEATURES], partition_key=DAY, resources=resources)
    first_day = date.fromisoformat(DAY)
    known_then = {
        table: warehouse.read(table, start=first_day, end=first_day).sort(pl.all())
        for table in (COMPANIES, FEATURES_TABLE)
    }
    warehouse.execute(
        f"UPDATE {API_CACHE.sql} SET fetched_at = fetched_at - INTERVAL '31 days'"
        f" WHERE key IN (SELECT key FROM {API_CACHE.sql} ORDER BY key LIMIT 25)"
    )
    old = set(warehouse.query(f"SELECT key FROM {API_CACHE.sql} ORDER BY key LIMIT 25")["key"])
    before = transport.answered.copy()
    next_day = str(date.fromisoformat(DAY) + timedelta(days=40))
    result = materialize(resources, next_day)
    assert result.success

    fetched = set((transport.answered - before).keys())
    today, first = targets(warehouse, next_day), targets(warehouse)
    then, now = processed(warehouse, DAY), processed(warehouse, next_day)
    changed = {s for s in today & first if then[s] != now[s]}
    assert changed and old - changed  # the sandbox's records change, some answers only age
    assert fetched == (today - first) | changed | (today & old)
    facts = metadata(result)
    assert facts["calls_saved"] == len(today) - len(fetched) > 0.5 * len(today)
    assert facts["due_by_reason"]["new"] == len(today - first)

    # Stored per fetch: only companies fetched that day can have new rows, the first day still
    # reads what was known then, and so do its features, computed again after the later fetch.
    versions = warehouse.query(
        f"SELECT DISTINCT siren FROM {PAPPERS_COMPANIES.versions.sql} WHERE valid_from = $1",
        [date.fromisoformat(next_day)],
    )
    assert set(versions["siren"]) <= fetched
    assert facts["rows_stored"] <= len(fetched) < len(today)
    assert dg.materialize(features, selection=[FEATURES], partition_key=DAY, resources=resources)
    for table, rows in known_then.items():
        assert warehouse.read(table, start=first_day, end=first_day).sort(pl.all()).equals(rows)


def test_a_bodacc_notice_after_a_stored_answer_fetches_that_company_again(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """Notices stored by the bodacc asset trigger fetches: the company a new notice names is
    fetched again the next run, the one whose notice is older than its answer is not."""
    transport = sandbox()
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": transport})
    assert materialize(resources).success
    news, known = sorted(targets(warehouse))[:2]
    fetched_on = datetime.now(UTC).date()
    notices = pl.DataFrame(
        {
            "id": ["A-1", "A-2"],
            "dateparution": [fetched_on + timedelta(days=1), fetched_on - timedelta(days=3)],
            "familleavis": ["dpc", "modification"],
            "sirens": [[news], [known]],
        },
        schema_overrides={"sirens": pl.List(pl.String)},
    )
    warehouse.replace_table(BODACC_NOTICES, notices)
    before = transport.answered.copy()

    again = materialize(resources, with_raw=False)

    assert again.success and set((transport.answered - before).keys()) == {news}
    assert metadata(again)["due_by_reason"] == {"new": 0, "changed": 0, "event": 1, "old": 0}


def test_the_daily_call_budget_is_never_exceeded_and_the_backlog_comes_first_later(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    transport = sandbox()
    resources = make_resources(
        data_dir, warehouse_url, pappers={"transport": transport, "daily_calls": 30}
    )
    first = materialize(resources)
    assert first.success
    companies = targets(warehouse)
    assert transport.requests == 30
    facts = metadata(first)
    assert (facts["backlog"], facts["call_budget"]) == (len(companies) - 30, 30)
    assert warehouse.read(COMPANIES).height == len(set(transport.answered) & companies)

    again = materialize(resources, with_raw=False)  # the same calendar day: the budget is spent
    assert again.success and transport.requests == 30
    more = make_resources(
        data_dir, warehouse_url, pappers={"transport": transport, "daily_calls": 60}
    )
    before = set(transport.answered)
    assert materialize(more, with_raw=False).success
    later = set(transport.answered) - before
    assert len(later) == 30 and later <= companies - before  # the backlog, nothing twice


def test_a_backfill_asks_each_siren_once_and_fills_every_day(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    transport = sandbox()
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": transport})
    job = dg.Definitions(
        assets=[raw_companies, target_companies, pappers_enrichment], resources=resources
    ).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        tags={
            "dagster/asset_partition_range_start": "2025-01-01",
            "dagster/asset_partition_range_end": "2025-01-10",
        }
    )
    assert result.success
    assert max(transport.answered.values()) == 1
    days = [date(2025, 1, 1) + timedelta(days=k) for k in range(10)]
    stored = warehouse.read(COMPANIES)
    assert stored["partition_date"].unique().sort().to_list() == days
    assert stored.height == sum(len(targets(warehouse, str(d))) for d in days)
    # Each day's ages are the ages on that day.
    people = warehouse.read(DIRIGEANTS).drop_nulls("date_de_naissance")
    for row in people.sample(200, seed=1).iter_rows(named=True):
        day, born = row["partition_date"], row["date_de_naissance"]
        assert row["age"] == day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def test_faults_are_survived_and_every_company_fetched(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """6,000 active units (about 1,250 targets) with 20 % 500s, 10 % 429s (Retry-After) and
    5 % timeouts."""
    faults = Faults(rate_500=0.2, rate_429=0.1, rate_timeout=0.05, retry_after_s=0)
    transport = sandbox(6_000, faults=faults, fault_seed=7)
    resources = make_resources(
        data_dir, warehouse_url, pappers={"transport": transport, "max_attempts": 15}
    )
    resources["sirene"] = SireneSource(data_dir=str(data_dir), sandbox_companies=6_000)
    result = materialize(resources)
    assert result.success
    companies = targets(warehouse)
    assert len(companies) > 1_000
    assert set(transport.answered) == companies
    assert min(transport.injected[k] for k in ("500", "429", "timeout")) > 50
    assert warehouse.read(FAILURES).is_empty()
    assert set(warehouse.read(COMPANIES)["siren"]) == companies
    facts = metadata(result)
    assert facts["retries"] == transport.requests - len(companies)
    assert facts["failures"] == 0


def test_when_every_call_fails_the_run_fails_and_earlier_data_stays(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    assert materialize(make_resources(data_dir, warehouse_url)).success
    cache_before = warehouse.read(API_CACHE).sort("key")
    day_before = warehouse.read(COMPANIES)

    broken = sandbox(faults=Faults(rate_500=1.0))
    resources = make_resources(
        data_dir,
        warehouse_url,
        pappers={"transport": broken, "max_age_days": 0, "max_attempts": 2},
    )
    later = str(date.fromisoformat(DAY) + timedelta(days=1))
    result = materialize(resources, later)
    assert not result.success
    message = failure_message(result)
    assert "failed for" in message and "(100.0%, above the 5.0% threshold)" in message
    assert "http_5xx" in message
    assert warehouse.read(API_CACHE).sort("key").equals(cache_before)
    assert (
        warehouse.read(COMPANIES, start=day_before["partition_date"][0])
        .sort("siren")
        .equals(day_before.sort("siren"))
    )
    failures = warehouse.read(FAILURES)
    assert set(failures["siren"]) == targets(warehouse, later)
    assert set(failures["kind"]) == {"http_5xx"}


@pytest.mark.parametrize(("rate", "succeeds"), [(0.02, True), (0.3, False)])
def test_failures_are_recorded_and_fail_the_run_only_above_the_threshold(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse, rate: float, succeeds: bool
) -> None:
    transport = sandbox(faults=Faults(rate_500=rate), fault_seed=3)
    resources = make_resources(
        data_dir, warehouse_url, pappers={"transport": transport, "max_attempts": 1}
    )
    result = materialize(resources)
    assert result.success is succeeds
    failed = warehouse.read(FAILURES)
    assert failed.height == transport.injected["500"] > 0
    assert set(failed["kind"]) == {"http_5xx"} and set(failed["source"]) == {"pappers"}
    # Successes are saved either way.
    assert set(warehouse.read(COMPANIES)["siren"]) == targets(warehouse) - set(failed["siren"])
    if not succeeds:
        assert "main causes: http_5xx" in failure_message(result)


def test_partial_answers_are_kept_flagged_and_fetched_again(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    partial = sandbox(faults=Faults(rate_206=0.3), fault_seed=5)
    assert materialize(
        make_resources(data_dir, warehouse_url, pappers={"transport": partial})
    ).success
    flagged = set(warehouse.read(COMPANIES).filter("partial")["siren"])
    assert len(flagged) == partial.injected["206"] > 0

    clean = sandbox()
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": clean})
    assert materialize(resources, with_raw=False).success
    assert set(clean.answered) == flagged
    assert not warehouse.read(COMPANIES)["partial"].any()


def leaks(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, text: str) -> bool:
    """Whether ``text`` appears in the run's events, logs, metadata or config."""
    records = [repr(e) for e in instance.all_logs(result.run_id)]
    records.append(repr(instance.get_run_by_id(result.run_id)))
    return any(text in record for record in records)


def test_credits_exhausted_stops_saves_and_says_so(
    data_dir: Path,
    warehouse_url: str,
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MA_PAPPERS_API_KEY", KEY)
    transport = sandbox(api_key=KEY, credits=120)
    resources = make_resources(
        data_dir,
        warehouse_url,
        pappers={"transport": transport, "api_key": dg.EnvVar("MA_PAPPERS_API_KEY")},
    )
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(resources, instance=instance)
        assert not result.success
        message = failure_message(result)
        assert message.startswith("Pappers credits exhausted")
        assert "120 companies enriched were saved" in message
        assert not leaks(result, instance, KEY)
    assert KEY not in caplog.text and KEY not in repr(resources["registry"])
    concurrency = resources["registry"].api().concurrency
    assert transport.requests <= 120 + concurrency  # stopped at once, in-flight calls aside
    assert warehouse.read(API_CACHE).height == 120
    saved = warehouse.read(COMPANIES)
    assert saved.height == 120 and set(saved["siren"]) == set(transport.answered)
    failures = warehouse.read(FAILURES)
    assert set(failures["kind"]) == {"credits_exhausted"}
    assert failures.height == len(targets(warehouse)) - 120


def test_a_bad_key_fails_at_once_without_showing_it(
    data_dir: Path,
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MA_PAPPERS_API_KEY", KEY)
    transport = sandbox(api_key="the-right-key")
    resources = make_resources(
        data_dir,
        warehouse_url,
        pappers={"transport": transport, "api_key": dg.EnvVar("MA_PAPPERS_API_KEY")},
    )
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(resources, instance=instance)
        assert not result.success
        message = failure_message(result)
        assert "bad API key" in message and "credits" not in message
        assert not leaks(result, instance, KEY)
    assert KEY not in caplog.text
    assert transport.requests <= resources["registry"].api().concurrency
    assert not connect_warehouse(warehouse_url, data_dir).columns(COMPANIES)


def test_the_key_is_in_no_repr() -> None:
    resource = PappersResource(api_key=KEY)
    assert KEY not in repr(resource) and KEY not in str(resource)
    assert KEY not in repr(resource.client())
    assert resource.client()._headers["api-key"] == KEY  # sent, as the api-key header


def test_the_rate_limit_holds_at_the_sandbox(data_dir: Path) -> None:
    """Arrival times recorded by the sandbox: no one-second window exceeds the limit. The margin
    absorbs the scheduling delay between a grant and its arrival, which a loaded CI machine
    stretches well past the default 10 ms (past 100 ms once, with two test workers on 2 cores)."""
    transport = sandbox()
    pappers = {"transport": transport, "rate_per_second": 30.0, "concurrency": 16}
    resources = make_resources(data_dir, pappers={**pappers, "rate_margin_s": 0.3})
    warehouse = connect_warehouse("", data_dir)
    sirens = [str(s) for s in transport.world.sirens[:75]]
    run = resources["registry"].api().enrich(sirens, warehouse)
    assert len(run.records) + len(run.negatives) == 75
    times = sorted(transport.timestamps)
    worst = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert worst == 30


def test_an_unknown_siren_is_a_cached_negative_answer(data_dir: Path) -> None:
    transport = sandbox()
    pappers = make_resources(data_dir, pappers={"transport": transport})["registry"].api()
    warehouse = connect_warehouse("", data_dir)
    first = pappers.enrich(["443061841"], warehouse)  # GOOGLE FRANCE: not in the sandbox
    assert first.negatives == {"443061841"} and not first.failures and not first.records
    again = pappers.enrich(["443061841"], warehouse)
    assert again.negatives == {"443061841"} and again.cache_hits == 1
    assert transport.requests == 1 and transport.statuses == {404: 1}


def test_the_fetch_order_reads_each_target_s_newest_score_before_the_day(
    warehouse: Warehouse,
) -> None:
    """The scores of the newest day scored before the run's first day; none before any."""
    companies = sirens(4)
    asked = pl.DataFrame({"siren": [*companies[:3], "999999999"]})
    day = date(2026, 3, 10)
    assert last_scores(warehouse, asked, day).is_empty()  # no ml_scores table yet
    for offset, seed in ((-3, 1), (-1, 2), (0, 3)):
        scored = ml_scores(day + timedelta(days=offset), companies, seed=seed)
        warehouse.replace_partitions(ML_SCORES, scored, [day + timedelta(days=offset)])

    found = last_scores(warehouse, asked, day).sort("siren")

    newest = ml_scores(day - timedelta(days=1), companies, seed=2).sort("siren")[:3]
    assert found["siren"].to_list() == companies[:3]
    assert found["last_score"].to_list() == newest["score_ma"].to_list()
    assert last_scores(warehouse, asked, day - timedelta(days=3)).is_empty()
