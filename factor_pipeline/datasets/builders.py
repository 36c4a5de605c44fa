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
    """x[stock, date-length+1 ... date] for each pair: [n, length, ...]. Only the batch is copied."""
    offs = torch.arange(-length + 1, 1, device=x.device)
    return x[stocks[:, None], dates[:, None] + offs[None, :]]


def _rel_prices(base: DatasetBase, stocks: torch.Tensor, dates: torch.Tensor, length: int) -> torch.Tensor:
    px = _window(base.px, stocks, dates, length)  # [n, L, 5]
    close_t = base.px[stocks, dates, 3]
    return px / close_t[:, None, None]


def feature_names(base: DatasetBase, name: str) -> tuple[str, ...]:
    return base.l2_names if name == "l2" else DATASETS[name].rows


def gather(base: DatasetBase, name: str, stocks: torch.Tensor, dates: torch.Tensor) -> torch.Tensor:
    spec = DATASETS[name]
    stocks = torch.as_tensor(stocks, device=base.px.device, dtype=torch.long)
    dates = torch.as_tensor(dates, device=base.px.device, dtype=torch.long)
    if bool((dates < spec.lookback - 1).any()):
        raise ValueError(f"{name}: dates before the first full {spec.lookback}-day window")
    if name == "week":
        rel = _rel_prices(base, stocks, dates, WEEK_DAYS)  # [n, 150, 5]
        turn = _window(base.turnover, stocks, dates, WEEK_DAYS)[..., None]
        days = torch.cat([rel, turn], dim=-1)  # [n, 150, 6], oldest day first
        return days.reshape(len(stocks), STEPS, WEEK_DAYS // STEPS, 6).transpose(2, 3)  # [n, 30, 6, 5]
    if name == "day":
        return torch.cat([_rel_prices(base, stocks, dates, STEPS), _window(base.day, stocks, dates, STEPS)], dim=-1)
    source = {"msnew": base.msnew, "ms": base.ms, "l2": base.l2}[name]
    if source is None:
        need = "intraday_bars" if spec.requires == "intraday" else "l2_daily"
        raise DatasetUnavailable(f"dataset {name} needs {need}, which this market does not have")
    return _window(source, stocks, dates, STEPS)
