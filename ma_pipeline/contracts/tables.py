"""Every warehouse table the pipeline writes, each name spelled once.

A table is ``schema.name`` and its asset key is ``[schema, name]`` (``contracts.keys``): one
schema per asset group, so the Dagster graph and the warehouse read the same.
"""

from dataclasses import dataclass, field

PARTITION_COLUMN = "partition_date"


@dataclass(frozen=True)
class TableRef:
    """A table, addressed as ``schema.name``."""

    schema: str
    name: str
    # Columns read one value at a time (the API's per-company reads): with the partition column,
    # an index where the backend needs one for that. Not part of the table's identity.
    lookup: tuple[str, ...] = field(default=(), compare=False)

    @property
    def sql(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    @property
    def path(self) -> list[str]:
        """The asset key's path."""
        return [self.schema, self.name]

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


# ingestion
RAW_COMPANIES = TableRef("ingestion", "raw_companies")  # a view: days joined to their stock
SIRENE_STOCKS = TableRef("ingestion", "sirene_stocks", lookup=("siren",))  # once per stock
RAW_COMPANIES_DAYS = TableRef("ingestion", "raw_companies_days")  # day -> its stock
RAW_COMPANIES_REJECTED = TableRef("ingestion", "raw_companies_rejected")
TARGET_COMPANIES = TableRef("ingestion", "target_companies")
# enrichment
PAPPERS_COMPANIES = TableRef("enrichment", "pappers_companies")
PAPPERS_FINANCES = TableRef("enrichment", "pappers_finances")
PAPPERS_DIRIGEANTS = TableRef("enrichment", "pappers_dirigeants")
PAPPERS_PROCEDURES = TableRef("enrichment", "pappers_procedures")
PAPPERS_TABLES = (PAPPERS_COMPANIES, PAPPERS_FINANCES, PAPPERS_DIRIGEANTS, PAPPERS_PROCEDURES)
ENRICHMENT_FAILURES = TableRef("enrichment", "enrichment_failures")
API_CACHE = TableRef("enrichment", "api_cache")
API_USAGE = TableRef("enrichment", "api_usage")
# features
COMPANY_FEATURES = TableRef("features", "company_features")
# ml
MA_EVENTS = TableRef("ml", "ma_events")
TRAINING_SET = TableRef("ml", "training_set")
MA_MODELS = TableRef("ml", "ma_models")  # an asset with no table: the models live in MLflow
MODEL_VERSIONS = TableRef("ml", "model_versions")
FEATURE_REFERENCE = TableRef("ml", "feature_reference")
# scoring
ML_SCORES = TableRef("scoring", "ml_scores")
KASPR_CONTACTS = TableRef("scoring", "kaspr_contacts")
KASPR_CONTACTS_FAILURES = TableRef("scoring", "kaspr_contacts_failures")
# serving: everything the API reads, written together by the publication step
PUBLISHED_SCORES = TableRef("serving", "published_scores", lookup=("siren",))
SCORE_PUBLICATIONS = TableRef("serving", "score_publications")
PUBLISHED_MODEL_VERSIONS = TableRef("serving", "published_model_versions")
PUBLISHED_CONTACTS = TableRef("serving", "published_contacts", lookup=("siren",))
