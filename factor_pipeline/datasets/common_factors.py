"""The report's common factors at signal dates, to measure how much of a score is already known.

Point in time: each value at t reads the panel through t only (trailing windows). Adjusted prices
are close * adj_factor. Definitions (SPEC.md):
size          log float market cap (close * float_shares): the size-bias reference
vol20         standard deviation of daily returns over 20 days
ret20         20-day return
ppreversal    5-day mean adjusted price / 60-day mean adjusted price - 1
cgo60         close / turnover-weighted mean adjusted VWAP of 60 days (the cost basis) - 1
p2high        adjusted close / highest adjusted high of 243 days
avgamt_20_60  20-day mean amount / 60-day mean amount
dwf           top-gainer list: days among the day's N=100 best returns, weighted 0.5^(age/10), 60 days
maxret20      mean of the 3 largest daily returns of 20 days
mom_20d_120d  return from t-120 to t-20
i_<ms>        20-day mean of each intraday (ms) feature, when the market has 5-minute bars
"""

from __future__ import annotations

import numpy as np
import polars as pl

from factor_pipeline.datasets.intraday import MS_FEATURES
from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.windows import daily_returns, lag, long_table, ratio, stat, window

DAILY_FACTORS = ("size", "vol20", "ret20", "ppreversal", "cgo60", "p2high", "avgamt_20_60", "dwf", "maxret20",
                 "mom_20d_120d")
DWF_TOP, DWF_HALF_LIFE, DWF_DAYS = 100, 10, 60


def top_gainer_flags(r: np.ndarray, listed: np.ndarray, top: int = DWF_TOP) -> np.ndarray:
    """[N, T] True where the stock's return is among the `top` best of that day (ties by order)."""
    x = np.where(listed & np.isfinite(r), r, -np.inf)
    order = np.argsort(-x, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(x.shape[0])[:, None].repeat(x.shape[1], axis=1), axis=0)
    return (rank < top) & np.isfinite(x)


def common_factors(panel: Panel, ts: list[int]) -> dict[str, np.ndarray]:
    """name -> [N, len(ts)] values at the panel dates `ts`."""
    ts = np.asarray(ts, dtype=int)
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    ac, ah, av = f("close") * adj, f("high") * adj, f("vwap") * adj
    r = daily_returns(ac)
    c_t = ac[:, ts]
    out = {
        "size": np.log(np.where(panel.listed, f("close") * f("float_shares"), np.nan)[:, ts]),
        "vol20": stat(window(r, 20, ts), "std"),
        "ret20": ratio(c_t, lag(ac, 20, ts)) - 1,
        "ppreversal": ratio(stat(window(ac, 5, ts), "mean"), stat(window(ac, 60, ts), "mean")) - 1,
        "p2high": ratio(c_t, stat(window(ah, 243, ts), "max")),
        "avgamt_20_60": ratio(stat(window(f("amount"), 20, ts), "mean"), stat(window(f("amount"), 60, ts), "mean")),
        "mom_20d_120d": ratio(lag(ac, 20, ts), lag(ac, 120, ts)) - 1,
    }
    turn = window(f("turnover"), 60, ts)
    out["cgo60"] = ratio(c_t, ratio(stat(turn * window(av, 60, ts), "sum"), stat(turn, "sum"))) - 1
    top3 = -np.sort(-np.nan_to_num(window(r, 20, ts), nan=-np.inf), axis=-1)[..., :3]
    out["maxret20"] = np.where(np.isfinite(top3).all(axis=-1) & np.isfinite(stat(window(r, 20, ts), "mean")),
                               top3.mean(axis=-1), np.nan)
    flags = window(top_gainer_flags(r, panel.listed).astype(np.float64), DWF_DAYS, ts)
    weights = 0.5 ** (np.arange(DWF_DAYS)[::-1] / DWF_HALF_LIFE)  # the newest day weighs 1
    out["dwf"] = np.where(panel.listed[:, ts], np.nan_to_num(flags) @ weights, np.nan)
    if panel.ms is not None:
        for j, name in enumerate(MS_FEATURES):
            out[f"i_{name}"] = stat(window(panel.ms[..., j], 20, ts), "mean")
    return {k: out[k] for k in (*DAILY_FACTORS, *[k for k in out if k.startswith("i_")])}


def common_factor_table(panel: Panel, ts: list[int]) -> pl.DataFrame:
    """code, date and one column per common factor, for listed stocks at the signal dates."""
    return long_table(panel, ts, common_factors(panel, ts))
