"""Jobs: what the schedules, sensors and the quick start launch."""

import dagster as dg

from ma_pipeline.automation.score_requests import score_requests

# Everything date-partitioned, for one day (or a range, as one run).
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.groups(
        "ingestion", "enrichment", "features", "scoring", "analytics"
    )
    | dg.AssetSelection.assets(["scoring", "published_scores"]),
    description="The day's partition from raw_companies to published_scores and kaspr_contacts,"
    " then the analyst marts.",
)

# Retraining: events, training set, models. deploy/dagster.yaml runs one at a time (run_kind).
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ml"),
    tags={"ma/run_kind": "training"},
    description="M&A events, the point-in-time training set, and the three scores' models"
    " (MLflow registry, champion and challenger).",
)


@dg.job(
    description="The API's pending score requests that score_requests_sensor hands over (their ids"
    " in the run config): each SIREN enriched, featured and scored with the champions, each"
    " request marked completed or failed in the API's database."
)
def score_requests_job() -> None:
    score_requests()
