"""Every page of the web app, driven by Streamlit's AppTest against the real API (no mock): what
a deal team sees, and the messages it gets instead of tracebacks."""

import re
from collections.abc import Callable

import httpx
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from app.cli import MAIN
from ma_pipeline_tests.app.conftest import COMPANIES, D3, SIREN, LiveApi
from ma_pipeline_tests.processes import free_port

ALL_SCOPES = ("scores:read", "contacts:read", "requests:write")


@pytest.fixture
def app(live_api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """The app on a page, with a new key of ``scopes`` (or the given token) in the session."""
    monkeypatch.setenv("MA_APP_API_URL", live_api.url)
    monkeypatch.delenv("MA_APP_API_KEY", raising=False)

    def start(page: str, *scopes: str, token: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(str(MAIN), default_timeout=30)
        at.session_state["api_key"] = token or live_api.key(*scopes or ALL_SCOPES)
        at.query_params.update(query)
        at.run()
        if page != "views/targets.py":
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return start


def texts(at: AppTest) -> str:
    """Everything the page says, as one string."""
    parts = [*at.title, *at.subheader, *at.caption, *at.markdown, *at.info, *at.error]
    parts += [*at.success, *at.metric]
    return "\n".join(
        str(getattr(p, "value", "")) + " " + str(getattr(p, "label", "")) for p in parts
    )


def test_targets_rank_the_day_and_filters_change_the_list(
    app: Callable[..., AppTest], live_api: LiveApi
) -> None:
    at = app("views/targets.py")
    day = live_api.days[D3]

    first = at.dataframe[0].value
    assert f"Scores published for {D3}" in texts(at)
    top = day.sort(["score_ma", "siren"], descending=[True, False])["siren"][:50].to_list()
    assert first["SIREN"].to_list() == top
    assert first["Top reasons"].str.contains("↑|↓").all()

    [naf] = [t for t in at.text_input if t.label == "Sector (NAF)"]
    naf.set_value("62").run()
    sector = at.dataframe[0].value
    assert set(sector["NAF"]) == {"62.01Z"}
    assert sector["SIREN"].to_list() != first["SIREN"].to_list()

    [band] = [s for s in at.selectbox if s.label == "M&A band"]
    band.set_value("A-B").run()
    banded = at.dataframe[0].value
    expected = day.filter((pl.col("naf_division") == "62") & (pl.col("rank_ma") >= 80))
    assert sorted(banded["SIREN"]) == sorted(expected["siren"])
    assert set(banded["Band"]) <= {"A", "B"}


def test_targets_open_with_the_filters_of_a_link(app: Callable[..., AppTest]) -> None:
    at = app("views/targets.py", region="84")

    listed = at.dataframe[0].value
    assert len(listed) > 0
    assert set(listed["Dépt"]) == {"69"}


def test_a_company_shows_its_scores_reasons_history_and_contacts(
    app: Callable[..., AppTest], live_api: LiveApi
) -> None:
    at = app("views/company.py", siren=SIREN)
    row = live_api.days[D3].filter(pl.col("siren") == SIREN).row(0, named=True)

    shown = texts(at)
    assert f"SOCIETE {SIREN}" in shown
    assert "3 published days" in shown
    assert "What moved since the previous change" in shown
    assert [m.value for m in at.metric] == [
        f"{row[f'score_{s}']:.1f}" for s in ("ma", "croissance", "stabilite")
    ]
    assert f"band {row['band_ma']}" in shown
    contacts = at.dataframe[-1].value
    assert sorted(contacts["nom"]) == ["DURAND", "MARTIN"]


def test_a_key_without_contacts_read_sees_no_contact(app: Callable[..., AppTest]) -> None:
    at = app("views/company.py", "scores:read", siren=SIREN)

    assert "shown to API keys with the contacts:read scope" in texts(at)
    assert all("nom" not in d.value.columns for d in at.dataframe)
    assert not at.error


def test_sectors_movers_and_models_pages(app: Callable[..., AppTest]) -> None:
    sectors = app("views/sectors.py")
    assert "Per NAF division" in texts(sectors)
    assert set(sectors.dataframe[0].value["naf_division"]) == {"41", "47", "62", "70"}

    movers = app("views/movers.py")
    rises, falls = (d.value for d in movers.dataframe)
    assert (rises["Change"] > 0).all() and (falls["Change"] < 0).all()
    assert rises["What moved"].str.contains("→").all()

    models = app("views/models.py")
    assert "ma_pipeline_ma" in texts(models)
    assert "promoted: auc +0.012" in texts(models)


def test_a_score_request_goes_from_pending_to_completed(
    app: Callable[..., AppTest], live_api: LiveApi
) -> None:
    at = app("views/score_request.py")
    at.text_input(key="request_siren").input(COMPANIES[3])
    at.button[0].click().run()
    assert "is pending" in texts(at)

    [request] = live_api.store.pending_requests()
    live_api.store.complete_request(request.id, {"scores": {"ma": {"value": 71.5}}})
    at.run()
    assert "is scored" in texts(at)
    assert "71.5" in [m.value for m in at.metric]


@pytest.mark.parametrize(
    ("page", "scopes", "message"),
    [
        ("views/targets.py", ("contacts:read",), "lacks the scope scores:read"),
        ("views/score_request.py", ("scores:read",), "lacks the scope requests:write"),
    ],
)
def test_a_missing_scope_gets_a_message(
    app: Callable[..., AppTest], page: str, scopes: tuple[str, ...], message: str
) -> None:
    at = app(page, *scopes)
    if page == "views/score_request.py":
        at.text_input(key="request_siren").input(SIREN)
        at.button[0].click().run()

    assert message in texts(at)


def test_an_invalid_key_gets_a_message(app: Callable[..., AppTest]) -> None:
    at = app("views/targets.py", token="ma_000000000000_not-a-real-secret")

    assert "The API key is missing, invalid or revoked" in at.error[0].value


def test_an_api_that_does_not_answer_gets_a_message(
    app: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MA_APP_API_URL", down)
    at = app("views/company.py", siren=SIREN)

    assert f"The API at {down} does not answer" in at.error[0].value


def test_a_rate_limited_key_gets_the_wait(app: Callable[..., AppTest], live_api: LiveApi) -> None:
    _, token = live_api.store.create_key("slow", ["scores:read"], rate_per_second=0.01)
    for _ in range(int(live_api.settings.rate_burst)):  # the key's burst, spent elsewhere
        httpx.get(f"{live_api.url}/v1/sectors", headers={"X-API-Key": token}).raise_for_status()

    at = app("views/movers.py", token=token)

    assert re.search(r"Too many requests for this API key: retry in \d+ s", at.error[0].value)
