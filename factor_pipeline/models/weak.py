"""Weak factors of one dataset for a set of dates: rolling fits (cached, tracked), predictions, and the
out-of-sample RankIC of the output on the signal dates where the label is already realised.

Inference is cheap, so a run predicts every trading date of its weeks (the combiner learns from
daily rows); the evaluation figures stay on the weekly signal dates."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import require
from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.evaluation.ic import rank_ic, top_group_turnover
from factor_pipeline.models.tracking import ModelCache, data_hash, log_fit
from factor_pipeline.models.trainer import FitResult, TrainConfig, TrainData, for_dataset, net_config, rolling
from factor_pipeline.progress import Progress


class NotCached(Exception):
    """A fit the run needs is not in the cache (raised before anything is trained or predicted)."""


@dataclass
class WeakRun:
    table: pl.DataFrame  # code, date, dataset, z_1..z_K, output, at every predicted date
    # with `folds`: the out-of-fold weak factors of each predicted period's training window (+ period)
    oof: pl.DataFrame = field(default_factory=pl.DataFrame)
    trained: int = 0
    reused: int = 0
    valid_ic: list[float] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    oos_ic: list[float] = field(default_factory=list)  # per signal date with realised labels
    top_turnover: float = float("nan")  # weekly one-way turnover of the top 1/20 by output


def weak_factors(name: str, panel: Panel, predict_dates: list[int], cfg: TrainConfig, n_factors: int,
                 device: torch.device, cache: ModelCache | None = None, tracking_uri: str | None = None,
                 tags: dict[str, str] | None = None, signal: list[int] | None = None,
                 progress: Progress | None = None, side_by_side: bool = False, cached_only: bool = False) -> WeakRun:
    """`predict_dates`: the panel dates to predict; `signal`: those the RankIC and turnover are
    measured on (default: all of them); `side_by_side`: the periods' fits in single-threaded processes where
    the device and the panel's size allow (models.side_by_side); `cached_only`: raise NotCached rather than
    train (a panel whose intraday parts cover only the prediction windows cannot train)."""
    cfg = for_dataset(cfg, name)
    base = dataset_base(panel, consume=True).to(device)
    require(base, name)  # a daily-only market has no ms/msnew/l2: say so before anything is trained
    y = labels_mod.forward_returns(panel)
    mask = sample_mask(panel, DATASETS[name].lookback)
    data = TrainData(base, mask, labels_mod.standardised(y, mask), y, panel.codes, panel.dates)
    net_cfg = net_config(name, data, cfg, n_factors=n_factors)
    lookback = DATASETS[name].lookback
    run = WeakRun(pl.DataFrame())

    def model_for(dates: list[int], these: list[int], mcfg: TrainConfig):
        if cache is None:
            if cached_only:
                raise NotCached(f"{name}: no model cache")
            return None
        model = cache.load(name, cache.key(name, mcfg, net_cfg, data_hash(data, dates, lookback)), net_cfg)
        if model is None and cached_only:
            raise NotCached(f"{name}: no cached fit for {panel.dates[these[0]]}..{panel.dates[these[-1]]}")
        run.reused += model is not None
        return model

    def on_fit(dates: list[int], these: list[int], res: FitResult, mcfg: TrainConfig) -> None:
        run.trained += 1
        run.valid_ic.append(res.best_valid_ic)
        dh = data_hash(data, dates, lookback)
        if tracking_uri is not None:  # tracked first: a model is cached only once it is in MLflow
            period = f"{panel.dates[these[0]]}..{panel.dates[these[-1]]}"
            run.registered.append(log_fit(name, res, mcfg, net_cfg, dh, period, {
                **(tags or {}), "train_first_date": str(panel.dates[dates[0]]),
                "train_last_date": str(panel.dates[dates[-1]])}, tracking_uri))
        if cache is not None:
            cache.save(name, cache.key(name, mcfg, net_cfg, dh), res.model)

    run.table, _, run.oof = rolling(name, data, predict_dates, cfg, net_cfg, model_for, on_fit, progress,
                                    workers=None if side_by_side else 0)
    if run.table.height:
        days = []
        by_date = run.table.select("code", "date", "output").partition_by("date", as_dict=True)
        empty = run.table.select("code", "output").clear()
        for t in (predict_dates if signal is None else signal):
            day = by_date.get((panel.dates[t].astype(object),), empty)
            codes, out = day["code"].to_numpy(), day["output"].to_numpy()
            days.append((codes, out))
            i = np.searchsorted(panel.codes, codes)
            if np.isfinite(y[i, t]).sum() >= 10:
                run.oos_ic.append(rank_ic(out, y[i, t]))
        run.top_turnover = top_group_turnover(days)
    return run
