"""Retraining cadence: which prediction dates share one fit. Every 12 months is the report's yearly
retraining; 6 or 3 retrain more often on fresher labels (each fit still sees only labels realised
before its period's first calendar day)."""

from __future__ import annotations

from datetime import date

CADENCES = (1, 2, 3, 4, 6, 12)


def period_of(d: date, months: int = 12) -> str:
    """Name of the retraining period holding `d`: `2019` for yearly, else its first month `2019-07`."""
    if months not in CADENCES:
        raise ValueError(f"retrain cadence must be one of {CADENCES} months, got {months}")
    if months == 12:
        return f"{d.year}"
    return f"{d.year}-{(d.month - 1) // months * months + 1:02d}"


def period_start(d: date, months: int = 12) -> date:
    """First calendar day of the retraining period holding `d`: what a period's fit is anchored on, so a
    week scored alone (a weekly run, a UI backfill of a few weeks) gets the same model as inside its year."""
    if months not in CADENCES:
        raise ValueError(f"retrain cadence must be one of {CADENCES} months, got {months}")
    return date(d.year, 1, 1) if months == 12 else date(d.year, (d.month - 1) // months * months + 1, 1)


def group_by_period(dates: list, months: int = 12) -> dict[str, list]:
    """Dates (sorted) grouped by their retraining period, periods in time order."""
    out: dict[str, list] = {}
    for d in sorted(dates):
        out.setdefault(period_of(d, months), []).append(d)
    return out
