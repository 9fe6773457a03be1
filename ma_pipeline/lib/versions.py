"""Code versions that change when an asset's logic changes, so Dagster flags what is stale."""

import hashlib
import inspect
from types import ModuleType


def source_version(*modules: ModuleType) -> str:
    """A digest of the source of ``modules``: the asset's own module and those holding its logic."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:12]
