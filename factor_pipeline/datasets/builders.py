"""Data images and sequences for (stock, date) pairs, gathered on the fly (no epoch of images is ever built).

`gather(base, name, stocks, dates)` returns the raw (not yet preprocessed) inputs:
week/msnew [n, 30, rows, cols]; day/ms/l2 [n, 30, features]. Every value at date t comes from
panel dates t-149 ... t (week) or t-29 ... t (the others): nothing after t.
"""

from __future__ import annotations

import torch

from factor_pipeline.datasets.base import DatasetBase
from factor_pipeline.datasets.registry import DATASETS, STEPS, WEEK_DAYS, DatasetUnavailable


def _window(x: torch.Tensor, stocks: torch.Tensor, dates: torch.Tensor, length: int) -> torch.Tensor:
    """x[stock, date-length+1 ... date] for each pair: [n, length, ...]. Only the batch is copied.

    A cross-sectional batch (one date) takes a time slice of the panel (a view) and copies each
    stock's contiguous window as one block; mixed dates fall back to element-wise gathering.
    """
    t0 = int(dates[0])
    if bool((dates == t0).all()):
        return x[:, t0 - length + 1: t0 + 1].index_select(0, stocks)
    offs = torch.arange(-length + 1, 1, device=x.device)
    return x[stocks[:, None], dates[:, None] + offs[None, :]]


def _channel_window(x: torch.Tensor, stocks: torch.Tensor, dates: torch.Tensor, length: int) -> torch.Tensor:
    """Channel-major x [N, C, T] -> [n, C, length] windows ending at each date."""
    t0 = int(dates[0])
    if bool((dates == t0).all()):
        return x[:, :, t0 - length + 1: t0 + 1].index_select(0, stocks)
    return _window(x.transpose(1, 2), stocks, dates, length).transpose(1, 2)


def _rel_window(base: DatasetBase, stocks: torch.Tensor, dates: torch.Tensor, length: int) -> torch.Tensor:
    """[n, 6, L]: adjusted prices / adjusted close of t (in place on the gathered copy), turnover."""
    w = _channel_window(base.pxt, stocks, dates, length)
    close_t = base.pxt[stocks, 3, dates]
    w[:, :5].mul_((1.0 / close_t)[:, None, None])
    return w


def feature_names(base: DatasetBase, name: str) -> tuple[str, ...]:
    return base.l2_names if name == "l2" else DATASETS[name].rows


def require(base: DatasetBase, name: str) -> torch.Tensor | None:
    """The panel part dataset `name` reads; DatasetUnavailable when the market lacks its raw table."""
    if name in ("week", "day"):
        return None
    source = {"msnew": base.msnew, "ms": base.ms, "l2": base.l2}[name]
    if source is None:
        need = "intraday_bars" if DATASETS[name].requires == "intraday" else "l2_daily"
        raise DatasetUnavailable(f"dataset {name} needs {need}, which this market does not have")
    return source


def gather(base: DatasetBase, name: str, stocks: torch.Tensor, dates: torch.Tensor) -> torch.Tensor:
    spec = DATASETS[name]
    stocks = torch.as_tensor(stocks, device=base.pxt.device, dtype=torch.long)
    dates = torch.as_tensor(dates, device=base.pxt.device, dtype=torch.long)
    if bool((dates < spec.lookback - 1).any()):
        raise ValueError(f"{name}: dates before the first full {spec.lookback}-day window")
    if name == "week":
        days = _rel_window(base, stocks, dates, WEEK_DAYS)  # [n, 6, 150], oldest day first
        return days.reshape(len(stocks), 6, STEPS, WEEK_DAYS // STEPS).transpose(1, 2)  # [n, 30, 6, 5]
    if name == "day":
        rel = _rel_window(base, stocks, dates, STEPS)[:, :5].transpose(1, 2)  # [n, 30, 5]
        return torch.cat([rel, _window(base.day, stocks, dates, STEPS)], dim=-1)
    x = _window(require(base, name), stocks, dates, STEPS)
    return x.transpose(2, 3) if name == "msnew" else x  # msnew: rows = fields, columns = the 8 bars
