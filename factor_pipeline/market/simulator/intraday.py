"""One trading day's 48 five-minute bars for many stocks at once, consistent with the daily bar.

The log-price path is a Brownian bridge from the open to a chosen 14:30 price and from there to the
close, so the closing half-hour return is planted exactly; volume is allocated in 100-share lots
over a U-shaped profile, so bar volumes add up to the day's volume exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factor_pipeline.market.schema import BARS_PER_DAY

_B = np.arange(BARS_PER_DAY)
VOLUME_PROFILE = 1.0 + 1.8 * np.exp(-_B / 3.0) + 1.0 * np.exp(-(BARS_PER_DAY - 1 - _B) / 4.0)
VOLUME_PROFILE /= VOLUME_PROFILE.sum()
_VOL_SHAPE = np.sqrt(VOLUME_PROFILE * BARS_PER_DAY)  # price noise follows volume
LAST_HALF_HOUR = 42  # bars 42..47 are 14:30-15:00
BAR_END_MINUTES = np.concatenate([
    9 * 60 + 30 + 5 * np.arange(1, 25),  # 09:35 ... 11:30
    13 * 60 + 5 * np.arange(1, 25),  # 13:05 ... 15:00
])


def tick(x: np.ndarray) -> np.ndarray:
    """Round half up to the 0.01 CNY tick."""
    return np.floor(x * 100.0 + 0.5 + 1e-9) / 100.0


@dataclass
class DayBars:
    open: np.ndarray  # [M, 48]
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    amount: np.ndarray

    def daily(self) -> dict[str, np.ndarray]:
        """The daily bar these bars aggregate to."""
        volume = self.volume.sum(axis=1)
        amount = self.amount.sum(axis=1)
        return {
            "open": self.open[:, 0], "high": self.high.max(axis=1), "low": self.low.min(axis=1),
            "close": self.close[:, -1], "volume": volume, "amount": amount, "vwap": amount / volume,
        }


def make_day_bars(
    rng: np.random.Generator,
    open_: np.ndarray,
    close: np.ndarray,
    limit_up: np.ndarray,
    limit_down: np.ndarray,
    volume: np.ndarray,
    sigma: np.ndarray,
    cret: np.ndarray,
    open_tilt: np.ndarray,
    close_tilt: np.ndarray,
) -> DayBars:
    """Bars for M stocks; limits are NaN where the day has no fixed limit."""
    m = len(open_)
    lu = np.where(np.isnan(limit_up), np.inf, limit_up)[:, None]
    ld = np.where(np.isnan(limit_down), 0.01, limit_down)[:, None]
    lo, lc = np.log(open_), np.log(close)
    p42 = lc - cret
    step = (sigma / np.sqrt(BARS_PER_DAY))[:, None] * _VOL_SHAPE[None, :]
    eps = rng.standard_normal((m, BARS_PER_DAY)) * step
    k1 = np.arange(1, LAST_HALF_HOUR + 1) / LAST_HALF_HOUR
    w1 = np.cumsum(eps[:, :LAST_HALF_HOUR], axis=1)
    path1 = lo[:, None] + w1 - k1 * w1[:, -1:] + k1 * (p42 - lo)[:, None]
    n2 = BARS_PER_DAY - LAST_HALF_HOUR
    k2 = np.arange(1, n2 + 1) / n2
    w2 = np.cumsum(eps[:, LAST_HALF_HOUR:], axis=1)
    path2 = p42[:, None] + w2 - k2 * w2[:, -1:] + k2 * (lc - p42)[:, None]
    closes = np.clip(tick(np.exp(np.concatenate([path1, path2], axis=1))), ld, lu)
    closes[:, -1] = close
    opens = np.concatenate([open_[:, None], closes[:, :-1]], axis=1)
    wick = np.exp(np.abs(rng.standard_normal((m, BARS_PER_DAY))) * step * 0.6)
    body_hi, body_lo = np.maximum(opens, closes), np.minimum(opens, closes)
    high = np.clip(np.maximum(tick(body_hi * wick), body_hi), ld, lu)
    low = np.clip(np.minimum(tick(body_lo / wick), body_lo), ld, lu)

    weights = VOLUME_PROFILE[None, :] * np.exp(0.3 * rng.standard_normal((m, BARS_PER_DAY)))
    weights[:, :6] *= open_tilt[:, None]
    weights[:, LAST_HALF_HOUR:] *= close_tilt[:, None]
    weights /= weights.sum(axis=1, keepdims=True)
    lots = np.round(volume / 100.0).astype(np.int64)
    alloc = np.floor(lots[:, None] * weights).astype(np.int64)
    alloc[np.arange(m), np.argmax(weights, axis=1)] += lots - alloc.sum(axis=1)
    bar_volume = alloc * 100.0
    typical = (opens + high + low + closes) / 4.0
    bar_vwap = np.clip(typical * (1.0 + 0.001 * rng.standard_normal((m, BARS_PER_DAY))), low, high)
    return DayBars(opens, high, low, closes, bar_volume, bar_volume * bar_vwap)
