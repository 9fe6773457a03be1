"""bench.bench_api reads every wrk report, the runs with the longest tails included."""

import pytest

from bench.bench_api import parse_wrk

REPORT = """Running 10s test @ http://127.0.0.1:8765
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    {avg}    {stdev}   {max}   91.33%
    Req/Sec     3.52k   412.10     4.10k    70.00%
  Latency Distribution
     50%   {p50}
     75%   21.40ms
     90%   40.12ms
     99%   {p99}
  35021 requests in 10.01s, 9.12MB read
{errors}Requests/sec:   3498.60
Transfer/sec:    933.20KB
"""


def report(p50: str, p99: str, errors: str = "") -> str:
    return REPORT.format(avg=p50, stdev="1.0ms", max=p99, p50=p50, p99=p99, errors=errors)


def test_a_run_with_a_tail_past_one_second_is_parsed() -> None:
    """wrk writes ``1.01s`` padded with spaces; such a run used to crash the bench."""
    run = parse_wrk(report("17.25ms", "1.01s  "))

    assert run == {"rps": 3498.6, "p50": 17.25, "p99": 1010.0, "requests": 35021, "errors": 0}


@pytest.mark.parametrize(
    ("p50", "p99", "expected"),
    [("850.00us", "12.50ms", (0.85, 12.5)), ("2.10ms", "1.00m ", (2.1, 60_000.0))],
)
def test_every_latency_unit_is_read_in_milliseconds(
    p50: str, p99: str, expected: tuple[float, float]
) -> None:
    run = parse_wrk(report(p50, p99))

    assert (run["p50"], run["p99"]) == pytest.approx(expected)


def test_socket_errors_are_counted_and_a_truncated_report_is_refused() -> None:
    errors = "  Socket errors: connect 0, read 3, write 0, timeout 12\n"

    assert parse_wrk(report("5.00ms", "30.00ms", errors))["errors"] == 15
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        parse_wrk("Running 10s test @ http://127.0.0.1:8765\n")
