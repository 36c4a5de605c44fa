"""Which (stock, date) pairs are samples: in csi_all at t, listed through the window, trading at t."""

from __future__ import annotations

import numpy as np

from factor_pipeline.datasets.panel import Panel


def listed_through(panel: Panel, days: int) -> np.ndarray:
    """[N, T] True where the stock has a row on each of the last `days` panel dates."""
    cs = np.concatenate([np.zeros((panel.listed.shape[0], 1)), np.cumsum(panel.listed, axis=1)], axis=1)
    out = np.zeros_like(panel.listed)
    out[:, days - 1:] = (cs[:, days:] - cs[:, :-days]) == days
    return out


def sample_mask(panel: Panel, lookback: int) -> np.ndarray:
    return panel.members["csi_all"] & listed_through(panel, lookback) & ~panel.suspended
