"""training_set: features as of each monthly date from one Pappers snapshot, labels from the 12
months after. Leakage tests: labels never look past their window, and nothing dated after an
as-of date changes its features."""

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from ma_pipeline.enrichment.records import TABLES
from ma_pipeline.features.compute import CATEGORICAL_FEATURES, MODEL_FEATURES
from ma_pipeline.ml.assets import ma_events, training_set
from ma_pipeline.ml.dataset import (
    AS_OF,
    RAW_COMPANIES,
    Snapshot,
    add_months,
    as_of_dates,
    build_training_set,
)
from ma_pipeline.ml.events import EVENT_SCHEMA
from ma_pipeline.ml.promotion import decide
from ma_pipeline.ml.scorer import LABELS
from ma_pipeline.ml.train import split_dates
from ma_pipeline.warehouse import PARTITION_COLUMN, TableRef, Warehouse
from ma_pipeline_tests.conftest import SANDBOX_AS_OF, SANDBOX_UNITS, make_resources, sandbox_tables
from ma_pipeline_tests.test_bodacc import notice, person, previous

SEED = 2026
AS_OF_DAY = date(2024, 6, 1)
FEATURES = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]


def snapshot(units: int = SANDBOX_UNITS, day: date = SANDBOX_AS_OF) -> Snapshot:
    tables = sandbox_tables(units, day)
    return Snapshot(day, tables["raw_companies"], *(tables[name] for name in TABLES))


def write_tables(warehouse: Warehouse, tables: dict[str, pl.DataFrame], day: date) -> None:
    for name, frame in tables.items():
        schema = "ingestion" if name == "raw_companies" else "enrichment"
        warehouse.replace_partitions(TableRef(schema, name), frame, [day])


def events(*rows: tuple[str, date]) -> pl.DataFrame:
    return pl.DataFrame(
        [(siren, day, "cession", "test", None) for siren, day in rows],
        schema=EVENT_SCHEMA,
        orient="row",
    )


def test_as_of_dates_are_month_starts_whose_window_has_closed_by_the_snapshot() -> None:
    dates = as_of_dates(date(2025, 12, 31), lookback_months=35)

    assert dates[0] == date(2023, 1, 1) and dates[-1] == date(2024, 12, 1)
    assert len(dates) == 24 and all(d.day == 1 for d in dates)
    assert all(add_months(d, 12) <= date(2025, 12, 31) for d in dates)
    assert as_of_dates(date(2026, 1, 1), 35)[-1] == date(2025, 1, 1)  # closes that very day


def test_labels_never_look_past_their_window() -> None:
    base = snapshot()
    sirens = build_training_set(base, events(), [AS_OF_DAY])["siren"].to_list()[:4]
    window_end = add_months(AS_OF_DAY, 12)
    on_the_day, last_day, day_after, later = sirens
    labelled = build_training_set(
        base,
        events(
            (on_the_day, AS_OF_DAY),  # known on the day: not in the future window
            (last_day, window_end),
            (day_after, window_end + timedelta(days=1)),
            (later, date(2025, 12, 1)),
        ),
        [AS_OF_DAY],
    )

    label = dict(labelled.select("siren", LABELS["ma"]).iter_rows())
    assert [label[s] for s in sirens] == [False, True, False, False]
    procedures = base.procedures.filter(
        (pl.col("date_debut") > window_end) & (pl.col("date_debut") <= base.day)
    )["siren"]
    assert procedures.len() > 0  # procedures after the window exist...
    distress = labelled.filter(pl.col("siren").is_in(procedures.implode()))
    opened_in_window = base.procedures.filter(
        (pl.col("date_debut") > AS_OF_DAY) & (pl.col("date_debut") <= window_end)
    )["siren"]
    expected = distress["siren"].is_in(opened_in_window.implode())
    assert distress[LABELS["stabilite"]].equals(expected, check_names=False)  # ...and count not
    with pytest.raises(ValueError, match="window ends after the snapshot"):
        build_training_set(base, events(), [add_months(base.day, -11)])


def _rewrite_the_future(base: Snapshot, day: date) -> Snapshot:
    """The same snapshot, with every fact dated after ``day`` changed beyond recognition."""
    after = pl.col("date_de_cloture_exercice") > add_months(day, -7)  # not filed by ``day``
    finances = base.finances.with_columns(
        pl.when(after).then(pl.col("chiffre_affaires") * 100 + 1).otherwise("chiffre_affaires"),
        pl.when(after).then(-pl.col("chiffre_affaires")).otherwise("resultat").alias("resultat"),
        pl.when(after).then(9_999).otherwise("effectif").alias("effectif"),
    )
    later = pl.col("date_prise_de_poste") > day
    dirigeants = base.dirigeants.with_columns(
        annee_naissance=pl.when(later).then(1900).otherwise("annee_naissance"),
        personne_morale=pl.when(later)
        .then(~pl.col("personne_morale"))
        .otherwise("personne_morale"),
    )
    new_procedures = base.pappers_companies.select(
        PARTITION_COLUMN,
        "siren",
        rang=pl.lit(9, pl.Int64),
        type=pl.lit("Liquidation judiciaire"),
        date_debut=pl.lit(day + timedelta(days=1)),
        date_fin=pl.lit(None, pl.Date),
    )
    ended_later = pl.col("date_fin") > day
    procedures = pl.concat(
        [
            base.procedures.with_columns(
                date_fin=pl.when(ended_later).then(pl.lit(date(2039, 1, 1))).otherwise("date_fin")
            ),
            new_procedures,  # without the provenance columns: null there
        ],
        how="diagonal_relaxed",
    )
    return Snapshot(
        base.day, base.companies, base.pappers_companies, finances, dirigeants, procedures
    )


