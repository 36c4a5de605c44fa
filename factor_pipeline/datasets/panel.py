"""Dense float32 panels [stock, date, field] built from contract tables without loops over stocks or dates.

The panel is the one in-memory form every dataset gathers its windows from. Intraday data enters
as 30-minute bars [stock, date, bar, field] and as daily features computed from the 5-minute bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import polars as pl

from factor_pipeline.datasets import intraday as intraday_sql
from factor_pipeline.market.oddities import VWAP_ODD
from factor_pipeline.market.schema import INDICES, L2_FEATURES

INTRADAY_CHUNK = 120  # trading days of 5-minute bars per SQL pass
DAILY_FIELDS = ("open", "high", "low", "close", "vwap", "volume", "amount", "turnover", "float_shares",
                "adj_factor", "limit_up", "limit_down")


@dataclass
class Panel:
    codes: np.ndarray  # [N] str, sorted
    dates: np.ndarray  # [T] datetime64[D], ascending trading dates
    daily: np.ndarray  # [N, T, len(DAILY_FIELDS)] float32, NaN where not listed
    listed: np.ndarray  # [N, T] bool: a row exists
    suspended: np.ndarray  # [N, T] bool
    members: dict[str, np.ndarray] = field(default_factory=dict)  # index -> [N, T] bool (carried forward)
    bars30: np.ndarray | None = None  # [N, T, 8, 5] open, high, low, close, amount of 30-minute bars
    ms: np.ndarray | None = None  # [N, T, len(intraday.MS_FEATURES)]
    l2: np.ndarray | None = None  # [N, T, F] raw l2_daily columns
    l2_names: tuple[str, ...] = ()
    universe: str = "csi_all"  # sample universe (datasets.samples.SAMPLE_UNIVERSES)

    def field(self, name: str) -> np.ndarray:
        return self.daily[..., DAILY_FIELDS.index(name)]

    def date_index(self, d: date | np.datetime64 | str) -> int:
        t = int(np.searchsorted(self.dates, np.datetime64(d, "D")))
        if t >= len(self.dates) or self.dates[t] != np.datetime64(d, "D"):
            raise KeyError(f"{d} is not a trading date of the panel ({self.dates[0]} .. {self.dates[-1]})")
        return t

    @property
    def nbytes(self) -> int:
        arrays = [self.daily, self.listed, self.suspended, *self.members.values(), self.bars30, self.ms, self.l2]
        return int(sum(a.nbytes for a in arrays if a is not None))


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return con.sql(sql).pl()


def _scatter_into(out: np.ndarray, df: pl.DataFrame, codes: np.ndarray, dates: np.ndarray, cols: list[str],
                  extra_index: list[str] | None = None) -> None:
    """Place long rows into a dense [N, T, *extra, F] array, in place."""
    if df.height == 0:
        return
    i = np.searchsorted(codes, df["code"].to_numpy())
    t = np.searchsorted(dates, df["date"].to_numpy().astype("datetime64[D]"))
    idx = (i, t, *(df[c].to_numpy() for c in (extra_index or [])))
    out[idx] = df.select(cols).to_numpy().astype(np.float32)


def _scatter(df: pl.DataFrame, codes: np.ndarray, dates: np.ndarray, cols: list[str]) -> np.ndarray:
    """Long rows as a dense [N, T, F] float32 array (NaN where there is no row)."""
    out = np.full((len(codes), len(dates), len(cols)), np.nan, dtype=np.float32)
    _scatter_into(out, df, codes, dates, cols)
    return out


ALL_PARTS = frozenset({"bars30", "ms", "l2"})


def build_panel(con: duckdb.DuckDBPyConnection, rel: dict[str, str], start: date | None = None,
                end: date | None = None, parts: frozenset[str] = ALL_PARTS, also: tuple[str, ...] = (),
                intraday_from: date | None = None) -> Panel:
    """Panel over [start, end] from SQL relations named by contract table (warehouse tables or frames).

    `parts` picks the optional pieces to build: 30-minute bars, ms features, l2 (the daily bars and
    index membership are always there). `also`: codes to include though they have no bar in the span
    (a resumed book's holdings in a stock suspended throughout: never listed, never traded, still held).
    `intraday_from`: the intraday parts (computed from the 5-minute bars, most of a load's time) only from
    that date, NaN before: for a reader of the newest dates' windows that needs the long daily history only
    for other things (the Friday job's weak factors: daily prices and labels to recognise cached fits)."""
    where = " AND ".join(
        [f"date >= DATE '{start}'" for _ in [0] if start] + [f"date <= DATE '{end}'" for _ in [0] if end]
    ) or "true"
    # a vwap off the traded range (an import oddity) is read clipped to [low, high]: no fill could be there
    cols = ", ".join(f"CASE WHEN {VWAP_ODD} THEN least(greatest(vwap, low), high) ELSE vwap END AS vwap"
                     if f == "vwap" else f for f in DAILY_FIELDS)
    daily = _frame(con, f"SELECT code, date, {cols}, is_suspended FROM {rel['daily_bars']} WHERE {where}")
    codes = np.union1d(daily["code"].unique().to_numpy().astype(str), np.asarray(also, dtype=str))
    dates = np.sort(daily["date"].unique().to_numpy().astype("datetime64[D]"))
    arr = _scatter(daily, codes, dates, list(DAILY_FIELDS))
    listed = ~np.isnan(arr[..., DAILY_FIELDS.index("close")])
    susp = np.zeros_like(listed)
    susp[np.searchsorted(codes, daily["code"].to_numpy()),
         np.searchsorted(dates, daily["date"].to_numpy().astype("datetime64[D]"))] = daily["is_suspended"].to_numpy()
    panel = Panel(codes, dates, arr, listed, susp)
    panel.members = _members(con, rel, codes, dates)
    if "intraday_bars" in rel and parts & {"bars30", "ms"}:
        if "bars30" in parts:
            panel.bars30 = np.full((len(codes), len(dates), 8, 5), np.nan, dtype=np.float32)
        if "ms" in parts:
            panel.ms = np.full((len(codes), len(dates), len(intraday_sql.MS_FEATURES)), np.nan, dtype=np.float32)
        # chunks of dates bound the memory of the per-day window functions over 5-minute bars
        first = int(np.searchsorted(dates, np.datetime64(intraday_from, "D"))) if intraday_from else 0
        for lo in range(first, len(dates), INTRADAY_CHUNK):
            hi = min(lo + INTRADAY_CHUNK, len(dates)) - 1
            span = f"date >= DATE '{dates[lo]}' AND date <= DATE '{dates[hi]}'"
            if panel.bars30 is not None:
                bars = _frame(con, intraday_sql.bars30_sql(rel["intraday_bars"], span))
                _scatter_into(panel.bars30, bars, codes, dates, ["open", "high", "low", "close", "amount"], ["bar"])
            if panel.ms is not None:
                ms = _frame(con, intraday_sql.ms_features_sql(rel["intraday_bars"], span))
                _scatter_into(panel.ms, ms, codes, dates, list(intraday_sql.MS_FEATURES))
    if "l2_daily" in rel and "l2" in parts:
        l2 = _frame(con, f"SELECT * FROM {rel['l2_daily']} WHERE {where}")
        names = [c for c in l2.columns if c not in ("code", "date")]
        names = [c for c in L2_FEATURES if c in names] + [c for c in names if c not in L2_FEATURES]
        panel.l2, panel.l2_names = _scatter(l2, codes, dates, names), tuple(names)
    return panel


def _members(con: duckdb.DuckDBPyConnection, rel: dict[str, str], codes: np.ndarray,
             dates: np.ndarray) -> dict[str, np.ndarray]:
    """Index membership at each panel date: the latest weight date at or before it (carried forward)."""
    w = _frame(con, f"SELECT \"index\", date, code FROM {rel['index_weights']} WHERE date <= DATE '{dates[-1]}'")
    out = {}
    for k in INDICES:
        wk = w.filter((pl.col("index") == k) & pl.col("code").is_in(list(codes)))
        m = np.zeros((len(codes), len(dates)), dtype=bool)
        if wk.height:
            wdates = np.sort(wk["date"].unique().to_numpy().astype("datetime64[D]"))
            on = np.zeros((len(codes), len(wdates)), dtype=bool)
            on[np.searchsorted(codes, wk["code"].to_numpy()),
               np.searchsorted(wdates, wk["date"].to_numpy().astype("datetime64[D]"))] = True
            last = np.searchsorted(wdates, dates, side="right") - 1  # latest weight date <= t
            valid = last >= 0
            m[:, valid] = on[:, last[valid]]
        out[k] = m
    return out
