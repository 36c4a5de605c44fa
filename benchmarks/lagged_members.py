"""A year's weak factors from its own networks, from last year's, and from both: whether averaging the
networks of two consecutive yearly refits (both out of sample for the year) makes a better weak factor.

    FACTOR_PIPELINE_HOME=/tmp/home_real .venv/bin/python benchmarks/lagged_members.py \\
        --data ../shared/realdata --years 2018 2019

Reads the fits a real run cached (`<home>/models/weak`, keyed exactly as the weak-factor stage keys them)
and trains none: a year whose fits are missing is skipped. Scores the weekly signal dates of each year with
`../shared/realeval/evaluate.py` (members of each universe), per dataset and for the mean of `week` and
`day`. Choose on the first year; the second is the test year and chooses nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from factor_pipeline.config import TRAINING
from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.models.tracking import ModelCache, data_hash
from factor_pipeline.models.trainer import (
    TrainConfig,
    TrainData,
    for_dataset,
    net_config,
    period_start,
    predict,
    training_dates,
)

UNIVERSES = ("csi_all", "csi300", "csi500", "csi1000")


def members(cache: ModelCache, name: str, data: TrainData, year: int, cfg: TrainConfig, net_cfg) -> list | None:
    """The cached networks of `year`'s fit (one per seed), as the weak-factor stage keys them; None if any is
    missing."""
    dates = training_dates(data, name, period_start(data, str(year), cfg.retrain_months), cfg)
    out = []
    for k in range(max(1, cfg.seeds)):
        mcfg = replace(cfg, seed=cfg.seed + k, seeds=1, lagged=0)  # as trainer.rolling keys a member
        model = cache.load(name, cache.key(name, mcfg, net_cfg, data_hash(data, dates, DATASETS[name].lookback)),
                           net_cfg)
        if model is None:
            return None
        out.append(model)
    return out


def _z() -> pl.Expr:
    """The output z-scored per date (an ensemble's unit)."""
    o = pl.col("output").cast(pl.Float64)
    return (o - o.mean().over("date")) / o.std(ddof=0).over("date")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/realdata"))
    ap.add_argument("--years", type=int, nargs="+", default=[2018, 2019])
    ap.add_argument("--datasets", nargs="+", default=["week", "day"])
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("realeval", args.data.resolve().parent / "realeval" / "evaluate.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    panel = build_panel(connect_memory(), file_source(str(args.data)).relations())
    base = dataset_base(panel, consume=True)
    y = labels_mod.forward_returns(panel)
    cfg = TrainConfig(**TRAINING["real"])
    cache = ModelCache()
    for year in args.years:
        sig = signal_dates(panel, date(year, 1, 1), date(year + 1, 1, 1))
        wide = None
        for name in args.datasets:
            mask = sample_mask(panel, DATASETS[name].lookback)
            data = TrainData(base, mask, labels_mod.standardised(y, mask), y, panel.codes, panel.dates)
            dcfg = for_dataset(cfg, name)  # the dataset's own training window, as the weak-factor stage trains it
            net_cfg = net_config(name, data, dcfg)
            now = members(cache, name, data, year, dcfg, net_cfg)
            last = members(cache, name, data, year - 1, dcfg, net_cfg)
            if now is None or last is None:
                print(f"{name} {year}: fits of {year} or {year - 1} not cached, skipped")
                continue
            cols = {}
            for label, nets in (("own", now), ("last", last), ("both", now + last)):
                tab = predict(nets, name, data, sig).select("code", "date", pl.col("output"))
                cols[f"{name}_{label}"] = tab.with_columns(_z().alias("output"))
            for col, tab in cols.items():
                part = tab.rename({"output": col})
                wide = part if wide is None else wide.join(part, on=["code", "date"], how="full", coalesce=True)
        if wide is None:
            continue
        names = [c for c in wide.columns if c not in ("code", "date")]
        if {"week_own", "day_own"} <= set(names):
            for label in ("own", "last", "both"):
                mean = (pl.col(f"week_{label}") + pl.col(f"day_{label}")) / 2
                wide = wide.with_columns(mean.alias(f"mean_{label}"))
                names.append(f"mean_{label}")
        res = ev.evaluate(args.data, wide, names, date(year, 1, 1), date(year, 12, 31))
        print(f"\n{year}: weekly 10-day RankIC (realeval), members of each universe")
        print("| score | " + " | ".join(UNIVERSES) + " |")
        print("|---" * (1 + len(UNIVERSES)) + "|")
        for n in names:
            cells = " | ".join(f"{res[n][u].get('rankic_mean', float('nan')):.3f}" for u in UNIVERSES)
            print(f"| {n} | {cells} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
