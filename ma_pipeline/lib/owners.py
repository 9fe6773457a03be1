"""Who answers for each group of assets: the ``owners`` the Dagster UI shows and filters on."""

DATA = ["team:data-platform"]  # ingestion, enrichment, features, publication
ML = ["team:ml"]  # models and scores
ANALYTICS = ["team:analytics"]  # the dbt marts
