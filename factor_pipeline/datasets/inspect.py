"""`factor-pipeline inspect`: exactly what a network sees for one dataset and date, as a .npz file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import feature_names, gather
from factor_pipeline.datasets.preprocess import cross_section
from factor_pipeline.datasets.registry import DATASETS, PANEL_PARTS, STEPS
from factor_pipeline.datasets.samples import sample_mask
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import history_start
from factor_pipeline.market.warehouse import Warehouse


def inspect_arrays(wh: Warehouse, name: str, day: date) -> dict[str, np.ndarray]:
    """x (before preprocessing), x_std, codes, feature_names, label (NaN where not yet realised)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    panel = panel_from_warehouse(wh, history_start(day, DATASETS[name].lookback), None, PANEL_PARTS[name])
    t = panel.date_index(day)
    stocks = np.flatnonzero(sample_mask(panel, DATASETS[name].lookback)[:, t])
    base = dataset_base(panel, consume=True)
    x = gather(base, name, torch.from_numpy(stocks), torch.full((len(stocks),), t))
    y_all = labels_mod.forward_returns(panel)
    return {
        "x": x.numpy(), "x_std": cross_section(x).numpy(), "codes": panel.codes[stocks],
        "feature_names": np.array(feature_names(base, name)), "label": y_all[stocks, t],
        "label_std": labels_mod.standardised(y_all, sample_mask(panel, STEPS))[stocks, t],
        "cannot_buy": labels_mod.cannot_buy(panel)[stocks, t], "date": np.array(str(day)),
    }


def write_inspect(wh: Warehouse, name: str, day: date, out: Path) -> dict[str, np.ndarray]:
    arrays = inspect_arrays(wh, name, day)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.rename(out)
    return arrays
