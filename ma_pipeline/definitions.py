"""The ma_pipeline code location."""

import dagster as dg

from ma_pipeline.enrichment import assets as enrichment
from ma_pipeline.features import assets as features
from ma_pipeline.ingestion import assets as ingestion
from ma_pipeline.jobs import daily_job
from ma_pipeline.resources import build_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion, enrichment, features]),
    asset_checks=dg.load_asset_checks_from_modules([features]),
    jobs=[daily_job],
    resources=build_resources(),
)
