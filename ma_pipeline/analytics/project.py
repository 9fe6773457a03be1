"""The dbt project of the marts (``dbt_project/`` at the repository root).

The manifest its assets load (``dbt_project/target/manifest.json``, not committed) is prepared by
``dagster dev`` and ``dg check defs`` (``prepare_if_dev``), by ``make install`` (``dagster-dbt
project prepare-and-package --file ma_pipeline/analytics/project.py``) and by the tests' conftest.
"""

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# dagster-dbt runs the dbt it finds on PATH, and its preparer builds a DbtCliResource of its own:
# when this interpreter's environment is not activated, put the dbt installed beside it there.
_BIN = str(Path(sys.executable).parent)
if shutil.which("dbt") is None and shutil.which("dbt", path=_BIN):
    os.environ["PATH"] = os.pathsep.join([_BIN, os.environ.get("PATH", "")])

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()
