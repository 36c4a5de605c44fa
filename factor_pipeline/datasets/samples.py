"""Which (stock, date) pairs are samples: in the sample universe at t, listed through the window, trading at t.

The sample universe is csi_all by default; a run may narrow it (`run --universe csi800`) so a real
market fits a CPU. It is the union of the named indices' members at t (carried forward).
"""

from __future__ import annotations

import numpy as np

from factor_pipeline.datasets.panel import Panel

# sample universe -> the indices whose members it holds
SAMPLE_UNIVERSES: dict[str, tuple[str, ...]] = {
    "csi_all": ("csi_all",),
    "csi800": ("csi300", "csi500"),
    "csi1800": ("csi300", "csi500", "csi1000"),
    "csi300": ("csi300",),
    "csi500": ("csi500",),
    "csi1000": ("csi1000",),
}


def check_universe(name: str) -> str:
    if name not in SAMPLE_UNIVERSES:
        raise ValueError(f"unknown universe {name!r}; choose one of {', '.join(SAMPLE_UNIVERSES)}")
    return name


def indices_within(universe: str) -> tuple[str, ...]:
    """The benchmark indices whose members all lie in `universe` (csi_all holds every index)."""
    have = SAMPLE_UNIVERSES[check_universe(universe)]
    return tuple(k for k in ("csi300", "csi500", "csi1000") if universe == "csi_all" or k in have)


def universe_mask(panel: Panel) -> np.ndarray:
    """[N, T] True where the stock is in the panel's sample universe at t."""
    out = np.zeros_like(panel.listed)
    for k in SAMPLE_UNIVERSES[check_universe(panel.universe)]:
        out |= panel.members[k]
    return out


def listed_through(panel: Panel, days: int) -> np.ndarray:
    """[N, T] True where the stock has a row on each of the last `days` panel dates."""
    cs = np.concatenate([np.zeros((panel.listed.shape[0], 1)), np.cumsum(panel.listed, axis=1)], axis=1)
    out = np.zeros_like(panel.listed)
    out[:, days - 1:] = (cs[:, days:] - cs[:, :-days]) == days
    return out


def sample_mask(panel: Panel, lookback: int) -> np.ndarray:
    return universe_mask(panel) & listed_through(panel, lookback) & ~panel.suspended
