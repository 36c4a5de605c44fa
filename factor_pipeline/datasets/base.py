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
    px: torch.Tensor  # [N, T, 5] adjusted open, high, low, close, vwap
    turnover: torch.Tensor  # [N, T]
    day: torch.Tensor  # [N, T, 6] ret, gap, range, close_vwap, turnover, amount_cap (day-local)
    msnew: torch.Tensor | None  # [N, T, 5, 8]
    ms: torch.Tensor | None  # [N, T, F]
    l2: torch.Tensor | None  # [N, T, F]
    l2_names: tuple[str, ...]

    def to(self, device: str | torch.device) -> DatasetBase:
        move = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return DatasetBase(**move)


def dataset_base(panel: Panel) -> DatasetBase:
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    px = np.stack([f(k).astype(np.float64) * adj for k in ("open", "high", "low", "close", "vwap")], axis=-1)
    close_adj = px[..., 3]
    prev_close = _prev(close_adj)  # adjusted previous close
    cap = f("close").astype(np.float64) * f("float_shares")
    with np.errstate(divide="ignore", invalid="ignore"):
        day = np.stack([
            close_adj / prev_close - 1.0,  # return
            px[..., 0] / prev_close - 1.0,  # open gap
            np.log(px[..., 1] / px[..., 2]),  # log range
            px[..., 3] / px[..., 4] - 1.0,  # close vs vwap
            f("turnover"),
            f("amount") / cap,
        ], axis=-1)
        msnew = None
        if panel.bars30 is not None:
            ref = (prev_close / adj)[:, :, None]  # previous close in the day's own price units
            b = panel.bars30.astype(np.float64)
            prices = b[..., :4] / ref[..., None]
            amount = b[..., 4:5] / cap[:, :, None, None]
            msnew = np.concatenate([prices, amount], axis=-1).transpose(0, 1, 3, 2)  # [N, T, 5, 8]
        l2 = None
        if panel.l2 is not None:
            amount_day = f("amount")[..., None].astype(np.float64)
            cols = []
            for j, name in enumerate(panel.l2_names):
                x = panel.l2[..., j].astype(np.float64)
                doc = L2_FEATURES.get(name, "")
                if doc.endswith("CNY"):
                    x = x / amount_day[..., 0]
                elif name == "n_trades":
                    x = np.log1p(x)
                cols.append(x)
            l2 = np.stack(cols, axis=-1)

    def t(x: np.ndarray | None) -> torch.Tensor | None:
        return None if x is None else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    return DatasetBase(t(px), t(f("turnover")), t(day), t(msnew), t(panel.ms), t(l2), panel.l2_names)
