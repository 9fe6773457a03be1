"""The ml group: M&A events, the point-in-time training set, and the three scores' models."""

import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from pydantic import Field

from ma_pipeline import settings
from ma_pipeline.contracts import keys
from ma_pipeline.enrichment.registry import RegistryResource
from ma_pipeline.features import compute
from ma_pipeline.ingestion import bodacc
from ma_pipeline.ingestion.bodacc import DOWNLOAD as BODACC_EXPORTS
from ma_pipeline.ingestion.bodacc import BodaccFileError
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.lib import owners
from ma_pipeline.lib.metadata import preview
from ma_pipeline.lib.versions import source_version
from ma_pipeline.ml import backtest, dataset, events, models, promotion, registry, train
from ma_pipeline.ml.backtest import summary as backtest_summary
from ma_pipeline.ml.dataset import (
    AS_OF,
    HORIZON_MONTHS,
    add_months,
    as_of_dates,
    build_training_set,
    read_snapshot,
)
from ma_pipeline.ml.events import (
    EventsFileError,
    event_files,
    read_events,
    sandbox_events,
    with_bodacc,
)
from ma_pipeline.ml.model_card import markdown_table, metrics_table
from ma_pipeline.ml.models import candidate, feature_reference, log_run_context, register
from ma_pipeline.ml.registry import SCORES, MlflowResource, model_versions
from ma_pipeline.ml.scorer import BASELINE_VERSION, LABELS
from ma_pipeline.ml.train import TrainingConfig, split_dates
from ma_pipeline.partitions import TIMEZONE
from ma_pipeline.warehouse import WAREHOUSE_POOL, WarehouseResource
from ma_pipeline.warehouse.postgres_backend import redact

GROUP = "ml"
TRAINING_VERSION = source_version(
    sys.modules[__name__], train, models, promotion, registry, backtest
)


class EventsConfig(dg.Config):
    history_months: int | None = Field(
        default=None,
        description="Sandbox only: months of events drawn, up to the sandbox's as-of day;"
        " None: MA_EVENTS_HISTORY_MONTHS at launch",
    )
    launch = settings.launch_defaults(history_months="MA_EVENTS_HISTORY_MONTHS")


@dg.asset(
    key=keys.MA_EVENTS,
    group_name=GROUP,
    owners=owners.ML,
    code_version=source_version(sys.modules[__name__], events, bodacc),
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    description="Dated M&A events per SIREN (cession, changement_controle, fusion_absorption)"
    " from $MA_DATA_DIR/landing/ma_events*.csv and BODACC exports (bodacc*.csv|json|jsonl), or"
    " drawn from the sandbox's latent truth.",
)
def ma_events(
    context: dg.AssetExecutionContext,
    config: EventsConfig,
    sirene: SireneSource,
    registry: RegistryResource,
) -> dg.Output[pl.DataFrame]:
    """The CSV contract, the BODACC and CRM mappings and the sandbox's noise are documented in
    ``ma_pipeline.ml.events``. Rejected rows are listed in the metadata with their reason."""
    files = event_files(sirene.landing_dir)
    exports = BODACC_EXPORTS.files(sirene.landing_dir)
    metadata: dict[str, Any] = {}
    if files or exports:
        try:
            read, from_bodacc = with_bodacc(read_events(files), exports)
        except (EventsFileError, BodaccFileError) as exc:
            raise dg.Failure(description=str(exc)) from exc
        events = read.events
        if exports:
            metadata["bodacc_events"] = from_bodacc.events.height
            metadata["bodacc_skipped"] = from_bodacc.skipped
        metadata |= {
            "source": [path.name for path in [*files, *exports]],
            "rejected": read.rejected.height,
            "rejected_by_reason": read.rejected_by_reason(),
            "rejected_rows": preview(read.rejected, rows=50),
        }
        if read.rejected.height:
            context.log.warning(
                f"{read.rejected.height} event rows rejected: {read.rejected_by_reason()}"
            )
    elif sirene.stock_files():
        raise dg.Failure(
            description=f"no ma_events*.csv nor bodacc* export in {sirene.landing_dir}, and the"
            " universe comes from SIRENE files: sandbox events only exist for the sandbox"
            " universe. Drop an events CSV (columns siren, event_date, event_type; see"
            " ma_pipeline/ml/events.py) or BODACC exports (ma_pipeline/ingestion/bodacc.py)."
        )
    else:
        end = registry.api().sandbox_day or datetime.now(ZoneInfo(TIMEZONE)).date()
        events = sandbox_events(
            sirene.sandbox_companies, sirene.sandbox_seed, end, config.history_months
        )
        metadata["source"] = (
            f"sandbox: {config.history_months} months of events up to {end}, drawn from the"
            f" latent sale hazard of the {sirene.sandbox_companies}-company universe"
        )
    by_type = events.group_by("event_type").len().sort("event_type")
    by_year = events.group_by(pl.col("event_date").dt.year().alias("year")).len().sort("year")
    metadata |= {
        "dagster/row_count": events.height,
        "companies": events["siren"].n_unique(),
        "first_event": str(events["event_date"].min()),
        "last_event": str(events["event_date"].max()),
        "by_type": dict(zip(by_type["event_type"], by_type["len"].to_list(), strict=True)),
        "by_year": dict(zip(map(str, by_year["year"]), by_year["len"].to_list(), strict=True)),
        "preview": preview(events),
    }
    return dg.Output(events, metadata=metadata)


