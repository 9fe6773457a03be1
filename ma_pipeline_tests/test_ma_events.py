"""ma_events: the CSV contract (valid rows kept, every bad row reported), and sandbox events that
follow the world's latent sale hazard, with noise, the same on every run."""

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from ma_pipeline.ml.assets import ma_events
from ma_pipeline.ml.events import EVENT_SCHEMA, sandbox_events
from ma_pipeline.sandbox.world import world
from ma_pipeline.warehouse import TableRef, Warehouse
from ma_pipeline_tests.conftest import SANDBOX_AS_OF, SIRENE_SAMPLE, make_resources

EVENTS = TableRef("ml", "ma_events")
BODACC = """siren;event_date;event_type;source;reference
833 310 592;2024-03-18;cession;bodacc;A202400512345
443061841;2023-11-02;fusion_absorption;bodacc;B202302233642
443061841;2023-11-02;fusion_absorption;bodacc;B202302233642
443061842;2024-01-05;cession;bodacc;A202400000001
552100554;2024-13-01;cession;bodacc;A202400000002
552100554;2024-02-01;vente;bodacc;A202400000003
"""
CRM = """event_type,siren,event_date,reference
changement_controle,552100554,15/06/2024,DEAL-42
Cession,356000000,2022-09-30,DEAL-7
"""


def test_csv_events_are_kept_and_every_bad_row_is_reported_with_its_reason(
    data_dir: Path, warehouse_url: str, warehouse: Warehouse
) -> None:
    (data_dir / "landing" / "ma_events_bodacc_2024.csv").write_text(BODACC, encoding="utf-8")
    (data_dir / "landing" / "ma_events_crm.csv").write_text(CRM, encoding="utf-8")

    result = dg.materialize([ma_events], resources=make_resources(data_dir, warehouse_url))

    stored = warehouse.read(EVENTS).sort("siren", "event_date")
    assert stored.rows() == [
        ("356000000", date(2022, 9, 30), "cession", "ma_events_crm.csv", "DEAL-7"),
        ("443061841", date(2023, 11, 2), "fusion_absorption", "bodacc", "B202302233642"),
        ("552100554", date(2024, 6, 15), "changement_controle", "ma_events_crm.csv", "DEAL-42"),
        ("833310592", date(2024, 3, 18), "cession", "bodacc", "A202400512345"),
    ]
    [materialization] = result.asset_materializations_for_node("ml__ma_events")
    metadata = materialization.metadata
    assert metadata["rejected_by_reason"].data == {
        "duplicate": 1,
        "invalid_event_date": 1,
        "invalid_event_type": 1,
        "invalid_siren": 1,
    }
    rejected = metadata["rejected_rows"].value
    assert "ma_events_bodacc_2024.csv" in rejected and "check digit is wrong" in rejected
    assert "'vente' is not one of" in rejected  # BODACC's family name must be mapped first
    assert metadata["dagster/row_count"].value == 4


def test_a_csv_without_the_required_columns_fails_the_asset_and_says_which(
    data_dir: Path,
) -> None:
    (data_dir / "landing" / "ma_events.csv").write_text("siren,date\n833310592,2024-01-01\n")

    result = dg.materialize([ma_events], resources=make_resources(data_dir), raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "missing required column(s) event_date, event_type" in str(failure.event_specific_data)


def test_without_a_csv_a_sirene_universe_gets_no_made_up_events(data_dir: Path) -> None:
    (data_dir / "landing" / "StockUniteLegale_2026-01-01.csv").write_bytes(
        SIRENE_SAMPLE.read_bytes()
    )

    result = dg.materialize([ma_events], resources=make_resources(data_dir), raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "sandbox events only exist for the sandbox universe" in str(failure.event_specific_data)


def test_sandbox_events_end_at_the_sandbox_day_and_are_the_same_on_every_run(
    data_dir: Path,
) -> None:
    resources = make_resources(data_dir)
    config = {"ops": {"ml__ma_events": {"config": {"history_months": 36}}}}

    first = dg.materialize([ma_events], resources=resources, run_config=config)
    second = dg.materialize([ma_events], resources=resources, run_config=config)

    events = first.output_for_node("ml__ma_events")
    assert events.equals(second.output_for_node("ml__ma_events"))
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    assert events["event_date"].max() <= SANDBOX_AS_OF
    assert events["event_date"].min() >= date(2023, 2, 1)  # 36 months up to January 2026
    assert set(events["event_type"]) == {"cession", "changement_controle", "fusion_absorption"}


def test_sandbox_events_follow_the_latent_hazard_but_not_perfectly() -> None:
    truth = world(3000, 2026)
    months = 72
    events = sandbox_events(3000, 2026, date(2025, 12, 31), months)
    firsts = [date(2020 + m // 12, m % 12 + 1, 1) for m in range(months)]
    hazard = truth.sale_hazard(truth.sirens[:, None], np.array(firsts, dtype="datetime64[D]"))
    expected = hazard.sum(axis=1)  # events a company should have over the window
    observed = (
        pl.DataFrame({"siren": truth.sirens.astype(str)})
        .join(events.group_by("siren").len(), on="siren", how="left")["len"]
        .fill_null(0)
        .to_numpy()
    )

    high = expected >= np.quantile(expected, 0.9)
    low = expected <= np.quantile(expected, 0.5)
    assert observed[high].mean() > 3 * observed[low].mean()  # the hazard shows through
    # ...about as often as it predicts, less the events no source records, plus a few spurious
    assert 0.8 < observed.sum() / expected.sum() < 1.05
    never = expected == 0  # not yet created, or ceased, over the whole window
    assert observed[never].sum() == 0
    assert observed[low].sum() > 0  # and unlikely companies are sometimes sold


@pytest.mark.parametrize("history", [1, 12])
def test_sandbox_history_is_counted_in_whole_months_up_to_the_end_day(history: int) -> None:
    events = sandbox_events(2000, 2026, date(2025, 6, 15), history)

    assert events["event_date"].max() <= date(2025, 6, 15)
    first = date(2025, 6, 1) if history == 1 else date(2024, 7, 1)
    assert events["event_date"].min() >= first
