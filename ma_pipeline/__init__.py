"""ma_pipeline: the Dagster code location (``definitions.py`` exposes ``defs``)."""

import warnings

import dagster as dg

# The pipeline uses partitioned asset checks (preview) and backfill policies (beta) on purpose.
# Every process that loads the code location (code server, run and step workers) would repeat
# their warnings, which tell an operator nothing: they are silenced here, where they arise.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
