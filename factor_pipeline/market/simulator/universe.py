"""The synthetic stock universe: boards, industries, listing and delisting, size and risk traits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from factor_pipeline.market.calendar import trading_calendar

INDUSTRIES = (
    "agriculture", "basic_chemicals", "steel", "nonferrous_metals", "electronics", "household_appliances",
    "food_beverage", "textiles_apparel", "light_manufacturing", "pharma_biotech", "utilities",
    "transportation", "real_estate", "commerce_retail", "social_services", "conglomerates",
    "building_materials", "building_decoration", "power_equipment", "defense", "computers", "media",
    "telecom", "banks", "non_bank_finance", "automobiles", "machinery", "coal", "petroleum_petrochem",
    "environmental", "beauty_care",
)
STAR_START = np.datetime64("2019-07-22", "D")
CHINEXT_20PCT = np.datetime64("2020-08-24", "D")
IPO_NO_LIMIT_DAYS = 5


@dataclass
class Universe:
    """Per-stock traits; index i is the same stock in every array of the simulation."""

    codes: np.ndarray  # str
    board: np.ndarray  # str
    industry: np.ndarray  # int index into INDUSTRIES
    list_idx: np.ndarray  # calendar index of the first trading day (<= 0: listed before the start)
    delist_idx: np.ndarray  # calendar index of the first day not listed (len(calendar): never)
    list_date: np.ndarray  # datetime64[D]
    delist_date: np.ndarray  # datetime64[D], NaT when still listed at the end
    price0: np.ndarray  # first close (or issue price)
    float_shares0: np.ndarray
    beta: np.ndarray
    idio_vol: np.ndarray  # long-run daily idiosyncratic vol
    base_turnover: np.ndarray

    @property
    def n(self) -> int:
        return len(self.codes)

    def table(self) -> pl.DataFrame:
        return pl.DataFrame({
            "code": self.codes,
            "industry": np.asarray(INDUSTRIES)[self.industry],
            "board": self.board,
            "list_date": self.list_date,
            "delist_date": self.delist_date,
        }).with_columns(pl.col("list_date").cast(pl.Date), pl.col("delist_date").cast(pl.Date))


def make_universe(rng: np.random.Generator, n: int, cal: np.ndarray) -> Universe:
    """Draw n stocks: ~70% listed before the start, the rest IPO inside it; ~1.5%/year delist."""
    t_len = len(cal)
    years = t_len / 244
    star_ok_from = int(np.searchsorted(cal, STAR_START))
    pre_listed = rng.random(n) < 0.7
    board = rng.choice(np.array(["main", "chinext", "star"]), size=n, p=[0.72, 0.2, 0.08])
    # STAR stocks exist only from 2019-07-22: those drawn for earlier slots become main board
    list_idx = np.where(pre_listed, 0, rng.integers(1, max(t_len - 160, 2), size=n))
    # a STAR stock listed before the board opened (2019-07-22) IPOs after it, or is main board
    star_bad = (board == "star") & (list_idx < star_ok_from) & ~(pre_listed & (star_ok_from == 0))
    if star_ok_from < t_len - 160:
        list_idx = np.where(star_bad, rng.integers(max(star_ok_from, 1), t_len - 160, size=n), list_idx)
        pre_listed = pre_listed & ~star_bad
    else:
        board = np.where(star_bad, "main", board)
    # pre-listed stocks get an older list date drawn from a history calendar
    history = trading_calendar(date(1995, 1, 3), (cal[0] - np.timedelta64(40, "D")).astype(date))
    hist_pick = history[rng.integers(0, len(history), size=n)]
    list_date = np.where(pre_listed, hist_pick, cal[np.clip(list_idx, 0, t_len - 1)])
    list_idx = np.where(pre_listed, -rng.integers(250, 4000, size=n), list_idx)

    delists = rng.random(n) < 0.015 * years
    lo = np.maximum(list_idx, 0) + 250
    delist_idx = np.where(delists & (lo < t_len - 5), rng.integers(0, 2**31, size=n) % np.maximum(
        t_len - lo, 1) + lo, t_len)
    delist_idx = np.minimum(delist_idx, t_len)
    nat = np.datetime64("NaT", "D")
    delist_date = np.where(delist_idx < t_len, cal[np.minimum(delist_idx, t_len - 1)], nat)

    order = np.lexsort((rng.random(n), list_date))
    codes = _codes(board[order])
    log_cap = rng.normal(np.log(6e9), 1.0, size=n) - np.where(pre_listed, 0.0, 0.6)
    price0 = np.clip(np.exp(rng.normal(np.log(12.0), 0.6, size=n)), 2.0, 300.0)
    zcap = (log_cap - log_cap.mean()) / log_cap.std()
    uni = Universe(
        codes=codes,
        board=board[order],
        industry=rng.choice(len(INDUSTRIES), size=n, p=rng.dirichlet(np.full(len(INDUSTRIES), 8.0)))[order],
        list_idx=list_idx[order],
        delist_idx=delist_idx[order],
        list_date=list_date[order].astype("datetime64[D]"),
        delist_date=delist_date[order].astype("datetime64[D]"),
        price0=np.round(price0, 2)[order],
        float_shares0=np.round(np.exp(log_cap) / price0, -2)[order],
        beta=np.clip(rng.normal(1.0, 0.25, size=n), 0.3, 1.8)[order],
        idio_vol=(0.018 * np.exp(-0.15 * zcap + rng.normal(0, 0.2, size=n)))[order],
        base_turnover=(0.012 * np.exp(-0.3 * zcap + rng.normal(0, 0.4, size=n)))[order],
    )
    # exchange codes are assigned in listing order; sort the universe by code for tidy tables
    by_code = np.argsort(uni.codes, kind="stable")
    for name in uni.__dataclass_fields__:
        setattr(uni, name, getattr(uni, name)[by_code])
    return uni


def _codes(board: np.ndarray) -> np.ndarray:
    """Exchange-style codes: SH main 600000+, SZ main 000001+, ChiNext 300001+, STAR 688001+."""
    out = np.empty(len(board), dtype=object)
    counters = {"sh": 600000, "sz": 1, "chinext": 300001, "star": 688001}
    for i, b in enumerate(board):  # once per stock at start-up, not a hot path
        if b == "main":
            ex = "sh" if i % 2 == 0 else "sz"
            out[i] = f"{counters[ex]:06d}.{ex.upper()}"
            counters[ex] += 1
        else:
            out[i] = f"{counters[b]:06d}.{'SZ' if b == 'chinext' else 'SH'}"
            counters[b] += 1
    return out.astype(str)


def limit_pct(board: np.ndarray, day: np.datetime64) -> np.ndarray:
    """Daily price-limit fraction per stock by board and date."""
    wide = (board == "star") | ((board == "chinext") & (day >= CHINEXT_20PCT))
    return np.where(wide, 0.2, 0.1)
