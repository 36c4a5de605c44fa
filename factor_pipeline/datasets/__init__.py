"""Datasets of the report: dense panels, data images (week, msnew), daily sequences (day, ms, l2), labels."""
