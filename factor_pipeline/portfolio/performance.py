"""Figures of an enhanced portfolio against its index: the report's per-portfolio table."""

from __future__ import annotations

from datetime import date

import numpy as np


def portfolio_figures(nav: np.ndarray, bench: np.ndarray, dates: list[date], rebalance_pos: list[int]) -> dict:
    """nav, bench: values at the same closes (both start at the reference close); `rebalance_pos`:
    positions of the execution days in that series (the weekly periods run between them)."""
    nav, bench = np.asarray(nav, float), np.asarray(bench, float) / bench[0]
    rp, rb = nav[1:] / nav[:-1] - 1, bench[1:] / bench[:-1] - 1
    excess_nav = nav / bench
    days = len(nav) - 1
    peak = np.maximum.accumulate(excess_nav)
    years = np.array([d.year for d in dates])
    by_year = {}
    for y in sorted(set(years)):
        idx = np.flatnonzero(years == y)
        before = idx[0] - 1 if idx[0] > 0 else idx[0]
        by_year[str(y)] = round(float(excess_nav[idx[-1]] / excess_nav[before] - 1), 4)
    pos = [p for p in rebalance_pos if p < len(nav)] + [len(nav) - 1]
    wins = [(nav[b] / nav[a]) > (bench[b] / bench[a]) for a, b in zip(pos[:-1], pos[1:], strict=True) if b > a]
    active = rp - rb
    return {
        "excess_ann": round(float(excess_nav[-1] ** (252 / days) - 1), 4) if days > 0 else None,
        "excess_vol_ann": round(float(np.std(excess_nav[1:] / excess_nav[:-1] - 1, ddof=1) * np.sqrt(252)), 4),
        "weekly_win_rate": round(float(np.mean(wins)), 4) if wins else None,
        "max_drawdown": round(float((excess_nav / peak - 1).min()), 4),
        "excess_by_year": by_year,
        "realised_te": round(float(np.std(active, ddof=1) * np.sqrt(252)), 4),
        "abs_ann": round(float(nav[-1] ** (252 / days) - 1), 4) if days > 0 else None,
        "bench_ann": round(float(bench[-1] ** (252 / days) - 1), 4) if days > 0 else None,
    }
