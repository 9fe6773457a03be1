"""Sectors: the share of high M&A scores per NAF division and région as a heat map; a cell opens
its targets."""

import pandas as pd
import streamlit as st

from app import charts, labels
from app.navigation import open_targets
from app.session import api, cached_get, errors_shown

st.title("Sectors")
client = api()
with errors_shown():
    cells = cached_get(client, "/v1/sectors", by_region=True)
    divisions = cached_get(client, "/v1/sectors")
st.caption(
    f"Share of companies with an M&A score of 75 or more, per NAF division and région, on"
    f" {cells['date']}. Click a cell to list its targets."
)
event = st.altair_chart(
    charts.sector_heat_map(cells["items"]),
    width="stretch",
    on_select="rerun",
    key="sector_heat_map",
)
for cell in event["selection"].get("cell", []):
    open_targets({"naf": cell.get("naf_division"), "region": cell.get("region")})

division_codes = sorted(s["naf_division"] for s in divisions["items"] if s["naf_division"])
division, region, go = st.columns([2, 2, 1], vertical_alignment="bottom")
chosen_division = division.selectbox("NAF division", division_codes)
chosen_region = region.selectbox(
    "Région", ["", *labels.REGIONS], format_func=lambda c: labels.region(c) if c else "any"
)
if go.button("List these targets"):
    open_targets({"naf": chosen_division, "region": chosen_region})

st.subheader("Per NAF division")
st.dataframe(pd.DataFrame(divisions["items"]).drop(columns="region"), hide_index=True)
