"""Company: who it is, its three scores with bands, ranks and probabilities, why (signed
reasons), how they moved (history, model changes, what moved last), and its contacts for keys
allowed to see personal data."""

from typing import Any

import pandas as pd
import streamlit as st

from app import charts, labels
from app.client import Api, MissingScope
from app.reasons import last_change, moved
from app.session import api, cached_get, errors_shown


def scores(company: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """One metric per score; its change since the previous published day as the delta."""
    previous = history[-2]["scores"] if len(history) > 1 else {}
    for column, (name, label) in zip(st.columns(3), labels.SCORES.items(), strict=True):
        score = company["scores"][name]
        if score["value"] is None:
            column.metric(label, "not scored")
            column.caption(score["unscored"] or "")
            continue
        before = previous.get(name)
        column.metric(
            label,
            f"{score['value']:.1f}",
            delta=None if before is None else round(score["value"] - before, 1),
        )
        rank = "-" if score["rank"] is None else f"{score['rank']:.0f}"
        column.caption(
            f"band {score['band'] or '-'} · rank {rank} / 100 ·"
            f" probability {score['value'] / 100:.0%} · {score['model_version']}"
        )


def why(company: dict[str, Any], history: list[dict[str, Any]], name: str) -> None:
    """The score's reasons, then what moved it at its last change."""
    reasons = company["scores"][name]["reasons"]
    if reasons:
        st.altair_chart(charts.reasons(reasons), width="stretch")
    else:
        st.caption("No reasons: this score is not computed for the company.")
    change = last_change(history, name)
    st.markdown("**What moved since the previous change**")
    if change is None:
        st.caption("This score has not changed over the published days.")
        return
    before, after = change
    st.caption(
        f"{before['scores'][name]:.1f} on {before['date']} → {after['scores'][name]:.1f}"
        f" on {after['date']}"
    )
    st.dataframe(pd.DataFrame(moved(before, after, name)), hide_index=True)


def contacts(client: Api, siren: str) -> None:
    st.subheader("Contacts")
    try:
        items = cached_get(client, f"/v1/companies/{siren}/contacts")["items"]
    except MissingScope:
        st.caption("Contacts are personal data: shown to API keys with the contacts:read scope.")
        return
    if not items:
        st.caption("No contact has been looked up for this company.")
        return
    columns = ["prenom", "nom", "qualite", "work_email", "phone", "linkedin_slug", "status"]
    st.dataframe(pd.DataFrame(items)[columns], hide_index=True)


client = api()
siren = st.text_input("SIREN", st.query_params.get("siren", ""), max_chars=9).strip()
if not siren:
    st.info("Enter a SIREN, or open a company from Targets or Movers.")
    st.stop()
with errors_shown():
    company = cached_get(client, f"/v1/companies/{siren}")
    history = cached_get(client, f"/v1/companies/{siren}/scores")["items"]
profile = company["profile"]
st.title(profile["nom_entreprise"] or f"SIREN {siren}")
st.caption(
    f"SIREN {siren} · NAF {profile['activite_principale'] or '-'} (section"
    f" {profile['naf_section'] or '-'}) · département {profile['departement'] or '-'} ·"
    f" {labels.region(profile['region'])} · scores of {company['date']} by the {company['scorer']}"
)
scores(company, history)
for tab, name in zip(st.tabs(list(labels.SCORES.values())), labels.SCORES, strict=True):
    with tab:
        why(company, history, name)
st.subheader("Score history")
st.caption(f"{len(history)} published days; a dashed line marks a change of model version.")
st.altair_chart(charts.history(history), width="stretch")
with errors_shown():
    contacts(client, siren)
