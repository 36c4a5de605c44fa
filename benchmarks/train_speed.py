"""Training samples/s per dataset model: the real data pipeline (gather + preprocess each batch
from the panel) against the same model on pre-gathered tensors, in the same run.

    .venv/bin/python benchmarks/train_speed.py --preset demo --dates 40
    .venv/bin/python benchmarks/train_speed.py --preset demo --dates 40 --threads 1   # one side-by-side fit
    .venv/bin/python benchmarks/train_speed.py --data ../shared/realdata --dates 20   # real daily bars

The ratio (pipeline / pre-gathered) shows what feeding the network costs; aim >= 0.9. On a
daily-only market only the datasets it can build (day, week) are timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from factor_pipeline.config import TRAINING
from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import require
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.registry import DATASETS, DatasetUnavailable
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.market.sources import file_source, synthetic_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.models.loss import factor_loss
from factor_pipeline.models.network import WeakFactorNet
from factor_pipeline.models.trainer import TrainConfig, TrainData, _batch, net_config


def _live(data: TrainData, name: str, dates: list[int], device: str, instance_norm: bool = False):
    """Batches as training reads them: gathered from the panel and preprocessed, one date each (with the
    instance-normalised rows where the training preset gives the dataset them)."""
    for t in dates:
        stocks, x = _batch(data, name, t, need_label=True, instance_norm=instance_norm)
        yield x, torch.from_numpy(data.y_std[stocks, t]).float().to(device)


def _epoch(model, opt, batches) -> int:
    n = 0
    for x, y in batches:
        z, c = model(x)
        loss, _ = factor_loss(c, z, y, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(y)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--data", default=None, help="a folder of contract tables instead of a synthetic preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dates", type=int, default=40)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (1: what a side-by-side fit gets)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = file_source(args.data) if args.data else synthetic_source(args.preset, args.seed, root=Path(tmp))
        panel = build_panel(connect_memory(), src.relations())
    base = dataset_base(panel, consume=True).to(args.device)
    y = labels_mod.forward_returns(panel)
    cfg = TrainConfig(**TRAINING["real" if args.data else args.preset])  # the inputs that preset's networks read
    print(f"device={args.device} threads={args.threads} "
          f"{'data=' + args.data if args.data else 'preset=' + args.preset} dates per epoch={args.dates}")
    for name in DATASETS:
        try:
            require(base, name)
        except DatasetUnavailable:
            continue
        m = sample_mask(panel, DATASETS[name].lookback)
        data = TrainData(base, m, labels_mod.standardised(y, m), y, panel.codes, panel.dates)
        ts = [int(t) for t in np.linspace(400, len(panel.dates) - 20, args.dates)]
        net = net_config(name, data, cfg)
        # the same batches, gathered and preprocessed up front
        pre = list(_live(data, name, ts, args.device, net.instance_norm))

        torch.manual_seed(0)
        model = WeakFactorNet(net).to(args.device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _epoch(model, opt, pre)  # warm-up
        t0 = time.perf_counter()
        n_pre = _epoch(model, opt, pre)
        s_pre = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_live = _epoch(model, opt, _live(data, name, ts, args.device, net.instance_norm))
        s_live = time.perf_counter() - t0
        label = name + (" (instance-normalised too)" if net.instance_norm else "")
        print(f"{label:>6}: pipeline {n_live / s_live:8,.0f} samples/s, pre-gathered {n_pre / s_pre:8,.0f} samples/s, "
              f"ratio {(n_live / s_live) / (n_pre / s_pre):.2f}")


if __name__ == "__main__":
    main()
