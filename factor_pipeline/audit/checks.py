"""Invariants a stage's output must hold, as pure functions: (passed, details)."""

from __future__ import annotations

from datetime import date

import polars as pl

VIOLATION_TOLERANCE = 1e-6


def finite_scores(table: pl.DataFrame, value: str = "score") -> tuple[bool, dict]:
    """Every score is a finite number; names the first offending rows otherwise."""
    if table.height == 0:
        return True, {"rows": 0}
    bad = table.filter(~pl.col(value).is_finite() | pl.col(value).is_null())
    details: dict = {"rows": table.height, "non_finite": bad.height}
    if bad.height:
        keys = [c for c in ("model", "dataset", "code", "date") if c in bad.columns]
        details["first_offending_rows"] = str(bad.select(keys).head(5).to_dicts())
    return bad.height == 0, details


def every_date_scored(table: pl.DataFrame, dates: list[date], models: list[str]) -> tuple[bool, dict]:
    """Each runnable model has scores on every signal date it was asked for."""
    missing = []
    for m in models:
        have = set(table.filter(pl.col("model") == m)["date"].to_list()) if table.height else set()
        missing += [f"{m} {d}" for d in dates if d not in have]
    return not missing, {"signal_dates": len(dates), "models": len(models), "missing": ", ".join(missing[:10])}


def labels_before_prediction(fits: list) -> tuple[bool, dict]:
    """Point in time: every fit saw only labels realised before its period's first prediction date."""
    late = [f"{f.period}: label realised {f.last_realised} >= {f.first_prediction}" for f in fits
            if f.first_prediction is not None and f.last_realised >= f.first_prediction]
    return not late, {"fits": len(fits), "late": "; ".join(late[:5])}


def constraint_audit(audit: pl.DataFrame, weights: pl.DataFrame) -> tuple[bool, dict]:
    """Every portfolio-week holds its limits in force (within 1e-6), weights are long-only and sum to 1."""
    if audit.height == 0:
        return True, {"weeks": 0}
    worst = float(audit["max_violation"].max())
    sums = weights.group_by("index", "model", "date").agg(pl.col("weight").sum().alias("s"),
                                                          pl.col("weight").min().alias("lo"))
    off = sums.filter(((pl.col("s") - 1).abs() > VIOLATION_TOLERANCE) | (pl.col("lo") < -VIOLATION_TOLERANCE))
    details = {"portfolio_weeks": audit.height, "max_violation": worst,
               "weeks_relaxed": int((audit["relaxed"] != "").sum()), "weights_off": off.height}
    if off.height:
        details["first_offending"] = str(off.head(5).to_dicts())
    return worst <= VIOLATION_TOLERANCE and off.height == 0, details
