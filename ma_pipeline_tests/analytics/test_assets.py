"""The dbt project as Dagster assets: keys, lineage to the pipeline, partitions, checks, job."""

import dagster as dg

from ma_pipeline.analytics.assets import analytics_marts, analytics_reference
from ma_pipeline.contracts import keys
from ma_pipeline.definitions import defs
from ma_pipeline.warehouse import WAREHOUSE_POOL

MARTS = ("mart_company_scores_latest", "mart_sector_scores", "mart_score_movers", "mart_targets")


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


def deps(name: str) -> set[str]:
    return {d.asset_key.to_user_string() for d in analytics_marts.specs_by_key[key(name)].deps}


REFERENCE = ("naf_rev2_hierarchie", "cog_regions_2025", "stg_naf_divisions", "stg_naf_sections")


def test_models_and_seeds_are_analytics_assets_under_the_pipelines_tables() -> None:
    assert {key(name) for name in MARTS} <= analytics_marts.keys
    assert all(k.path[0] == "analytics" for k in analytics_marts.keys)
    assert set(analytics_marts.group_names_by_key.values()) == {"analytics"}
    # Published rows, restricted to the days their publication record lists.
    assert deps("stg_published_scores") == {
        "serving/published_scores",
        "serving/score_publications",
    }
    assert deps("stg_score_publications") == {"serving/score_publications"}
    assert deps("stg_raw_companies") == {"ingestion/raw_companies"}
    assert deps("stg_pappers_companies") == {"enrichment/pappers_companies"}
    assert deps("stg_company_features") == {"features/company_features"}
    assert deps("mart_sector_scores") == {
        "analytics/stg_published_scores",
        "analytics/stg_naf_divisions",
        "analytics/stg_naf_sections",
    }


def test_daily_partitions_one_run_per_backfill_and_the_warehouse_pool() -> None:
    assert analytics_marts.partitions_def.timezone == "Europe/Paris"
    assert analytics_marts.backfill_policy == dg.BackfillPolicy.single_run()
    assert analytics_marts.op.pool == analytics_reference.op.pool == WAREHOUSE_POOL


def test_the_reference_seeds_and_their_views_are_not_partitioned() -> None:
    """They change with a release of the package: no day of theirs is ever missing."""
    assert {key(name) for name in REFERENCE} <= analytics_reference.keys
    assert analytics_reference.partitions_def is None
    assert not {key(name) for name in REFERENCE} & analytics_marts.keys
    selected = defs.resolve_job_def("daily_job").asset_layer.selected_asset_keys
    assert analytics_reference.keys <= selected  # built before the marts that join them


def test_dbt_tests_are_asset_checks_of_their_model() -> None:
    checks = {(c.asset_key.path[-1], c.name) for c in analytics_marts.check_specs}
    assert ("stg_published_scores", "in_range_stg_published_scores_score_ma__100__0") in checks
    assert (
        "mart_sector_scores",
        "unique_combination_mart_sector_scores_partition_date__naf_division",
    ) in checks
    assert {model for model, _ in checks} >= set(MARTS)


def test_the_daily_job_builds_the_marts_after_published_scores() -> None:
    job = defs.resolve_job_def("daily_job")
    selected = job.asset_layer.selected_asset_keys
    assert {key(name) for name in MARTS} <= selected
    assert keys.PUBLISHED_SCORES in selected
    graph = defs.resolve_asset_graph()
    assert keys.PUBLISHED_SCORES in graph.get(key("stg_published_scores")).parent_keys
