"""The daily partitions shared by every asset from raw_companies to ml_scores."""

import dagster as dg

from ma_pipeline import settings

TIMEZONE = "Europe/Paris"

# A partition D is the state of the world on day D (Paris time); the newest is yesterday's.
# MA_PARTITIONS_START is the one setting read when the definitions load: Dagster needs it to
# build the partitions (every other setting is read when a run launches, see settings.py).
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.value("MA_PARTITIONS_START"), timezone=TIMEZONE
)
