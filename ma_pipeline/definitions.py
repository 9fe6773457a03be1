"""The ma_pipeline code location."""

import dagster as dg

from ma_pipeline.analytics import assets as analytics
from ma_pipeline.automation.schedules import daily_schedule, weekly_retraining_schedule
from ma_pipeline.automation.sensors import (
    feature_drift_sensor,
    landing_file_sensor,
    run_failure_alert_sensor,
    score_requests_sensor,
)
from ma_pipeline.enrichment import assets as enrichment
from ma_pipeline.features import assets as features
from ma_pipeline.ingestion import assets as ingestion
from ma_pipeline.jobs import daily_job, training_job
from ma_pipeline.ml import assets as ml
from ma_pipeline.resources import build_resources
from ma_pipeline.scoring import assets as scoring
from ma_pipeline.scoring import contacts, publication
from ma_pipeline.scoring.on_demand import score_requests_job

defs = dg.Definitions(
    assets=[
        *dg.load_assets_from_modules(
            [ingestion, enrichment, features, ml, scoring, contacts, publication, analytics]
        ),
        # Tables written by the API clients of several steps (load_assets_from_modules skips specs).
        enrichment.api_cache,
        enrichment.api_usage,
    ],
    asset_checks=dg.load_asset_checks_from_modules([features, scoring]),
    jobs=[daily_job, training_job, score_requests_job],
    schedules=[daily_schedule, weekly_retraining_schedule],
    sensors=[
        landing_file_sensor,
        feature_drift_sensor,
        run_failure_alert_sensor,
        score_requests_sensor,
    ],
    resources=build_resources(),
)
