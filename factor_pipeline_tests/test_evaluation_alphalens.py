"""RankIC, quantile returns and turnover equal alphalens-reloaded's on the same input (to 1e-9)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from factor_pipeline.evaluation.evaluate import rank_ic_by_date
from factor_pipeline.evaluation.groups import assign_groups, group_excess_by_date, group_turnover

al = pytest.importorskip("alphalens")
pd = pytest.importorskip("pandas")


def _panel(q: int, seed: int = 0, n: int = 150, weeks: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    prev = rng.normal(size=n)
    for w in range(weeks):
        d = date(2020, 1, 3) + timedelta(weeks=w)
        score = 0.7 * prev + 0.3 * rng.normal(size=n)  # persistent, so turnover is neither 0 nor 1
        prev = score
        keep = rng.random(n) > 0.1  # a different set of stocks each date
        rows.append(pl.DataFrame({
            "code": [f"{i:06d}.SZ" for i in range(n)], "date": d, "score": score,
            "y_raw": 0.02 * score + rng.normal(scale=0.05, size=n),
            "y_week": 0.01 * score + rng.normal(scale=0.03, size=n),
        }).filter(pl.Series(keep)))
    return pl.concat(rows)


@pytest.mark.parametrize("q", [5, 20])
def test_matches_alphalens(q):
    df = _panel(q)
    pdf = df.to_pandas()
    pdf["date"] = pd.to_datetime(pdf["date"])
    idx = pd.MultiIndex.from_frame(pdf[["date", "code"]], names=["date", "asset"])
    factor = pd.Series(pdf["score"].to_numpy(), index=idx)
    fwd = pd.DataFrame({"1D": pdf["y_week"].to_numpy(), "10D": pdf["y_raw"].to_numpy()}, index=idx)
    fd = al.utils.get_clean_factor(factor, fwd, quantiles=q, max_loss=0.0)

    # RankIC per date against the 10-day label
    ref_ic = al.performance.factor_information_coefficient(fd)["10D"]
    ours = rank_ic_by_date(df, "score", "y_raw")
    assert len(ours) == len(ref_ic)
    np.testing.assert_allclose(ours["rank_ic"].to_numpy(), ref_ic.to_numpy(), rtol=0, atol=1e-9)

    # groups: our qcut-like grouping is alphalens' quantiles
    grouped = assign_groups(df, q)
    ref_q = fd["factor_quantile"].reset_index()
    mine = grouped.select("date", "code", "group").to_pandas()
    mine["date"] = pd.to_datetime(mine["date"])
    m = mine.merge(ref_q, left_on=["date", "code"], right_on=["date", "asset"])
    assert len(m) == len(df) and (m["group"] == m["factor_quantile"]).all()

    # mean excess (demeaned) return per quantile and date
    ref_ret, _ = al.performance.mean_return_by_quantile(fd, by_date=True, demeaned=True)
    g = group_excess_by_date(grouped, "y_week").to_pandas()
    g["date"] = pd.to_datetime(g["date"])
    ref = ref_ret["1D"].rename("ref").reset_index().merge(g, left_on=["factor_quantile", "date"],
                                                         right_on=["group", "date"])
    assert len(ref) == len(g) == len(ref_ret)
    np.testing.assert_allclose(ref["excess"], ref["ref"], rtol=0, atol=1e-9)

    # top-group turnover per date
    ref_to = al.performance.quantile_turnover(fd["factor_quantile"], q, period=1).dropna()
    to = group_turnover(grouped, q).to_pandas().set_index("date")["turnover"]
    to.index = pd.to_datetime(to.index)
    assert len(to) == len(ref_to)
    np.testing.assert_allclose(to.to_numpy(), ref_to.loc[to.index].to_numpy(), rtol=0, atol=1e-9)
