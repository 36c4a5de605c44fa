"""The synthetic A-share market: `simulate_market(preset, seed, out)` writes the contract tables."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from factor_pipeline.config import MarketPreset
from factor_pipeline.market.calendar import trading_calendar
from factor_pipeline.market.io import atomic_dir
from factor_pipeline.market.schema import L2_FEATURES
from factor_pipeline.market.simulator.engine import DailyPanel, simulate_panel
from factor_pipeline.market.simulator.indices import index_levels, index_members, index_weights, review_schedule
from factor_pipeline.market.simulator.intraday import BAR_END_MINUTES, DayBars
from factor_pipeline.market.simulator.universe import Universe, make_universe

SIMULATOR_VERSION = "1"
_PARQUET = {"compression": "zstd", "statistics": True}


class _IntradayWriter:
    """Collects a year of 5-minute bars at a time and writes it as one Parquet file."""

    def __init__(self, folder: Path, uni: Universe, cal: np.ndarray):
        self.folder, self.codes, self.cal = folder, pl.Series("code", uni.codes), cal
        self.folder.mkdir()
        self.year, self.parts, self.rows = None, [], 0
        self.times = pl.Series("time", BAR_END_MINUTES * 60 * 1_000_000_000, dtype=pl.Int64).cast(pl.Time)

    def __call__(self, t: int, idx: np.ndarray, bars: DayBars) -> None:
        year = int(self.cal[t].astype("datetime64[Y]").astype(int) + 1970)
        if self.year is not None and year != self.year:
            self.flush()
        self.year = year
        self.parts.append((t, idx, bars))

    def flush(self) -> None:
        if not self.parts:
            return
        nb = len(BAR_END_MINUTES)
        t_all = np.concatenate([np.full(len(i) * nb, t) for t, i, _ in self.parts])
        s_all = np.concatenate([np.repeat(i, nb) for _, i, _ in self.parts])
        cols = {k: np.concatenate([getattr(b, k).ravel() for _, _, b in self.parts])
                for k in ("open", "high", "low", "close", "volume", "amount")}
        df = pl.DataFrame({
            "code": self.codes.gather(s_all),
            "date": pl.Series(self.cal[t_all]).cast(pl.Date),
            "time": self.times.gather(np.tile(np.arange(nb), len(t_all) // nb)),
            **cols,
        })
        df.write_parquet(self.folder / f"{self.year}.parquet", **_PARQUET)
        self.rows += df.height
        self.parts = []


def _long(panel_fields: dict[str, np.ndarray], mask: np.ndarray, uni: Universe, cal: np.ndarray) -> pl.DataFrame:
    """[T, N] arrays to a long (date-major) table over the cells in `mask`."""
    t_idx, s_idx = np.nonzero(mask)
    return pl.DataFrame({
        "code": pl.Series(uni.codes).gather(s_idx),
        "date": pl.Series(cal[t_idx]).cast(pl.Date),
        **{k: v[t_idx, s_idx] for k, v in panel_fields.items()},
    })


def _daily_table(panel: DailyPanel, uni: Universe, cal: np.ndarray) -> pl.DataFrame:
    f = panel.fields
    cols = {k: f[k] for k in ("open", "high", "low", "close", "vwap", "volume", "amount", "turnover",
                              "float_shares", "adj_factor")}
    cols["is_suspended"] = panel.suspended
    cols["limit_up"], cols["limit_down"] = f["limit_up"], f["limit_down"]
    df = _long(cols, panel.listed, uni, cal)
    return df.with_columns(pl.col("limit_up", "limit_down").fill_nan(None))  # null: no fixed limit


def _l2_table(panel: DailyPanel, uni: Universe, cal: np.ndarray) -> pl.DataFrame:
    active = panel.listed & ~panel.suspended
    df = _long(panel.l2, active, uni, cal)
    amount = sum(pl.col(f"{s}_{b}") for b in ("large", "medium", "small") for s in ("buy", "sell"))
    buy = pl.col("buy_large") + pl.col("buy_medium") + pl.col("buy_small")
    sell = pl.col("sell_large") + pl.col("sell_medium") + pl.col("sell_small")
    df = df.with_columns(
        net_inflow=buy - sell,
        net_inflow_large=pl.col("buy_large") - pl.col("sell_large"),
        order_imbalance=(buy - sell) / amount,
        large_share=(pl.col("buy_large") + pl.col("sell_large")) / amount,
    )
    return df.select("code", "date", *L2_FEATURES)


def _index_tables(uni: Universe, cal: np.ndarray, panel: DailyPanel, sizes: dict[str, int]):
    masks = index_members(uni, cal, panel, sizes)
    weights = index_weights(panel, masks)
    levels = index_levels(panel, weights)
    week = (cal.astype("int64") + 3) // 7  # Monday-based week number
    weight_day = np.r_[week[1:] != week[:-1], True]  # last trading day of each week
    weight_day[0] = True
    y_m = cal.astype("datetime64[M]")
    weight_day |= np.r_[True, y_m[1:] != y_m[:-1]]  # and the first day of each month (reviews settle)
    for _, eff in review_schedule(cal):
        weight_day[eff] = True
    frames, daily = [], []
    for k, w in weights.items():
        t_idx, s_idx = np.nonzero(w * weight_day[:, None] > 0)
        frames.append(pl.DataFrame({
            "index": k, "date": pl.Series(cal[t_idx]).cast(pl.Date),
            "code": pl.Series(uni.codes).gather(s_idx), "weight": w[t_idx, s_idx],
        }))
        lv = levels[k]
        daily.append(pl.DataFrame({"index": k, "date": pl.Series(cal).cast(pl.Date),
                                   "open": lv["open"], "close": lv["close"], "vwap": lv["vwap"]}))
    return pl.concat(frames), pl.concat(daily)


def simulate_market(preset: MarketPreset, seed: int, out: Path) -> dict:
    """Write a synthetic market in the table contract to `out` (atomically); return a summary."""
    t0 = time.perf_counter()
    cal = trading_calendar(preset.start, preset.end)
    uni_rng, mkt_rng = np.random.default_rng(seed).spawn(2)
    uni = make_universe(uni_rng, preset.n_stocks, cal)
    with atomic_dir(Path(out)) as tmp:
        intraday = _IntradayWriter(tmp / "intraday_bars", uni, cal)
        panel = simulate_panel(mkt_rng, uni, cal, preset.alpha_strength, intraday)
        intraday.flush()
        uni.table().write_parquet(tmp / "stocks.parquet", **_PARQUET)
        daily = _daily_table(panel, uni, cal)
        daily.write_parquet(tmp / "daily_bars.parquet", **_PARQUET)
        _l2_table(panel, uni, cal).write_parquet(tmp / "l2_daily.parquet", **_PARQUET)
        weights, levels = _index_tables(uni, cal, panel, preset.index_sizes)
        weights.write_parquet(tmp / "index_weights.parquet", **_PARQUET)
        levels.write_parquet(tmp / "index_daily.parquet", **_PARQUET)
        oracle = _long({"expected_return_10d": panel.oracle}, ~np.isnan(panel.oracle), uni, cal)
        oracle.write_parquet(tmp / "oracle.parquet", **_PARQUET)
        summary = {
            "source": "synthetic", "preset": preset.name, "seed": seed, "simulator_version": SIMULATOR_VERSION,
            "n_stocks": uni.n, "start": str(cal[0]), "end": str(cal[-1]), "trading_days": len(cal),
            "stock_days": daily.height, "intraday_rows": intraday.rows,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        (tmp / "market.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "seconds"},
                                                    indent=2))
    return summary
