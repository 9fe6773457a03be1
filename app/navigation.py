"""The app's pages and the moves between them, carrying filters or a SIREN in the URL's query
(never the key)."""

import streamlit as st

TARGETS = "views/targets.py"
COMPANY = "views/company.py"
SECTORS = "views/sectors.py"
MOVERS = "views/movers.py"
MODELS = "views/models.py"
SCORE_REQUEST = "views/score_request.py"
PAGES = {
    TARGETS: "Targets",
    COMPANY: "Company",
    SECTORS: "Sectors",
    MOVERS: "Movers",
    MODELS: "Models",
    SCORE_REQUEST: "Score request",
}


def pages() -> list[st.Page]:
    return [st.Page(path, title=title, default=path == TARGETS) for path, title in PAGES.items()]


def open_company(siren: str) -> None:
    st.switch_page(COMPANY, query_params={"siren": siren})


def company_picker(companies: dict[str, str], key: str) -> None:
    """A choice among listed companies (SIREN: label) and a button that opens one."""
    if not companies:
        return
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    siren = left.selectbox(
        "Company", list(companies), format_func=lambda s: f"{companies[s]} ({s})", key=key
    )
    if right.button("Open company", key=f"{key}_open"):
        open_company(siren)


def open_targets(filters: dict[str, str | None]) -> None:
    st.switch_page(TARGETS, query_params={k: v for k, v in filters.items() if v})
