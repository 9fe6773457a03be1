"""MLflow tracking and model registry as a Dagster resource, and the scorers it serves.

Why not dagster-mlflow's ``mlflow_tracking``: it is a legacy function resource (no typed
config), it maps one *job run* to one MLflow run and ends that run only from a hook attached to
a job, so a run started by ``materialize()``, the UI's Materialize button or a sensor stays
RUNNING forever; it knows nothing of assets or partitions, and it changes the process (it
updates ``os.environ`` and unregisters MLflow's exit handler). ``MlflowResource`` keeps what it
does well, the ``dagster_run_id`` tag that ties an MLflow run to its Dagster run, and replaces
the rest with a context manager that always ends the run it starts: FINISHED, or FAILED when the
body raises (a Dagster interruption included), whichever way the step was launched.

Registry layout: one registered model per score (``MODEL_NAMES``); each training registers a
version of each and sets the aliases ``challenger`` and, when it wins, ``champion``.
``model_versions`` is the registry as the warehouse table ``ml.model_versions`` shows it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import dagster as dg
import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import polars as pl
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from pydantic import Field

from ma_pipeline.contracts.scores import MODEL_VERSIONS_SCHEMA
from ma_pipeline.ml.baseline import RuleBaseline
from ma_pipeline.ml.scale import RankReference
from ma_pipeline.ml.scorer import LABELS, LightGBMScorer, Scorer
from ma_pipeline.settings import LaunchSettings

SCORES = tuple(LABELS)
MODEL_NAMES = {score: f"ma_pipeline_{score}" for score in SCORES}
CHAMPION, CHALLENGER = "champion", "challenger"
# The model version tag holding the quantiles its scores are ranked against (ml.scale), and the
# registered model's tag holding the rule baseline's, from the last training.
REFERENCE_TAG = "rank_reference"
BASELINE_REFERENCE_TAG = "baseline_rank_reference"
# Tag names: dagster_run_id is the one dagster-mlflow writes, so runs of both read the same.
RUN_TAGS = ("dagster_run_id", "dagster_job", "dagster_asset_key", "dagster_partition")
_SERVER_SCHEMES = ("http", "https", "databricks")
# ml.model_versions: the registry as the warehouse (and the API's snapshot) shows it.


def _aliases(client: MlflowClient, name: str) -> dict[str, str] | None:
    """Alias -> version of a registered model; None when the model is not registered yet."""
    try:
        return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


class MlflowResource(LaunchSettings):
    """MLflow tracking and registry: ``MLFLOW_TRACKING_URI`` when set, else a SQLite database
    ``<data_dir>/mlflow/mlflow.db`` with artifacts under ``<data_dir>/mlflow/artifacts``.

    MLflow's fluent API (``mlflow.start_run``, ``mlflow.lightgbm.log_model``, ``models:/`` URIs)
    reads a process-wide URI: every method here points it at this resource's store first.
    """

    from_settings: ClassVar[dict[str, str]] = {
        "tracking_uri": "MLFLOW_TRACKING_URI",
        "data_dir": "MA_DATA_DIR",
        "experiment_name": "MA_MLFLOW_EXPERIMENT",
    }

    tracking_uri: str | None = Field(
        default="",
        repr=False,
        description="MLFLOW_TRACKING_URI; empty: sqlite:///<data_dir>/mlflow/mlflow.db",
    )
    data_dir: str | None = Field(
        default="data", description="MA_DATA_DIR, home of the embedded store"
    )
    experiment_name: str | None = Field(
        default="ma_pipeline", description="MA_MLFLOW_EXPERIMENT: experiment of training runs"
    )

    @property
    def home(self) -> Path:
        return Path(self.data_dir).resolve() / "mlflow"

    @property
    def uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    def client(self) -> MlflowClient:
        """A client of this store, with MLflow's process-wide URIs pointed at it too."""
        if not self.tracking_uri:
            self.home.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment_id(self, client: MlflowClient) -> str:
        """The experiment's id, created on first use; a server keeps artifacts where it is
        configured to, any other store under ``<data_dir>/mlflow/artifacts``."""
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if urlsplit(self.uri).scheme not in _SERVER_SCHEMES:
            location = (self.home / "artifacts").as_uri()
        return client.create_experiment(self.experiment_name, artifact_location=location)

    @contextmanager
    def start_run(self, context: dg.AssetExecutionContext) -> Iterator[mlflow.ActiveRun]:
        """An MLflow run for this step, tagged with the Dagster run, job, assets and partition,
        and always ended: FINISHED, or FAILED if the body raises anything."""
        client = self.client()
        partition = ""
        if context.has_partition_key_range:
            keys = context.partition_key_range
            partition = keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"
        assets = ", ".join(sorted(k.to_user_string() for k in context.selected_asset_keys))
        run_id = context.run.run_id
        tags = dict(zip(RUN_TAGS, (run_id, context.run.job_name, assets, partition), strict=True))
        run = mlflow.start_run(
            experiment_id=self.experiment_id(client),
            run_name=f"{assets} {run_id[:8]}",
            tags=tags,
        )
        status = RunStatus.FAILED
        try:
            yield run
            status = RunStatus.FINISHED
        finally:
            mlflow.end_run(status=RunStatus.to_string(status))

    def champions(self) -> dict[str, ModelVersion]:
        """Score -> the model version the alias ``champion`` points at, for scores that have one."""
        client = self.client()
        champions: dict[str, ModelVersion] = {}
        for score, name in MODEL_NAMES.items():
            version = (_aliases(client, name) or {}).get(CHAMPION)
            if version is not None:
                champions[score] = client.get_model_version(name, version)
        return champions

    def register(
        self, booster: lgb.Booster, score: str, signature: ModelSignature | None = None
    ) -> ModelVersion:
        """Log ``booster`` into the active run as ``model_<score>`` and register it as a new
        version of the score's model (no alias yet)."""
        info = mlflow.lightgbm.log_model(
            booster,
            name=f"model_{score}",
            registered_model_name=MODEL_NAMES[score],
            signature=signature,
            # Stated, not inferred: inference imports the model in a subprocess (~5 s a model).
            pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
        )
        return self.client().get_model_version(
            MODEL_NAMES[score], str(info.registered_model_version)
        )

    def load_booster(self, version: ModelVersion) -> lgb.Booster:
        self.client()
        return mlflow.lightgbm.load_model(f"models:/{version.name}/{version.version}")

    def baseline_reference(self, score: str) -> RankReference | None:
        """The rule baseline's rank reference from the last training, None before any."""
        try:
            tags = self.client().get_registered_model(MODEL_NAMES[score]).tags
        except MlflowException as exc:
            if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return None
            raise
        tagged = tags.get(BASELINE_REFERENCE_TAG)
        return RankReference.from_json(tagged) if tagged else None

    def scorers(self) -> dict[str, Scorer]:
        """For each score, its champion as a LightGBM scorer (version ``<model>/<version>``), else
        the rule baseline; models are loaded once per call, so call it once per run."""
        champions = self.champions()
        scorers: dict[str, Scorer] = {
            score: RuleBaseline(score, reference=self.baseline_reference(score)) for score in SCORES
        }
        for score, version in champions.items():
            booster = self.load_booster(version)
            tagged = version.tags.get(REFERENCE_TAG)
            reference = RankReference.from_json(tagged) if tagged else None
            scorers[score] = LightGBMScorer(
                score, f"{version.name}/{version.version}", booster, reference
            )
        return scorers


def model_versions(client: MlflowClient) -> pl.DataFrame:
    """Every registered version of the three models, with its alias, metrics and decision."""
    rows: list[dict[str, object]] = []
    for score in SCORES:
        name = MODEL_NAMES[score]
        aliases = _aliases(client, name)
        if aliases is None:
            continue
        alias_of = {version: alias for alias, version in aliases.items()}
        for version in client.search_model_versions(f"name = '{name}'"):
            rows.append(
                {
                    "score": score,
                    "model_name": name,
                    "version": str(version.version),
                    "alias": alias_of.get(str(version.version), ""),
                    "run_id": version.run_id,
                    "created_at": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
                    "metrics_json": version.tags.get("holdout_metrics", "{}"),
                    "decision": version.tags.get("decision", ""),
                }
            )
    return pl.DataFrame(rows, schema=MODEL_VERSIONS_SCHEMA).sort("score", "created_at")
