"""Tests of the serving API (serving/)."""
