"""How far back do the trained weak-factor networks look? Blank the oldest k steps of each sample's window (set
them to 0, the cross-sectional mean of the preprocessed cells) and print the correlation of the network's output
with its output on the full window. A value near 1 says the network ignores those steps.

    .venv/bin/python benchmarks/gru_memory.py <home> --data ../shared/realdata --date 2018-06-01

reads the networks cached under <home>/models/weak/<dataset> (the first --networks of each) and one date's samples.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import torch

from factor_pipeline.config import TRAINING
from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import gather
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.preprocess import inputs
from factor_pipeline.datasets.registry import DATASETS, STEPS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.models.network import WeakFactorNet
from factor_pipeline.models.trainer import TrainConfig, TrainData, net_config


def blanked_correlations(model: WeakFactorNet, x: torch.Tensor, ks: list[int]) -> list[float]:
    """Correlation of the output on x with the output when the oldest k steps of x are 0, for each k."""
    with torch.no_grad():
        c0 = model(x)[1].numpy()
        out = []
        for k in ks:
            xb = x.clone()
            xb[:, :k] = 0
            out.append(float(np.corrcoef(c0, model(xb)[1].numpy())[0, 1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("home", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--date", type=date.fromisoformat, default=date(2018, 6, 1))
    ap.add_argument("--datasets", nargs="+", default=["week", "day"])
    ap.add_argument("--networks", type=int, default=4)
    ap.add_argument("--preset", default="real")
    args = ap.parse_args()
    ks = [5, 10, 15, 20, 25, 28]
    panel = build_panel(connect_memory(), file_source(args.data).relations())
    base = dataset_base(panel, consume=True)
    y = labels_mod.forward_returns(panel)
    t = int(np.searchsorted(panel.dates, np.datetime64(args.date)))
    cfg = TrainConfig(**TRAINING[args.preset])
    print(f"output correlation, full window vs the oldest k of {STEPS} steps blanked, samples of {panel.dates[t]}")
    print("dataset  network                 " + " ".join(f"k={k:<5d}" for k in ks))
    for name in args.datasets:
        mask = sample_mask(panel, DATASETS[name].lookback)
        data = TrainData(base, mask, labels_mod.standardised(y, mask), y, panel.codes, panel.dates)
        net_cfg = net_config(name, data, cfg)
        stocks = np.flatnonzero(mask[:, t])
        x = inputs(gather(base, name, torch.from_numpy(stocks), torch.full((len(stocks),), t)), net_cfg.instance_norm)
        for path in sorted((args.home / "models" / "weak" / name).glob("*.pt"))[:args.networks]:
            model = WeakFactorNet(net_cfg)
            model.load_state_dict(torch.load(path, weights_only=True))
            corr = blanked_correlations(model.eval(), x, ks)
            print(f"{name:8s} {path.stem:22s} " + " ".join(f"{c:7.3f}" for c in corr))


if __name__ == "__main__":
    main()
