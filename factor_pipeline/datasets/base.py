"""Per-day tensors derived once from a panel; every dataset gathers its windows from them.

Only day-local quantities are precomputed (each day's msnew image, each day's features), so a
window is a gather of 30 (or 150) rows, on CPU or on the GPU where the base was moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.market.schema import L2_FEATURES


def _prev(x: np.ndarray) -> np.ndarray:
    """Value of the previous panel date (NaN on the first)."""
    out = np.full_like(x, np.nan)
    out[:, 1:] = x[:, :-1]
    return out


@dataclass
class DatasetBase:
    pxt: torch.Tensor  # [N, 6, T] adjusted open, high, low, close, vwap, and turnover (channel-major)
    day: torch.Tensor  # [N, T, 6] ret, gap, range, close_vwap, turnover, amount_cap (day-local)
    msnew: torch.Tensor | None  # [N, T, 8, 5] each day's bars normalised (builders expose the 5x8 image view)
    ms: torch.Tensor | None  # [N, T, F]
    l2: torch.Tensor | None  # [N, T, F]
    l2_names: tuple[str, ...]

    def to(self, device: str | torch.device) -> DatasetBase:
        move = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return DatasetBase(**move)


def _msnew(panel: Panel, prev_close: np.ndarray, adj: np.ndarray, cap: np.ndarray, consume: bool) -> np.ndarray:
    """Each day's bars normalised for msnew, [N, T, 8, 5]; in place over the panel's bars if `consume`."""
    out = panel.bars30 if consume else panel.bars30.copy()
    out[..., :4] /= (prev_close / adj).astype(np.float32)[:, :, None, None]  # previous close, the day's units
    out[..., 4] /= cap.astype(np.float32)[:, :, None]
    if consume:
        panel.bars30 = None  # now normalised: the panel no longer holds raw 30-minute bars
    return out


def dataset_base(panel: Panel, consume: bool = False) -> DatasetBase:
    """Per-day tensors of `panel`. `consume=True` reuses the panel's 30-minute bars for msnew (no copy)."""
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    # channel-major: each channel's window of a stock is one contiguous run of floats
    pxt = np.empty((panel.listed.shape[0], 6, panel.listed.shape[1]), dtype=np.float32)
    for j, k in enumerate(("open", "high", "low", "close", "vwap")):
        pxt[:, j] = f(k) * adj
    pxt[:, 5] = f("turnover")
    close_adj = f("close") * adj
    prev_close = _prev(close_adj)  # adjusted previous close
    cap = f("close").astype(np.float64) * f("float_shares")
    with np.errstate(divide="ignore", invalid="ignore"):
        day = np.stack([
            close_adj / prev_close - 1.0,  # return
            f("open") * adj / prev_close - 1.0,  # open gap
            np.log(f("high") / f("low")),  # log range
            f("close") / f("vwap") - 1.0,  # close vs vwap
            f("turnover"),
            f("amount") / cap,
        ], axis=-1)
        msnew = _msnew(panel, prev_close, adj, cap, consume) if panel.bars30 is not None else None
        l2 = None
        if panel.l2 is not None:
            amount_day = f("amount").astype(np.float64)
            cols = []
            for j, name in enumerate(panel.l2_names):
                x = panel.l2[..., j].astype(np.float64)
                if L2_FEATURES.get(name, "").endswith("CNY"):
                    x = x / amount_day
                elif name == "n_trades":
                    x = np.log1p(x)
                cols.append(x)
            l2 = np.stack(cols, axis=-1)

    def t(x: np.ndarray | None) -> torch.Tensor | None:
        return None if x is None else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    return DatasetBase(t(pxt), t(day), t(msnew), t(panel.ms), t(l2), panel.l2_names)
