"""One API key cycling over every published date at its full rate, beside normal keys: the
worker's memory and the normal keys' latency (issue 20).

    python -m bench.bench_api_abuse [--companies 100000] [--days 10] [--duration 20]
                                    [--normal-keys 2] [--normal-rate 50] [--abuser-connections 4]

From the repository root (the partitions come from the test factories). It publishes ``--days``
consecutive days of ``--companies`` companies into a scratch DuckDB data dir, serves the API with
one uvicorn worker as ``ma-api serve`` does (``bench.bench_api.server``, 127.0.0.1), and creates
an "abuser" key with a rate limit out of reach and ``--normal-keys`` normal keys. Then:

- phase 1 (idle): each normal key sends ``GET /v1/companies/{siren}`` (a random SIREN of the
  partition) at ``--normal-rate`` requests/s, open loop (a request is sent at its scheduled time
  whether or not the previous one answered; its latency counts from that time), for
  ``--duration`` s;
- phase 2 (abuse): the same load, while the abuser, in a process of its own, cycles
  ``GET /v1/scores?date=D&limit=500`` and ``GET /v1/sectors?date=D`` over every published date on
  ``--abuser-connections`` connections, each sending its next request as soon as the previous
  one answered.

The server's processes are sampled every 0.2 s (VmRSS, and VmHWM at the end). The bound on the
worker's memory is stated before the abuse from what the same run measured: the worker's VmHWM
once it answers (the newest partition's file written and mapped: the cost of one load, transient
heap included) plus 3 partition files (the 2 older partitions the API caches, mapped, and the one
being loaded; loads are serialized by the directory's lock and single-flight per date).
"""

import argparse
import asyncio
import multiprocessing
import random
import re
import statistics
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bench_api import _processes, server
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import ML_SCORES
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import connect_warehouse
from ma_pipeline_tests.factories import ml_scores, sirens
from serving.config import ApiSettings
from serving.store import ApiStore

FIRST_DAY = date(2026, 11, 20)
TARGET_P99_RATIO = 2.0


def prepare(
    data_dir: Path, warehouse_url: str, companies: list[str], days: int, normal_keys: int
) -> tuple[list[date], str, list[str]]:
    """Publish ``days`` consecutive days; return them, the abuser's token and the normal ones."""
    started = time.perf_counter()
    warehouse = connect_warehouse(warehouse_url, data_dir)
    published = [FIRST_DAY + timedelta(days=i) for i in range(days)]
    for i, day in enumerate(published):
        warehouse.replace_partitions(ML_SCORES, ml_scores(day, companies, seed=i), [day])
        publish(warehouse, day, "bench", snapshot=snapshot_paths(data_dir))
    print(
        f"published {days} days of {len(companies):,} companies"
        f" in {time.perf_counter() - started:.0f} s"
    )
    store = ApiStore(ApiSettings(data_dir, warehouse_url).api_database)
    store.create_tables()
    abuser = store.create_key("abuser", ["scores:read"], rate_per_second=1e9)[1]
    normal = [
        store.create_key(f"normal{i}", ["scores:read"], rate_per_second=1e6)[1]
        for i in range(normal_keys)
    ]
    return published, abuser, normal


class MemorySampler(threading.Thread):
    """VmRSS of each of the server's processes every ``interval`` s; the peak per process."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid, rss in status_mb(self.pid, "VmRSS").items():
                self.peak[pid] = max(self.peak.get(pid, 0.0), rss)
            self._stop_event.wait(self.interval)

    def stop(self) -> dict[int, float]:
        self._stop_event.set()
        self.join()
        return self.peak


def status_mb(pid: int, field: str) -> dict[int, float]:
    """``field`` of /proc/<pid>/status (VmRSS, VmHWM) of the server's processes, in MB."""
    found = {}
    for process in _processes(pid):
        try:
            match = re.search(rf"^{field}:\s+(\d+) kB", (process / "status").read_text(), re.M)
        except FileNotFoundError:
            continue
        found[int(process.name)] = int(match.group(1)) / 1024 if match else 0.0
    return found


def worker_pid(pid: int) -> int:
    """The uvicorn worker: the server's process with the largest resident set."""
    rss = status_mb(pid, "VmRSS")
    return max(rss, key=lambda p: rss[p])


