"""The report's evaluation of any set of scores (weak-factor outputs, Model1-4, baselines, oracle).

Inputs are plain tables: scores (code, date, name, score), labels (code, date, y_raw, y_week),
the universe and common factors at the signal dates (code, date, csi_all, csi300, ..., factors).
RankIC uses the 10-day label y_raw; groups, their excess returns, risk and turnover use y_week, the
return from one rebalance to the next, so the group NAVs compound without overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import polars as pl

from factor_pipeline.evaluation.groups import (
    annualised,
    assign_groups,
    by_year,
    group_excess_by_date,
    group_turnover,
    max_drawdown,
    periods_per_year,
)
from factor_pipeline.evaluation.ic import ic_summary

UNIVERSES: dict[str, int] = {"csi_all": 20, "csi300": 5, "csi500": 5, "csi1000": 5}  # universe -> groups
MIN_STOCKS = 10  # a date enters RankIC with at least this many scored, labelled stocks


@dataclass
class Evaluation:
    metrics: dict[str, dict[str, dict]] = field(default_factory=dict)  # name -> universe -> figures
    ic: pl.DataFrame | None = None  # name, universe, date, rank_ic
    groups: pl.DataFrame | None = None  # name, universe, date, group, mean, universe_mean, excess
    exposures: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> common factor -> corr
    correlations: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> name -> corr


def rank_ic_by_date(df: pl.DataFrame, score: str = "score", label: str = "y_raw") -> pl.DataFrame:
    """date, rank_ic (Spearman with average ranks) over rows where both are present."""
    d = df.filter(pl.col(score).is_not_null() & pl.col(label).is_not_null() & pl.col(score).is_finite())
    return (d.group_by("date").agg(rank_ic=pl.corr(pl.col(score).rank("average"), pl.col(label).rank("average")),
                                   n=pl.len())
            .filter(pl.col("n") >= MIN_STOCKS).drop("n").sort("date"))


def mean_cross_sectional_corr(df: pl.DataFrame, a: str, b: str) -> float:
    """Pearson correlation of two columns across stocks on each date, averaged over dates."""
    d = df.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
    per = d.group_by("date").agg(c=pl.corr(a, b), n=pl.len()).filter(pl.col("n") >= MIN_STOCKS)["c"]
    v = per.drop_nulls().drop_nans().to_numpy()
    return round(float(v.mean()), 4) if len(v) else float("nan")


def score_universe(rows: pl.DataFrame, q: int) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """Figures of one score in one universe; rows: code, date, score, y_raw, y_week."""
    ic = rank_ic_by_date(rows)
    m: dict = ic_summary(ic["rank_ic"].to_list())
    grouped = assign_groups(rows.filter(pl.col("y_week").is_not_null()), q)
    g = group_excess_by_date(grouped, "y_week")
    dates = sorted(g["date"].unique().to_list())
    ppy = periods_per_year(dates)
    wide = {k: sub.sort("date") for (k,), sub in g.group_by("group")}
    m["group_excess_ann"] = [round(annualised(wide[k]["excess"].to_numpy(), ppy), 4) if k in wide else None
                             for k in range(q, 0, -1)]
    top = wide.get(q)
    if top is None or top.height == 0:
        m.update(top_excess_ann=float("nan"), top_turnover_weekly=float("nan"))
        return m, ic, g
    r, e, td = top["mean"].to_numpy(), top["excess"].to_numpy(), top["date"].to_list()
    ab, ex = by_year(td, r), by_year(td, e)
    m.update(
        top_excess_ann=m["group_excess_ann"][0],
        top_turnover_weekly=round(float(group_turnover(grouped, q)["turnover"].mean() or np.nan), 4),
        top_abs_ann=round(annualised(r, ppy), 4),
        top_vol_ann=round(float(np.nanstd(r, ddof=1) * np.sqrt(ppy)), 4),
        top_max_drawdown=round(max_drawdown(r), 4),
        top_by_year={y: {"absolute": round(ab[y], 4), "excess": round(ex[y], 4)} for y in ab},
        periods=len(dates),
    )
    return m, ic, g


def evaluate(scores: pl.DataFrame, labels: pl.DataFrame, stock_info: pl.DataFrame,
             factors: tuple[str, ...] = ()) -> Evaluation:
    """Every figure of the report's tables for each score name in `scores`."""
    ev = Evaluation()
    joined = scores.join(labels.select("code", "date", "y_raw", "y_week"), on=["code", "date"], how="left") \
        .join(stock_info, on=["code", "date"], how="left")
    ics, groups = [], []
    for (name,), rows in sorted(joined.group_by("name"), key=lambda kv: kv[0][0]):
        ev.metrics[name] = {}
        for uni, q in UNIVERSES.items():
            sub = rows.filter(pl.col(uni).fill_null(False))
            if sub.height == 0:
                continue
            m, ic, g = score_universe(sub, q)
            ev.metrics[name][uni] = m
            ics.append(ic.with_columns(name=pl.lit(name), universe=pl.lit(uni)))
            groups.append(g.with_columns(name=pl.lit(name), universe=pl.lit(uni)))
        every = rows.filter(pl.col("csi_all").fill_null(False))
        ev.exposures[name] = {f: mean_cross_sectional_corr(every, "score", f) for f in factors}
    ev.ic = pl.concat(ics) if ics else None
    ev.groups = pl.concat(groups) if groups else None
    ev.correlations = score_correlations(scores)
    return ev


def score_correlations(scores: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Mean cross-sectional Pearson correlation between every pair of score names."""
    wide = scores.pivot(on="name", index=["code", "date"], values="score")
    names = sorted(c for c in wide.columns if c not in ("code", "date"))
    out: dict[str, dict[str, float]] = {n: {n: 1.0} for n in names}
    for a, b in combinations(names, 2):
        out[a][b] = out[b][a] = mean_cross_sectional_corr(wide, a, b)
    return out
