"""Enrichment from external APIs (Pappers, Kaspr): one client core, a warehouse cache, assets."""
