"""Which targets are fetched on a day: new, changed, event, old, in that order, within the
budget."""

from datetime import UTC, datetime, timedelta

import polars as pl

from ma_pipeline.enrichment.refresh import plan_refresh

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=30)
PROCESSED = datetime(2025, 11, 3, 8, 15)
VERSION = "2025-11-03T08:15:00"


def targets(*sirens: str, processed: datetime = PROCESSED) -> pl.DataFrame:
    return pl.DataFrame(
        {"siren": list(sirens), "date_dernier_traitement": [processed] * len(sirens)},
        schema={"siren": pl.String, "date_dernier_traitement": pl.Datetime("us")},
    )


def stored(*rows: tuple[str, int, str | None, bool]) -> pl.DataFrame:
    """(siren, age in days, version fetched for, partial)."""
    return pl.DataFrame(
        [(key, NOW - timedelta(days=age), version, partial) for key, age, version, partial in rows],
        schema={
            "key": pl.String,
            "fetched_at": pl.Datetime("us", "UTC"),
            "version": pl.String,
            "partial": pl.Boolean,
        },
        orient="row",
    )


def test_an_unchanged_young_answer_is_not_fetched_again_and_a_changed_one_is() -> None:
    answers = stored(("A", 3, VERSION, False), ("B", 3, "2025-10-01T00:00:00", False))

    plan = plan_refresh(targets("A", "B"), answers, now=NOW, max_age=MAX_AGE, budget=None)

    assert plan.fetch == ["B"] and plan.reuse == ["A"]
    assert plan.due_by_reason == {"new": 0, "changed": 1, "event": 0, "old": 0}
    assert plan.versions["B"] == VERSION  # what the new answer will be stored for


def test_a_bodacc_notice_published_after_the_answer_makes_it_due() -> None:
    """A notice published after the day the answer was fetched: the registry has news. One
    published on that day or before is already in the answer."""
    answers = stored(("E", 5, VERSION, False), ("S", 5, VERSION, False), ("Q", 5, VERSION, False))
    fetched_on = (NOW - timedelta(days=5)).date()
    universe = targets("E", "S", "Q").with_columns(
        last_event=pl.Series([fetched_on + timedelta(days=2), fetched_on, None], dtype=pl.Date)
    )

    plan = plan_refresh(universe, answers, now=NOW, max_age=MAX_AGE, budget=None)

    assert plan.fetch == ["E"] and plan.reuse == ["Q", "S"]
    assert plan.due_by_reason == {"new": 0, "changed": 0, "event": 1, "old": 0}


def test_an_event_comes_after_a_change_and_before_age_within_the_budget() -> None:
    answers = stored(("C", 2, "old-version", False), ("E", 2, VERSION, False))
    answers = pl.concat([answers, stored(("O", 45, VERSION, False))])
    universe = targets("C", "E", "O").with_columns(
        last_event=pl.Series([None, NOW.date(), None], dtype=pl.Date)
    )

    plan = plan_refresh(universe, answers, now=NOW, max_age=MAX_AGE, budget=2)

    assert plan.fetch == ["C", "E"] and plan.backlog_by_reason["old"] == 1


def test_an_answer_stored_before_versions_were_kept_waits_for_its_age() -> None:
    """Upgrading does not refetch every target at once: such answers age out."""
    answers = stored(("Y", 3, None, False), ("O", 40, None, False))

    plan = plan_refresh(targets("Y", "O"), answers, now=NOW, max_age=MAX_AGE, budget=None)

    assert plan.fetch == ["O"] and plan.reuse == ["Y"]


def test_new_partial_and_old_answers_are_due() -> None:
    answers = stored(("P", 1, VERSION, True), ("O", 31, VERSION, False), ("Y", 29, VERSION, False))

    plan = plan_refresh(targets("N", "P", "O", "Y"), answers, now=NOW, max_age=MAX_AGE, budget=None)

    assert plan.fetch == ["N", "P", "O"]  # new, then changed (partial), then old
    assert plan.reuse == ["Y"] and plan.metadata()["calls_saved"] == 1


def test_the_budget_is_never_exceeded_and_the_rest_is_backlog_by_priority() -> None:
    answers = stored(
        ("C1", 2, "old-version", False),
        ("O1", 90, VERSION, False),
        ("O2", 60, VERSION, False),
    )
    universe = targets("N1", "N2", "C1", "O1", "O2")

    plan = plan_refresh(universe, answers, now=NOW, max_age=MAX_AGE, budget=4)

    assert plan.fetch == ["N1", "N2", "C1", "O1"]  # the oldest answer first among the old
    assert plan.backlog_by_reason == {"new": 0, "changed": 0, "event": 0, "old": 1}
    assert plan.reuse == ["O2"]  # over budget: served from its stored answer meanwhile
    assert plan_refresh(universe, answers, now=NOW, max_age=MAX_AGE, budget=0).fetch == []


def test_a_new_target_over_budget_has_no_answer_to_serve() -> None:
    plan = plan_refresh(targets("N1", "N2"), stored(), now=NOW, max_age=MAX_AGE, budget=1)

    assert plan.fetch == ["N1"] and plan.reuse == []
    assert plan.backlog == 1 and plan.metadata()["backlog_by_reason"]["new"] == 1


def test_inside_a_reason_and_a_fetch_day_the_highest_last_score_comes_first() -> None:
    """A short budget goes to the companies deal teams look at: within new targets, and among
    old answers fetched the same day; an older answer still comes before a higher score."""
    answers = stored(("O1", 40, VERSION, False), ("O2", 40, VERSION, False))
    answers = pl.concat([answers, stored(("O3", 50, VERSION, False))])
    universe = targets("N1", "N2", "N3", "O1", "O2", "O3").with_columns(
        last_score=pl.Series([None, 80.0, 20.0, 10.0, 90.0, 5.0])
    )

    plan = plan_refresh(universe, answers, now=NOW, max_age=MAX_AGE, budget=5)

    assert plan.fetch == ["N2", "N3", "N1", "O3", "O2"]  # unscored last; older, then scored
    assert plan.backlog_by_reason == {"new": 0, "changed": 0, "event": 0, "old": 1}
