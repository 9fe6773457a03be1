"""target_companies: who is enriched, featured and scored. Each rule keeps and drops what it says,
the funnel counts every unit, and a run's config changes the rules."""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from ma_pipeline.contracts.tables import RAW_COMPANIES, TARGET_COMPANIES
from ma_pipeline.ingestion import assets
from ma_pipeline.ingestion.assets import raw_companies, target_companies
from ma_pipeline.ingestion.targets import TargetRules, select_targets
from ma_pipeline_tests.conftest import make_resources
from ma_pipeline_tests.factories import sirens

DAY = date(2025, 6, 2)
# One unit of each kind, and the rule that drops it under the defaults (None: a target).
UNITS: dict[str, tuple[dict[str, Any], str | None]] = {
    "sas": ({}, None),
    "sarl_with_band": ({"categorie_juridique": "5499", "tranche_effectifs": "00"}, None),
    "employer_of_unknown_size": ({"tranche_effectifs": "NN", "caractere_employeur": "O"}, None),
    "ceased": ({"etat_administratif": "C"}, "active"),
    "created_tomorrow": ({"date_creation": date(2025, 6, 3)}, "active"),
    "opted_out": ({"statut_diffusion": "P"}, "diffusible"),
    "sole_trader": ({"categorie_juridique": "1000"}, "legal_form_family"),
    "association": ({"categorie_juridique": "9220"}, "legal_form_family"),
    "commune": ({"categorie_juridique": "7210"}, "legal_form_family"),
    "sci": ({"categorie_juridique": "6540"}, "legal_form_family"),
    "no_known_employees": (
        {"tranche_effectifs": "NN", "caractere_employeur": "N"},
        "employees",
    ),
}
BASE = {
    "etat_administratif": "A",
    "date_creation": date(2010, 1, 1),
    "statut_diffusion": "O",
    "categorie_juridique": "5710",
    "tranche_effectifs": "11",
    "caractere_employeur": "O",
    "activite_principale": "62.01Z",
    "categorie_entreprise": "PME",
}


def units() -> tuple[pl.DataFrame, dict[str, str]]:
    """A day of raw_companies with the units above, and the SIREN of each unit."""
    names = dict(zip(UNITS, sirens(len(UNITS)), strict=True))
    rows = [{**BASE, **changes, "siren": names[name]} for name, (changes, _) in UNITS.items()]
    frame = pl.DataFrame(rows).with_columns(partition_date=pl.lit(DAY))
    return frame, names


def test_each_default_rule_drops_the_units_it_names() -> None:
    frame, names = units()

    selection = select_targets(frame, DAY, TargetRules())

    kept = set(selection.targets["siren"])
    assert kept == {names[n] for n, (_, rule) in UNITS.items() if rule is None}
    dropped = dict(selection.funnel.select("rule", "dropped").iter_rows())
    expected = {
        rule: sum(1 for _, r in UNITS.values() if r == rule)
        for rule in ("active", "diffusible", "legal_form_family", "employees")
    }
    assert dropped == expected
    assert selection.funnel["kept"][-1] == len(kept)


def test_every_rule_is_configurable() -> None:
    frame, names = units()
    frame = frame.with_columns(
        activite_principale=pl.when(pl.col("siren") == names["sas"])
        .then(pl.lit("10.11Z"))  # section C, division 10
        .otherwise("activite_principale"),
        categorie_entreprise=pl.when(pl.col("siren") == names["sarl_with_band"])
        .then(pl.lit("ETI"))
        .otherwise("categorie_entreprise"),
    )

    def kept(**rules: Any) -> set[str]:
        return set(select_targets(frame, DAY, TargetRules(**rules)).targets["siren"])

    everyone_active = kept(legal_form_families=[], diffusible_only=False, with_employees=False)
    assert len(everyone_active) == len(UNITS) - 2  # only the ceased and the unborn are left out
    assert names["sole_trader"] in kept(legal_form_families=["10", "57"])
    assert names["opted_out"] in kept(diffusible_only=False)
    assert names["no_known_employees"] in kept(with_employees=False)
    assert kept(naf_sections=["C"]) == {names["sas"]}
    assert kept(naf_divisions=["62"]) == kept() - {names["sas"]}
    assert kept(categories_entreprise=["ETI"]) == {names["sarl_with_band"]}
    assert kept(headcount_bands=["00"]) == {names["sarl_with_band"]}


def test_the_asset_writes_the_targets_with_the_funnel_and_takes_rules_from_the_run(
    data_dir: Path,
) -> None:
    resources = make_resources(data_dir, f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    warehouse = resources["warehouse"].backend()

    def run(config: dict[str, Any]) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [raw_companies, target_companies],
            partition_key=DAY.isoformat(),
            resources=resources,
            run_config={"ops": {"ingestion__target_companies": {"config": config}}},
        )

    default = run({})
    raw = warehouse.read(RAW_COMPANIES, start=DAY, end=DAY)
    targets = warehouse.read(TARGET_COMPANIES, start=DAY, end=DAY)
    assert targets["siren"].sort().equals(select_targets(raw, DAY, TargetRules()).targets["siren"])
    assert 0 < targets.height < raw.filter(pl.col("etat_administratif") == "A").height
    [event] = [
        e
        for e in default.get_asset_materialization_events()
        if e.asset_key.path[-1] == "target_companies"
    ]
    funnel = event.materialization.metadata["kept_and_dropped_by_rule"].value
    assert sum(rule["dropped"] for rule in funnel.values()) == raw.height - targets.height
    assert funnel["diffusible"]["dropped"] > 0  # the sandbox has units that opted out

    run({"legal_form_families": [], "with_employees": False})
    wider = warehouse.read(TARGET_COMPANIES, start=DAY, end=DAY)
    assert wider.height > targets.height


def test_read_in_siren_blocks_the_targets_and_funnel_are_those_of_one_pass(
    data_dir: Path, monkeypatch: Any
) -> None:
    """A national universe is read a block of SIRENs at a time: here blocks of 100 units."""
    monkeypatch.setattr(assets, "RULE_BLOCK_ROWS", 100)
    resources = make_resources(data_dir, f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    warehouse = resources["warehouse"].backend()

    result = dg.materialize(
        [raw_companies, target_companies], partition_key=DAY.isoformat(), resources=resources
    )

    raw = warehouse.read(RAW_COMPANIES, start=DAY, end=DAY)
    assert raw.height > 1_000  # more than ten blocks
    whole = select_targets(raw, DAY, TargetRules())
    stored = warehouse.read(TARGET_COMPANIES, start=DAY, end=DAY)
    assert stored.sort("siren").equals(whole.targets.select(stored.columns))
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "target_companies"
    ]
    funnel = event.materialization.metadata["kept_and_dropped_by_rule"].value
    assert funnel == {rule: {"kept": k, "dropped": d} for rule, k, d in whole.funnel.rows()}
