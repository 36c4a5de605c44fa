"""Stylised facts of the synthetic market and its planted, measurable alpha."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from factor_pipeline.market.simulator.intraday import VOLUME_PROFILE
from factor_pipeline_tests.conftest import rank_ic_by_date


def _wide(returns: pl.DataFrame) -> np.ndarray:
    return returns.pivot(on="code", index="date", values="ret").sort("date").drop("date").to_numpy()


def test_fat_tails(returns):
    k = returns.group_by("code").agg(pl.col("ret").kurtosis(fisher=False).alias("k"), pl.len().alias("n"))
    k = k.filter(pl.col("n") > 200)["k"]
    assert k.mean() > 5.0  # Pearson kurtosis: 3 for a normal distribution


def test_volatility_clustering(returns):
    x = np.abs(_wide(returns))
    for lag in (1, 2, 5, 10, 20):
        a, b = x[lag:], x[:-lag]
        acs = []
        for j in range(x.shape[1]):
            ok = ~np.isnan(a[:, j]) & ~np.isnan(b[:, j])
            if ok.sum() > 200:
                acs.append(np.corrcoef(a[ok, j], b[ok, j])[0, 1])
        assert np.mean(acs) > 0.01, f"|r| autocorrelation at lag {lag}"


def test_pairwise_correlation(returns):
    m = np.ma.masked_invalid(_wide(returns))
    cc = np.asarray(np.ma.corrcoef(m.T))
    mean = np.nanmean(cc[np.triu_indices(cc.shape[0], 1)])
    assert 0.2 < mean < 0.5


def test_limit_hits_occur(tiny):
    d = tiny["daily_bars"].filter(~pl.col("is_suspended"))
    ups = d.filter(pl.col("close") == pl.col("limit_up")).height
    downs = d.filter(pl.col("close") == pl.col("limit_down")).height
    assert ups > 20 and downs > 20
    assert ups < 0.02 * d.height and downs < 0.02 * d.height


def test_u_shaped_intraday_volume(tiny):
    share = (
        tiny["intraday_bars"].with_columns(bar=pl.col("time").rank("dense").over("code", "date"))
        .group_by("bar").agg(pl.col("volume").sum()).sort("bar")["volume"].to_numpy()
    )
    share = share / share.sum()
    middle = share[18:30].mean()
    assert share[0] > 2 * middle and share[-1] > 1.5 * middle
    assert np.argmin(VOLUME_PROFILE) not in (0, len(VOLUME_PROFILE) - 1)


def _labels(tiny) -> pl.DataFrame:
    """10-day forward return from the VWAP of t+1 to the VWAP of t+11 (adjusted)."""
    d = tiny["daily_bars"].sort("code", "date")
    av = pl.col("vwap") * pl.col("adj_factor")
    return d.with_columns(y=(av.shift(-11) / av.shift(-1) - 1).over("code")).select("code", "date", "y")


def test_oracle_rank_ic_in_range(tiny):
    members = tiny["index_weights"].filter(pl.col("index") == "csi_all").select("code", "date")
    df = tiny["oracle"].join(_labels(tiny), on=["code", "date"]).join(members, on=["code", "date"])
    ic = rank_ic_by_date(df.drop_nulls(), "expected_return_10d", "y")
    assert len(ic) > 100
    # the demo preset is calibrated to 0.18-0.22 (benchmarks/simulate_market.py); tiny has few stocks
    assert 0.15 < ic.mean() < 0.26


def test_planted_alpha_is_not_visible_in_past_returns_only(tiny):
    """The oracle must not be a trivial function of the last return (otherwise every dataset ties)."""
    d = tiny["daily_bars"].sort("code", "date")
    tr = pl.col("close") * pl.col("adj_factor")
    d = d.with_columns(r1=(tr / tr.shift(1) - 1).over("code")).select("code", "date", "r1")
    df = tiny["oracle"].join(d, on=["code", "date"]).drop_nulls()
    ic = rank_ic_by_date(df, "expected_return_10d", "r1")
    assert abs(ic.mean()) < 0.5


@pytest.mark.parametrize("table", ["daily_bars", "intraday_bars", "l2_daily", "oracle"])
def test_no_rows_outside_listing(tiny, table):
    s = tiny["stocks"]
    df = tiny[table].join(s.select("code", "list_date", "delist_date"), on="code")
    bad = df.filter((pl.col("date") < pl.col("list_date")) |
                    (pl.col("delist_date").is_not_null() & (pl.col("date") >= pl.col("delist_date"))))
    assert bad.height == 0


@pytest.mark.slow
def test_demo_oracle_rank_ic_is_calibrated(tmp_path):
    """The README preset carries a ceiling of about 0.18-0.22 (10-day RankIC on csi_all)."""
    from factor_pipeline.config import preset
    from factor_pipeline.market.simulator import simulate_market
    from factor_pipeline.market.simulator.calibration import oracle_rank_ic

    simulate_market(preset("demo"), 0, tmp_path / "demo")
    mean, _, n = oracle_rank_ic(tmp_path / "demo")
    assert n > 500
    assert 0.18 <= mean <= 0.22
