"""Datasets equal a slow plain-loop reference, see nothing after t, and are shaped as SPEC.md says."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
import torch

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import gather
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.preprocess import cross_section, inputs, instance_normalised
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.datasets.samples import sample_mask

NAMES = ("week", "msnew", "day", "ms", "l2")
T_INDEX = 400  # a date of the tiny market with 150 days of history and 11 days of future


def panel_from(frames: dict[str, pl.DataFrame]):
    con = duckdb.connect()
    for k, v in frames.items():
        con.register(k, v)
    return build_panel(con, {k: k for k in frames})


@pytest.fixture(scope="module")
def market(tiny):
    return {k: v for k, v in tiny.items() if k in ("daily_bars", "intraday_bars", "l2_daily", "index_weights")}


@pytest.fixture(scope="module")
def panel(market):
    return panel_from(market)


@pytest.fixture(scope="module")
def base(panel):
    return dataset_base(panel)


def _samples(panel, name, t=T_INDEX):
    return np.flatnonzero(sample_mask(panel, DATASETS[name].lookback)[:, t])


def _x(base, panel, name, t=T_INDEX, stocks=None):
    s = _samples(panel, name, t) if stocks is None else stocks
    return gather(base, name, torch.tensor(s), torch.full((len(s),), t)).numpy()


# ---------------------------------------------------------------- slow references (plain loops)
def _stock_rows(tiny, code, day):
    d = tiny["daily_bars"].filter(pl.col("code") == code).sort("date")
    pos = d["date"].to_list().index(day)
    return d.to_dicts(), pos


def ref_week(tiny, code, day):
    rows, pos = _stock_rows(tiny, code, day)
    c_t = rows[pos]["close"] * rows[pos]["adj_factor"]
    img = np.zeros((30, 6, 5))
    for k in range(30):
        for j in range(5):
            r = rows[pos - 149 + 5 * k + j]
            for i, f in enumerate(("open", "high", "low", "close", "vwap")):
                img[k, i, j] = r[f] * r["adj_factor"] / c_t
            img[k, 5, j] = r["turnover"]
    return img


def _bars30(tiny, code, day):
    bars = tiny["intraday_bars"].filter((pl.col("code") == code) & (pl.col("date") == day)).sort("time").to_dicts()
    if not bars:
        return None
    out = []
    for q in range(8):
        b = bars[6 * q: 6 * q + 6]
        out.append((b[0]["open"], max(x["high"] for x in b), min(x["low"] for x in b), b[-1]["close"],
                    sum(x["amount"] for x in b)))
    return out


def ref_msnew(tiny, code, day):
    rows, pos = _stock_rows(tiny, code, day)
    img = np.full((30, 5, 8), np.nan)
    for k in range(30):
        r, prev = rows[pos - 29 + k], rows[pos - 30 + k]
        ref = prev["close"] * prev["adj_factor"] / r["adj_factor"]
        bars = _bars30(tiny, code, r["date"])
        if bars is None:
            continue
        for q, (o, h, lo, c, a) in enumerate(bars):
            img[k, :, q] = (o / ref, h / ref, lo / ref, c / ref, a / (r["close"] * r["float_shares"]))
    return img


def ref_day(tiny, code, day):
    rows, pos = _stock_rows(tiny, code, day)
    c_t = rows[pos]["close"] * rows[pos]["adj_factor"]
    out = np.zeros((30, 11))
    for k in range(30):
        r, p = rows[pos - 29 + k], rows[pos - 30 + k]
        adj = {f: r[f] * r["adj_factor"] for f in ("open", "high", "low", "close", "vwap")}
        pc = p["close"] * p["adj_factor"]
        out[k] = [adj["open"] / c_t, adj["high"] / c_t, adj["low"] / c_t, adj["close"] / c_t, adj["vwap"] / c_t,
                  adj["close"] / pc - 1, adj["open"] / pc - 1, np.log(r["high"] / r["low"]),
                  r["close"] / r["vwap"] - 1, r["turnover"], r["amount"] / (r["close"] * r["float_shares"])]
    return out


def ref_ms_day(tiny, code, day):
    b = tiny["intraday_bars"].filter((pl.col("code") == code) & (pl.col("date") == day)).sort("time")
    if b.height == 0:
        return np.full(13, np.nan)
    o, h, lo, c, v, a = (b[k].to_numpy() for k in ("open", "high", "low", "close", "volume", "amount"))
    r = np.log(c / np.concatenate([[o[0]], c[:-1]]))
    n, s2 = len(r), float(np.sum(r**2))
    vol = v.sum()
    twap = c.mean()
    jump = r[np.abs(r) > 3 * r.std()].sum()
    return np.array([np.sqrt(s2), np.sqrt(n) * np.sum(r**3) / s2**1.5, n * np.sum(r**4) / s2**2,
                     np.sum((v / vol) ** 2), v.std() / vol, v[42:].sum() / vol, jump, v[:6].sum() / vol,
                     np.log(c[-1] / c[41]), np.log(twap / (a.sum() / vol)) * 1e3,
                     (twap - lo.min()) / (h.max() - lo.min()), np.log(c[23] / o[0]), np.log(c[-1] / c[23])])


def ref_ms(tiny, code, day):
    rows, pos = _stock_rows(tiny, code, day)
    return np.stack([ref_ms_day(tiny, code, rows[pos - 29 + k]["date"]) for k in range(30)])


def ref_l2(tiny, code, day):
    rows, pos = _stock_rows(tiny, code, day)
    l2 = tiny["l2_daily"].filter(pl.col("code") == code)
    out = np.full((30, len(l2.columns) - 2), np.nan)
    for k in range(30):
        r = rows[pos - 29 + k]
        hit = l2.filter(pl.col("date") == r["date"]).to_dicts()
        if not hit:
            continue
        vals = []
        for name in l2.columns[2:]:
            x = hit[0][name]
            if name in ("buy_large", "sell_large", "buy_medium", "sell_medium", "buy_small", "sell_small",
                        "net_inflow", "net_inflow_large"):
                x = x / r["amount"]
            elif name == "n_trades":
                x = np.log1p(x)
            vals.append(x)
        out[k] = vals
    return out


REFERENCES = {"week": ref_week, "msnew": ref_msnew, "day": ref_day, "ms": ref_ms, "l2": ref_l2}


@pytest.mark.parametrize("name", NAMES)
def test_equals_slow_reference(name, tiny, panel, base):
    day = panel.dates[T_INDEX].astype(object)
    s = _samples(panel, name)
    pick = s[np.linspace(0, len(s) - 1, 6).astype(int)]
    # include a stock with a suspension inside the window when there is one
    susp = np.flatnonzero(panel.suspended[s, T_INDEX - 29: T_INDEX].any(axis=1))
    if len(susp):
        pick = np.append(pick, s[susp[0]])
    x = _x(base, panel, name, stocks=pick)
    for row, i in enumerate(pick):
        expect = REFERENCES[name](tiny, panel.codes[i], day)
        np.testing.assert_allclose(x[row], expect, rtol=2e-5, atol=2e-6, equal_nan=True,
                                   err_msg=f"{name} {panel.codes[i]}")


def test_shapes_and_normalisation(panel, base):
    for name in NAMES:
        x = _x(base, panel, name)
        n_feat = len(base.l2_names) if name == "l2" else None
        assert x.shape[1:] == DATASETS[name].shape(n_feat), name
    week = _x(base, panel, "week")
    np.testing.assert_allclose(week[:, -1, 3, -1], 1.0, rtol=1e-6)  # the last close of a week image is 1
    msnew = _x(base, panel, "msnew")
    ok = ~np.isnan(msnew[:, -1, 0, 0])
    assert np.all(np.abs(msnew[ok, -1, :4] - 1) < 0.21), "prices / previous close stay within the limits"
    # shuffling image rows permutes channels only: rows are unordered features, not a spatial axis
    assert week.shape[2] == 6 and msnew.shape[2] == 5


def _perturb_after(frames, day, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for k, df in frames.items():
        num = [c for c, t in df.schema.items() if t == pl.Float64 and c not in ("adj_factor",)]
        factor = pl.Series(rng.uniform(0.5, 2.0, df.height))
        later = pl.col("date") > day
        out[k] = df.with_columns([pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)) for c in num])
    # and a stock that only exists in the future, and future index members
    return out


@pytest.mark.parametrize("name", NAMES)
def test_nothing_after_t_matters(name, market, panel, base):
    day = panel.dates[T_INDEX].astype(object)
    p2 = panel_from(_perturb_after(market, day))
    t2 = p2.date_index(day)
    b2 = dataset_base(p2)
    s1 = panel.codes[_samples(panel, name)]
    s2 = p2.codes[_samples(p2, name, t2)]
    assert list(s1) == list(s2)
    x1 = _x(base, panel, name)
    x2 = _x(b2, p2, name, t=t2)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(cross_section(torch.from_numpy(x1)), cross_section(torch.from_numpy(x2)))
    np.testing.assert_array_equal(inputs(torch.from_numpy(x1), True), inputs(torch.from_numpy(x2), True))


def test_instance_normalised_inputs_equal_a_hand_computation():
    """Each sample's feature (image row) z-scored over its own time cells, by hand: a sequence's steps, an
    image's steps and columns; missing cells left out of the statistics and 0 after; a constant feature 0;
    clipped at 5; beside the cross-sectional cells in `inputs`."""
    rng = np.random.default_rng(3)
    seq = rng.lognormal(size=(4, 30, 3))
    seq[1, 5, 0] = np.nan
    seq[2, :, 1] = 7.0
    seq[3, -1, 2] = 1e6  # one outlier: its z-score, sqrt(29) > 5, is clipped
    got = instance_normalised(torch.from_numpy(seq)).numpy()
    for i in range(4):
        for f in range(3):
            col = seq[i, :, f]
            ok = ~np.isnan(col)
            sd = col[ok].std()
            want = np.where(ok, np.clip((col - col[ok].mean()) / sd, -5, 5), 0.0) if sd > 0 else np.zeros(30)
            np.testing.assert_allclose(got[i, :, f], want, rtol=1e-5, atol=1e-5)
    assert got[3, -1, 2] == pytest.approx(5.0) and np.all(got[2, :, 1] == 0)
    img = rng.normal(size=(2, 30, 6, 5))
    got = instance_normalised(torch.from_numpy(img)).numpy()
    row = img[1, :, 4, :]  # a stock's row over the 30 images and their 5 columns: its 150 days
    np.testing.assert_allclose(got[1, :, 4, :], (row - row.mean()) / row.std(), rtol=1e-4, atol=1e-5)
    both = inputs(torch.from_numpy(img), True)
    assert both.shape == (2, 30, 12, 5)
    np.testing.assert_array_equal(both[:, :, :6], cross_section(torch.from_numpy(img)))
    assert inputs(torch.from_numpy(seq), True).shape == (4, 30, 6)


def test_truncated_market_gives_the_same_inputs(market, panel, base):
    day = panel.dates[T_INDEX].astype(object)
    p2 = panel_from({k: v.filter(pl.col("date") <= day) for k, v in market.items()})
    b2 = dataset_base(p2)
    for name in NAMES:
        i1, i2 = _samples(panel, name), _samples(p2, name, T_INDEX)
        assert list(panel.codes[i1]) == list(p2.codes[i2])
        np.testing.assert_array_equal(_x(base, panel, name), _x(b2, p2, name))


def test_labels_depend_only_on_t_plus_1_and_t_plus_11(market, panel):
    t = T_INDEX
    y = labels_mod.forward_returns(panel)
    d = panel.dates
    keep = [d[t + 1].astype(object), d[t + 11].astype(object)]
    rng = np.random.default_rng(1)
    changed = {}
    for k, df in market.items():
        if k != "daily_bars":
            changed[k] = df
            continue
        f = pl.Series(rng.uniform(0.5, 2.0, df.height))
        other = ~pl.col("date").is_in(keep)
        changed[k] = df.with_columns(pl.when(other).then(pl.col("vwap") * f).otherwise(pl.col("vwap")))
    y2 = labels_mod.forward_returns(panel_from(changed))
    np.testing.assert_array_equal(y[:, t], y2[:, t])
    assert not np.allclose(np.nan_to_num(y[:, t + 1]), np.nan_to_num(y2[:, t + 1]))
    # and the label is the 10-day VWAP-to-VWAP return, by hand for one stock
    i = _samples(panel, "day")[0]
    av = panel.field("vwap")[i].astype(np.float64) * panel.field("adj_factor")[i]
    assert y[i, t] == pytest.approx(av[t + 11] / av[t + 1] - 1, rel=1e-12)


def test_suspended_and_unlisted_are_not_samples(panel):
    m = sample_mask(panel, 150)
    assert not (m & panel.suspended).any()
    assert not (m & ~panel.listed).any()
    # a sample has 150 rows of history: the first 149 dates of a listing never qualify
    first = np.argmax(panel.listed, axis=1)
    for i in np.flatnonzero(panel.listed.any(axis=1))[:50]:
        assert not m[i, first[i]: first[i] + 149].any()


def test_cannot_buy_flags_next_day_suspension_and_limit_up(panel):
    cb = labels_mod.cannot_buy(panel)
    np.testing.assert_array_equal(cb[:, :-1] & panel.suspended[:, 1:], panel.suspended[:, 1:])
    lu, low = panel.field("limit_up"), panel.field("low")
    sealed = (~np.isnan(lu) & (low >= lu))[:, 1:]
    assert (cb[:, :-1] | ~sealed).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_windows_on_the_gpu_equal_the_cpu(panel, base):
    gpu = base.to("cuda")
    for name in NAMES:
        s = torch.from_numpy(_samples(panel, name))
        t = torch.full((len(s),), T_INDEX)
        cpu_x = gather(base, name, s, t)
        gpu_x = gather(gpu, name, s.cuda(), t.cuda()).cpu()
        torch.testing.assert_close(gpu_x, cpu_x, equal_nan=True)


def test_mixed_date_batches_equal_one_date_batches(panel, base):
    """The block-copy fast path (one date) and the element-wise gather (mixed dates) agree."""
    for name in NAMES:
        s = _samples(panel, name, T_INDEX)[:20]
        one = gather(base, name, torch.from_numpy(s), torch.full((len(s),), T_INDEX))
        dates = torch.tensor([T_INDEX, T_INDEX - 1] * (len(s) // 2))
        mixed = gather(base, name, torch.from_numpy(s[: len(dates)]), dates)
        torch.testing.assert_close(mixed[0::2], one[: len(dates)][0::2], equal_nan=True)
        other = gather(base, name, torch.from_numpy(s[: len(dates)][1::2]), torch.full((len(dates) // 2,), T_INDEX - 1))
        torch.testing.assert_close(mixed[1::2], other, equal_nan=True)


def test_a_narrowed_universe_keeps_exactly_its_members(panel):
    import dataclasses

    from factor_pipeline.datasets.samples import indices_within, sample_mask

    every = sample_mask(panel, 30)
    narrow = sample_mask(dataclasses.replace(panel, universe="csi800"), 30)
    members = panel.members["csi300"] | panel.members["csi500"]
    assert np.array_equal(narrow, every & members)
    assert 0 < narrow.sum() < every.sum()
    assert indices_within("csi800") == ("csi300", "csi500") and indices_within("csi_all") == ("csi300", "csi500",
                                                                                               "csi1000")
    with pytest.raises(ValueError, match="unknown universe"):
        sample_mask(dataclasses.replace(panel, universe="sp500"), 30)


def test_daily_labels_equal_the_weekly_labels_on_signal_dates(panel):
    """`labels_daily` (the combiner's training rows) holds every trading date; on the signal dates it is
    the `labels` table, and realised_on is t+11."""
    from datetime import date

    from factor_pipeline.datasets.weekly import daily_label_table, label_table, signal_dates, trading_dates

    every = trading_dates(panel, date(2017, 1, 2), date(2017, 4, 1))
    sig = signal_dates(panel, date(2017, 1, 2), date(2017, 4, 1))
    daily = daily_label_table(panel, every)
    weekly = label_table(panel, sig)
    assert daily["date"].n_unique() == len(every) > len(sig)
    j = weekly.join(daily, on=["code", "date"], how="left", suffix="_d")
    assert j.height == weekly.height
    for c in ("y_raw", "y_std", "realised_on"):
        assert j[c].equals(j[f"{c}_d"], check_names=False), c
    t = every[3]
    row = daily.filter(pl.col("date") == panel.dates[t].astype(object))
    assert (row["realised_on"] == panel.dates[t + 11].astype(object)).all()
