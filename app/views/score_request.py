"""Score request: ask the pipeline to score a SIREN now, watch the request go from pending to
completed or failed, then open the company."""

from typing import Any

import streamlit as st

from app import labels
from app.client import Api
from app.navigation import COMPANY
from app.session import api, errors_shown

REQUEST_STATE = "score_request"
POLL_S = 2.0


def result(request: dict[str, Any]) -> None:
    """A finished request: its scores, or why it failed."""
    if request["status"] == "failed":
        st.error(f"Scoring {request['siren']} failed: {request['failure_reason']}")
        return
    st.success(f"{request['siren']} is scored.")
    scores = (request["result"] or {}).get("scores", {})
    for column, (name, label) in zip(st.columns(3), labels.SCORES.items(), strict=True):
        value = scores.get(name, {}).get("value")
        column.metric(label, "not scored" if value is None else f"{value:.1f}")
    st.page_link(COMPANY, label="Open the company", query_params={"siren": request["siren"]})


@st.fragment(run_every=POLL_S)
def pending(client: Api, request_id: str) -> None:
    """Asks again every few seconds; the whole page reruns once the request is finished."""
    with errors_shown():
        request = client.get(f"/v1/score-requests/{request_id}")
    st.session_state[REQUEST_STATE] = request
    if request["status"] != "pending":
        st.rerun()
    st.info(f"Request for {request['siren']} is pending: the pipeline scores it shortly.")


st.title("Score request")
client = api()
with st.form("request_form"):
    siren = st.text_input("SIREN", max_chars=9, key="request_siren")
    if st.form_submit_button("Request a score") and siren.strip():
        with errors_shown():
            st.session_state[REQUEST_STATE] = client.post(
                "/v1/score-requests", {"siren": siren.strip()}
            )
request = st.session_state.get(REQUEST_STATE)
if request is not None:
    if request["status"] == "pending":
        pending(client, request["id"])
    else:
        result(request)
