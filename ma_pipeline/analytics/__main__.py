"""``python -m ma_pipeline.analytics <dbt arguments>``: dbt by hand, in the pipeline's warehouse.

The target and connection come from MA_WAREHOUSE_URL and MA_DATA_DIR, as for the Dagster assets:
``python -m ma_pipeline.analytics build --select mart_targets --full-refresh``,
``python -m ma_pipeline.analytics docs generate``.
"""

import subprocess
import sys

from ma_pipeline import settings
from ma_pipeline.analytics.profile import dbt_environment
from ma_pipeline.analytics.project import DBT_PROJECT_DIR


def main(args: list[str]) -> int:
    # dbt finds dbt_project.yml and profiles.yml in its working directory.
    with dbt_environment(settings.value("MA_WAREHOUSE_URL"), settings.value("MA_DATA_DIR")):
        return subprocess.run(["dbt", *args], cwd=DBT_PROJECT_DIR, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
