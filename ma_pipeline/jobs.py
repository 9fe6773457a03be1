"""Jobs: what the schedules, sensors and the quick start launch."""

import dagster as dg

# Everything date-partitioned, for one day (or a range, as one run).
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups("ingestion", "enrichment", "features"),
    description="The day's partition from raw_companies onwards.",
)
