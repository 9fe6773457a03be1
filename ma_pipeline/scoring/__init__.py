"""Scoring: ml_scores partitions, their publication, and what readers may see."""
