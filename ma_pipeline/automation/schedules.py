"""The nightly scoring and the weekly retraining, on Paris time."""

import dagster as dg

from ma_pipeline.jobs import daily_job, training_job
from ma_pipeline.partitions import TIMEZONE

# 02:00 Paris every day: yesterday's partition (a day's partition exists once the day is over),
# from raw_companies to kaspr_contacts. The timezone is the partitions' (Europe/Paris).
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    name="daily_schedule",
    hour_of_day=2,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday's partition, raw_companies to published scores and contacts.",
)

# Sunday 05:00 Paris: after that night's scoring, well before Monday's.
weekly_retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining_schedule",
    job=training_job,
    cron_schedule="0 5 * * 0",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"ma/trigger": "weekly_schedule"},
    description="Retrain the three models; a challenger becomes champion only if it wins.",
)
