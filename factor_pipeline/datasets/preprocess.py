"""Preprocessing of one date's inputs. Cross-sectional, per feature and date: winsorise, standardise, then
fill missing, fitted on the cross-section of one date only (information at that date), every input cell
being its own feature: median +- 5 * 1.4826 * MAD clip, z-score, NaN -> 0 after standardisation.
Instance-normalised (optional extra channels): each sample's channel z-scored over its own window, so a
network sees the shape of a stock's recent history apart from its level across stocks (which the
cross-sectional cells carry, and which the networks otherwise load on: low turnover, low volatility).
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


INSTANCE_CLIP = 5.0


def instance_normalised(x: torch.Tensor) -> torch.Tensor:
    """x: [n, steps, features] (sequence) or [n, steps, rows, cols] (image) of one date; each sample's feature
    (row) z-scored over all its time cells (steps, and an image's columns), clipped at +-5, NaN -> 0.
    Reads only the sample's own window (nothing after its date)."""
    dims = (1,) if x.dim() == 3 else (1, 3)
    x = x.to(torch.float32)
    mean = torch.nanmean(x, dim=dims, keepdim=True)
    std = torch.sqrt(torch.nanmean((x - mean) ** 2, dim=dims, keepdim=True))
    z = ((x - mean) / torch.where(std > 0, std, torch.inf)).clamp(-INSTANCE_CLIP, INSTANCE_CLIP)
    return torch.nan_to_num(z, nan=0.0)


def inputs(x: torch.Tensor, instance_norm: bool = False) -> torch.Tensor:
    """A network's input for one date's raw samples: the cross-sectional cells, and with `instance_norm`
    the instance-normalised ones beside them (a sequence's features or an image's rows doubled)."""
    cs = cross_section(x)
    if not instance_norm:
        return cs
    return torch.cat([cs, instance_normalised(x)], dim=-1 if x.dim() == 3 else 2)
