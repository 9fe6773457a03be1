"""Targets: the day's companies ranked by a score, filtered, a page at a time, each with its top
reasons in words; the whole filtered list as CSV."""

import functools
from typing import Any

import pandas as pd
import streamlit as st

from app import labels
from app.export import export_csv
from app.navigation import company_picker
from app.reasons import summary
from app.session import api, cached_get, errors_shown

PAGE_SIZE = 50
# Bands by percentile rank: A top 5 %, B next 15 %, C 30 %, D 30 %, E 20 %.
BANDS = {"any": None, "A": 95, "A-B": 80, "A-C": 50, "A-D": 20}
PAGES_STATE = "targets_pages"


def filters() -> dict[str, Any]:
    """The filters chosen on the page; sector and place start from the URL's query, as the
    Sectors page links them."""
    query = st.query_params
    region_codes = ["", *labels.REGIONS]
    sector, place, department = st.columns(3)
    band, growth, stability, sort = st.columns(4)
    chosen = {
        "naf": sector.text_input(
            "Sector (NAF)",
            query.get("naf", ""),
            help="A section (J), a division (62) or a sous-classe (62.01Z)",
        ),
        "region": place.selectbox(
            "Région",
            region_codes,
            index=region_codes.index(query.get("region", "")),
            format_func=lambda c: labels.region(c) if c else "any",
        ),
        "departement": department.text_input(
            "Département", query.get("departement", ""), help="75, 2A, 974"
        ),
        "min_rank_ma": BANDS[band.selectbox("M&A band", list(BANDS))],
        "min_score_croissance": growth.slider("Min growth score", 0, 100, 0) or None,
        "min_score_stabilite": stability.slider("Min stability score", 0, 100, 0) or None,
        "sort": sort.selectbox(
            "Ranked by",
            [f"score_{s}" for s in labels.SCORES],
            format_func=lambda c: labels.SCORES[c.removeprefix("score_")],
        ),
    }
    return {k: v.strip() if isinstance(v, str) else v for k, v in chosen.items() if v}


def table(items: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "SIREN": i["siren"],
                "Company": i["nom_entreprise"],
                "NAF": i["activite_principale"],
                "Dépt": i["departement"],
                "M&A": i["scores"]["ma"],
                "Band": i["bands"]["ma"],
                "Rank": i["ranks"]["ma"],
                "Growth": i["scores"]["croissance"],
                "Stability": i["scores"]["stabilite"],
                "Top reasons": summary(i["reasons"]),
            }
            for i in items
        ],
        columns=[
            "SIREN",
            "Company",
            "NAF",
            "Dépt",
            "M&A",
            "Band",
            "Rank",
            "Growth",
            "Stability",
            "Top reasons",
        ],
    )


st.title("Targets")
client = api()
chosen = filters()
pages = st.session_state.get(PAGES_STATE)
if pages is None or pages["filters"] != chosen:  # new filters: back to the first page
    pages = st.session_state[PAGES_STATE] = {"filters": chosen, "cursors": [None]}
with errors_shown():
    page = cached_get(
        client, "/v1/scores", **chosen, limit=PAGE_SIZE, cursor=pages["cursors"][-1], reasons=True
    )
items = page["items"]
number = len(pages["cursors"])
st.caption(
    f"Scores published for {page['date']} · page {number} · {len(items)} companies"
    f" from #{(number - 1) * PAGE_SIZE + 1}"
)
st.dataframe(table(items), hide_index=True, width="stretch")
previous, following, download = st.columns(3)
if previous.button("Previous page", disabled=number == 1):
    pages["cursors"].pop()
    st.rerun()
if following.button("Next page", disabled=page["next_cursor"] is None):
    pages["cursors"].append(page["next_cursor"])
    st.rerun()
download.download_button(
    "Export the filtered list (CSV)",
    data=functools.partial(export_csv, client, chosen),
    file_name=f"targets_{page['date']}.csv",
    mime="text/csv",
    on_click="ignore",
)
company_picker({i["siren"]: i["nom_entreprise"] or i["siren"] for i in items}, "targets_company")