async def normal_load(
    url: str, tokens: list[str], companies: list[str], rate: float, duration: float
) -> tuple[list[float], Counter[int]]:
    """Open-loop company look-ups, ``rate`` per second per key; latencies in ms from each
    request's scheduled time, and the status counts."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(token: str, due: float) -> None:
            siren = random.choice(companies)
            try:
                response = await client.get(f"/v1/companies/{siren}", headers={"X-API-Key": token})
                statuses[response.status_code] += 1
            except httpx.HTTPError:
                statuses[0] += 1
            latencies.append((time.perf_counter() - due) * 1000)

        start = time.perf_counter() + 0.05
        interval = 1 / (rate * len(tokens))
        tasks = []
        for i in range(int(duration * rate * len(tokens))):
            due = start + i * interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(tokens[i % len(tokens)], due)))
        await asyncio.gather(*tasks)
    return latencies, statuses


def abuse(
    url: str, token: str, days: list[str], connections: int, duration: float, out: Any
) -> None:
    """The abuser, in a process of its own: once started, say so on ``out``, cycle every
    published date on ``connections`` closed-loop connections for ``duration`` s, then put the
    counts on ``out``."""
    out.put("ready")
    stop_at = time.time() + duration

    async def run() -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        latencies: list[float] = []
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

            async def loop(offset: int) -> None:
                i = offset
                while time.time() < stop_at:
                    day = days[i % len(days)]
                    path = "/v1/scores" if (i // len(days)) % 2 == 0 else "/v1/sectors"
                    params = (
                        {"date": day, "limit": "500"} if path == "/v1/scores" else {"date": day}
                    )
                    sent = time.perf_counter()
                    try:
                        response = await client.get(
                            path, params=params, headers={"X-API-Key": token}
                        )
                        statuses[f"{path} {response.status_code}"] += 1
                    except httpx.HTTPError as error:
                        statuses[f"{path} {type(error).__name__}"] += 1
                    latencies.append((time.perf_counter() - sent) * 1000)
                    i += 1

            await asyncio.gather(*(loop(c * 3) for c in range(connections)))
        return {"statuses": dict(statuses), "latencies": latencies}

    out.put(asyncio.run(run()))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--duration", type=int, default=20, help="seconds per phase")
    parser.add_argument("--normal-keys", type=int, default=2)
    parser.add_argument("--normal-rate", type=float, default=50, help="requests/s per normal key")
    parser.add_argument("--abuser-connections", type=int, default=4)
    parser.add_argument("--port", type=int, default=8775)
    args = parser.parse_args()

    companies = sirens(args.companies)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        url = f"duckdb:///{Path(folder) / 'warehouse.duckdb'}"
        days, abuser, normal = prepare(data_dir, url, companies, args.days, args.normal_keys)
        env = {"MA_DATA_DIR": str(data_dir), "MA_WAREHOUSE_URL": url}
        with server(args.port, 1, env, Path(folder) / "api.log") as (base, pid):
            worker = worker_pid(pid)
            started = status_mb(pid, "VmHWM")[worker]
            load = (base, normal, companies, args.normal_rate, args.duration)
            asyncio.run(normal_load(base, normal, companies, args.normal_rate, 3))  # warm-up
            sampler = MemorySampler(pid)
            sampler.start()
            idle, idle_statuses = asyncio.run(normal_load(*load))
            idle_peak = sampler.stop()
            rest = status_mb(pid, "VmRSS")[worker]
            files = list((data_dir / "serving").glob("*.arrow"))
            file_mb = max(f.stat().st_size for f in files) / 2**20

            queue: Any = multiprocessing.get_context("spawn").Queue()
            abuser_process = multiprocessing.get_context("spawn").Process(
                target=abuse,
                args=(base, abuser, [d.isoformat() for d in days], args.abuser_connections),
                kwargs={"duration": args.duration + 1.0, "out": queue},
            )
            sampler = MemorySampler(pid)
            sampler.start()
            abuser_process.start()
            queue.get()  # the abuser's process has started
            time.sleep(0.5)
            loaded, loaded_statuses = asyncio.run(normal_load(*load))
            abused = queue.get()
            abuser_process.join()
            time.sleep(1.0)
            abuse_peak = sampler.stop()
            hwm = status_mb(pid, "VmHWM")
            print(f"server log: {Path(folder) / 'api.log'} (removed at exit)")
    report(args, idle, idle_statuses, loaded, loaded_statuses, abused)
    bound = started + 3 * file_mb
    peak = abuse_peak.get(worker, 0.0)
    print(
        f"\nworker memory (pid {worker}): at rest after phase 1 {rest:,.0f} MB RSS"
        f" (phase 1 peak {idle_peak.get(worker, 0.0):,.0f} MB); partition file {file_mb:,.0f} MB;"
        f" phase 2 peak {peak:,.0f} MB RSS (sampled every 0.2 s), VmHWM {hwm.get(worker, 0):,.0f}"
        f" MB (since start, including writing the newest partition's file)"
    )
    print(
        f"bound: VmHWM once serving {started:,.0f} + 3 partition files {3 * file_mb:,.0f}"
        f" = {bound:,.0f} MB -> " + ("met" if peak <= bound else "NOT met")
    )
    others = {p: v for p, v in abuse_peak.items() if p != worker}
    if others:
        print(
            "other server processes' peak RSS in phase 2: "
            + ", ".join(f"{p}: {v:,.0f} MB" for p, v in others.items())
        )


def report(
    args: argparse.Namespace,
    idle: list[float],
    idle_statuses: Counter[int],
    loaded: list[float],
    loaded_statuses: Counter[int],
    abused: dict[str, Any],
) -> None:
    print(
        f"\n{args.companies:,} companies x {args.days} published days, 1 uvicorn worker;"
        f" {args.normal_keys} normal keys at {args.normal_rate:g} req/s each (open loop),"
        f" abuser on {args.abuser_connections} connections; {args.duration} s per phase"
    )
    print(f"{'phase':<8}{'normal requests':>17}{'statuses':>22}{'p50 ms':>9}{'p99 ms':>9}")
    for name, values, statuses in (
        ("idle", idle, idle_statuses),
        ("abuse", loaded, loaded_statuses),
    ):
        print(
            f"{name:<8}{len(values):>17,}{dict(statuses)!s:>22}"
            f"{percentile(values, 0.5):>9.2f}{percentile(values, 0.99):>9.2f}"
        )
    ratio = percentile(loaded, 0.99) / percentile(idle, 0.99)
    print(
        f"p99 abuse/idle: {ratio:.2f} (target <= {TARGET_P99_RATIO:g}) -> "
        + ("met" if ratio <= TARGET_P99_RATIO else "NOT met")
    )
    latencies = abused["latencies"]
    print(
        f"abuser: {len(latencies):,} requests ({len(latencies) / args.duration:.1f}/s),"
        f" p50 {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms;"
        f" statuses {abused['statuses']}"
    )


if __name__ == "__main__":
    main()