def test_a_feature_value_from_after_the_as_of_date_changes_nothing() -> None:
    base = snapshot()
    rewritten = _rewrite_the_future(base, AS_OF_DAY)

    before = build_training_set(base, events(), [AS_OF_DAY])
    after = build_training_set(rewritten, events(), [AS_OF_DAY])

    assert before.height > 200
    assert before.select("siren", *FEATURES).equals(after.select("siren", *FEATURES))
    assert after[LABELS["stabilite"]].all()  # the rewritten future does show in the labels
    # A later as-of date sees the rewritten facts: the test would catch a rule that ignored them.
    later = add_months(AS_OF_DAY, 6)
    assert not build_training_set(base, events(), [later])["age_dirigeant_max"].equals(
        build_training_set(rewritten, events(), [later])["age_dirigeant_max"]
    )


def test_growth_label_compares_the_next_fiscal_year_with_the_last_one_known() -> None:
    base = snapshot()
    siren = base.finances["siren"].unique().sort()[0]
    years = [(2022, 100), (2023, 115), (2024, 120)]
    finances = pl.concat(
        [
            base.finances.filter(pl.col("siren") != siren),
            base.finances.filter(pl.col("siren") == siren)
            .head(1)
            .select(pl.exclude("annee", "date_de_cloture_exercice", "chiffre_affaires"))
            .join(
                pl.DataFrame(
                    {
                        "annee": [y for y, _ in years],
                        "date_de_cloture_exercice": [date(y, 12, 31) for y, _ in years],
                        "chiffre_affaires": [ca for _, ca in years],
                    },
                    schema_overrides={"chiffre_affaires": pl.Int64},
                ),
                how="cross",
            )
            .select(base.finances.columns),
        ]
    )
    changed = Snapshot(
        base.day, base.companies, base.pappers_companies, finances, base.dirigeants, base.procedures
    )

    frame = build_training_set(changed, events(), [date(2023, 8, 1), date(2024, 8, 1)])
    growth = frame.filter(pl.col("siren") == siren).sort(AS_OF)[LABELS["croissance"]]

    # 2022 known on 2023-08-01 (closed + 7 months): 2023 is +15 %; on 2024-08-01 2023 is the
    # last known and 2024 only +4.3 %.
    assert growth.to_list() == [True, False]
    assert frame.filter(pl.col("siren") == siren)["chiffre_affaires"].to_list() == [100.0, 115.0]


def test_companies_ceased_before_the_snapshot_or_created_later_are_not_in_the_set() -> None:
    base = snapshot()
    frame = build_training_set(base, events(), [AS_OF_DAY])

    known = set(base.pappers_companies["siren"])
    created_later = base.companies.filter(pl.col("date_creation") > AS_OF_DAY)["siren"]
    assert set(frame["siren"]) <= known
    assert not set(frame["siren"]) & set(created_later)
    assert (
        frame.height
        == base.companies.filter(
            (pl.col("date_creation") <= AS_OF_DAY) & pl.col("siren").is_in(list(known))
        ).height
    )


