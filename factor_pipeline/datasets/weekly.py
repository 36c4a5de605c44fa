"""Datasets and labels at the weekly rebalance (signal) dates: what the dataset and label assets store.

A rebalance week is keyed by its Monday; its signal date is its last trading date (normally the
Friday close). Images are not stored: later stages gather them from the panel on the fly. What is
stored is which (stock, date) pairs are samples of each dataset, and the labels, in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import DatasetBase
from factor_pipeline.datasets.builders import feature_names, gather
from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.registry import DATASETS, STEPS
from factor_pipeline.datasets.samples import sample_mask


def signal_dates(panel: Panel, first_week: date, end: date) -> list[int]:
    """Panel indices of the last trading date of each week starting on Mondays in [first_week, end)."""
    days = panel.dates.astype("datetime64[D]")
    monday = days - ((days.astype("int64") + 3) % 7).astype("timedelta64[D]")
    in_range = (days >= np.datetime64(first_week)) & (days < np.datetime64(end))
    last_of_week = np.r_[monday[1:] != monday[:-1], True]
    return [int(t) for t in np.flatnonzero(in_range & last_of_week)]


def trading_dates(panel: Panel, first_week: date, end: date) -> list[int]:
    """Panel indices of every trading date in [first_week, end)."""
    days = panel.dates.astype("datetime64[D]")
    return [int(t) for t in np.flatnonzero((days >= np.datetime64(first_week)) & (days < np.datetime64(end)))]


@dataclass
class DatasetWeeks:
    samples: pl.DataFrame  # dataset, date, code
    shape: tuple[int, ...]  # of one sample
    nan_share: float  # share of input cells missing before filling, over all samples
    stocks: int
    dates_without_samples: list[str] = field(default_factory=list)
    preview: str = ""


def dataset_weeks(panel: Panel, base: DatasetBase, name: str, dates: list[int]) -> DatasetWeeks:
    """Samples of `name` at each signal date, with the numbers a user checks in the UI."""
    spec = DATASETS[name]
    mask = sample_mask(panel, spec.lookback)
    rows, nan_cells, cells, empty = [], 0, 0, []
    x = None
    for t in dates:  # one gather per signal date, vectorised over stocks
        stocks = np.flatnonzero(mask[:, t])
        if t < spec.lookback - 1 or len(stocks) == 0:
            empty.append(str(panel.dates[t]))
            continue
        x = gather(base, name, torch.from_numpy(stocks), torch.full((len(stocks),), t))
        nan_cells += int(torch.isnan(x).sum())
        cells += x.numel()
        rows.append(pl.DataFrame({"dataset": name, "date": np.repeat(panel.dates[t], len(stocks)),
                                  "code": panel.codes[stocks]}))
    samples = pl.concat(rows) if rows else pl.DataFrame(schema={"dataset": pl.String, "date": pl.Date,
                                                                "code": pl.String})
    samples = samples.with_columns(pl.col("date").cast(pl.Date))
    names = feature_names(base, name)
    shape = spec.shape(len(names))
    return DatasetWeeks(samples, shape, nan_cells / cells if cells else float("nan"),
                        samples["code"].n_unique(), empty, _preview(x, name, names) if x is not None else "")


def _preview(x: torch.Tensor, name: str, names: tuple[str, ...]) -> str:
    """The newest step of the first sample, as a markdown table."""
    v = x[0, -1].numpy()
    if DATASETS[name].kind == "image":
        head = "| row | " + " | ".join(f"c{j + 1}" for j in range(v.shape[1])) + " |"
        body = [f"| {names[i]} | " + " | ".join(f"{a:.4g}" for a in v[i]) + " |" for i in range(v.shape[0])]
    else:
        head = "| feature | value |"
        body = [f"| {n} | {a:.4g} |" for n, a in zip(names, v, strict=True)]
    sep = "|" + "---|" * (head.count("|") - 1)
    return "\n".join([f"newest of {STEPS} steps, first sample", head, sep, *body])


def label_table(panel: Panel, dates: list[int]) -> pl.DataFrame:
    """code, date, y_raw, y_std, y_week, cannot_buy, realised_on (the date of t+11, null if beyond the data)
    for listed stocks at the signal dates; y is null where not realised.

    y_week needs the next signal date: it is taken from the panel's signal dates, but never from the
    panel's last week, which the panel may cut short."""
    y = labels_mod.forward_returns(panel)
    every = signal_dates(panel, panel.dates[0].astype(object), panel.dates[-1].astype(object) + timedelta(days=1))
    yw = labels_mod.period_returns(panel, every)
    col = {t: k for k, t in enumerate(every)}
    ystd = labels_mod.standardised(y, sample_mask(panel, STEPS))
    cb = labels_mod.cannot_buy(panel)
    frames = []
    for t in dates:
        i = np.flatnonzero(panel.listed[:, t])
        due = t + labels_mod.HORIZON + 1
        realised_on = panel.dates[due] if due < len(panel.dates) else np.datetime64("NaT", "D")
        frames.append(pl.DataFrame({"code": panel.codes[i], "date": np.repeat(panel.dates[t], len(i)), "y_raw": y[i, t],
                                    "y_std": ystd[i, t],
                                    "y_week": yw[i, col[t]] if t in col else np.full(len(i), np.nan),
                                    "cannot_buy": cb[i, t],
                                    "realised_on": np.repeat(realised_on, len(i))}))
    if not frames:
        return pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "y_raw": pl.Float64, "y_std": pl.Float64,
                                    "y_week": pl.Float64, "cannot_buy": pl.Boolean, "realised_on": pl.Date})
    return pl.concat(frames).with_columns(pl.col("date", "realised_on").cast(pl.Date),
                                          pl.col("y_raw", "y_std", "y_week").fill_nan(None))


def daily_label_table(panel: Panel, dates: list[int]) -> pl.DataFrame:
    """code, date, y_raw, y_std, realised_on at every given trading date (listed stocks): the rows a
    combiner learns from between signal dates. y is null where not realised."""
    y = labels_mod.forward_returns(panel)
    ystd = labels_mod.standardised(y, sample_mask(panel, STEPS))
    d = np.asarray(dates, dtype=int)
    i, k = np.nonzero(panel.listed[:, d])
    t = d[k]
    return pl.DataFrame({"code": panel.codes[i], "date": panel.dates[t].astype("datetime64[D]"),
                         "y_raw": y[i, t], "y_std": ystd[i, t],
                         "realised_on": labels_mod.realised_dates(panel, t)}).with_columns(
        pl.col("date", "realised_on").cast(pl.Date), pl.col("y_raw", "y_std").fill_nan(None))


def history_start(first_week: date, lookback_days: int = 150) -> date:
    """A panel start early enough for `lookback_days` trading days before `first_week`."""
    return first_week - timedelta(days=int(lookback_days * 7 / 5) + 60)
