"""Automation: the nightly and weekly schedules, and the sensors that react to files, drift and
failures."""
