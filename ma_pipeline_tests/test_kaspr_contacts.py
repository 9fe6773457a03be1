"""kaspr_contacts: the top targets' dirigeants, their LinkedIn slugs, a status per person, the
daily budget, and the personal-data flags."""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.contracts import keys
from ma_pipeline.contracts.snapshot import snapshot_paths
from ma_pipeline.contracts.tables import (
    KASPR_CONTACTS,
    KASPR_CONTACTS_FAILURES,
    ML_SCORES,
    PAPPERS_DIRIGEANTS,
)
from ma_pipeline.enrichment.kaspr import KasprResource
from ma_pipeline.enrichment.records import DIRIGEANT_SCHEMA
from ma_pipeline.ingestion.source import SireneSource
from ma_pipeline.partitions import daily_partitions
from ma_pipeline.sandbox.kaspr_api import KasprSandbox, profile
from ma_pipeline.scoring.contacts import kaspr_contacts, slugs_from_files
from ma_pipeline.scoring.publication import publish
from ma_pipeline.warehouse import (
    TableRef,
    Warehouse,
    WarehouseIOManager,
    WarehouseResource,
    connect_warehouse,
)
from ma_pipeline_tests.conftest import FAST_API
from ma_pipeline_tests.factories import ml_scores, sirens

DAY = date(2026, 11, 20)
DIRIGEANTS = TableRef("enrichment", "pappers_dirigeants")
KEY = "kaspr-test-key-0001"


def person(siren: str, rang: int, nom: str, prenom: str, **fields: Any) -> dict[str, Any]:
    return {
        "partition_date": DAY,
        "siren": siren,
        "rang": rang,
        "personne_morale": False,
        "qualite": "Président",
        "commissaire_aux_comptes": False,
        "nom": nom,
        "prenom": prenom,
        **fields,
    }


@pytest.fixture
def warehouse(data_dir: Path) -> Warehouse:
    """DuckDB only (the table comment is read from ``duckdb_tables()``): the end-to-end backfill
    test writes kaspr_contacts on PostgreSQL too."""
    return connect_warehouse(f"duckdb:///{data_dir / 'warehouse.duckdb'}", data_dir)


@pytest.fixture
def published(warehouse: Warehouse) -> pl.DataFrame:
    """30 companies scored for DAY, each with two people, a holding and an auditor."""
    companies = sirens(30)
    warehouse.replace_partitions(ML_SCORES, ml_scores(DAY, companies, seed=3), [DAY])
    rows = []
    for siren in companies:
        rows += [
            person(siren, 1, "DURAND", "Jean Pierre"),
            person(siren, 2, "LEFÈVRE", "Élodie", qualite="Directrice générale"),
            person(siren, 3, None, None, personne_morale=True, denomination="HOLDING"),
            person(siren, 4, "AUDIT", "Jean", commissaire_aux_comptes=True),
        ]
    schema = {"partition_date": pl.Date(), **DIRIGEANT_SCHEMA}
    warehouse.replace_partitions(PAPPERS_DIRIGEANTS, pl.DataFrame(rows, schema=schema), [DAY])
    return warehouse.read(ML_SCORES)


def materialize(
    data_dir: Path, warehouse: Warehouse, kaspr: KasprResource, top_n: int = 5
) -> dg.ExecuteInProcessResult:
    resource = WarehouseResource(url=f"duckdb:///{warehouse.path}", data_dir=str(data_dir))
    return dg.materialize(
        [
            dg.AssetSpec(keys.PAPPERS_DIRIGEANTS, partitions_def=daily_partitions),
            dg.AssetSpec(keys.ML_SCORES, partitions_def=daily_partitions),
            dg.AssetSpec(keys.API_CACHE),
            dg.AssetSpec(keys.API_USAGE),
            kaspr_contacts,
        ],
        selection=[kaspr_contacts],
        partition_key=DAY.isoformat(),
        resources={
            "warehouse": resource,
            "io_manager": WarehouseIOManager(warehouse=resource),
            "sirene": SireneSource(data_dir=str(data_dir)),
            "kaspr": kaspr,
        },
        run_config={"ops": {"kaspr_contacts": {"config": {"top_n": top_n}}}},
    )


def slug_with(status: int, start: int = 0) -> str:
    """A slug the Kaspr sandbox answers with ``status``: 200 with a work e-mail, or 404."""
    for k in range(start, start + 1_000):
        slug = f"profil-{k:04d}"
        code, body = profile(slug, "Jean Durand", {"workEmail", "phone"}, seed=2026)
        found = code == 200 and {"professionalEmails", "workEmails"} & set(body["profile"])
        if code == status and (status == 404 or found):
            return slug
    raise AssertionError(f"no slug answered {status}")


