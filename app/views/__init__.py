"""The app's pages, each a script that Streamlit runs (``app.navigation.PAGES``)."""
