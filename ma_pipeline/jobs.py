"""Jobs: what the schedules, sensors and the quick start launch."""

import dagster as dg

from ma_pipeline.contracts import keys

# Everything date-partitioned, for one day (or a range, as one run). Its steps run one after the
# other in the run's process: they take turns on the warehouse anyway (pool "warehouse"), and a
# process per step cost seconds of start-up and code loading each.
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups(
        "ingestion", "enrichment", "features", "scoring", "serving", "analytics"
    )
    - dg.AssetSelection.assets(keys.API_CACHE, keys.API_USAGE),
    description="The day's partition from raw_companies to ml_scores, kaspr_contacts and their"
    " publication, then the analyst marts.",
    executor_def=dg.in_process_executor,
)

# Retraining: events, training set, models. deploy/dagster.yaml runs one at a time (run_kind).
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ml"),
    tags={"ma/run_kind": "training"},
    description="M&A events, the point-in-time training set, and the three scores' models"
    " (MLflow registry, champion and challenger).",
)
