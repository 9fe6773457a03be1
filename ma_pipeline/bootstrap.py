"""`python -m ma_pipeline.bootstrap`: materialize the latest partition on the local instance.

The run is recorded in the Dagster instance under DAGSTER_HOME, so it shows in the UI afterwards.
"""

import sys

import dagster as dg

from ma_pipeline.definitions import defs
from ma_pipeline.partitions import daily_partitions


def main() -> int:
    partition = daily_partitions.get_last_partition_key()
    if partition is None:
        print("No partition yet: MA_PARTITIONS_START is in the future.", file=sys.stderr)
        return 1
    print(f"Materializing partition {partition} (daily_job)...", flush=True)
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("daily_job").execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False
        )
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        rows = metadata.get("dagster/row_count")
        table = metadata.get("dagster/table_name")
        print(
            f"  {table.value if table else event.asset_key.to_user_string()}:"
            f" {rows.value if rows else '?'} rows"
        )
    if not result.success:
        print(f"Run {result.run_id} failed; see it in the Dagster UI.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
