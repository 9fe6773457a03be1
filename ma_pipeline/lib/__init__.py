"""Pure helpers: no Dagster state, unit-tested directly."""
