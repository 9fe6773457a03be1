"""The serving API: a thin FastAPI over the published score tables (never runs a model)."""