class TrainingSetConfig(dg.Config):
    lookback_months: int | None = Field(
        default=None,
        description="Oldest as-of date, in months before the snapshot day;"
        " None: MA_TRAINING_LOOKBACK_MONTHS at launch",
    )
    launch = settings.launch_defaults(lookback_months="MA_TRAINING_LOOKBACK_MONTHS")


@dg.asset(
    key=keys.TRAINING_SET,
    group_name=GROUP,
    owners=owners.ML,
    code_version=source_version(sys.modules[__name__], dataset, compute),
    ins={"ma_events": dg.AssetIn(key=keys.MA_EVENTS)},
    deps=[keys.RAW_COMPANIES, *keys.PAPPERS_TABLES],
    pool=WAREHOUSE_POOL,
    kinds={"polars"},
    description="Features of company_features as of monthly dates, from the newest Pappers"
    " snapshot, with what happened in the 12 months after each (only closed windows).",
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    warehouse: WarehouseResource,
    ma_events: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Point-in-time rules and the choice of companies: ``ma_pipeline.ml.dataset``. Reads one
    partition (the newest) of raw_companies and of the Pappers tables, not their history."""
    try:
        snapshot = read_snapshot(warehouse.backend())
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc
    dates = as_of_dates(snapshot.day, config.lookback_months)
    if not dates:
        raise dg.Failure(
            description=f"no as-of date within {config.lookback_months} months of the snapshot"
            f" ({snapshot.day}) has a closed {HORIZON_MONTHS}-month window: lengthen the look-back"
        )
    frame = build_training_set(snapshot, ma_events, dates)
    windows = (dates[0], add_months(dates[-1], HORIZON_MONTHS))
    if ma_events.is_empty() or ma_events["event_date"].min() > windows[0]:
        context.log.warning(
            f"events start {ma_events['event_date'].min()}, after the first label window opens"
            f" ({windows[0]}): older M&A labels read 0 for lack of data"
        )
    rates = frame.group_by(AS_OF).agg(
        pl.len().alias("companies"),
        *(pl.col(label).mean().alias(label) for label in LABELS.values()),
    )
    return dg.Output(
        frame,
        metadata={
            "snapshot_date": str(snapshot.day),
            "as_of_dates": f"{dates[0]} → {dates[-1]} ({len(dates)} monthly)",
            "label_windows": f"{windows[0]} → {windows[1]}",
            "events_in_windows": ma_events.filter(
                pl.col("event_date").is_between(*windows, closed="right")
            ).height,
            "label_rates": {
                label: round(float(frame[label].mean() or 0.0), 4) for label in LABELS.values()
            },
            "growth_label_missing": round(
                float(frame[LABELS["croissance"]].null_count() / max(frame.height, 1)), 4
            ),
            "per_as_of_date": preview(rates.sort(AS_OF), rows=len(dates)),
        },
    )


@dg.multi_asset(
    outs={
        "ma_models": dg.AssetOut(
            key=keys.MA_MODELS,
            dagster_type=dg.Nothing,  # the models live in the MLflow registry, not in a table
            owners=owners.ML,
            code_version=TRAINING_VERSION,
            kinds={"lightgbm", "mlflow"},
            description="LightGBM models of score_ma, score_croissance and score_stabilite,"
            " registered in MLflow; a new version becomes champion only if it beats the"
            " champion and the rule baseline on the holdout.",
        ),
        "model_versions": dg.AssetOut(
            key=keys.MODEL_VERSIONS,
            owners=owners.ML,
            code_version=TRAINING_VERSION,
            kinds={"polars", "mlflow"},
            description="One row per registered model version: its alias (champion,"
            " challenger), holdout metrics and promotion decision, rebuilt from the registry.",
        ),
        "feature_reference": dg.AssetOut(
            key=keys.FEATURE_REFERENCE,
            owners=owners.ML,
            code_version=TRAINING_VERSION,
            is_required=False,
            kinds={"polars"},
            description="A sample of the ma champion's training features: the feature-drift"
            " check's reference. Written only when a new ma champion is promoted.",
        ),
    },
    ins={
        "training_set": dg.AssetIn(key=keys.TRAINING_SET),
        "ma_events": dg.AssetIn(key=keys.MA_EVENTS),  # where the M&A labels come from
    },
    group_name=GROUP,
    pool=WAREHOUSE_POOL,
)
def ma_models(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    training_set: pl.DataFrame,
    ma_events: pl.DataFrame,
    mlflow: MlflowResource,
) -> Iterator[dg.Output[Any]]:
    """Splits, training and purging: ``ma_pipeline.ml.train``; promotion:
    ``ma_pipeline.ml.promotion``. The models live in the MLflow registry (scoring loads the
    champions with ``MlflowResource.scorers``); ``model_versions`` is rebuilt from the registry
    and ``feature_reference`` written when a new ``ma`` champion is promoted."""
    frame = training_set.sort(AS_OF, "siren")  # the warehouse returns rows in no set order
    try:
        splits = split_dates(
            frame[AS_OF].unique().to_list(), config.holdout_months, config.validation_months
        )
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    snapshot_day = frame["snapshot_date"].max()
    sources = ma_events.group_by("source").len().sort("source")
    label_sources = dict(zip(sources["source"], sources["len"].to_list(), strict=True))
    metadata: dict[str, Any] = {}
    reference: pl.DataFrame | None = None
    with mlflow.start_run(context) as run:
        run_id = run.info.run_id
        client = mlflow.client()
        serving = mlflow.scorers()  # the champions, re-scored on the new holdout
        log_run_context(splits, config, snapshot_day)
        # Every model is trained before the registry changes: a failure leaves it untouched.
        found = {score: candidate(score, frame, splits, config, serving[score]) for score in SCORES}
        for score in SCORES:
            report, card = register(
                found[score],
                mlflow,
                client,
                splits=splits,
                config=config,
                snapshot_day=snapshot_day,
                run_id=run_id,
                label_sources=label_sources,
            )
            context.log.info(f"{report.model_version}: {report.decision.reason}")
            metadata |= {
                f"{score}_model_version": report.model_version,
                f"{score}_promoted": report.decision.promote,
                f"{score}_decision": report.decision.reason,
                f"{score}_metrics": dg.MetadataValue.json(report.metrics),
                f"{score}_comparison": dg.MetadataValue.md(
                    markdown_table(metrics_table(report.metrics))
                ),
                f"{score}_model_card": dg.MetadataValue.md(card),
                f"{score}_backtest": dg.MetadataValue.json(backtest_summary(report.backtest)),
            }
            if score == "ma" and report.decision.promote:
                reference = feature_reference(frame, splits, report.model_version, config.seed)
        versions = model_versions(client)
    serving = versions.filter(pl.col("alias") == "champion")
    champion_of = dict(
        zip(serving["score"], serving["model_name"] + "/" + serving["version"], strict=True)
    )
    yield dg.Output(
        None,
        output_name="ma_models",
        metadata=metadata
        | {
            "mlflow_run_id": run_id,
            "mlflow_tracking_uri": redact(mlflow.uri),
            "champions": {s: champion_of.get(s, BASELINE_VERSION) for s in SCORES},
            "snapshot_date": str(snapshot_day),
            "splits": {
                name: f"{dates[0]} → {dates[-1]} ({len(dates)})" if dates else "none"
                for name in ("train", "validation", "refit", "holdout", "purged")
                for dates in (getattr(splits, name),)
            },
            "model_versions": preview(versions, rows=30),
            "feature_reference_written": reference is not None,
        },
    )
    yield dg.Output(versions, output_name="model_versions")
    if reference is not None:
        yield dg.Output(reference, output_name="feature_reference")
