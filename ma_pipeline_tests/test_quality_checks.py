"""The data-quality rules on one partition: clean sandbox data passes every one, and data
corrupted on purpose fails the right one, with its severity, naming the failing rows."""

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from ma_pipeline.contracts.personal import MASKED
from ma_pipeline.features import FeatureInputs, compute_features
from ma_pipeline.features.quality import TABLES, coverage_outcome
from ma_pipeline.ingestion.targets import TargetRules, select_targets
from ma_pipeline.lib.checks import ERROR, WARN
from ma_pipeline_tests.conftest import SANDBOX_DAY

CONTRACTS = {contract.name: contract for contract in TABLES}
Corruption = Callable[[pl.DataFrame], tuple[pl.DataFrame, list[str]]]


@pytest.fixture(scope="module")
def clean(sandbox_partition: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every checked table for one day: the sandbox partition and its features."""
    raw = sandbox_partition["raw_companies"]
    targets = select_targets(raw, SANDBOX_DAY, TargetRules()).targets
    companies = raw.join(targets, on=["partition_date", "siren"], how="semi")
    pappers = [sandbox_partition[name] for name in list(CONTRACTS)[1:5]]
    features = compute_features(FeatureInputs(companies, *pappers), SANDBOX_DAY)
    return {**sandbox_partition, "target_companies": targets, "company_features": features}


def set_values(row: int, **values: Any) -> Corruption:
    """Give row ``row`` (counted among rows where those columns are not null) ``values``."""

    def corrupt(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        filled = frame.with_row_index("_i").drop_nulls(list(values))
        target = filled["_i"][row]
        at_target = pl.col("_i") == target
        changed = frame.with_row_index("_i").with_columns(
            pl.when(at_target).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
            for c, v in values.items()
        )
        return changed.drop("_i"), [filled["siren"][row]]

    return corrupt


def duplicate(row: int) -> Corruption:
    def corrupt(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        return pl.concat([frame, frame.slice(row, 1)]), [frame["siren"][row]]

    return corrupt


def blank(column: str) -> Corruption:
    def corrupt(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
        return frame.with_columns(pl.lit(None, frame.schema[column]).alias(column)), []

    return corrupt


def test_every_rule_holds_on_clean_sandbox_data(clean: dict[str, pl.DataFrame]) -> None:
    failed = {
        (name, check): outcome.description
        for name, contract in CONTRACTS.items()
        for check, outcome in contract.outcomes(clean[name]).items()
        if not outcome.passed
    }
    assert failed == {}
    coverage = coverage_outcome(clean["company_features"], clean["target_companies"])
    assert coverage.passed, coverage.description
    counts = coverage.metadata
    assert counts["feature_rows"] == counts["target_companies"] > 0


@pytest.mark.parametrize(
    ("table", "check", "corrupt", "rule", "severity"),
    [
        ("pappers_finances", "schema", set_values(3, chiffre_affaires=-1_000),
         "chiffre_affaires: greater_than_or_equal_to(0)", ERROR),
        ("pappers_dirigeants", "schema", set_values(5, age=180), "age: in_range(0, 120)", ERROR),
        ("company_features", "schema", set_values(7, age_dirigeant_max=180),
         "age_dirigeant_max: in_range(0, 120)", ERROR),
        ("company_features", "schema", set_values(2, chiffre_affaires=-5.0),
         "chiffre_affaires: greater_than_or_equal_to(0)", ERROR),
        ("raw_companies", "schema", set_values(4, etat_administratif="F"),
         "etat_administratif: isin(['A', 'C'])", ERROR),
        ("pappers_procedures", "schema", set_values(1, date_fin=SANDBOX_DAY.replace(year=2001)),
         "ends_after_start", ERROR),
        ("raw_companies", "unique_key", duplicate(10), "multiple_fields_uniqueness", ERROR),
        ("company_features", "unique_key", duplicate(0), "multiple_fields_uniqueness", ERROR),
        ("company_features", "plausible_values", set_values(0, croissance_ca_1an=120.0),
         "croissance_ca_1an: less_than_or_equal_to(50)", WARN),
    ],
    ids=[
        "negative revenue",
        "dirigeant aged 180",
        "feature age 180",
        "negative revenue feature",
        "unknown etat",
        "procedure ends before it starts",
        "duplicate SIREN in raw_companies",
        "duplicate SIREN in features",
        "implausible growth",
    ],
)  # fmt: skip
def test_a_corrupted_partition_fails_its_check_naming_the_rows(
    clean: dict[str, pl.DataFrame],
    table: str,
    check: str,
    corrupt: Corruption,
    rule: str,
    severity: Any,
) -> None:
    frame, sirens = corrupt(clean[table])
    outcome = CONTRACTS[table].outcomes(frame)[check]

    assert (outcome.passed, outcome.severity) == (False, severity)
    assert rule in outcome.metadata["failures_by_rule"]
    sample = outcome.metadata["failing_rows_sample"].value
    assert all(siren in sample for siren in sirens)


def test_a_column_emptied_passes_its_null_rate_ceiling_as_a_warning(
    clean: dict[str, pl.DataFrame],
) -> None:
    frame, _ = blank("departement")(clean["company_features"])
    outcome = CONTRACTS["company_features"].outcomes(frame)["null_rates"]
    assert (outcome.passed, outcome.severity) == (False, WARN)
    assert outcome.metadata["columns_over_ceiling"] == ["departement"]


def test_a_type_change_breaks_the_contract(clean: dict[str, pl.DataFrame]) -> None:
    frame = clean["company_features"].with_columns(pl.col("anciennete").cast(pl.String))
    outcome = CONTRACTS["company_features"].outcomes(frame)["schema"]
    assert not outcome.passed
    assert "anciennete: dtype('Float64')" in outcome.metadata["failures_by_rule"]


def test_a_company_dropped_or_added_without_reason_is_named(
    clean: dict[str, pl.DataFrame],
) -> None:
    features, raw = clean["company_features"], clean["raw_companies"]
    ceased = raw.filter(pl.col("etat_administratif") == "C")["siren"][0]
    dropped = features["siren"][3]
    changed = pl.concat(
        [
            features.filter(pl.col("siren") != dropped),
            features.head(1).with_columns(siren=pl.lit(ceased)),
        ]
    )
    outcome = coverage_outcome(changed, clean["target_companies"])
    assert (outcome.passed, outcome.severity) == (False, ERROR)
    assert outcome.metadata["missing_sirens"] == [dropped]
    assert outcome.metadata["unexpected_sirens"] == [ceased]


@pytest.mark.parametrize(
    ("table", "corrupt", "shown"),
    [
        ("pappers_dirigeants", set_values(5, age=180), False),
        ("company_features", set_values(7, age_dirigeant_max=180), False),
        ("pappers_finances", set_values(3, chiffre_affaires=-1_000), True),
    ],
    ids=["dirigeant's age", "feature age", "revenue"],
)
def test_a_failing_personal_value_is_named_but_never_shown(
    clean: dict[str, pl.DataFrame], table: str, corrupt: Corruption, shown: bool
) -> None:
    """The check's metadata, which anyone reads in the UI, names the failing rows; a person's
    age is masked there, a revenue is not."""
    frame, _ = corrupt(clean[table])
    sample = CONTRACTS[table].outcomes(frame)["schema"].metadata["failing_rows_sample"].value
    assert ("180" in sample or "-1000" in sample) is shown
    assert (MASKED in sample) is not shown
