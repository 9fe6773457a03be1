"""The deal teams' web app: a Streamlit client of the scores API (never of the warehouse)."""
