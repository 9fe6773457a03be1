"""Score requests: the API records them, the sensor hands each to one run at a time, the job
scores them as ml_scores scores the same company on the same day, and the API returns them."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from ma_pipeline.automation.sensors import score_requests_sensor
from ma_pipeline.contracts.answers import Company, company_json
from ma_pipeline.contracts.api_store import api_database
from ma_pipeline.contracts.scores import SCORES
from ma_pipeline.definitions import defs
from ma_pipeline.enrichment.records import TABLES as PAPPERS_TABLES
from ma_pipeline.enrichment.resource import today
from ma_pipeline.features.compute import FeatureInputs, companies_from_pappers, compute_features
from ma_pipeline.ingestion.assets import raw_companies
from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.encoding import FEATURE_NAMES
from ma_pipeline.ml.registry import MODEL_NAMES
from ma_pipeline.sandbox.pappers_api import PappersSandbox
from ma_pipeline.scoring.compute import score_day
from ma_pipeline.scoring.on_demand import (
    OPTED_OUT,
    ApiStoreResource,
    score_requests_job,
    score_sirens,
)
from ma_pipeline.warehouse import TableRef, connect_warehouse
from ma_pipeline_tests.conftest import (
    SANDBOX_AS_OF,
    SANDBOX_DAY,
    SANDBOX_UNITS,
    make_resources,
    sandbox_features,
)
from ma_pipeline_tests.factories import sirens
from ma_pipeline_tests.serving.conftest import TESTING, Api
from ma_pipeline_tests.test_scoring_assets import Champions
from serving.app import create_app
from serving.config import ApiSettings
from serving.store import ApiStore

UNKNOWN = sirens(1, start=90_000_000)[0]  # a valid SIREN the sandbox does not know
RAW_COMPANIES = TableRef("ingestion", "raw_companies")
JOB = "score_requests_job"


@contextmanager
def api_side(api_store: ApiStoreResource) -> Iterator[ApiStore]:
    """The request store as the API opens it, to make keys and requests."""
    store = ApiStore(api_database(api_store.data_dir, api_store.warehouse_url))
    store.create_tables()
    try:
        yield store
    finally:
        store.dispose()


def tick(instance: dg.DagsterInstance, api_store: ApiStoreResource) -> Any:
    """One evaluation of the sensor: its run requests and skip message."""
    context = dg.build_sensor_context(
        instance=instance, resources={"api_store": api_store}, definitions=defs
    )
    return score_requests_sensor.evaluate_tick(context)


def handed(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["score_requests"]["config"]["request_ids"]


def summary(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The metadata of the op's output: counts, as-of date, models."""
    assert result.success
    [output] = [e for e in result.events_for_node("score_requests") if e.is_successful_output]
    return {k: v.value for k, v in output.step_output_data.metadata.items()}