def test_linkedin_csv_rows_match_people_whatever_their_accents_and_case(tmp_path: Path) -> None:
    csv = tmp_path / "linkedin_profiles_2026.csv"
    pl.DataFrame(
        {
            "siren": ["123456782", "123456782", "987654324"],
            "nom": ["Lefevre", "Martin", "Lefevre"],
            "prenom": ["elodie", "Paul", "Elodie"],
            "linkedin_slug": ["https://www.linkedin.com/in/elodie-lefevre-1", "paul-m", "x-y"],
        }
    ).write_csv(csv)
    people = pl.DataFrame(
        {
            "siren": ["123456782", "123456782"],
            "nom": ["LEFÈVRE", "DURAND"],
            "prenom": ["Élodie Marie", "Jean"],
            "qualite": ["Gérante", "Président"],
        }
    )

    slugs = slugs_from_files(people, [csv])["linkedin_slug"].to_list()
    assert slugs == ["https://www.linkedin.com/in/elodie-lefevre-1", None]


def test_the_top_targets_dirigeants_get_a_status_within_the_budget(
    data_dir: Path, warehouse: Warehouse, published: pl.DataFrame
) -> None:
    top = published.sort(["score_ma", "siren"], descending=[True, False])["siren"].head(5)
    pl.DataFrame(
        {
            "siren": [top[0], top[0], top[1], top[2], top[3], published["siren"][-1]],
            "nom": ["Durand", "Lefevre", "DURAND", "DURAND", "DURAND", "DURAND"],
            "prenom": ["Jean", "Elodie", "Jean", "Jean", "Jean", "Jean"],
            "linkedin_slug": [
                slug_with(200),
                slug_with(404),
                *(slug_with(200, k) for k in (100, 200, 300)),
                "not-a-target",
            ],
        }
    ).write_csv(data_dir / "landing" / "linkedin_profiles.csv")
    transport = KasprSandbox(seed=2026)
    kaspr = KasprResource(**FAST_API, transport=transport, daily_credit_budget=6)  # 3 calls

    result = materialize(data_dir, warehouse, kaspr, top_n=5)

    contacts = warehouse.read(KASPR_CONTACTS)
    assert set(contacts["siren"]) == set(top)  # the top 5 only
    assert contacts.height == 10  # two people each: holdings and auditors are not looked up
    status = dict(contacts["status"].value_counts().iter_rows())
    assert status == {"found": 2, "not_found": 1, "no_slug": 5, "over_budget": 2}
    assert transport.requests == 3  # the budget goes to the best targets first
    assert set(contacts.filter(pl.col("status") == "over_budget")["siren"]) == {top[2], top[3]}
    found = contacts.filter(pl.col("status") == "found")
    assert found["work_email"].is_not_null().all() and found["fetched_at"].is_not_null().all()
    assert contacts.filter(pl.col("status") != "found")["work_email"].is_null().all()
    assert contacts["personal_data"].all()
    assert warehouse.read(KASPR_CONTACTS_FAILURES).is_empty()
    comment = warehouse.query(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = 'scoring'"
        " AND table_name = 'kaspr_contacts'"
    )["comment"][0]
    assert comment.startswith("PERSONAL DATA")
    publish(warehouse, DAY, "run", snapshot_paths(data_dir))  # the API reads the published copy
    snapshot = pl.read_parquet(snapshot_paths(data_dir).contacts)
    assert snapshot.sort("nom", "siren").equals(contacts.sort("nom", "siren"))
    for event in result.get_asset_materialization_events():
        shown = str({k: v.value for k, v in event.materialization.metadata.items()})
        assert "@" not in shown and "DURAND" not in shown  # counts only, never a person

    again = materialize(data_dir, warehouse, kaspr, top_n=5)  # a re-run replaces the day
    assert again.success and warehouse.read(KASPR_CONTACTS).height == 10


def test_with_a_real_key_and_no_csv_no_credit_is_spent_on_invented_slugs(
    data_dir: Path, warehouse: Warehouse, published: pl.DataFrame
) -> None:
    transport = KasprSandbox(seed=2026, api_key=KEY)
    kaspr = KasprResource(**FAST_API, api_key=KEY, transport=transport)

    materialize(data_dir, warehouse, kaspr)

    assert set(warehouse.read(KASPR_CONTACTS)["status"]) == {"no_slug"}
    assert transport.requests == 0


def test_on_the_sandbox_without_csv_about_half_the_people_have_a_slug(
    data_dir: Path, warehouse: Warehouse, published: pl.DataFrame
) -> None:
    materialize(data_dir, warehouse, KasprResource(**FAST_API), top_n=30)

    status = warehouse.read(KASPR_CONTACTS)["status"]
    assert 0.3 < (status != "no_slug").mean() < 0.7
