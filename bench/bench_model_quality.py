"""Holdout quality of the three models on the sandbox, beside the rule baseline.

    python bench/bench_model_quality.py [--companies 50000]

Runs what the quick start runs before scoring, in a temporary folder and Dagster instance: the
newest daily partition's ingestion, enrichment and features, then ``training_job`` (events,
training set, the three LightGBM models, registered in MLflow). Prints, per score, the holdout
ROC-AUC, PR-AUC and precision in the top 1 % of the new model and of the rule baseline (the
floor every model must beat), read back from the MLflow run.
"""

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

METRICS = ("roc_auc", "pr_auc", "precision_top_1pct", "positive_rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--companies", type=int, default=50_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-quality-") as folder:
        os.environ |= {
            "MA_DATA_DIR": str(Path(folder) / "data"),
            "DAGSTER_HOME": str(Path(folder) / "dagster"),
            "MA_SANDBOX_COMPANIES": str(args.companies),
        }
        (Path(folder) / "dagster").mkdir()
        import dagster as dg
        import mlflow

        from ma_pipeline.bootstrap import UPSTREAM
        from ma_pipeline.definitions import defs
        from ma_pipeline.jobs import daily_job
        from ma_pipeline.partitions import daily_partitions

        partition = daily_partitions.get_last_partition_key()
        graph = defs.resolve_asset_graph()
        upstream = UPSTREAM.resolve(graph) & daily_job.selection.resolve(graph)
        started = time.perf_counter()
        with dg.DagsterInstance.ephemeral() as instance:
            day = defs.resolve_job_def("daily_job").execute_in_process(
                partition_key=partition, asset_selection=list(upstream), instance=instance
            )
            assert day.success
            training = defs.resolve_job_def("training_job").execute_in_process(instance=instance)
            assert training.success
        seconds = time.perf_counter() - started

        mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'data' / 'mlflow' / 'mlflow.db'}")
        [run] = mlflow.search_runs(experiment_names=["ma_pipeline"], output_format="list")
        metrics = run.data.metrics
        print(
            f"sandbox of {args.companies:,} units, partition {partition}; ingestion, enrichment,"
            f" features and training in {seconds:.0f} s"
        )
        print(
            "score      | model: ROC-AUC  PR-AUC  prec@1% | baseline: ROC-AUC  PR-AUC  prec@1%"
            " | positives"
        )
        for score in ("ma", "croissance", "stabilite"):
            model = [metrics[f"{score}.challenger.{m}"] for m in METRICS]
            floor = [metrics[f"{score}.baseline.{m}"] for m in METRICS]
            print(
                f"{score:<10} |        {model[0]:.3f}   {model[1]:.3f}   {model[2]:.3f}"
                f" |           {floor[0]:.3f}   {floor[1]:.3f}   {floor[2]:.3f}"
                f" | {model[3]:.1%}"
            )


if __name__ == "__main__":
    main()
