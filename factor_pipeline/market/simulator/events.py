"""Corporate events drawn up front: suspensions (days to weeks) and bonus-share splits."""

from __future__ import annotations

import numpy as np

from factor_pipeline.market.simulator.universe import Universe


def listed_mask(uni: Universe, t_len: int) -> np.ndarray:
    """[T, N] True where the stock is listed on the date."""
    t = np.arange(t_len)[:, None]
    return (t >= uni.list_idx[None, :]) & (t < uni.delist_idx[None, :])


def suspension_mask(rng: np.random.Generator, uni: Universe, listed: np.ndarray) -> np.ndarray:
    """[T, N] True on suspended days: ~1 event per 3 listed years, length 1 day to 12 weeks."""
    t_len, n = listed.shape
    n_events = rng.poisson(listed.sum() / 750)
    stock = rng.integers(0, n, size=n_events)
    lo = np.clip(uni.list_idx[stock], 0, None) + 1  # never on the listing day
    hi = np.maximum(uni.delist_idx[stock], lo + 1)
    start = lo + (rng.random(n_events) * (hi - lo)).astype(np.int64)
    length = np.minimum(rng.geometric(1 / 7, size=n_events), 60)
    delta = np.zeros((t_len + 1, n), dtype=np.int32)
    np.add.at(delta, (np.minimum(start, t_len), stock), 1)
    np.add.at(delta, (np.minimum(start + length, t_len), stock), -1)
    return (np.cumsum(delta[:-1], axis=0) > 0) & listed


def split_ratios(rng: np.random.Generator, uni: Universe, listed: np.ndarray) -> np.ndarray:
    """[T, N] share-count multiplier on ex-rights days (1 elsewhere); ~8% of stocks a year."""
    t_len, n = listed.shape
    ratio = np.ones((t_len, n))
    n_events = rng.poisson(0.08 * listed.sum() / 244)
    stock = rng.integers(0, n, size=n_events)
    lo = np.clip(uni.list_idx[stock], 0, None) + 30
    hi = uni.delist_idx[stock]
    ok = hi > lo + 1
    day = lo + (rng.random(n_events) * np.maximum(hi - lo, 1)).astype(np.int64)
    r = rng.choice(np.array([1.2, 1.3, 1.5, 2.0]), size=n_events)
    ratio[day[ok], stock[ok]] = r[ok]
    return ratio