def test_the_asset_reads_the_newest_partition_and_labels_closed_windows_only(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    older = date(2025, 12, 1)
    write_tables(warehouse, sandbox_tables(SANDBOX_UNITS, older), older)
    write_tables(warehouse, sandbox_tables(SANDBOX_UNITS, SANDBOX_AS_OF), SANDBOX_AS_OF)
    resources = make_resources(data_dir, warehouse_url)
    config = {"ops": {"ml__training_set": {"config": {"lookback_months": 18}}}}

    result = dg.materialize([ma_events, training_set], resources=resources, run_config=config)

    stored = warehouse.read(TableRef("ml", "training_set"))
    assert set(stored["snapshot_date"]) == {SANDBOX_AS_OF}
    assert sorted(set(stored[AS_OF])) == as_of_dates(SANDBOX_AS_OF, 18)  # 7 dates
    expected = build_training_set(
        snapshot(SANDBOX_UNITS, SANDBOX_AS_OF),
        warehouse.read(TableRef("ml", "ma_events")),
        as_of_dates(SANDBOX_AS_OF, 18),
    )
    assert stored.sort(AS_OF, "siren").equals(expected)
    assert stored[LABELS["ma"]].sum() > 0
    [materialization] = result.asset_materializations_for_node("ml__training_set")
    assert materialization.metadata["snapshot_date"].value == "2026-01-01"
    assert warehouse.partitions(RAW_COMPANIES) == [older, SANDBOX_AS_OF]


def test_splits_purge_every_date_whose_window_reaches_into_the_next_split() -> None:
    dates = as_of_dates(SANDBOX_AS_OF, 60)  # 49 monthly dates

    splits = split_dates(dates, holdout_months=6, validation_months=4)

    assert splits.holdout == dates[-6:]
    assert all(add_months(d, 12) <= splits.holdout[0] for d in splits.refit)
    assert splits.refit == dates[: len(splits.refit)] and len(splits.purged) == 11
    assert splits.validation == splits.refit[-4:]
    assert all(add_months(d, 12) <= splits.validation[0] for d in splits.train)
    assert add_months(splits.train[-1], 13) > splits.validation[0]  # nothing purged needlessly
    assert sorted([*splits.refit, *splits.purged, *splits.holdout]) == dates
    with pytest.raises(ValueError, match="lengthen the look-back"):
        split_dates(dates[:32], holdout_months=6, validation_months=4)


def test_a_challenger_is_promoted_only_past_the_margin_over_every_bar() -> None:
    def auc(value: float) -> dict[str, float]:
        return {"roc_auc": value}

    assert decide(auc(0.70), auc(0.69), None, margin=0.005).promote
    assert not decide(auc(0.694), auc(0.69), None, margin=0.005).promote
    beaten = decide(auc(0.70), auc(0.60), auc(0.698), margin=0.005, champion_version="m/1")
    assert not beaten.promote and "champion m/1" in beaten.reason
    assert decide(auc(0.71), auc(0.60), auc(0.70), margin=0.005, champion_version="m/1").promote


def test_bodacc_notices_become_the_labels_one_by_one(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    """A constructed BODACC export (a sale, a TUP, a sale then its annulation) in the landing
    folder: ma_events holds exactly its events, and training_set labels exactly the windows
    they fall in."""
    tables = sandbox_tables(SANDBOX_UNITS, SANDBOX_AS_OF)
    write_tables(warehouse, tables, SANDBOX_AS_OF)
    known = tables["pappers_companies"]["siren"].sort().to_list()
    sold, merged, cancelled, buyer = known[10], known[20], known[30], known[40]
    export = [
        notice(
            "A20250170101",
            "vente",
            [buyer, sold],
            dateparution="2025-09-30",
            listeprecedentproprietaire={"personne": person(sold, "Vendeur")},
            acte={"vente": {"dateEffet": "2025-09-15"}},
        ),
        notice(
            "B20250050101",
            "modification",
            [merged],
            dateparution="2025-03-10",
            modificationsgenerales={"descriptif": "Transmission universelle du patrimoine."},
        ),
        notice(
            "A20250080101",
            "vente",
            [buyer, cancelled],
            dateparution="2025-04-02",
            listeprecedentproprietaire={"personne": person(cancelled, "Annulé")},
        ),
        notice(
            "A20250090101",
            "vente",
            [buyer, cancelled],
            dateparution="2025-04-09",
            typeavis="annulation",
            parutionavisprecedent=previous("A20250080101"),
        ),
    ]
    (data_dir / "landing" / "bodacc_export.jsonl").write_text(
        "\n".join(json.dumps(n, ensure_ascii=False) for n in export)
    )
    config = {"ops": {"ml__training_set": {"config": {"lookback_months": 18}}}}

    result = dg.materialize(
        [ma_events, training_set],
        resources=make_resources(data_dir, warehouse_url),
        run_config=config,
    )

    assert result.success
    events_stored = warehouse.read(TableRef("ml", "ma_events"))
    assert sorted(events_stored.rows()) == sorted(
        [
            (sold, date(2025, 9, 15), "cession", "bodacc", "A20250170101"),
            (merged, date(2025, 3, 10), "fusion_absorption", "bodacc", "B20250050101"),
        ]
    )
    stored = warehouse.read(TableRef("ml", "training_set"))
    assert {sold, merged, cancelled} <= set(stored["siren"])
    labelled = set(stored.filter(pl.col(LABELS["ma"]) == 1).select(AS_OF, "siren").rows())
    expected = {
        (day, siren)
        for day in as_of_dates(SANDBOX_AS_OF, 18)
        for siren, happened in ((sold, date(2025, 9, 15)), (merged, date(2025, 3, 10)))
        if day < happened <= add_months(day, 12)
    }
    assert labelled == expected
    assert {siren for _, siren in expected} == {sold, merged}  # both fall in some window
    windows_of_the_sale = {day for day, siren in expected if siren == sold}
    assert 0 < len(windows_of_the_sale) < len(as_of_dates(SANDBOX_AS_OF, 18))
