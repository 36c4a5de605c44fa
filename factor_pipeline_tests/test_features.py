"""Common factors and Alpha158-style features: hand computations on a tiny panel, and point in time."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from factor_pipeline.datasets.alpha158 import alpha158_features
from factor_pipeline.datasets.common_factors import common_factors, top_gainer_flags
from factor_pipeline.datasets.labels import period_returns
from factor_pipeline.datasets.panel import DAILY_FIELDS, Panel

N, T = 4, 300


def _panel(seed: int = 0, with_ms: bool = True) -> Panel:
    rng = np.random.default_rng(seed)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (N, T)), axis=1))
    op = close * np.exp(rng.normal(0, 0.01, (N, T)))
    high = np.maximum(op, close) * (1 + rng.uniform(0, 0.02, (N, T)))
    low = np.minimum(op, close) * (1 - rng.uniform(0, 0.02, (N, T)))
    vwap = (op + close + high + low) / 4
    volume = rng.uniform(1e5, 1e6, (N, T))
    adj = np.ones((N, T))
    adj[1, 150:] = 1.5  # a bonus-share split: raw price falls, adjusted price continues
    close[1, 150:] /= 1.5
    op[1, 150:] /= 1.5
    high[1, 150:] /= 1.5
    low[1, 150:] /= 1.5
    vwap[1, 150:] /= 1.5
    fields = {"open": op, "high": high, "low": low, "close": close, "vwap": vwap, "volume": volume,
              "amount": volume * vwap, "turnover": rng.uniform(0.005, 0.05, (N, T)),
              "float_shares": np.full((N, T), 1e8),
              "adj_factor": adj, "limit_up": close * 1.1, "limit_down": close * 0.9}
    daily = np.stack([fields[k] for k in DAILY_FIELDS], axis=-1).astype(np.float32)
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + T).astype("datetime64[D]")
    p = Panel(np.array([f"{i:06d}.SZ" for i in range(N)]), dates, daily, np.ones((N, T), bool), np.zeros((N, T), bool))
    if with_ms:
        p.ms = rng.normal(size=(N, T, 13)).astype(np.float32)
    return p


def _adj(p: Panel, name: str) -> np.ndarray:
    return p.field(name).astype(np.float64) * p.field("adj_factor")


def test_common_factors_match_a_hand_computation():
    p, t = _panel(), 280
    got = {k: v[:, 0] for k, v in common_factors(p, [t]).items()}
    c, h = _adj(p, "close"), _adj(p, "high")
    for i in range(N):
        ci = c[i]
        r = ci[1:] / ci[:-1] - 1  # r[j - 1] is the return of day j
        last20 = r[t - 20:t]
        assert got["vol20"][i] == pytest.approx(np.std(last20, ddof=1), rel=1e-6)
        assert got["ret20"][i] == pytest.approx(ci[t] / ci[t - 20] - 1, rel=1e-6)
        assert got["ppreversal"][i] == pytest.approx(ci[t - 4:t + 1].mean() / ci[t - 59:t + 1].mean() - 1, rel=1e-6)
        assert got["p2high"][i] == pytest.approx(ci[t] / h[i, t - 242:t + 1].max(), rel=1e-6)
        amt = p.field("amount")[i].astype(np.float64)
        assert got["avgamt_20_60"][i] == pytest.approx(amt[t - 19:t + 1].mean() / amt[t - 59:t + 1].mean(), rel=1e-6)
        assert got["maxret20"][i] == pytest.approx(np.sort(last20)[-3:].mean(), rel=1e-6)
        assert got["mom_20d_120d"][i] == pytest.approx(ci[t - 20] / ci[t - 120] - 1, rel=1e-6)
        tv, av = p.field("turnover")[i, t - 59:t + 1].astype(np.float64), _adj(p, "vwap")[i, t - 59:t + 1]
        assert got["cgo60"][i] == pytest.approx(ci[t] / ((tv * av).sum() / tv.sum()) - 1, rel=1e-6)
        assert got["size"][i] == pytest.approx(np.log(p.field("close")[i, t] * 1e8), rel=1e-6)
        assert got["i_rvol"][i] == pytest.approx(p.ms[i, t - 19:t + 1, 0].mean(), rel=1e-5)
    # DWF with N=1 (one top gainer a day) over 60 days, half-life 10
    r = np.full((N, T), np.nan)
    r[:, 1:] = c[:, 1:] / c[:, :-1] - 1
    best = np.nanargmax(np.where(np.isnan(r), -np.inf, r), axis=0)
    flags = top_gainer_flags(r, p.listed, top=1)
    assert (flags.sum(axis=0)[1:] == 1).all() and (flags[best[1:], np.arange(1, T)]).all()
    top4 = common_factors(p, [t])["dwf"][:, 0]  # N=100 > 4 stocks: every stock is on the list every day
    assert top4 == pytest.approx(np.full(N, sum(0.5 ** (k / 10) for k in range(60))), rel=1e-9)


def test_alpha158_features_match_a_hand_computation():
    p, t = _panel(1), 250
    got = {k: v[:, 0] for k, v in alpha158_features(p, [t]).items()}
    c, o, h, lo = (_adj(p, k) for k in ("close", "open", "high", "low"))
    v = p.field("volume").astype(np.float64) / p.field("adj_factor")  # Qlib's adjusted volume
    for i in range(N):
        assert got["KMID"][i] == pytest.approx((c[i, t] - o[i, t]) / o[i, t], rel=1e-6)
        assert got["ROC20"][i] == pytest.approx(c[i, t - 20] / c[i, t], rel=1e-6)
        assert got["MA60"][i] == pytest.approx(c[i, t - 59:t + 1].mean() / c[i, t], rel=1e-6)
        assert got["STD20"][i] == pytest.approx(c[i, t - 19:t + 1].std(ddof=1) / c[i, t], rel=1e-6)
        hi, low = h[i, t - 19:t + 1].max(), lo[i, t - 19:t + 1].min()
        assert got["RSV20"][i] == pytest.approx((c[i, t] - low) / (hi - low), rel=1e-6)
        assert got["CORR20"][i] == pytest.approx(np.corrcoef(c[i, t - 19:t + 1], np.log1p(v[i, t - 19:t + 1]))[0, 1],
                                                 rel=1e-6)
        assert got["VMA5"][i] == pytest.approx(v[i, t - 4:t + 1].mean() / v[i, t], rel=1e-6)


@pytest.mark.parametrize("builder", [common_factors, alpha158_features])
def test_features_are_point_in_time(builder):
    p, t = _panel(2), 260
    before = builder(p, [t])
    q = _panel(2)
    rng = np.random.default_rng(5)
    q.daily[:, t + 1:] *= rng.uniform(0.5, 2.0, q.daily[:, t + 1:].shape).astype(np.float32)
    q.ms[:, t + 1:] = rng.normal(size=q.ms[:, t + 1:].shape)
    q.listed[0, t + 1:] = False  # a delisting after t changes nothing at t
    after = builder(q, [t])
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    # while a change at t itself does move them
    q.daily[:, t] *= 1.3
    assert any(not np.allclose(before[k], v, equal_nan=True) for k, v in builder(q, [t]).items())


def test_period_returns_hold_from_one_entry_to_the_next():
    p = _panel(3)
    sig = [10, 15, 22, T - 1]
    r = period_returns(p, sig)
    av = _adj(p, "vwap")
    np.testing.assert_allclose(r[:, 0], av[:, 16] / av[:, 11] - 1, rtol=1e-12)
    np.testing.assert_allclose(r[:, 1], av[:, 23] / av[:, 16] - 1, rtol=1e-12)
    assert np.isnan(r[:, 2]).all()  # the entry after the next signal (T - 1 + 1) is beyond the panel
    assert np.isnan(r[:, 3]).all()  # no next signal
    # the split of stock 1 at 150 does not show as a loss
    r2 = period_returns(p, [145, 152])
    assert abs(r2[1, 0]) < 0.2


def test_feature_tables_hold_the_listed_stocks_and_the_same_values():
    from factor_pipeline.datasets.alpha158 import alpha158_table
    from factor_pipeline.datasets.common_factors import common_factor_table

    p = _panel(6)
    p.listed[2, 270] = False  # not listed on one of the dates: no row
    ts = [260, 270]
    cf, a = common_factor_table(p, ts), alpha158_table(p, ts)
    assert cf.height == a.height == 2 * N - 1
    row = cf.filter((pl.col("code") == p.codes[1]) & (pl.col("date") == p.dates[270].astype(object)))
    assert row["vol20"][0] == pytest.approx(common_factors(p, ts)["vol20"][1, 1])
    assert a.columns[:3] == ["code", "date", "a_kmid"]


def _qlib_reference(p: Panel, t: int) -> dict[str, np.ndarray]:
    """Qlib's Alpha158 expressions evaluated with pandas rolling(d, min_periods=1) per stock, on the
    adjusted series with missing (suspended) days as NaN: an independent computation."""
    import pandas as pd

    live = p.listed & ~p.suspended
    col = {k: pd.DataFrame(np.where(live, _adj(p, k), np.nan).T) for k in ("open", "high", "low", "close", "vwap")}
    o, h, lo, c = col["open"], col["high"], col["low"], col["close"]
    v = pd.DataFrame(np.where(live, p.field("volume") / p.field("adj_factor"), np.nan).T)
    out = {"KMID2": (c - o) / (h - lo + 1e-12), "KUP2": (h - np.maximum(o, c)) / (h - lo + 1e-12),
           "KSFT": (2 * c - h - lo) / o, "VWAP0": col["vwap"] / c, "LOW0": lo / c}
    dc, dv = c - c.shift(1), v - v.shift(1)
    for d in (5, 10, 20, 30, 60):
        roll = lambda x, d=d: x.rolling(d, min_periods=1)  # noqa: E731
        out[f"ROC{d}"] = c.shift(d) / c
        out[f"MA{d}"] = roll(c).mean() / c
        out[f"STD{d}"] = roll(c).std() / c
        out[f"MAX{d}"] = roll(h).max() / c
        out[f"QTLD{d}"] = roll(c).quantile(0.2) / c
        out[f"RANK{d}"] = roll(c).rank(pct=True)
        out[f"RSV{d}"] = (c - roll(lo).min()) / (roll(h).max() - roll(lo).min() + 1e-12)
        out[f"IMIN{d}"] = roll(lo).apply(lambda x: np.nanargmin(x) + 1, raw=True) / d
        out[f"CORR{d}"] = roll(c).corr(np.log(v + 1))
        out[f"CORD{d}"] = roll(c / c.shift(1)).corr(np.log(v / v.shift(1) + 1))
        out[f"CNTP{d}"] = roll((c > c.shift(1)).astype(float).where(c.notna())).mean()
        out[f"SUMN{d}"] = roll(np.maximum(-dc, 0)).sum() / (roll(dc.abs()).sum() + 1e-12)
        out[f"VSUMD{d}"] = (roll(np.maximum(dv, 0)).sum() - roll(np.maximum(-dv, 0)).sum()) / (roll(dv.abs()).sum()
                                                                                                + 1e-12)
        out[f"VSTD{d}"] = roll(v).std() / (v + 1e-12)
        wv = (c / c.shift(1) - 1).abs() * v
        out[f"WVMA{d}"] = roll(wv).std() / (roll(wv).mean() + 1e-12)

        def fit(x, what):
            k = np.arange(1.0, len(x) + 1)
            ok = np.isfinite(x)
            if ok.sum() < 2:
                return np.nan
            b, a = np.polyfit(k[ok], x[ok], 1)
            if what == "slope":
                return b
            if what == "resi":
                return x[-1] - (a + b * k[-1])
            return np.corrcoef(k[ok], x[ok])[0, 1] ** 2

        out[f"BETA{d}"] = roll(c).apply(fit, raw=True, args=("slope",)) / c
        out[f"RESI{d}"] = roll(c).apply(fit, raw=True, args=("resi",)) / c
        out[f"RSQR{d}"] = roll(c).apply(fit, raw=True, args=("r2",))
    return {k: f.iloc[t].to_numpy(dtype=np.float64) for k, f in out.items()}


def test_alpha158_is_qlibs_on_a_panel_with_suspensions():
    """One or more features of every operator family against Qlib's expressions (pandas), with
    suspended days (missing) inside the windows and a split of stock 1."""
    from factor_pipeline.datasets.alpha158 import FEATURES

    assert len(FEATURES) == 158 and len(set(FEATURES)) == 158
    p = _panel(4)
    p.suspended[0, 230:236] = True
    p.suspended[2, 247] = True
    p.suspended[3, 200:215] = True
    for t in (240, 250, 299):
        got = {k: v[:, 0] for k, v in alpha158_features(p, [t]).items()}
        ref = _qlib_reference(p, t)
        for k, want in ref.items():
            np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-7, err_msg=f"{k} at {t}")
    assert np.isnan(alpha158_features(p, [233])["KMID"][0, 0])  # suspended: no features that day


def test_alpha158_rows_in_stock_blocks_are_the_whole_market_rows():
    """Computing a few stocks at a time (the memory bound) gives the same rows in the same order, and
    each row is the dense array's cell of its stock and date."""
    from factor_pipeline.datasets.alpha158 import CHUNK, alpha158_array, alpha158_rows

    p = _panel(7, with_ms=False)
    rng = np.random.default_rng(7)
    mask = rng.random((N, T)) < 0.7
    mask[2] = False  # a stock with no row at all
    ts = list(range(60, 60 + 2 * CHUNK + 5))  # three date blocks, the last one short
    whole = alpha158_rows(p, ts, mask, stocks_per_block=N)
    for per in (1, 3):
        x, i, t = alpha158_rows(p, ts, mask, stocks_per_block=per)
        np.testing.assert_array_equal(i, whole[1])
        np.testing.assert_array_equal(t, whole[2])
        np.testing.assert_array_equal(x, whole[0])
    x, i, t = whole
    assert len(x) == mask[:, ts].sum() and mask[i, t].all() and not (i == 2).any()
    dense = alpha158_array(p, ts)
    np.testing.assert_array_equal(x, dense[i, np.searchsorted(ts, t)])
    first = np.flatnonzero(t < ts[CHUNK])  # rows of the first date block come first, by stock then date
    assert first.tolist() == list(range(len(first)))
    assert np.all(np.diff(i[first] * T + t[first]) > 0)
