"""Every warehouse table the pipeline writes, each name spelled once.

A table is ``schema.name`` and its asset key is ``[schema, name]`` (``contracts.keys``): one
schema per asset group, so the Dagster graph and the warehouse read the same.
"""

from dataclasses import dataclass, field

PARTITION_COLUMN = "partition_date"
# The days a version of a table stored by change holds: [valid_from, valid_to), null: still valid.
VALID_FROM, VALID_TO = "valid_from", "valid_to"
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class ByChange:
    """How a partitioned table is stored by change (``warehouse.changes``): its rows are versions
    of a ``key``'s rows, each valid for a run of days, behind a view with one row per key and day.

    ``years_since`` names columns that grow with the day itself (a company's age): each is
    ``(column, anchor)``, stored as its anchor date and computed by the view as the years from
    the anchor to the partition date, so a company whose data did not change keeps one version.
    """

    key: str = "siren"
    years_since: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TableRef:
    """A table, addressed as ``schema.name``."""

    schema: str
    name: str
    # Columns read one value at a time (the API's per-company reads): with the partition column,
    # an index where the backend needs one for that. Not part of the table's identity.
    lookup: tuple[str, ...] = field(default=(), compare=False)
    by_change: ByChange | None = field(default=None, compare=False)

    @property
    def sql(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    @property
    def path(self) -> list[str]:
        """The asset key's path."""
        return [self.schema, self.name]

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def versions(self) -> "TableRef":
        """Where a table stored by change keeps its versions."""
        key = self.by_change.key if self.by_change else "siren"
        return TableRef(self.schema, f"{self.name}__versions", lookup=(key,))

    @property
    def days(self) -> "TableRef":
        """Where a table stored by change lists the partitions written."""
        return TableRef(self.schema, f"{self.name}__days")


# ingestion
RAW_COMPANIES = TableRef("ingestion", "raw_companies")  # a view: days joined to their stock
SIRENE_STOCKS = TableRef("ingestion", "sirene_stocks", lookup=("siren",))  # once per stock
RAW_COMPANIES_DAYS = TableRef("ingestion", "raw_companies_days")  # day -> its stock
RAW_COMPANIES_REJECTED = TableRef("ingestion", "raw_companies_rejected")
TARGET_COMPANIES = TableRef("ingestion", "target_companies")
BODACC_NOTICES = TableRef("open_data", "bodacc_notices")
BODACC_PROCEDURES = TableRef("open_data", "bodacc_procedures")
BODACC_ACCOUNTS_FILED = TableRef("open_data", "bodacc_accounts_filed")
INPI_RATIOS = TableRef("open_data", "inpi_ratios")
SUCCESSION_CANDIDATES = TableRef("open_data", "succession_candidates")
# enrichment
# A company's Pappers rows change when its answer changes (or a dirigeant's age on a birthday).
PAPPERS_COMPANIES = TableRef("enrichment", "pappers_companies", by_change=ByChange())
PAPPERS_FINANCES = TableRef("enrichment", "pappers_finances", by_change=ByChange())
PAPPERS_DIRIGEANTS = TableRef("enrichment", "pappers_dirigeants", by_change=ByChange())
PAPPERS_PROCEDURES = TableRef("enrichment", "pappers_procedures", by_change=ByChange())
PAPPERS_TABLES = (PAPPERS_COMPANIES, PAPPERS_FINANCES, PAPPERS_DIRIGEANTS, PAPPERS_PROCEDURES)
ENRICHMENT_FAILURES = TableRef("enrichment", "enrichment_failures")
API_CACHE = TableRef("enrichment", "api_cache")
API_USAGE = TableRef("enrichment", "api_usage")
# features
COMPANY_FEATURES = TableRef(
    "features",
    "company_features",
    by_change=ByChange(
        years_since=(
            ("anciennete", "date_creation"),
            ("annees_depuis_derniers_comptes", "date_derniers_comptes"),
            ("anciennete_dirigeant_max", "date_premier_dirigeant"),
        )
    ),
)
# ml
MA_EVENTS = TableRef("ml", "ma_events")
TRAINING_SET = TableRef("ml", "training_set")
MA_MODELS = TableRef("ml", "ma_models")  # an asset with no table: the models live in MLflow
MODEL_VERSIONS = TableRef("ml", "model_versions")
FEATURE_REFERENCE = TableRef("ml", "feature_reference")
# scoring
# A carried-over score is the reference's row: only recomputed companies add versions.
ML_SCORES = TableRef("scoring", "ml_scores", by_change=ByChange())
KASPR_CONTACTS = TableRef("scoring", "kaspr_contacts")
KASPR_CONTACTS_FAILURES = TableRef("scoring", "kaspr_contacts_failures")
# serving: everything the API reads, written together by the publication step
PUBLISHED_SCORES = TableRef("serving", "published_scores", lookup=("siren",), by_change=ByChange())
SCORE_PUBLICATIONS = TableRef("serving", "score_publications")
PUBLISHED_MODEL_VERSIONS = TableRef("serving", "published_model_versions")
PUBLISHED_CONTACTS = TableRef("serving", "published_contacts", lookup=("siren",))

_DECLARED = {table: table for table in list(globals().values()) if isinstance(table, TableRef)}


def declared(table: TableRef) -> TableRef:
    """The table of that name declared above, with its lookup columns and how it is stored;
    ``table`` itself when none is."""
    return _DECLARED.get(table, table)
