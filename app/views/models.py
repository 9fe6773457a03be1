"""Models: the champion of each score, its holdout metrics and the decision that made it
champion (its model card, as the API publishes it)."""

import pandas as pd
import streamlit as st

from app import labels
from app.session import api, cached_get, errors_shown

st.title("Models")
client = api()
with errors_shown():
    models = cached_get(client, "/v1/models")["items"]
if not models:
    st.info("No trained model is published yet: the scores come from the rule baseline.")
for model in models:
    st.subheader(f"{labels.SCORES.get(model['score'], model['score'])}: champion")
    st.markdown(
        f"**{model['model_name']}** version **{model['version']}**, registered"
        f" {model['created_at'] or 'on an unknown date'} (run {model['run_id'] or '-'})"
    )
    st.markdown(f"Decision: {model['decision'] or 'not recorded'}")
    metrics = {k: v for k, v in model["metrics"].items() if isinstance(v, int | float)}
    if metrics:
        st.dataframe(
            pd.DataFrame({"metric": list(metrics), "holdout": list(metrics.values())}),
            hide_index=True,
        )
        st.bar_chart(pd.Series(metrics, name="holdout"), horizontal=True)
