"""Sensors: a landing file runs its day once, a feature-drift ERROR requests one retraining, a
failed run posts to the webhook (a local HTTP server here)."""

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ma_pipeline.automation.alerts import AlertWebhook
from ma_pipeline.automation.sensors import (
    feature_drift_sensor,
    landing_file_sensor,
    run_failure_alert_sensor,
)
from ma_pipeline.contracts.keys import COMPANY_FEATURES
from ma_pipeline.definitions import defs
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline_tests.conftest import SIRENE_SAMPLE


def evaluate(sensor: dg.SensorDefinition, cursor: str | None, **context: Any) -> Any:
    """One tick of ``sensor`` from ``cursor``: its run requests, skip message and new cursor."""
    return sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, definitions=defs, **context))


def test_a_new_landing_file_runs_its_day_once(data_dir: Path) -> None:
    landing = data_dir / "landing"
    resources = {"sirene": SireneSource(data_dir=str(data_dir))}
    first = landing / "StockUniteLegale_2025-06-02.csv"
    shutil.copy(SIRENE_SAMPLE, first)
    (landing / "linkedin_profiles.csv").write_text("siren,nom,prenom,linkedin_slug\n")

    tick = evaluate(landing_file_sensor, None, resources=resources)
    [request] = tick.run_requests
    assert request.partition_key == "2025-06-02"
    assert request.job_name in (None, "daily_job")
    assert request.run_key == f"{first.name}@{first.stat().st_mtime_ns}"

    again = evaluate(landing_file_sensor, tick.cursor, resources=resources)
    assert not again.run_requests and again.skip_message == "no new SIRENE file"

    # A second file, the first one replaced in place, and a file for a day not yet partitioned.
    shutil.copy(SIRENE_SAMPLE, landing / "StockUniteLegale_20250605.csv")
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    shutil.copy(SIRENE_SAMPLE, landing / "StockUniteLegale_2099-01-01.csv")
    later = evaluate(landing_file_sensor, again.cursor, resources=resources)
    assert sorted(r.partition_key for r in later.run_requests) == ["2025-06-02", "2025-06-05"]
    assert len({r.run_key for r in [request, *later.run_requests]}) == 3
    assert not evaluate(landing_file_sensor, later.cursor, resources=resources).run_requests


def drift(instance: dg.DagsterInstance, partition: str, passed: bool, error: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=COMPANY_FEATURES,
            check_name="drift",
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if error else dg.AssetCheckSeverity.WARN,
            partition=partition,
        )
    )


def test_a_drift_error_requests_one_retraining_not_one_per_tick(tmp_path: Path) -> None:
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        drift(instance, "2025-06-01", passed=True, error=False)
        drift(instance, "2025-06-02", passed=False, error=False)  # WARN: no retraining
        quiet = evaluate(feature_drift_sensor, None, instance=instance)
        assert not quiet.run_requests

        drift(instance, "2025-06-03", passed=False, error=True)
        drift(instance, "2025-06-04", passed=False, error=True)  # a backfill: two errors at once
        tick = evaluate(feature_drift_sensor, quiet.cursor, instance=instance)
        [request] = tick.run_requests
        assert request.job_name in (None, "training_job")
        assert request.tags["ma/drift_partitions"] == "2025-06-03,2025-06-04"

        assert not evaluate(feature_drift_sensor, tick.cursor, instance=instance).run_requests
        drift(instance, "2025-06-05", passed=False, error=True)
        [next_request] = evaluate(feature_drift_sensor, tick.cursor, instance=instance).run_requests
        assert next_request.run_key != request.run_key


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A local HTTP server standing in for Slack or Discord; yields its URL and what it got."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"], **json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None: ...

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/abc", received
    finally:
        server.shutdown()


@dg.op
def load_partition() -> None:
    raise ValueError("the warehouse is locked")


@dg.job
def nightly() -> None:
    load_partition()


def failed_run(alerts: AlertWebhook) -> tuple[str, dg.RunFailureSensorContext]:
    """A run of ``nightly`` that fails, and the failure sensor's context for it."""
    instance = dg.DagsterInstance.ephemeral()
    result = nightly.execute_in_process(instance=instance, raise_on_error=False)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alerts": alerts},
    ).for_run_failure()
    return result.run_id, context


def test_a_failed_run_posts_slack_and_discord_json(webhook: tuple[str, list[dict]]) -> None:
    url, received = webhook
    run_id, context = failed_run(AlertWebhook(url=url, ui_url="https://dagster.example.fr/"))

    run_failure_alert_sensor(context)

    [message] = received
    assert message["content_type"] == "application/json"
    assert message["text"] == message["content"]
    text = message["text"]
    assert "job `nightly`" in text and run_id in text
    assert "load_partition" in text and "the warehouse is locked" in text
    assert f"https://dagster.example.fr/runs/{run_id}" in text


def test_without_a_webhook_the_failure_is_logged(capfd: pytest.CaptureFixture[str]) -> None:
    run_id, context = failed_run(AlertWebhook())
    capfd.readouterr()

    run_failure_alert_sensor(context)

    logged = capfd.readouterr().err
    assert "alert not delivered (MA_ALERT_WEBHOOK_URL is not set)" in logged and run_id in logged
