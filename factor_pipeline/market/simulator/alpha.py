"""The planted alpha: expected returns as a function of observable history.

Each dataset of the report has something of its own to find:
- day (30 days of daily bars): short-term reversal (5-day return) and low volatility (20-day);
- week (150 days): an intermediate-horizon reversal of the return from t-149 to t-30, invisible in
  30 days of data;
- ms / msnew (5-minute bars): reversal of the closing half-hour return and of the last half-hour
  volume share;
- l2 (order flow): persistence of large-order net buying;
and non-linear interactions (reversal scaled by turnover; order flow that matters only when
closing volume is light). The signal is standardised across stocks each day.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = {
    "reversal_5d": -0.30,
    "volatility_20d": -0.25,
    "slow_reversal_150_30": -0.40,
    "close_half_hour_return_5d": -0.30,
    "close_volume_share_5d": -0.20,
    "large_net_inflow_5d": 0.30,
}
ORACLE_HORIZON = 10
# drift of day t+1 is the mean alpha of days t-9..t; the label from t+1 to t+11 then carries these
# known alphas with weights 9, 8, ..., 1 (days beyond t are not yet known at t)
ORACLE_LAG_WEIGHTS = np.arange(ORACLE_HORIZON - 1, 0, -1, dtype=float)


def zscore(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score over `ok`, clipped to +-3; 0 outside `ok` or where undefined."""
    out = np.zeros_like(x)
    if ok.sum() < 3:
        return out
    v = x[ok]
    sd = v.std()
    if not np.isfinite(sd) or sd == 0:
        return out
    out[ok] = np.clip((v - v.mean()) / sd, -3.0, 3.0)
    return out


def planted_alpha(features: dict[str, np.ndarray], ok: np.ndarray, slow_ok: np.ndarray) -> np.ndarray:
    """Standardised alpha for one date from the day's history features."""
    z = {k: zscore(v, ok if k != "slow_reversal_150_30" else slow_ok) for k, v in features.items()
         if k in WEIGHTS or k == "turnover_20d"}
    a = sum(w * z[k] for k, w in WEIGHTS.items())
    a = a + 0.25 * (-z["reversal_5d"]) * np.tanh(z["turnover_20d"])
    a = a + 0.20 * z["large_net_inflow_5d"] * (z["close_volume_share_5d"] < 0)
    return zscore(a, ok)
