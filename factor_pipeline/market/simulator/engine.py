"""The day-by-day synthetic A-share market.

Returns follow a multi-factor model (market, industry, size, beta, momentum, volatility,
liquidity) with GARCH volatility clustering and Student-t tails, plus the planted alpha drift.
Each day is vectorised over stocks; the loop runs over dates only because today's alpha depends on
yesterday's simulated prices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from factor_pipeline.market.simulator import alpha as alpha_mod
from factor_pipeline.market.simulator.events import listed_mask, split_ratios, suspension_mask
from factor_pipeline.market.simulator.intraday import LAST_HALF_HOUR, make_day_bars, tick
from factor_pipeline.market.simulator.universe import INDUSTRIES, IPO_NO_LIMIT_DAYS, Universe, limit_pct

DAILY_FIELDS = ("open", "high", "low", "close", "vwap", "volume", "amount", "turnover", "float_shares",
                "adj_factor", "limit_up", "limit_down")
L2_BUCKETS = ("large", "medium", "small")
JUMP_PROB, JUMP_SIZE = 0.012, 0.085


@dataclass
class DailyPanel:
    """Dense [T, N] arrays of the simulated daily bars (NaN where not listed)."""

    fields: dict[str, np.ndarray]
    listed: np.ndarray
    suspended: np.ndarray
    split: np.ndarray  # share multiplier on ex-rights days
    ref_close: np.ndarray  # previous close adjusted for the day's split (the limits' base)
    l2: dict[str, np.ndarray]
    oracle: np.ndarray  # NaN where no prediction is made


def _t(rng: np.random.Generator, df: float, size) -> np.ndarray:
    """Unit-variance Student-t noise: fat tails."""
    return rng.standard_t(df, size) / np.sqrt(df / (df - 2.0))


class _Rolling:
    """Cumulative sums over dates, so any trailing-window sum is two lookups."""

    def __init__(self, t_len: int, n: int, names: tuple[str, ...]):
        self.cs = {k: np.zeros((t_len + 1, n)) for k in names}

    def add(self, t: int, name: str, x: np.ndarray) -> None:
        self.cs[name][t + 1] = self.cs[name][t] + x

    def window(self, t: int, name: str, k: int, lag: int = 0) -> np.ndarray:
        hi = max(t + 1 - lag, 0)
        return self.cs[name][hi] - self.cs[name][max(hi - k, 0)]


def simulate_panel(
    rng: np.random.Generator,
    uni: Universe,
    cal: np.ndarray,
    alpha_strength: float,
    on_intraday: Callable[[int, np.ndarray, object], None],
) -> DailyPanel:
    """Run the market over `cal`; each day's intraday bars go to `on_intraday(t, stock_idx, bars)`."""
    t_len, n = len(cal), uni.n
    ev_rng, rng = rng.spawn(2)
    listed = listed_mask(uni, t_len)
    suspended = suspension_mask(ev_rng, uni, listed)
    split = split_ratios(ev_rng, uni, listed)
    out = {k: np.full((t_len, n), np.nan) for k in DAILY_FIELDS}
    ref_close = np.full((t_len, n), np.nan)
    l2 = {f"{side}_{b}": np.full((t_len, n), np.nan) for b in L2_BUCKETS for side in ("buy", "sell")}
    l2["n_trades"] = np.full((t_len, n), np.nan)
    oracle = np.full((t_len, n), np.nan)

    roll = _Rolling(t_len, n, ("ret", "ret2", "cnt", "turn", "cret", "cv", "l2"))
    alpha_hist = np.zeros((alpha_mod.ORACLE_HORIZON, n))
    prev_close = uni.price0.astype(float).copy()
    float_shares = uni.float_shares0.astype(float).copy()
    adj = np.ones(n)
    h_idio = uni.idio_vol**2
    h_mkt, e_mkt_prev = 0.013**2, 0.0
    liq = np.zeros(n)
    style_z = np.zeros((4, n))  # size, momentum, volatility, liquidity exposures (yesterday's)
    n_ind = len(INDUSTRIES)

    for t in range(t_len):
        lst, sus = listed[t], suspended[t]
        active = lst & ~sus
        ipo_day = uni.list_idx == t
        ref = np.where(ipo_day, uni.price0, prev_close / split[t])
        float_shares *= split[t]
        adj *= split[t]
        days_listed = t - uni.list_idx
        pct = limit_pct(uni.board, cal[t])
        has_limit = days_listed >= IPO_NO_LIMIT_DAYS
        lu = np.where(has_limit, tick(ref * (1 + pct)), np.nan)
        ld = np.where(has_limit, tick(ref * (1 - pct)), np.nan)

        # --- returns: market GARCH, industries, styles, idiosyncratic GARCH, planted drift
        h_mkt = 0.013**2 * 0.03 + 0.10 * e_mkt_prev**2 + 0.87 * h_mkt
        e_mkt_prev = np.sqrt(h_mkt) * _t(rng, 4.0, None)
        mkt = 0.0003 + e_mkt_prev
        ind = 0.007 * _t(rng, 5.0, n_ind)
        style_f = rng.normal(0.0, [0.003, 0.003, 0.003, 0.002])
        e_idio = np.sqrt(h_idio) * _t(rng, 3.5, n)
        h_idio = uni.idio_vol**2 * 0.02 + 0.10 * e_idio**2 + 0.88 * h_idio
        # rare news days: jumps that often hit the price limit
        e_idio = e_idio + (rng.random(n) < JUMP_PROB) * rng.normal(0.0, JUMP_SIZE, n)
        drift = alpha_strength * alpha_hist.mean(axis=0)
        r = drift + uni.beta * mkt + ind[uni.industry] + style_f @ style_z + e_idio
        r = np.where(ipo_day, rng.normal(0.25, 0.15, n), r)
        sigma_day = np.sqrt(h_idio + uni.beta**2 * h_mkt)

        lo_lim = np.where(np.isnan(ld), 0.01, ld)
        hi_lim = np.where(np.isnan(lu), np.inf, lu)
        close = np.clip(tick(ref * np.exp(r)), lo_lim, hi_lim)
        gap = 0.3 * r + 0.25 * sigma_day * rng.standard_normal(n)
        open_ = np.clip(tick(ref * np.exp(gap)), lo_lim, hi_lim)
        at_limit = (close == lu) | (close == ld)

        liq = 0.92 * liq + rng.normal(0.0, 0.2, n)
        turn = uni.base_turnover * np.exp(liq) * (1.0 + 20.0 * np.abs(r))
        turn = np.where(at_limit, 0.4 * turn, turn)
        new_issue = (days_listed >= 0) & (days_listed < 10)  # heavy trading in the first days after an IPO
        turn = np.where(new_issue, turn * (1 + 8.0 * 0.6 ** np.clip(days_listed, 0, None)), turn)
        turn = np.minimum(turn, 0.6)
        volume = np.maximum(np.round(turn * float_shares / 100.0), 48.0) * 100.0

        # --- intraday bars of trading stocks; daily high/low/vwap/amount aggregate them
        idx = np.flatnonzero(active)
        cret_plant = 0.3 * sigma_day[idx] * rng.standard_normal(len(idx))
        bars = make_day_bars(
            rng, open_[idx], close[idx], lu[idx], ld[idx], volume[idx], sigma_day[idx], cret_plant,
            np.exp(rng.normal(0.0, 0.3, len(idx))), np.exp(rng.normal(0.0, 0.35, len(idx))),
        )
        on_intraday(t, idx, bars)
        agg = bars.daily()

        row = {k: np.full(n, np.nan) for k in ("open", "high", "low", "close", "vwap", "volume", "amount")}
        for k in ("open", "high", "low", "close", "vwap"):
            row[k][lst] = ref[lst]  # suspended rows carry the last close (split-adjusted)
        row["volume"][lst] = 0.0
        row["amount"][lst] = 0.0
        for k, v in agg.items():
            row[k][idx] = v
        for k, v in row.items():
            out[k][t] = v
        out["turnover"][t] = np.where(lst, row["volume"] / float_shares, np.nan)
        out["float_shares"][t] = np.where(lst, float_shares, np.nan)
        out["adj_factor"][t] = np.where(lst, adj, np.nan)
        out["limit_up"][t] = np.where(lst, lu, np.nan)
        out["limit_down"][t] = np.where(lst, ld, np.nan)
        ref_close[t] = np.where(lst, ref, np.nan)

        # --- order flow: aggressor buckets add up to the day's amount
        amount = agg["amount"]
        zcap = alpha_mod.zscore(np.log(close * float_shares), active)[idx]
        idio_z = (r - uni.beta * mkt)[idx] / sigma_day[idx]
        share_l = np.clip(0.12 + 0.05 * zcap + rng.normal(0, 0.04, len(idx)), 0.02, 0.6)
        share_m = np.clip(0.30 + rng.normal(0, 0.05, len(idx)), 0.1, 0.9 - share_l)
        shares = {"large": share_l, "medium": share_m, "small": 1.0 - share_l - share_m}
        imb = {
            "large": 0.6 * np.tanh(0.5 * rng.standard_normal(len(idx)) + 0.8 * idio_z),
            "medium": 0.5 * np.tanh(rng.normal(0, 0.4, len(idx)) + 0.3 * idio_z),
            "small": 0.5 * np.tanh(rng.normal(0, 0.3, len(idx)) - 0.3 * idio_z),
        }
        for b in L2_BUCKETS:
            l2[f"buy_{b}"][t, idx] = amount * shares[b] * (1 + imb[b]) / 2
            l2[f"sell_{b}"][t, idx] = amount * shares[b] * (1 - imb[b]) / 2
        l2["n_trades"][t, idx] = np.maximum(np.round(amount / (25000 * np.exp(rng.normal(0, 0.3, len(idx))))), 1)

        # --- history features (observable at the close of t) and the planted alpha for t
        logret = np.zeros(n)
        logret[idx] = np.log(close[idx] / ref[idx])
        logret[ipo_day] = 0.0  # the IPO pop is not a return from a previous close
        cv = np.zeros(n)
        cr = np.zeros(n)
        cv[idx] = bars.volume[:, LAST_HALF_HOUR:].sum(axis=1) / agg["volume"]
        cr[idx] = np.log(bars.close[:, -1] / bars.close[:, LAST_HALF_HOUR - 1])
        l2r = np.zeros(n)
        l2r[idx] = (l2["buy_large"][t, idx] - l2["sell_large"][t, idx]) / amount
        trading = active.astype(float)
        for name, x in (("ret", logret), ("ret2", logret**2), ("cnt", trading),
                        ("turn", np.where(active, row["volume"] / float_shares, 0.0)),
                        ("cret", cr), ("cv", cv), ("l2", l2r)):
            roll.add(t, name, x)

        cnt5, cnt20 = roll.window(t, "cnt", 5), roll.window(t, "cnt", 20)
        ok = lst & (cnt20 >= 15) & (cnt5 >= 1)
        slow_ok = ok & (roll.window(t, "cnt", 120, lag=29) >= 80)
        feats = {
            "reversal_5d": roll.window(t, "ret", 5),
            "volatility_20d": np.sqrt(roll.window(t, "ret2", 20) / np.maximum(cnt20, 1)),
            "slow_reversal_150_30": roll.window(t, "ret", 120, lag=29),
            "close_half_hour_return_5d": roll.window(t, "cret", 5) / np.maximum(cnt5, 1),
            "close_volume_share_5d": roll.window(t, "cv", 5) / np.maximum(cnt5, 1),
            "large_net_inflow_5d": roll.window(t, "l2", 5) / np.maximum(cnt5, 1),
            "turnover_20d": np.log(roll.window(t, "turn", 20) / np.maximum(cnt20, 1) + 1e-6),
        }
        a_t = alpha_mod.planted_alpha(feats, ok, slow_ok)
        alpha_hist = np.roll(alpha_hist, 1, axis=0)
        alpha_hist[0] = a_t
        known = (alpha_mod.ORACLE_LAG_WEIGHTS[:, None] * alpha_hist[: alpha_mod.ORACLE_HORIZON - 1]).sum(0)
        oracle[t] = np.where(active & ok, alpha_strength / alpha_mod.ORACLE_HORIZON * known, np.nan)

        # --- risk-style exposures for tomorrow
        cap = np.log(close * float_shares)
        style_z = np.stack([
            alpha_mod.zscore(cap, lst),
            alpha_mod.zscore(roll.window(t, "ret", 230, lag=20), ok),
            alpha_mod.zscore(np.sqrt(roll.window(t, "ret2", 60) / np.maximum(roll.window(t, "cnt", 60), 1)), ok),
            alpha_mod.zscore(feats["turnover_20d"], ok),
        ])
        prev_close = np.where(active, close, np.where(lst, ref, prev_close))

    return DailyPanel(out, listed, suspended, split, ref_close, l2, oracle)
