"""A fit's trajectory: the validation and next-year RankIC after every epoch, of the weights and of moving
averages of them, and what early stopping, checkpoint means and fixed epochs would have kept.

    .venv/bin/python benchmarks/fit_trajectory.py --data ../shared/realdata --dataset week --years 2017 2018 \\
        --seeds 0 1 2 3 --averages 0.95 0.98 0.995

Every epoch runs (no early stop), with the preset's seed, date draws and steps, so the raw trajectory is the
one `trainer.fit` walks (its chosen epoch is replayed from the validation history with the preset's
patience). A weight average is the bias-corrected exponential mean of the weights over the optimiser steps
(decay per step), validated the same way. Scores are the pipeline's own RankIC on the year's weekly signal
dates (all samples, 10-day label); the "pair" column is the four-seed mean with the other dataset's
ensemble when `--other` names its saved outputs (`weak_settings.py --save`). Choose on 2017-2018 only.
"""

from __future__ import annotations

import argparse
import copy
import glob
from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import torch
from weak_settings import _ic, _z

from factor_pipeline.config import TRAINING
from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.labels import HORIZON
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.models import trainer
from factor_pipeline.models.loss import factor_loss
from factor_pipeline.models.network import WeakFactorNet
from factor_pipeline.models.trainer import TrainConfig, TrainData, for_dataset, net_config, predict, training_dates


class _Average:
    """Bias-corrected exponential moving average of a network's weights (as Adam corrects its moments)."""

    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay, self.n, self.model = decay, 0, copy.deepcopy(net)
        self.sums = [torch.zeros_like(p) for p in net.parameters()]

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.n += 1
        for s, a, p in zip(self.sums, self.model.parameters(), net.parameters(), strict=True):
            s.mul_(self.decay).add_(p, alpha=1 - self.decay)
            a.copy_(s / (1 - self.decay ** self.n))


def _chosen(valid: list[float], patience: int) -> int:
    """The epoch `trainer.fit` keeps: the best validation RankIC until `patience` epochs bring none better."""
    best, stale = 0, 0
    for e in range(1, len(valid)):
        if valid[e] > valid[best]:
            best, stale = e, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best


def _ens(outs: list[pl.DataFrame]) -> pl.DataFrame:
    e = outs[0].with_columns(output=np.mean([_z(o) for o in outs], axis=0))
    return e.with_columns(output=_z(e))


def _trajectory(name: str, data: TrainData, anchor: int, sig: list[int], cfg: TrainConfig,
                averages: list[float]) -> dict[str, list[tuple[float, pl.DataFrame]]]:
    """{kind: [(validation RankIC, signal-date outputs) per epoch]} for the raw weights and each average."""
    dates = training_dates(data, name, anchor, cfg)
    ncfg = net_config(name, data, cfg)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_valid = max(1, int(len(dates) * cfg.valid_share))
    valid = dates[-n_valid:]
    train = [t for t in dates[:-n_valid] if t + HORIZON + 1 < valid[0]] or dates[:-n_valid]
    valid = valid[::max(1, cfg.valid_every)]
    model = WeakFactorNet(ncfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    avgs = {f"average {d}": _Average(model, d) for d in averages}
    batches = trainer._Batches(data, name, instance_norm=ncfg.instance_norm)
    out: dict[str, list] = {"weights": []} | {k: [] for k in avgs}
    for _ in range(cfg.epochs):
        model.train()
        order = rng.permutation(train)
        if 0 < cfg.dates_per_epoch < len(order):
            order = order[:cfg.dates_per_epoch]
        for t in order:  # trainer._epoch's steps (one date per step), with the averages after each
            stocks, x = batches(int(t))
            if len(stocks) < 8:
                continue
            yt = torch.from_numpy(trainer._target(data, stocks, int(t), cfg.label)).float()
            z, c = model(x)
            loss, _ = factor_loss(c.float(), z.float(), yt, cfg.lam)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for a in avgs.values():
                a.update(model)
        for k, m in [("weights", model)] + [(k, a.model) for k, a in avgs.items()]:
            out[k].append((trainer._valid_ic(m, data, name, valid, batches),
                           predict(m, name, data, sig).select("code", "date", "output")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dataset", default="week")
    ap.add_argument("--years", type=int, nargs="+", default=[2017, 2018])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--preset", default="real")
    ap.add_argument("--averages", type=float, nargs="*", default=[0.95, 0.98, 0.995])
    ap.add_argument("--other", default=None, help="glob of the other dataset's saved outputs, {year} filled in")
    args = ap.parse_args()
    panel = build_panel(connect_memory(), file_source(args.data).relations())
    base = dataset_base(panel, consume=True)
    y = labels_mod.forward_returns(panel)
    name = args.dataset
    mask = sample_mask(panel, DATASETS[name].lookback)
    data = TrainData(base, mask, labels_mod.standardised(y, mask), y, panel.codes, panel.dates)
    for year in args.years:
        sig = signal_dates(panel, date(year, 1, 1), date(year + 1, 1, 1))
        anchor = int(np.searchsorted(panel.dates, np.datetime64(date(year, 1, 1))))
        other = _ens([pl.read_parquet(f) for f in sorted(glob.glob(args.other.format(year=year)))]) \
            if args.other else None
        kept: dict[str, list[pl.DataFrame]] = {}
        for seed in args.seeds:
            cfg = replace(for_dataset(TrainConfig(**TRAINING[args.preset]), name), seed=seed, seeds=1)
            traj = _trajectory(name, data, anchor, sig, cfg, args.averages)
            for kind, epochs in traj.items():
                outs = [o for _, o in epochs]
                best = _chosen([v for v, _ in epochs], cfg.patience)
                print(f"{name} {year} seed {seed} {kind:>14}: epoch RankIC "
                      + " ".join(f"{_ic(o, panel, y, sig):.3f}" for o in outs)
                      + f"  (validation {' '.join(f'{v:.3f}' for v, _ in epochs)}; kept epoch {best + 1})", flush=True)
                kept.setdefault(kind, []).append(outs[best])
                if kind == "weights":
                    kept.setdefault("mean of epochs 1..kept", []).append(_ens(outs[:best + 1]))
                    kept.setdefault("mean of all epochs", []).append(_ens(outs))
                    for e, o in enumerate(outs):
                        kept.setdefault(f"epoch {e + 1} always", []).append(o)
        for kind, outs in kept.items():
            e = _ens(outs)
            pair = "" if other is None else "  pair mean {:.4f}".format(_ic(
                e.join(other.rename({"output": "o"}), on=["code", "date"])
                .select("code", "date", (pl.col("output") + pl.col("o")).alias("output")), panel, y, sig))
            print(f"{name} {year} {kind:>24}: seeds " + " ".join(f"{_ic(o, panel, y, sig):.4f}" for o in outs)
                  + f"  ensemble {_ic(e, panel, y, sig):.4f}{pair}", flush=True)


if __name__ == "__main__":
    main()
