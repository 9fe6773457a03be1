"""The marts built through Dagster on DuckDB and PostgreSQL, against polars on the same rows.

Inputs: raw_companies, the Pappers tables and company_features from the pipeline's own assets
(sandbox, four days), then ml_scores for the four days (``factories.ml_scores``, with reasons
that enter and leave the top five from day to day), of which D1, D2 and D4 are published: D3
stays in ml_scores, where no mart may see it, and D4's previous published partition is D2.
"""

import json
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from ma_pipeline.analytics.assets import analytics_marts, analytics_reference
from ma_pipeline.analytics.project import dbt_project
from ma_pipeline.contracts.personal import PERSONAL_FEATURES
from ma_pipeline.contracts.tables import ML_SCORES, PUBLISHED_SCORES
from ma_pipeline.enrichment.assets import pappers_enrichment
from ma_pipeline.features.assets import company_features
from ma_pipeline.ingestion.assets import raw_companies, target_companies
from ma_pipeline.reference import naf_hierarchy, regions
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import TableRef, Warehouse, connect_warehouse
from ma_pipeline_tests.conftest import make_resources
from ma_pipeline_tests.factories import ml_scores, sirens

D1, D2, D3, D4 = (date(2025, 6, d) for d in (1, 2, 3, 4))
PUBLISHED = (D1, D2, D4)
FEATURES = TableRef("features", "company_features")
MIN_SCORE, MIN_RANK, MOVERS = 75, 80, 100  # the dbt vars' defaults, the sector share's bar
INCREMENTAL = ("mart_sector_scores", "mart_score_movers", "mart_targets")


def day_scores(day: date, sirens: list[str], seed: int) -> pl.DataFrame:
    """A valid partition whose fifth score_ma reason is ``capital`` (absent from the factory's
    features) for one company in three and missing altogether (feature, value, contribution)
    for another, the pattern shifting by day."""
    frame = ml_scores(day, sirens, seed).with_row_index("_i")
    turn = (pl.col("_i") + seed) % 3
    fifth = [f"ma_reason_5_{field}" for field in ("feature", "value", "contribution")]
    return (
        frame.with_columns(
            ma_reason_5_feature=pl.when(turn == 0).then(pl.lit("capital")).otherwise(fifth[0]),
            ma_reason_5_contribution=pl.col(fifth[2]) * 3,
        )
        .with_columns(pl.when(turn != 1).then(pl.col(c)).alias(c) for c in fifth)
        .drop("_i")
    )


