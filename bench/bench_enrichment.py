"""Enrich a day of SIRENs through a registry provider's sandbox, at 50 ms latency, under its limit.

    python bench/bench_enrichment.py [--companies 10000] [--latency 0.05] [--rate 100]
                                     [--concurrency 16] [--pg postgresql://postgres@127.0.0.1/postgres]
    python bench/bench_enrichment.py --provider recherche_entreprises [--companies 1500]

Pappers (the default) runs under ``--rate`` requests/s. The API Recherche d'entreprises runs at
its own documented limit, 7 requests/s, which its twin enforces server-side (429 with
Retry-After beyond): the server's 429 count is printed, and should be 0.

Materializes raw_companies for one day of a sandbox universe of ``--companies`` companies, then
pappers_enrichment for that day as Dagster runs it (client core, cache writes, parsing, the four
tables), then the same partition again. The floor is the limit itself: under a sliding
one-second window, N calls need at least (N - limit) / limit seconds, so throughput is reported
as calls per second of the fetch phase divided by the limit (target >= 0.95). The re-run must
make no HTTP call (the sandbox transport's own counter says so). DuckDB in a temporary folder;
with ``--pg``, again on PostgreSQL in a scratch database dropped afterwards.
"""

import argparse
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg

from ma_pipeline.enrichment.assets import pappers_enrichment
from ma_pipeline.ingestion.assets import raw_companies, target_companies
from ma_pipeline.resources import build_resources
from ma_pipeline.sandbox.pappers_api import PappersSandbox
from ma_pipeline.sandbox.recherche_entreprises_api import RATE_LIMIT, RechercheEntreprisesSandbox

DAY = "2025-06-02"
SEED = 2026


def enrichment_metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["enrichment", "pappers_companies"])
    )
    return {k: v.value for k, v in event.materialization.metadata.items()}


def run(args: argparse.Namespace, warehouse_url: str, data_dir: Path) -> None:
    """Both runs of the partition on one warehouse; prints what they did."""
    as_of = date(2026, 1, 1)
    if args.provider == "recherche_entreprises":
        transport: PappersSandbox | RechercheEntreprisesSandbox = RechercheEntreprisesSandbox(
            args.companies, SEED, as_of=as_of, latency_s=args.latency
        )
    else:
        transport = PappersSandbox(args.companies, SEED, as_of=as_of, latency_s=args.latency)
    api = {"transport": transport, "rate_per_second": args.rate, "concurrency": args.concurrency}
    population = {"sandbox_companies": args.companies, "sandbox_seed": SEED}
    resources = build_resources(
        str(data_dir),
        warehouse_url,
        sirene=population,
        registry={"provider": args.provider},
        pappers={**api, "api_key": ""} if args.provider == "pappers" else {},
        recherche_entreprises={**api, "sandbox": True} if args.provider != "pappers" else {},
    )
    assets = [raw_companies, target_companies, pappers_enrichment]
    enrichment_keys = list(pappers_enrichment.keys)

    start = time.perf_counter()
    dg.materialize([raw_companies, target_companies], partition_key=DAY, resources=resources)
    raw_s = time.perf_counter() - start
    start = time.perf_counter()
    first = dg.materialize(
        assets, selection=enrichment_keys, partition_key=DAY, resources=resources
    )
    first_s = time.perf_counter() - start
    calls_first = transport.requests
    start = time.perf_counter()
    again = dg.materialize(
        assets, selection=enrichment_keys, partition_key=DAY, resources=resources
    )
    again_s = time.perf_counter() - start

    facts, cached = enrichment_metadata(first), enrichment_metadata(again)
    rate = facts["calls"] / facts["fetch_duration_s"]
    floor_s = max(facts["calls"] - args.rate, 0) / args.rate
    print(f"provider: {args.provider}; backend: {'PostgreSQL' if warehouse_url else 'DuckDB'}")
    print(
        f"  limit {args.rate:g} requests/s, latency {args.latency * 1000:g} ms, concurrency"
        f" {args.concurrency}; raw_companies for {DAY}: {raw_s:.1f} s"
    )
    print(
        f"  first run: {facts['requested']} target SIRENs, {facts['calls']} calls"
        f" (transport counted {calls_first}), fetch {facts['fetch_duration_s']:.1f} s"
        f" (floor {floor_s:.1f} s), asset {facts['duration_s']:.1f} s, run {first_s:.1f} s"
    )
    print(f"  throughput: {rate:.1f} calls/s = {rate / args.rate:.3f} of the limit")
    print(f"  429 answers from the server: {transport.statuses[429]}")
    print(
        f"  cached re-run: {cached['calls']} calls (transport counted"
        f" {transport.requests - calls_first}), {cached['cache_hits']} cache hits,"
        f" asset {cached['duration_s']:.2f} s, run {again_s:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--provider", choices=("pappers", "recherche_entreprises"), default="pappers"
    )
    parser.add_argument("--companies", type=int, default=None, help="10,000; 1,500 on the free API")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=None, help="100; 7 on the free API")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg", default="", help="also run on this PostgreSQL server")
    args = parser.parse_args()
    free = args.provider == "recherche_entreprises"
    args.companies = args.companies or (1_500 if free else 10_000)
    args.rate = args.rate or (RATE_LIMIT[0] / RATE_LIMIT[1] if free else 100.0)

    with tempfile.TemporaryDirectory() as folder:
        run(args, "", Path(folder))
    if not args.pg:
        return
    scratch = f"ma_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        with tempfile.TemporaryDirectory() as folder:
            run(args, f"{args.pg.rpartition('/')[0]}/{scratch}", Path(folder))
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    main()
