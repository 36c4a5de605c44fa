"""Trailing windows of a [N, T] panel field at chosen dates, as zero-copy views.

Every hand-crafted daily feature (common factors, Alpha158-style features) is a statistic over
`x[:, t-w+1 : t+1]`: it reads nothing after t by construction.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

MIN_SHARE = 0.8  # a window statistic needs this share of finite values, else NaN


def window(x: np.ndarray, w: int, ts: np.ndarray) -> np.ndarray:
    """[N, len(ts), w] trailing windows ending at each t (NaN-padded where t < w - 1)."""
    ts = np.asarray(ts, dtype=int)
    pad = np.full((x.shape[0], w - 1), np.nan, dtype=np.float64)
    xp = np.concatenate([pad, x.astype(np.float64, copy=False)], axis=1)
    return sliding_window_view(xp, w, axis=1)[:, ts]


def _enough(v: np.ndarray) -> np.ndarray:
    return np.isfinite(v).mean(axis=-1) >= MIN_SHARE


def stat(v: np.ndarray, how: str) -> np.ndarray:
    """nan-aware mean/std/max/min/sum over the last axis, NaN where too few values are finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {"mean": np.nanmean, "max": np.nanmax, "min": np.nanmin, "sum": np.nansum}[how](v, axis=-1) \
            if how != "std" else np.nanstd(v, axis=-1, ddof=1)
    return np.where(_enough(v), out, np.nan)


def lag(x: np.ndarray, k: int, ts: np.ndarray) -> np.ndarray:
    """x[:, t - k] at each t (NaN before the panel starts)."""
    ts = np.asarray(ts, dtype=int) - k
    out = np.full((x.shape[0], len(ts)), np.nan)
    ok = ts >= 0
    out[:, ok] = x[:, ts[ok]]
    return out


def daily_returns(close_adj: np.ndarray) -> np.ndarray:
    """[N, T] close-to-close returns of an adjusted close (NaN on the first day and around gaps)."""
    r = np.full(close_adj.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r[:, 1:] = close_adj[:, 1:] / close_adj[:, :-1] - 1.0
    return r


def long_table(panel, ts: list[int], values: dict[str, np.ndarray]) -> pl.DataFrame:
    """code, date and one column per [N, len(ts)] array, for the stocks listed at each date (NaN -> null)."""
    i, k = np.nonzero(panel.listed[:, ts])
    cols = {"code": panel.codes[i], "date": panel.dates[np.asarray(ts, dtype=int)[k]]}
    cols.update({name: v[i, k] for name, v in values.items()})
    return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date)).fill_nan(None)


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = a / b
    return np.where(np.isfinite(out), out, np.nan)
