"""The asset graph as a reviewed artefact: a snapshot of every asset spec and check, so a change
to keys, groups, dependencies, partitions or checks shows in review (update it on purpose with
``pytest ma_pipeline_tests/test_asset_graph.py --snapshot-update``)."""

from typing import Any

import dagster as dg
from syrupy.assertion import SnapshotAssertion

from ma_pipeline.definitions import defs


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return f"{partitions_def.cron_schedule} {partitions_def.timezone}"
    return type(partitions_def).__name__


def _checks() -> dict[str, list[str]]:
    """Check names by asset, from the assets' own check specs and the separate checks."""
    checks: dict[str, list[str]] = {}
    for definition in [*defs.assets, *defs.asset_checks]:
        for spec in getattr(definition, "check_specs", []):
            key = spec.asset_key.to_user_string()
            blocking = " (blocking)" if spec.blocking else ""
            checks.setdefault(key, []).append(f"{spec.name}{blocking}")
    return {key: sorted(names) for key, names in checks.items()}


def spec_summary() -> dict[str, dict[str, Any]]:
    """Every asset: group, kinds, owners, partitions, dependencies (with their partition mapping
    when it is not the default) and checks. Code versions are left out: they change with every
    edit of the asset's logic, which is their purpose."""
    checks = _checks()
    summary = {}
    for spec in defs.resolve_all_asset_specs():
        key = spec.key.to_user_string()
        summary[key] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "owners": sorted(spec.owners),
            "partitions": _partitions(spec.partitions_def),
            "deps": sorted(
                dep.asset_key.to_user_string()
                + (f" [{type(dep.partition_mapping).__name__}]" if dep.partition_mapping else "")
                for dep in spec.deps
            ),
            "checks": checks.get(key, []),
        }
    return dict(sorted(summary.items()))


def test_the_asset_graph_matches_its_reviewed_snapshot(snapshot: SnapshotAssertion) -> None:
    assert spec_summary() == snapshot


def test_every_asset_has_owners_kinds_and_a_code_version() -> None:
    missing = {
        spec.key.to_user_string(): [
            name
            for name, value in (
                ("owners", spec.owners),
                ("kinds", spec.kinds),
                ("code_version", spec.code_version),
            )
            if not value
        ]
        for spec in defs.resolve_all_asset_specs()
    }
    assert {key: names for key, names in missing.items() if names} == {}
