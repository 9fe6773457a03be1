"""Movers: the companies whose score rose or fell most since the previous published day, with
the reasons that moved them."""

from typing import Any

import pandas as pd
import streamlit as st

from app import labels
from app.navigation import company_picker
from app.reasons import moved_in_words
from app.session import api, cached_get, errors_shown


def table(movers: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "SIREN": m["siren"],
                "Company": m["nom_entreprise"],
                "NAF": m["activite_principale"],
                "Before": m["previous_score"],
                "Now": m["score"],
                "Change": m["change"],
                "Band": m["band"],
                "What moved": "; ".join(moved_in_words(r) for r in m["reasons"]),
            }
            for m in movers
        ]
    )


st.title("Movers")
client = api()
score_column, limit_column = st.columns(2)
score = score_column.selectbox("Score", list(labels.SCORES), format_func=labels.SCORES.get)
limit = limit_column.slider("Companies each way", 5, 100, 20, step=5)
with errors_shown():
    movers = cached_get(client, "/v1/movers", score=score, limit=limit)
if movers["previous_date"] is None:
    st.info(f"Only {movers['date']} is published: movers show from the second day on.")
    st.stop()
st.caption(f"{labels.SCORES[score]} score, {movers['previous_date']} → {movers['date']}")
for title, key in (("Largest rises", "rises"), ("Largest falls", "falls")):
    st.subheader(title)
    st.dataframe(table(movers[key]), hide_index=True, width="stretch")
listed = movers["rises"] + movers["falls"]
company_picker({m["siren"]: m["nom_entreprise"] or m["siren"] for m in listed}, "movers_company")