def ma_reasons(scores: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(
        scores.select(
            "siren",
            feature=pl.col(f"ma_reason_{k}_feature"),
            value=pl.col(f"ma_reason_{k}_value"),
            contribution=pl.col(f"ma_reason_{k}_contribution"),
        )
        for k in range(1, 6)
    ).drop_nulls("feature")


def expected_sectors(published: pl.DataFrame) -> pl.DataFrame:
    return published.group_by("partition_date", "naf_division").agg(
        companies=pl.len(),
        score_ma_mean=pl.col("score_ma").mean(),
        score_ma_p90=pl.col("score_ma").quantile(0.9, interpolation="linear"),
        share_score_ma_75_plus=(pl.col("score_ma") >= MIN_SCORE).mean(),
    )


def expected_movers(today: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """The largest non-zero |change| of score_ma (ties by SIREN), with the reason whose contribution
    moved most (absent from a day's top five: 0 that day; ties by feature name)."""
    changes = (
        today.join(previous.select("siren", score_ma_previous="score_ma"), on="siren")
        .with_columns(score_ma_change=pl.col("score_ma") - pl.col("score_ma_previous"))
        .filter(pl.col("score_ma_change") != 0)
        .sort(pl.col("score_ma_change").abs(), "siren", descending=[True, False])
        .head(MOVERS)
        .with_row_index("mover_rank", offset=1)
    )
    moved = (
        ma_reasons(today)
        .join(ma_reasons(previous), on=["siren", "feature"], how="full", coalesce=True, suffix="_p")
        .with_columns(pl.col("contribution", "contribution_p").fill_null(0.0))
        .with_columns(change=pl.col("contribution") - pl.col("contribution_p"))
        .sort(pl.col("change").abs(), "feature", descending=[True, False])
        .group_by("siren", maintain_order=True)
        .first()
    )
    return changes.join(moved, on="siren", how="left").select(
        "partition_date",
        "mover_rank",
        "siren",
        "score_ma",
        "score_ma_previous",
        "score_ma_change",
        moved_reason_feature="feature",
        moved_reason_value="value",
        moved_reason_value_previous="value_p",
        moved_reason_contribution="contribution",
        moved_reason_contribution_previous="contribution_p",
        moved_reason_contribution_change="change",
    )


def expected_targets(published: pl.DataFrame) -> pl.DataFrame:
    return (
        published.filter(pl.col("rank_ma") >= MIN_RANK)
        .sort("partition_date", "score_ma", "siren", descending=[False, True, False])
        .with_columns(target_rank=pl.int_range(1, pl.len() + 1).over("partition_date"))
        .select("partition_date", "target_rank", "siren", "score_ma", "ma_reason_5_feature")
    )


def mart(warehouse: Warehouse, name: str, columns: list[str], key: list[str]) -> pl.DataFrame:
    quoted = ", ".join(f'"{c}"' for c in columns)
    return warehouse.query(f"SELECT {quoted} FROM analytics.{name}").sort(key)


def assert_same(actual: pl.DataFrame, expected: pl.DataFrame, key: list[str]) -> None:
    assert_frame_equal(
        actual.sort(key), expected.select(actual.columns).sort(key), check_dtypes=False
    )


def counts(warehouse: Warehouse) -> dict[str, dict[date, int]]:
    return {
        name: dict(
            warehouse.query(
                f"SELECT partition_date, count(*) AS n FROM analytics.{name} GROUP BY 1"
            ).iter_rows()
        )
        for name in INCREMENTAL
    }


def build_inputs(resources: dict[str, Any], warehouse: Warehouse) -> dict[date, pl.DataFrame]:
    """The pipeline's tables for D1-D4 (one run), ml_scores for each day; D1, D2, D4 published."""
    upstream = dg.Definitions(
        assets=[raw_companies, target_companies, pappers_enrichment, company_features],
        resources=resources,
    )
    assert run(upstream, D1, D4).success
    features = warehouse.read(FEATURES)
    scores = {}
    for seed, day in enumerate((D1, D2, D3, D4)):
        sirens = features.filter(pl.col("partition_date") == day)["siren"].sort().to_list()
        scores[day] = day_scores(day, sirens, seed)
        warehouse.replace_partitions(ML_SCORES, scores[day], [day])
    for day in PUBLISHED:
        publish(warehouse, day, run_id="test")
    return scores


def run(defs: dg.Definitions, first: date, last: date) -> dg.ExecuteInProcessResult:
    """first..last as one run, as a single-run backfill launches it."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


def undocumented(warehouse: Warehouse) -> dict[str, Any]:
    """Relations of schema analytics whose description, or a column's, is missing or stale."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    documented = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
    }
    built = warehouse.query(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'analytics'"
    )
    problems: dict[str, Any] = {}
    for (name,), group in built.group_by("table_name"):
        node = documented[name]
        columns = {c: d["description"] for c, d in node["columns"].items()}
        if not node["description"] or set(columns) != set(group["column_name"]):
            problems[name] = set(columns) ^ set(group["column_name"])
        elif not all(columns.values()):
            problems[name] = [c for c, d in columns.items() if not d]
    return problems


def test_the_marts_match_polars_and_a_rerun_leaves_one_copy(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """Sector figures, movers and their reasons, targets and the latest day, as polars computes
    them from the published rows; then a republished day re-run replaces its rows only."""
    resources = make_resources(data_dir, warehouse_url)
    scores = build_inputs(resources, warehouse)
    marts = dg.Definitions(assets=[analytics_reference, analytics_marts], resources=resources)

    # The four days as one run: one dbt build, every test passing as an asset check.
    result = run(marts, D1, D4)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len([*analytics_reference.check_specs, *analytics_marts.check_specs])
    assert [e.check_name for e in evaluations if not e.passed] == []
    materialized = result.get_asset_materialization_events()
    sector_days = {
        e.partition for e in materialized if e.asset_key.path[-1] == "mart_sector_scores"
    }
    assert sector_days == {d.isoformat() for d in (D1, D2, D3, D4)}
    assert undocumented(warehouse) == {}
    # No person's age in the analytics schema, as a column or as a reason's value.
    columns = warehouse.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
    )["column_name"]
    assert not set(columns) & PERSONAL_FEATURES
    ages = warehouse.query(
        "SELECT count(*) AS n FROM analytics.stg_score_reasons"
        " WHERE feature IN ('age_dirigeant_max', 'part_dirigeants_60_plus') AND value IS NOT NULL"
    )
    assert ages["n"][0] == 0

    published = pl.concat(scores[day] for day in PUBLISHED)
    # Every reason of every score (the macros' SCORES and TOP_REASONS match contracts/scores.py).
    unpivoted = warehouse.query("SELECT count(*) AS n FROM analytics.stg_score_reasons")["n"][0]
    assert unpivoted == sum(published.select(pl.col(r"^.*_reason_\d_feature$").count()).row(0))
    sector_columns = [
        "partition_date",
        "naf_division",
        "companies",
        "score_ma_mean",
        "score_ma_p90",
        "share_score_ma_75_plus",
    ]
    sectors = mart(warehouse, "mart_sector_scores", sector_columns, sector_columns[:2])
    assert_same(sectors, expected_sectors(published), sector_columns[:2])
    labels = warehouse.query(
        "SELECT DISTINCT naf_division, libelle_division FROM analytics.mart_sector_scores"
    )
    divisions = naf_hierarchy().select("code_division", "libelle_division").unique()
    assert set(labels.iter_rows()) <= set(divisions.iter_rows())

    movers_columns = list(expected_movers(scores[D2], scores[D1]).columns)
    movers = mart(warehouse, "mart_score_movers", movers_columns, ["partition_date", "mover_rank"])
    expected = pl.concat(
        [expected_movers(scores[D2], scores[D1]), expected_movers(scores[D4], scores[D2])]
    )
    assert_same(movers, expected, ["partition_date", "mover_rank"])
    assert {"capital", "marge_nette"} <= set(movers["moved_reason_feature"])  # entered or left
    previous = warehouse.query(
        "SELECT DISTINCT partition_date, previous_partition_date FROM analytics.mart_score_movers"
    )
    assert sorted(previous.iter_rows()) == [(D2, D1), (D4, D2)]  # D3 was never published

    target_columns = list(expected_targets(published).columns)
    targets = mart(warehouse, "mart_targets", target_columns, ["partition_date", "target_rank"])
    assert_same(targets, expected_targets(published), ["partition_date", "target_rank"])
    profile = warehouse.query(
        "SELECT t.chiffre_affaires, f.chiffre_affaires AS expected FROM analytics.mart_targets t"
        " JOIN features.company_features f USING (partition_date, siren)"
    )
    assert profile.height == targets.height
    assert profile["chiffre_affaires"].equals(profile["expected"], check_names=False)

    latest = mart(
        warehouse,
        "mart_company_scores_latest",
        ["partition_date", "siren", "region", "libelle_region", "score_ma"],
        ["siren"],
    )
    assert set(latest["partition_date"]) == {D4}
    assert_same(latest.drop("libelle_region"), scores[D4], ["siren"])
    names = dict(regions().select("reg", "libelle").iter_rows())
    assert latest["libelle_region"].to_list() == [names[r] for r in latest["region"]]

    # Re-running a day, after republishing it with other scores: one copy of its new rows.
    before = counts(warehouse)
    scores[D2] = day_scores(D2, scores[D2]["siren"].to_list(), seed=7)
    warehouse.replace_partitions(ML_SCORES, scores[D2], [D2])
    publish(warehouse, D2, run_id="test-again")
    assert run(marts, D2, D2).success
    after = counts(warehouse)
    assert {m: {d: n for d, n in c.items() if d != D2} for m, c in after.items()} == {
        m: {d: n for d, n in c.items() if d != D2} for m, c in before.items()
    }
    assert after["mart_targets"][D2] == expected_targets(scores[D2]).height
    assert after["mart_score_movers"][D2] == MOVERS
    assert after["mart_sector_scores"][D2] == before["mart_sector_scores"][D2]
    sectors = mart(warehouse, "mart_sector_scores", sector_columns, sector_columns[:2])
    assert_same(
        sectors.filter(pl.col("partition_date") == D2),
        expected_sectors(scores[D2]),
        sector_columns[:2],
    )


def test_a_score_out_of_range_fails_its_check_and_stops_the_marts_downstream(
    data_dir: Path, tmp_path: Path
) -> None:
    """The scores' side of the graph only (no company tables needed), on DuckDB."""
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    warehouse = connect_warehouse(url, data_dir)
    companies = sirens(30)
    for seed, day in enumerate((D1, D2)):
        warehouse.replace_partitions(ML_SCORES, ml_scores(day, companies, seed), [day])
        publish(warehouse, day, run_id="test")
    published = warehouse.read(PUBLISHED_SCORES, start=D2, end=D2)
    first = pl.col("siren") == companies[0]
    bad = published.with_columns(score_ma=pl.when(first).then(150.0).otherwise("score_ma"))
    warehouse.replace_partitions(PUBLISHED_SCORES, bad, [D2])
    sector, scores = (
        dg.AssetKey(["analytics", m]) for m in ("mart_sector_scores", "int_published_scores")
    )

    result = dg.materialize(
        [analytics_reference, analytics_marts],
        selection=dg.AssetSelection.assets(sector, scores).upstream(),
        partition_key=D2.isoformat(),
        resources=make_resources(data_dir, url),
        raise_on_error=False,
    )

    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key.path[-1], e.check_name) for e in evaluations if not e.passed} == {
        ("stg_published_scores", "in_range_stg_published_scores_score_ma__100__0")
    }
    failed = next(e for e in evaluations if not e.passed)
    assert failed.metadata["dagster_dbt/failed_row_count"].value == 1
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["analytics", "stg_published_scores"]) in built
    assert not {sector, scores} & built
