"""Pappers calls per day over consecutive sandbox days: credits follow change, not the universe.

`python -m bench.bench_enrichment_days --units 20000 --days 30 --change 0.02` materializes
raw_companies, target_companies and pappers_enrichment day after day on a DuckDB warehouse, with
a sandbox whose SIRENE records change at ``--change`` of the units a day, and prints, per day, the
target universe (what fetching the whole universe would call: the floor this replaces), the calls
the transport answered, and their share of the universe.
"""

import argparse
import tempfile
import warnings
from datetime import date, timedelta

import dagster as dg

FIRST_DAY = date(2025, 6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--change", type=float, default=0.02, help="share of units changed a day")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from ma_pipeline.enrichment.assets import pappers_enrichment
    from ma_pipeline.enrichment.pappers import PappersResource
    from ma_pipeline.ingestion.assets import raw_companies, target_companies
    from ma_pipeline.ingestion.source import SireneSource
    from ma_pipeline.resources import build_resources
    from ma_pipeline.sandbox.pappers_api import PappersSandbox

    with tempfile.TemporaryDirectory(prefix="bench-days-") as folder:
        transport = PappersSandbox(args.units, 2026, as_of=FIRST_DAY)
        resources = build_resources(folder, "")
        resources["sirene"] = SireneSource(
            data_dir=folder, sandbox_companies=args.units, sandbox_change_rate=args.change
        )
        resources["pappers"] = PappersResource(
            api_key="",
            sandbox_companies=args.units,
            sandbox_as_of=FIRST_DAY.isoformat(),
            rate_per_second=10_000,
            concurrency=32,
            transport=transport,
        )
        print("day        | targets | calls | calls / targets | due: new, changed, old")
        later = []
        for offset in range(args.days):
            day = FIRST_DAY + timedelta(days=offset)
            before = transport.requests
            result = dg.materialize(
                [raw_companies, target_companies, pappers_enrichment],
                partition_key=day.isoformat(),
                resources=resources,
            )
            assert result.success
            [event] = [
                e
                for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["enrichment", "pappers_companies"])
            ]
            meta = {k: v.value for k, v in event.materialization.metadata.items()}
            calls = transport.requests - before
            share = calls / meta["targets"]
            if offset:
                later.append(share)
            due = meta["due_by_reason"]
            print(
                f"{day} | {meta['targets']:7,} | {calls:5,} | {share:15.2%} |"
                f" {due['new']}, {due['changed']}, {due['old']}"
            )
        print(
            f"days 2-{args.days}: calls are {sum(later) / len(later):.2%} of the target universe"
            f" on average, {max(later):.2%} at most (target: at most 5 %)"
        )


if __name__ == "__main__":
    main()
