"""Labels: the only forward-looking code. Everything here reads dates after t, on purpose.

y_raw[t]    adjusted VWAP of t+11 / adjusted VWAP of t+1 - 1 (trade at next day's VWAP, hold 10 days)
y_std[t]    y_raw winsorised and z-scored across the samples of date t
y_week[t]   adjusted VWAP of the day after the next signal date / adjusted VWAP of t+1 - 1: the return
            of holding from one weekly rebalance to the next (what group returns and NAVs compound)
cannot_buy  suspended at t+1, or limit-up all day at t+1 (low >= limit_up): no fill at t+1's VWAP
A label is NaN when t+11 is beyond the data or the stock is not listed at t+1 / t+11 (delisting).
"""

from __future__ import annotations

import warnings

import numpy as np

from factor_pipeline.datasets.panel import Panel

HORIZON = 10


def forward_returns(panel: Panel, horizon: int = HORIZON) -> np.ndarray:
    """y_raw: adjusted VWAP of t+1+horizon / adjusted VWAP of t+1 - 1 (the pipeline's label: horizon 10)."""
    av = panel.field("vwap").astype(np.float64) * panel.field("adj_factor")
    y = np.full(av.shape, np.nan)
    y[:, : -(horizon + 1)] = av[:, horizon + 1:] / av[:, 1:-horizon] - 1.0
    return y


def realised_dates(panel: Panel, t: np.ndarray) -> np.ndarray:
    """The date each label at panel index t is realised (t + 11), NaT where that is beyond the panel."""
    cal = np.r_[panel.dates.astype("datetime64[D]"), np.datetime64("NaT", "D")]
    return cal[np.minimum(np.asarray(t) + HORIZON + 1, len(panel.dates))]


def cannot_buy(panel: Panel) -> np.ndarray:
    nxt = np.zeros_like(panel.listed)
    lu, low = panel.field("limit_up"), panel.field("low")
    with np.errstate(invalid="ignore"):
        blocked = panel.suspended | (~np.isnan(lu) & (low >= lu))
    nxt[:, :-1] = blocked[:, 1:]
    return nxt


def standardised(y: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """z-score of y per date over samples with a label (median +- 5 scaled-MAD winsorised)."""
    z = np.where(samples, y, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # dates without any labelled sample
        med = np.nanmedian(z, axis=0)
        mad = np.nanmedian(np.abs(z - med), axis=0) * 1.4826
        z = np.clip(z, med - 5 * mad, med + 5 * mad)
        mean, std = np.nanmean(z, axis=0), np.nanstd(z, axis=0)
        return np.where(std > 0, (z - mean) / std, np.nan)


def period_returns(panel: Panel, signals: list[int]) -> np.ndarray:
    """[N, len(signals)] return from the VWAP after signal k to the VWAP after signal k+1 (adjusted).

    NaN for the last signal, where the next entry day is beyond the panel, or where the stock has no
    VWAP on either entry day (suspended or delisted)."""
    av = panel.field("vwap").astype(np.float64) * panel.field("adj_factor")
    out = np.full((av.shape[0], len(signals)), np.nan)
    s = np.asarray(signals, dtype=int)
    if len(s) < 2:
        return out
    entry, nxt = s[:-1] + 1, s[1:] + 1
    ok = nxt < av.shape[1]
    out[:, :-1][:, ok] = av[:, nxt[ok]] / av[:, entry[ok]] - 1.0
    return out
