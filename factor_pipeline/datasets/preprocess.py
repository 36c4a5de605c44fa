"""Cross-sectional preprocessing per feature and date: winsorise, standardise, then fill missing.

Fitted on the cross-section of one date only (information at that date), every input cell being
its own feature: median +- 5 * 1.4826 * MAD clip, z-score, NaN -> 0 after standardisation.
"""

from __future__ import annotations

import torch

MAD_SCALE = 1.4826
MAD_WIDTH = 5.0


def cross_section(x: torch.Tensor) -> torch.Tensor:
    """x: [n, ...] samples of ONE date; returns the standardised copy."""
    flat = x.reshape(x.shape[0], -1).to(torch.float32)
    med = torch.nanmedian(flat, dim=0).values
    mad = torch.nanmedian((flat - med).abs(), dim=0).values * MAD_SCALE
    lo, hi = med - MAD_WIDTH * mad, med + MAD_WIDTH * mad
    clipped = torch.where(torch.isnan(flat), flat, torch.minimum(torch.maximum(flat, lo), hi))
    ok = ~torch.isnan(clipped)
    cnt = ok.sum(dim=0).clamp(min=1)
    mean = torch.where(ok, clipped, 0.0).sum(dim=0) / cnt
    var = torch.where(ok, (clipped - mean) ** 2, 0.0).sum(dim=0) / cnt
    std = var.sqrt()
    z = (clipped - mean) / torch.where(std > 0, std, torch.inf)
    return torch.nan_to_num(z, nan=0.0).reshape(x.shape)
