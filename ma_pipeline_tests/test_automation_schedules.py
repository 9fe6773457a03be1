"""The nightly and weekly schedules: cron, Paris time, the partition each tick requests."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from ma_pipeline.definitions import defs

PARIS = ZoneInfo("Europe/Paris")


def tick(name: str, at: datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    )
    return list(defs.resolve_schedule_def(name).evaluate_tick(context).run_requests or [])


@pytest.mark.parametrize(
    ("at", "partition"),
    [
        (datetime(2025, 6, 3, 2, tzinfo=PARIS), "2025-06-02"),
        # The night summer time starts: 02:00 does not exist; the tick comes at 03:00.
        (datetime(2025, 3, 30, 3, tzinfo=PARIS), "2025-03-29"),
        # The night it ends: 02:00 happens twice; the tick is the first one.
        (datetime(2025, 10, 26, 2, fold=0, tzinfo=PARIS), "2025-10-25"),
    ],
)
def test_every_night_at_two_in_paris_the_previous_days_partition_runs(
    at: datetime, partition: str
) -> None:
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "Europe/Paris")
    assert schedule.job_name == "daily_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    [request] = tick("daily_schedule", at)
    assert request.partition_key == partition


def test_retraining_runs_every_sunday_morning_in_paris() -> None:
    schedule = defs.resolve_schedule_def("weekly_retraining_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 5 * * 0", "Europe/Paris")
    assert schedule.job_name == "training_job"

    [request] = tick("weekly_retraining_schedule", datetime(2025, 6, 8, 5, tzinfo=PARIS))
    assert request.partition_key is None
    assert request.tags["ma/trigger"] == "weekly_schedule"