def active(partition: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return partition["raw_companies"].filter(pl.col("etat_administratif") == "A")


def on_duckdb(data_dir: Path) -> str:
    return f"duckdb:///{data_dir / 'warehouse.duckdb'}"


@pytest.fixture
def api(data_dir: Path, warehouse_url: str) -> Iterator[Api]:
    """The real API over the test's warehouse (nothing published: score requests need none)."""
    app = create_app(ApiSettings(data_dir=data_dir, warehouse_url=warehouse_url, **TESTING))
    with TestClient(app) as client:
        yield Api(app, client)


def test_the_sensor_hands_each_pending_request_to_one_run_at_a_time(data_dir: Path) -> None:
    api_store = ApiStoreResource(data_dir=str(data_dir), batch_size=2)
    instance = dg.DagsterInstance.ephemeral()
    with api_side(api_store) as store:
        key, _ = store.create_key("crm", ["requests:write"])
        a, b, c = (str(store.create_request(siren, key.id)[0].id) for siren in sirens(3))

    def launch(request: dg.RunRequest) -> dg.DagsterRun:
        """What the daemon does with a run request: a run, not started yet, with its tags."""
        return instance.create_run_for_job(
            defs.resolve_job_def(JOB),
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
            status=dg.DagsterRunStatus.NOT_STARTED,
        )

    [request] = tick(instance, api_store).run_requests
    assert handed(request) == sorted([a, b])  # the oldest two
    assert request.job_name in (None, JOB)
    [repeat] = tick(instance, api_store).run_requests  # not launched yet: the daemon drops it
    assert repeat.run_key == request.run_key
    held = launch(request)

    [rest] = tick(instance, api_store).run_requests  # a and b are held by a run still going
    assert handed(rest) == [c]
    launch(rest)
    quiet = tick(instance, api_store)
    assert not quiet.run_requests
    assert quiet.skip_message == "every pending request is held by a run still going"

    instance.report_run_failed(held)  # its worker died: a and b are still pending
    [retry] = tick(instance, api_store).run_requests
    assert handed(retry) == sorted([a, b])
    assert retry.run_key != request.run_key


def test_a_score_request_goes_from_pending_to_completed_through_the_sensor(
    api: Api, data_dir: Path, warehouse_url: str, sandbox_partition: dict[str, pl.DataFrame]
) -> None:
    """On each backend, with no raw_companies yet: the company is scored from its Pappers
    identity, by the rule baseline (no champion in this MLflow)."""
    known = active(sandbox_partition)["siren"][0]
    headers = api.key("requests:write")
    created = api.client.post(
        "/v1/score-requests", headers=headers | {"Idempotency-Key": "crm-1"}, json={"siren": known}
    ).json()
    unknown = api.client.post("/v1/score-requests", headers=headers, json={"siren": UNKNOWN}).json()
    assert created["status"] == unknown["status"] == "pending"
    api_store = ApiStoreResource(data_dir=str(data_dir), warehouse_url=warehouse_url)
    instance = dg.DagsterInstance.ephemeral()

    [request] = tick(instance, api_store).run_requests
    result = score_requests_job.execute_in_process(
        run_config=request.run_config,
        resources={**make_resources(data_dir, warehouse_url), "api_store": api_store},
        instance=instance,
        tags=request.tags,
    )

    done = api.client.get(f"/v1/score-requests/{created['id']}", headers=headers).json()
    assert (done["status"], done["failure_reason"]) == ("completed", None)
    scored = Company.model_validate(done["result"])
    assert (scored.siren, scored.scorer) == (known, "rule_baseline")
    assert scored.date == today(scored.calculated_at)  # as of the day it ran, in Paris
    for score in (getattr(scored.scores, s) for s in SCORES):  # a score, or why there is none
        assert (0 <= score.value <= 100) if score.value is not None else score.unscored
    assert scored.scores.ma.reasons and scored.profile.naf_division is not None
    failed = api.client.get(f"/v1/score-requests/{unknown['id']}", headers=headers).json()
    assert (failed["status"], failed["result"], failed["failure_reason"]) == (
        "failed",
        None,
        f"siren {UNKNOWN}: no such company (unknown to SIRENE and to Pappers)",
    )
    assert summary(result) == {
        "completed": 1,
        "failed": 1,
        "skipped_not_pending": 0,
        "as_of": scored.date.isoformat(),
        "models": dict.fromkeys(SCORES, "rule_baseline"),
    }
    assert tick(instance, api_store).skip_message == "no pending score request"


def test_a_requested_score_equals_the_nightly_score_of_the_company_on_that_day(
    data_dir: Path, sandbox_partition: dict[str, pl.DataFrame], boosters: dict[str, lgb.Booster]
) -> None:
    """The sandbox day's raw_companies are in the warehouse but for one company, scored from its
    Pappers identity; the champions are LightGBM models, so the reasons are SHAP values."""
    warehouse_url = on_duckdb(data_dir)
    # Targets are sociétés, whose names Pappers writes as SIRENE does.
    in_sirene, new = sandbox_partition["pappers_companies"]["siren"][:2]
    raw = sandbox_partition["raw_companies"]
    ceased = raw.filter(pl.col("etat_administratif") == "C")["siren"][0]
    warehouse = connect_warehouse(warehouse_url, data_dir)
    warehouse.replace_partitions(RAW_COMPANIES, raw.filter(pl.col("siren") != new), [SANDBOX_DAY])
    registry = Champions(models={s: b.model_to_string() for s, b in boosters.items()})
    api_store = ApiStoreResource(data_dir=str(data_dir))
    resources = make_resources(data_dir, warehouse_url) | {
        "mlflow": registry,
        "api_store": api_store,
    }
    with api_side(api_store) as store:
        key, _ = store.create_key("crm", ["requests:write"])
        asked = {s: store.create_request(s, key.id)[0].id for s in (in_sirene, new, ceased)}
    config = {"request_ids": [str(i) for i in asked.values()], "as_of": SANDBOX_DAY.isoformat()}
    run_config = {"ops": {"score_requests": {"config": config}}}

    first = score_requests_job.execute_in_process(run_config=run_config, resources=resources)
    again = score_requests_job.execute_in_process(run_config=run_config, resources=resources)

    models = {s: f"{MODEL_NAMES[s]}/1" for s in SCORES}
    counts = {"as_of": SANDBOX_DAY.isoformat(), "models": models}
    assert summary(first) == counts | {"completed": 2, "failed": 1, "skipped_not_pending": 0}
    assert summary(again) == counts | {"completed": 0, "failed": 0, "skipped_not_pending": 3}
    nightly = score_day(
        sandbox_features(sandbox_partition, SANDBOX_DAY),
        registry.scorers(),
        None,
        datetime.now(UTC),
    ).frame
    with api_store.open() as store:
        stored = {siren: store.get_request(i) for siren, i in asked.items()}
    for siren in (in_sirene, new):
        answer = nightly.filter(siren=siren).select(company_json()).item()
        expected = Company.model_validate_json(answer).model_dump(mode="json")
        assert stored[siren].status == "completed"
        assert stored[siren].result | {"calculated_at": None} == expected | {"calculated_at": None}
    assert stored[in_sirene].result["scores"]["ma"]["reasons"][0]["feature"] in FEATURE_NAMES
    assert stored[ceased].failure_reason == (
        f"the company {ceased} has ceased: only active companies are scored"
    )


def test_a_company_row_from_its_pappers_identity_gives_the_features_of_its_sirene_row(
    sandbox_partition: dict[str, pl.DataFrame],
) -> None:
    """Every model input agrees, and the names: targets are sociétés, which Pappers names as
    SIRENE does."""
    pappers = [sandbox_partition[name] for name in PAPPERS_TABLES]
    rows = companies_from_pappers(sandbox_partition["pappers_companies"], SANDBOX_DAY)

    built = compute_features(
        FeatureInputs(rows.filter(pl.col("etat_administratif") == "A"), *pappers), SANDBOX_DAY
    )

    assert built.height > 200
    assert_frame_equal(built, sandbox_features(sandbox_partition, SANDBOX_DAY))


@dataclass(frozen=True)
class Fussy(RuleBaseline):
    """The rule baseline, raising on any matrix that holds the company of this age."""

    anciennete: float = 0.0

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        if (matrix[:, FEATURE_NAMES.index("anciennete")] == self.anciennete).any():
            raise ValueError("this company breaks the model")
        return super().contributions(matrix)


def test_a_company_whose_scoring_raises_fails_alone(
    data_dir: Path, sandbox_partition: dict[str, pl.DataFrame]
) -> None:
    features = sandbox_features(sandbox_partition, SANDBOX_DAY)
    distinct = features.unique("anciennete", keep="none", maintain_order=True)
    broken, fine = distinct["siren"][:2]
    fussy = Fussy("ma", anciennete=distinct["anciennete"][0])
    warehouse_url = on_duckdb(data_dir)

    scored = score_sirens(
        [broken, fine],
        api=make_resources(data_dir, warehouse_url)["registry"].api(),
        backend=connect_warehouse(warehouse_url, data_dir),
        scorers={s: RuleBaseline(s) for s in SCORES} | {"ma": fussy},
        as_of=SANDBOX_DAY,
        now=datetime.now(UTC),
    )

    assert list(scored.results) == [fine]
    assert scored.reasons == {broken: "the company could not be scored (ValueError)"}


def test_a_unit_that_opted_out_of_diffusion_is_neither_enriched_nor_scored(
    data_dir: Path,
) -> None:
    """Requested by SIREN through the API, a unit whose owner opted out of SIRENE diffusion is
    not sent to the registry provider and its request fails with that reason."""
    warehouse_url = on_duckdb(data_dir)
    transport = PappersSandbox(SANDBOX_UNITS, 2026, as_of=SANDBOX_AS_OF)
    resources = make_resources(data_dir, warehouse_url, pappers={"transport": transport})
    day = SANDBOX_DAY.isoformat()
    assert dg.materialize([raw_companies], partition_key=day, resources=resources).success
    backend = connect_warehouse(warehouse_url, data_dir)
    raw = backend.read(RAW_COMPANIES).filter(pl.col("etat_administratif") == "A")
    hidden = raw.filter(pl.col("statut_diffusion") == "P")["siren"][0]
    shown = raw.filter(pl.col("statut_diffusion") == "O")["siren"][0]

    scored = score_sirens(
        [hidden, shown],
        api=resources["registry"].api(),
        backend=backend,
        scorers={s: RuleBaseline(s) for s in SCORES},
        as_of=SANDBOX_DAY,
        now=datetime.now(UTC),
    )

    assert scored.reasons[hidden] == OPTED_OUT and hidden not in scored.results
    assert hidden not in transport.answered and transport.requests == 1
    assert shown in scored.results or shown in scored.reasons
