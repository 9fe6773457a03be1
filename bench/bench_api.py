"""Requests/s and p50/p99 latency of GET /v1/companies/{siren} over 1M published companies, beside
a constant-returning endpoint of the same app in the same run.

    python -m bench.bench_api [--companies 1000000] [--duration 10] [--connections 64]
                              [--workers 1] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

From the repository root (the partition comes from the test factories), with ``wrk`` installed.
It writes a partition of ``--companies`` companies into a scratch warehouse (DuckDB, or a scratch
PostgreSQL database with ``--pg``) and publishes it, creates an API key, serves the app with
uvicorn in a separate process exactly as ``ma-api serve`` does (JSON access log included, sent to
a file), adds ``GET /bench/constant`` (same middleware, no key, no lookup), then runs wrk against
each endpoint in turn: the company lookups draw a random SIREN of the partition per request.
Last, for scale, the same wrk against a bare FastAPI app (one constant route, no middleware,
the same FastAPI settings) in a process of its own: the framework's ceiling on this machine.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import psycopg

from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import ML_SCORES
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.config import ApiSettings
from serving.store import ApiStore

DAY = date(2026, 11, 20)
LUA = Path(__file__).with_name("bench_api.lua")
TARGET_RATIO, TARGET_P99_MS, TARGET_MEMORY_MB = 0.5, 20.0, 1536


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    name = f"ma_bench_api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(data_dir: Path, warehouse_url: str, companies: list[str]) -> str:
    """Publish one partition of ``companies``; return a token with a rate limit out of reach."""
    started = time.perf_counter()
    frame = ml_scores(DAY, companies)
    warehouse = connect_warehouse(warehouse_url, data_dir)
    warehouse.replace_partitions(ML_SCORES, frame, [DAY])
    on_duckdb = warehouse.dialect == "duckdb"
    publish(warehouse, DAY, "bench", snapshot=snapshot_paths(data_dir) if on_duckdb else None)
    print(f"published {frame.height:,} companies in {time.perf_counter() - started:.0f} s")
    store = ApiStore(ApiSettings(data_dir, warehouse_url).api_database)
    store.create_tables()
    return store.create_key("bench", ["scores:read"], rate_per_second=1e9)[1]


@contextmanager
def server(
    port: int, workers: int, env: dict[str, str], log: Path, factory: str = "bench_app"
) -> Iterator[tuple[str, int]]:
    """An app of this module served in another process; yields its URL and pid once it answers
    (the API: once the partition is in memory)."""
    command = [sys.executable, "-m", "bench.api_apps", str(port), str(workers), factory]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stderr=sink, env=os.environ | env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _serving(url, factory):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start; see {log}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait()


def _serving(url: str, factory: str) -> bool:
    try:
        if factory == "bare_app":
            return httpx.get(f"{url}/bench/constant").is_success
        return httpx.get(f"{url}/health").json().get("served_date") is not None
    except httpx.HTTPError:
        return False


def _processes(pid: int) -> list[Path]:
    """/proc of a process and of its descendants (uvicorn's workers)."""
    proc = Path("/proc") / str(pid)
    children = [
        c for task in (proc / "task").iterdir() for c in (task / "children").read_text().split()
    ]
    return [proc, *(p for child in children for p in _processes(int(child)))]


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by the server's processes."""
    fields = [(p / "stat").read_text().rsplit(")", 1)[1].split() for p in _processes(pid)]
    return sum(int(f[11]) + int(f[12]) for f in fields) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> list[dict[str, float]]:
    """Memory of each of the server's processes, in MB: ``pss``, each page shared by several
    processes (the mapped partition file) split among them, so the sum is what the server holds,
    in its ``anon`` (private heap) and ``file`` (mapped files) parts; and ``rss``, its resident
    set, which counts a shared page in every process that maps it."""
    fields = {"pss": "Pss", "anon": "Pss_Anon", "file": "Pss_File", "rss": "Rss"}
    found = []
    for process in _processes(pid):
        rollup = (process / "smaps_rollup").read_text()
        values = {k: re.search(rf"^{v}:\s+(\d+) kB", rollup, re.M) for k, v in fields.items()}
        found.append({k: int(m.group(1)) / 1024 if m else 0.0 for k, m in values.items()})
    return found


def print_memory(pid: int, when: str) -> None:
    processes = memory_mb(pid)
    total = {k: sum(p[k] for p in processes) for k in ("pss", "anon", "file", "rss")}
    print(
        f"server memory {when}: {total['pss']:,.0f} MB PSS (target <= {TARGET_MEMORY_MB:,} MB):"
        f" {total['anon']:,.0f} MB private heap, {total['file']:,.0f} MB mapped files;"
        f" {total['rss']:,.0f} MB as a sum of RSS. Per process (supervisor first), PSS heap +"
        " files: " + ", ".join(f"{p['anon']:,.0f} + {p['file']:,.0f}" for p in processes)
    )


def wrk(
    url: str, pid: int, args: argparse.Namespace, *options: str, script: Sequence[str] = ()
) -> dict[str, float]:
    """Run wrk; return requests/s, the p50 and p99 latencies in ms, and the server's CPU time
    per request in µs (steadier than requests/s when other processes share the cores)."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command += ["--latency", *options, url, *(["--", *script] if script else [])]
    cpu_before = cpu_seconds(pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before
    run = parse_wrk(output)
    requests = run.pop("requests")
    return {**run, "cpu_us": cpu / requests * 1e6}


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50 and p99 in ms, requests and socket errors of a ``wrk --latency`` report,
    whatever the latencies' unit (wrk writes ``1.01s`` or ``1.00m`` with trailing spaces when a
    run's tail is long: those runs matter most)."""
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = {
        p: _ms(float(v), unit)
        for p, v, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests is None or rate is None or set(latency) != {"50", "99"}:
        raise ValueError(f"not a wrk --latency report:\n{output}")
    return {
        "rps": float(rate.group(1)),
        "p50": latency["50"],
        "p99": latency["99"],
        "requests": int(requests.group(1)),
        "errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
    }


def _ms(value: float, unit: str) -> float:
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each endpoint, interleaved")
    parser.add_argument("--pg", help="PostgreSQL server: publish and serve from a scratch database")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    companies = sirens(args.companies)
    with tempfile.TemporaryDirectory() as folder, _warehouse(args.pg, Path(folder)) as url:
        data_dir = Path(folder) / "data"
        token = prepare(data_dir, url, companies)
        lookups = Path(folder) / "sirens.txt"
        lookups.write_text("\n".join(companies[:: max(1, len(companies) // 100_000)]) + "\n")
        runs: dict[str, list[dict[str, float]]] = {"constant": [], "company": [], "bare": []}
        env = {"MA_DATA_DIR": str(data_dir), "MA_WAREHOUSE_URL": url}
        with server(args.port, args.workers, env, Path(folder) / "api.log") as (base, pid):
            print_memory(pid, "with the partition loaded")
            for _ in range(args.rounds):
                runs["constant"].append(wrk(f"{base}/bench/constant", pid, args))
                runs["company"].append(
                    wrk(
                        base,
                        pid,
                        args,
                        *("-H", f"X-API-Key: {token}", "-s", str(LUA)),
                        script=["/v1/companies/", str(lookups)],
                    )
                )
            print_memory(pid, "after the look-ups")
            files = list((data_dir / "serving").glob("*.arrow"))
            print(f"partition file: {sum(f.stat().st_size for f in files) / 1e6:,.0f} MB")
        bare = server(args.port + 1, args.workers, {}, Path(folder) / "bare.log", "bare_app")
        with bare as (base, pid):
            runs["bare"] = [wrk(f"{base}/bench/constant", pid, args) for _ in range(args.rounds)]
    report(args, runs)


@contextmanager
def _warehouse(pg: str | None, folder: Path) -> Iterator[str]:
    if pg is None:
        yield f"duckdb:///{folder / 'warehouse.duckdb'}"
    else:
        with scratch_database(pg) as url:
            yield url


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]]) -> None:
    backend = "PostgreSQL" if args.pg else "DuckDB snapshot"
    print(
        f"\n{args.companies:,} companies ({backend}), {args.connections} connections,"
        f" {args.workers} uvicorn worker(s), wrk -t{args.threads}, {args.duration} s per run"
    )
    print(
        f"{'endpoint':<26}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU µs/req':>19}{'socket errors':>15}"
    )
    endpoints = {
        "constant": "/bench/constant",
        "company": "/v1/companies/{siren}",
        "bare": "bare FastAPI constant",
    }
    for name, path in endpoints.items():
        for r in runs[name]:
            print(
                f"{path:<26}{r['rps']:>12,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
                f"{r['cpu_us']:>19.0f}{r['errors']:>15}"
            )
    best = {name: max(r["rps"] for r in runs[name]) for name in ("constant", "company")}
    cpu = {name: min(r["cpu_us"] for r in runs[name]) for name in ("constant", "company")}
    p99 = [r["p99"] for r in runs["company"]]
    print(
        f"ratio company/constant: {best['company'] / best['constant']:.2f} in requests/s (best"
        f" runs), {cpu['constant'] / cpu['company']:.2f} in server CPU per request"
        f" (target >= {TARGET_RATIO}); company p99: {min(p99):.2f} ms in the best run,"
        f" {max(p99):.2f} ms in the worst (target < {TARGET_P99_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
