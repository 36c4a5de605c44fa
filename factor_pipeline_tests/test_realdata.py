"""Real A-share daily bars (`../shared/realdata`, read in place, never copied into the repo): the oddities
an import reports, adjusted images and labels across a known ex-rights date, and the daily-only chain
(day, week, model_wd) scoring every rebalance date. Skipped where the data is absent."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.builders import gather
from factor_pipeline.datasets.labels import forward_returns
from factor_pipeline.datasets.panel import DAILY_FIELDS, build_panel
from factor_pipeline.market.oddities import LIMIT_TOLERANCE, count_oddities
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline_tests.conftest import REALDATA

pytestmark = pytest.mark.skipif(not (REALDATA / "daily_bars.parquet").exists(), reason="shared/realdata not present")

# 10-for-10 plus bonus issue: the raw close falls 74% on the day, the total-return price rises 3.3%
EX_CODE, EX_DATE = "002695.SZ", date(2016, 9, 22)
PRICES = ("open", "high", "low", "close", "vwap", "limit_up", "limit_down")


def _expected_oddities(folder: Path) -> dict[str, int]:
    """The same counts as market.oddities, computed independently with Polars."""
    bars = pl.read_parquet(folder / "daily_bars.parquet")
    stocks = pl.read_parquet(folder / "stocks.parquet")
    weights = pl.read_parquet(folder / "index_weights.parquet")
    trading = bars.filter(~pl.col("is_suspended"))
    joined = weights.join(bars.select("code", "date", "is_suspended"), on=["code", "date"], how="left")
    return {
        "null_limits": bars.filter(pl.col("limit_up").is_null() | pl.col("limit_down").is_null()).height,
        "suspended_rows": bars.filter(pl.col("is_suspended")).height,
        "zero_volume_trading": trading.filter(pl.col("volume") == 0).height,
        "st_rows": bars.filter(pl.col("is_st").fill_null(False)).height if "is_st" in bars.columns else 0,
        "outside_limits": trading.filter((pl.col("high") > pl.col("limit_up") + LIMIT_TOLERANCE)
                                         | (pl.col("low") < pl.col("limit_down") - LIMIT_TOLERANCE)).height,
        "vwap_outside_range": bars.filter((pl.col("vwap") < pl.col("low") - 0.005)
                                          | (pl.col("vwap") > pl.col("high") + 0.005)).height,
        "unknown_industry": stocks.filter(pl.col("industry").is_null()
                                          | (pl.col("industry").str.to_lowercase() == "unknown")).height,
        "members_without_bars": joined.filter(pl.col("is_suspended").is_null()).height,
        "members_suspended": joined.filter(pl.col("is_suspended").fill_null(False)).height,
    }


def test_import_counts_every_oddity_of_real_data():
    counts = count_oddities(connect_memory(), file_source(REALDATA).relations())
    assert counts == _expected_oddities(REALDATA)
    # what the data's README says is in it: IPO days without limits, ST names, relisting days beyond
    # the limits, stocks of unknown industry, suspended rows
    for k in ("null_limits", "st_rows", "outside_limits", "unknown_industry", "suspended_rows"):
        assert counts[k] > 0, k


def _one_stock_panel(code: str, lo: str, hi: str):
    rels = file_source(REALDATA).relations()
    return build_panel(connect_memory(), {
        "daily_bars": f"(SELECT * FROM {rels['daily_bars']} WHERE code = '{code}' "
                      f"AND CAST(date AS DATE) BETWEEN DATE '{lo}' AND DATE '{hi}')",
        "index_weights": f"(SELECT * FROM {rels['index_weights']} WHERE code = '{code}')"}, parts=frozenset())


def _with_prices(panel, scale: np.ndarray):
    """The panel with prices multiplied by `scale` [T], shares divided by it (market cap unchanged) and
    adj_factor set to 1."""
    daily = panel.daily.copy()
    for k in PRICES:
        daily[..., DAILY_FIELDS.index(k)] *= scale.astype(np.float32)
    daily[..., DAILY_FIELDS.index("float_shares")] /= scale.astype(np.float32)
    daily[..., DAILY_FIELDS.index("adj_factor")] = 1.0
    return dataclasses.replace(panel, daily=daily)


def test_images_and_labels_are_adjusted_across_an_ex_rights_date():
    panel = _one_stock_panel(EX_CODE, "2016-01-01", "2017-03-31")
    te = panel.date_index(EX_DATE)
    close, adj = panel.field("close")[0].astype(np.float64), panel.field("adj_factor")[0].astype(np.float64)
    assert close[te] / close[te - 1] - 1 < -0.5 and adj[te] / adj[te - 1] > 3, "a known ex-rights date"
    assert not panel.suspended[0, te - 1: te + 12].any()

    # what the images must equal: the market with total-return prices up front (adj_factor = 1)
    adjusted = _with_prices(panel, adj)
    unadjusted = _with_prices(panel, np.ones_like(adj))  # raw prices read as if nothing happened
    t = te + 5  # windows ending here hold the ex-rights date (week: 150 days, day: 30 days)
    one = (torch.tensor([0]), torch.tensor([t]))
    for name in ("week", "day"):
        x = gather(dataset_base(panel), name, *one)
        assert torch.allclose(x, gather(dataset_base(adjusted), name, *one), rtol=1e-5, atol=1e-6), name
        assert not torch.allclose(x, gather(dataset_base(unadjusted), name, *one), rtol=1e-2), name
    ret = gather(dataset_base(panel), "day", *one)[0, -1 - (t - te), 5]  # the `ret` feature on the ex date
    assert abs(float(ret) - (close[te] * adj[te] / (close[te - 1] * adj[te - 1]) - 1)) < 1e-5
    assert abs(float(ret)) < 0.11, "an ex-rights day is no crash in the image"

    # a 10-day label straddling the ex date is a total return, not the raw price fall
    ts = te - 5
    y, y_adj, y_raw = (forward_returns(p)[0, ts] for p in (panel, adjusted, unadjusted))
    assert y == pytest.approx(y_adj, rel=1e-5)
    assert abs(y) < 0.5 and y_raw < -0.5


@pytest.fixture(scope="module")
def csi300_slice(tmp_path_factory) -> Path:
    """The CSI300 members of 2015-2018 and their tables through February 2018, as contract files in a
    temporary folder: the real market, small enough for a CPU test."""
    out = tmp_path_factory.mktemp("real_csi300")
    weights = pl.read_parquet(REALDATA / "index_weights.parquet")
    codes = weights.filter((pl.col("index") == "csi300") & (pl.col("date") <= date(2018, 2, 28)))["code"].unique()
    end = pl.col("date") <= date(2018, 2, 28)
    pl.read_parquet(REALDATA / "stocks.parquet").filter(pl.col("code").is_in(codes.implode())) \
        .write_parquet(out / "stocks.parquet")
    pl.read_parquet(REALDATA / "daily_bars.parquet").filter(pl.col("code").is_in(codes.implode()) & end) \
        .write_parquet(out / "daily_bars.parquet")
    # csi_all re-weighted over the kept stocks so each date still sums to 1 (the contract)
    kept = weights.filter(pl.col("code").is_in(codes.implode()) & end)
    kept = kept.with_columns(weight=pl.col("weight") / pl.col("weight").sum().over("index", "date"))
    kept.write_parquet(out / "index_weights.parquet")
    pl.read_parquet(REALDATA / "index_daily.parquet").filter(end).write_parquet(out / "index_daily.parquet")
    return out


@pytest.mark.slow
def test_daily_only_chain_scores_every_rebalance_date(csi300_slice, tmp_path, monkeypatch, capfd):
    from factor_pipeline.cli import main
    from factor_pipeline.market.warehouse import Warehouse

    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACTOR_PIPELINE_TRAINING", "tiny")
    assert main(["run", "--data", str(csi300_slice), "--start", "2017-01-01", "--end", "2018-02-28",
                 "--universe", "csi300", "--name", "real"]) == 0
    printed = capfd.readouterr().out  # the market stage prints from its own process
    assert "null_limits" in printed and "sample universe: csi300" in printed

    # rebalance (signal) dates of 2018, when model_wd has its first fit (on the weak factors of 2017): the
    # last trading date of each week, from the bars themselves
    days = pl.read_parquet(csi300_slice / "daily_bars.parquet", columns=["date"])["date"].unique().sort()
    weeks = pl.DataFrame({"date": days}).with_columns(week=pl.col("date").dt.truncate("1w"))
    signals = weeks.group_by("week").agg(pl.col("date").max())["date"]
    expected = sorted(d for d in signals.to_list() if date(2018, 1, 1) <= d <= date(2018, 2, 28))
    every = sorted(d for d in signals.to_list() if date(2017, 1, 1) <= d <= date(2018, 2, 28))
    assert len(expected) >= 7

    wh = Warehouse()
    with wh.connect(read_only=True) as con:
        scores = con.sql("SELECT model, date, count(*) AS n FROM scores GROUP BY ALL").pl()
        weak = con.sql("SELECT dataset, date, count(*) AS n FROM weak_factors GROUP BY ALL").pl()
        members = con.sql("SELECT date, count(*) AS n FROM index_weights WHERE \"index\" = 'csi300' "
                          "GROUP BY ALL").pl()
    assert set(scores["model"]) == {"model_wd"}, "only the daily-only combination is runnable"
    assert sorted(scores["date"].to_list()) == expected, "model_wd scores every rebalance date of 2018"
    assert int(scores["n"].min()) >= 250, "most of the CSI300 is scored each week"
    assert int(scores["n"].max()) <= int(members["n"].max())
    for name in ("day", "week"):
        got = set(weak.filter(pl.col("dataset") == name)["date"].to_list())
        assert sorted(got) == every, f"{name} has weak factors on every rebalance date of 2017 and 2018"
    assert set(weak["dataset"]) == {"day", "week"}

    doc = json.loads((tmp_path / "home" / "reports" / "real" / "metrics.json").read_text())
    assert sorted(doc["not_runnable"]) == ["model1", "model2", "model3", "model4"]
    assert "model_wd" in doc["models"] and doc["models"]["model_wd"]["csi300"]["rank_ic_mean"] is not None
    assert doc["run"]["universe"] == "csi300" and doc["run"]["oddities"]["null_limits"] >= 0
    assert "csi1000" not in doc["portfolios"] and "csi300" in doc["portfolios"]
