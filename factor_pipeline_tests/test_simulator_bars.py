"""Bars are internally consistent: intraday adds up to daily exactly, limits follow board rules."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from factor_pipeline.config import MarketPreset
from factor_pipeline.market.simulator import simulate_market
from factor_pipeline.market.simulator.intraday import tick


def test_intraday_adds_up_to_daily_exactly(tiny):
    agg = (
        tiny["intraday_bars"].sort("code", "date", "time").group_by("code", "date")
        .agg(pl.col("open").first().alias("o"), pl.col("high").max().alias("h"), pl.col("low").min().alias("l"),
             pl.col("close").last().alias("c"), pl.col("volume").sum().alias("v"), pl.col("amount").sum().alias("a"),
             pl.len().alias("n"))
    )
    d = tiny["daily_bars"].filter(~pl.col("is_suspended")).join(agg, on=["code", "date"], how="left")
    assert d["n"].null_count() == 0, "every trading day has intraday bars"
    assert (d["n"] == 48).all()
    for a, b in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("v", "volume")):
        assert (d[a] == d[b]).all(), b  # exact
    np.testing.assert_allclose(d["a"], d["amount"], rtol=1e-12)
    np.testing.assert_allclose(d["a"] / d["v"], d["vwap"], rtol=1e-12)
    assert (d["volume"] % 100 == 0).all(), "volume in 100-share lots"


def test_bars_are_ordered(tiny):
    for t in ("daily_bars", "intraday_bars"):
        b = tiny[t]
        assert (b["high"] >= b["low"]).all()
        for p in ("open", "close"):
            assert ((b[p] >= b["low"]) & (b[p] <= b["high"])).all()
        assert (b["low"] > 0).all()
        assert ((b["close"] * 100).round(6) % 1 == 0).all(), "prices on the 0.01 tick"


def test_suspended_days_carry_the_last_close(tiny):
    d = tiny["daily_bars"].sort("code", "date")
    s = d.filter(pl.col("is_suspended"))
    assert s.height > 0
    assert (s["volume"] == 0).all() and (s["amount"] == 0).all()
    assert ((s["open"] == s["close"]) & (s["high"] == s["low"]) & (s["vwap"] == s["close"])).all()
    prev = d.with_columns(pc=(pl.col("close") * pl.col("adj_factor")).shift(1).over("code"))
    prev = prev.filter(pl.col("is_suspended") & pl.col("pc").is_not_null())
    np.testing.assert_allclose(prev["close"] * prev["adj_factor"], prev["pc"], rtol=1e-9)


@pytest.fixture(scope="module")
def board_market(tmp_path_factory) -> pl.DataFrame:
    """A small market spanning the STAR launch (2019-07-22) and ChiNext's 20% switch (2020-08-24)."""
    p = MarketPreset("boards", 150, date(2019, 6, 3), date(2020, 12, 31),
                     {"csi300": 8, "csi500": 12, "csi1000": 24})
    out = tmp_path_factory.mktemp("boards") / "m"
    simulate_market(p, 3, out)
    d = pl.read_parquet(out / "daily_bars.parquet").sort("code", "date")
    s = pl.read_parquet(out / "stocks.parquet")
    return d.join(s, on="code")


def test_limit_rules_per_board_and_date(board_market):
    d = board_market.with_columns(
        ref=(pl.col("close") * pl.col("adj_factor")).shift(1).over("code") / pl.col("adj_factor"),
        n=pl.int_range(pl.len()).over("code"),
    )
    assert set(d["board"].unique()) == {"main", "chinext", "star"}
    star = d.filter(pl.col("board") == "star")
    assert star["date"].min() >= date(2019, 7, 22)
    wide = (pl.col("board") == "star") | ((pl.col("board") == "chinext") & (pl.col("date") >= date(2020, 8, 24)))
    d = d.with_columns(pct=pl.when(wide).then(0.2).otherwise(0.1))
    limited = d.filter(pl.col("limit_up").is_not_null() & pl.col("ref").is_not_null())
    np.testing.assert_allclose(limited["limit_up"], tick((limited["ref"] * (1 + limited["pct"])).to_numpy()),
                               atol=1e-9)
    np.testing.assert_allclose(limited["limit_down"], tick((limited["ref"] * (1 - limited["pct"])).to_numpy()),
                               atol=1e-9)
    assert ((limited["close"] <= limited["limit_up"]) & (limited["close"] >= limited["limit_down"])).all()
    # both regimes of ChiNext are present and used
    cx = limited.filter(pl.col("board") == "chinext")
    assert set(cx["pct"].unique()) == {0.1, 0.2}


def test_ipo_days_have_no_limit(board_market):
    d = board_market.filter(pl.col("list_date") > date(2019, 6, 3)).with_columns(
        n=pl.int_range(pl.len()).over("code"))
    assert d.filter(pl.col("n") < 5)["limit_up"].null_count() == d.filter(pl.col("n") < 5).height
    assert d.filter(pl.col("n") >= 5)["limit_up"].null_count() == 0


def test_limit_hit_days_are_consistent(tiny):
    d = tiny["daily_bars"].filter(~pl.col("is_suspended"))
    up = d.filter(pl.col("close") == pl.col("limit_up"))
    down = d.filter(pl.col("close") == pl.col("limit_down"))
    assert (up["high"] == up["limit_up"]).all()
    assert (down["low"] == down["limit_down"]).all()
    bars = tiny["intraday_bars"].join(up.select("code", "date", "limit_up"), on=["code", "date"])
    assert (bars["high"] <= bars["limit_up"]).all()
