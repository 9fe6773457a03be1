"""The app's entry point (``ma-app``, or ``streamlit run app/main.py``): the sidebar where the
user gives their API key, then the page they chose."""

import streamlit as st

from app.navigation import pages
from app.session import sidebar

st.set_page_config(page_title="M&A targets", page_icon="📈", layout="wide")
page = st.navigation(pages())
sidebar()
page.run()
