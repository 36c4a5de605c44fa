"""Index membership, weights and levels are what the rules say, and consistent with the bars."""

from __future__ import annotations

import numpy as np
import polars as pl

from factor_pipeline.config import preset
from factor_pipeline.market.simulator.universe import INDUSTRIES

SIZES = preset("tiny").index_sizes


def test_index_sizes_and_disjoint_membership(tiny):
    w = tiny["index_weights"]
    counts = w.group_by("index", "date").len()
    for k, n in SIZES.items():
        c = counts.filter(pl.col("index") == k)["len"]
        assert c.max() == n, k
        assert (c >= n - 2).mean() > 0.95, f"{k}: only delistings shrink an index between reviews"
    overlap = w.filter(pl.col("index") != "csi_all").group_by("date", "code").len().filter(pl.col("len") > 1)
    assert overlap.height == 0


def test_weights_are_float_cap_weights_summing_to_one(tiny):
    w = tiny["index_weights"]
    sums = w.group_by("index", "date").agg(pl.col("weight").sum())["weight"]
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    cap = tiny["daily_bars"].select("code", "date", cap=pl.col("close") * pl.col("float_shares"))
    j = w.join(cap, on=["code", "date"]).with_columns(
        implied=pl.col("cap") / pl.col("cap").sum().over("index", "date"))
    np.testing.assert_allclose(j["weight"], j["implied"], rtol=1e-9)


def test_csi300_is_larger_than_csi1000(tiny):
    cap = tiny["daily_bars"].select("code", "date", cap=pl.col("close") * pl.col("float_shares"))
    j = tiny["index_weights"].join(cap, on=["code", "date"]).group_by("index").agg(pl.col("cap").median())
    med = dict(zip(j["index"], j["cap"], strict=True))
    assert med["csi300"] > med["csi500"] > med["csi1000"]


def test_membership_changes_only_at_reviews_or_delistings(tiny):
    w = tiny["index_weights"].filter(pl.col("index") == "csi300")
    dates = sorted(w["date"].unique())
    members = {d: set(w.filter(pl.col("date") == d)["code"]) for d in dates}
    delisted = set(tiny["stocks"].filter(pl.col("delist_date").is_not_null())["code"])
    for a, b in zip(dates[:-1], dates[1:], strict=True):
        added = members[b] - members[a]
        if added:
            assert b.month in (6, 12), f"csi300 changed on {b}"
        assert (members[a] - members[b]) <= delisted or b.month in (6, 12)


def test_index_return_is_weighted_member_return(tiny):
    """On the day after a weight date, the index return equals the weighted member return."""
    d = tiny["daily_bars"].sort("code", "date")
    tr = pl.col("close") * pl.col("adj_factor")
    d = d.with_columns(ret=(tr / tr.shift(1) - 1).over("code"), prev_date=pl.col("date").shift(1).over("code"))
    idx = tiny["index_daily"].sort("index", "date").with_columns(
        iret=(pl.col("close") / pl.col("close").shift(1) - 1).over("index"),
        prev_date=pl.col("date").shift(1).over("index"))
    w = tiny["index_weights"].rename({"date": "prev_date"})
    implied = (w.join(d.select("code", "prev_date", "date", "ret"), on=["code", "prev_date"])
               .group_by("index", "date").agg((pl.col("weight") * pl.col("ret")).sum().alias("implied")))
    j = implied.join(idx, on=["index", "date"])
    assert j.height > 100
    np.testing.assert_allclose(j["iret"], j["implied"], atol=1e-12)


def test_universe_has_ipos_delistings_and_industries(tiny):
    s = tiny["stocks"]
    start = tiny["daily_bars"]["date"].min()
    assert s.filter(pl.col("list_date") > start).height > 5, "IPOs inside the period"
    delisted = s.filter(pl.col("delist_date").is_not_null())
    assert delisted.height > 0, "delisted stocks are present (no survivorship bias)"
    last = tiny["daily_bars"].group_by("code").agg(pl.col("date").max()).join(delisted, on="code")
    assert (last["date"] < last["delist_date"]).all()
    assert set(s["industry"]) <= set(INDUSTRIES) and len(INDUSTRIES) == 31
    assert len(set(s["industry"])) > 20
