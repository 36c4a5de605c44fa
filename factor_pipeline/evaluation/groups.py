"""Quantile groups of a score per date, their returns against the universe, and turnover.

Groups follow the usual convention (pandas `qcut` on the date's scores, 1 = lowest, `q` = top):
the edges are the score's quantiles and a stock falls in the bin (edge_{k-1}, edge_k]. The excess
return of a group is its equal-weight mean return minus the mean over every stock of the date.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl


def quantile_groups(score: np.ndarray, q: int) -> np.ndarray:
    """1..q per stock (like pandas.qcut(..., labels=False) + 1); 0 where the score is not finite."""
    out = np.zeros(len(score), dtype=np.int64)
    ok = np.isfinite(score)
    if ok.sum() < q:
        return out
    edges = np.quantile(score[ok], np.linspace(0, 1, q + 1))
    out[ok] = np.searchsorted(edges[1:-1], score[ok], side="left") + 1
    return out


def assign_groups(df: pl.DataFrame, q: int, score: str = "score") -> pl.DataFrame:
    """Adds `group` to (date, code, score, ...) rows; dates with fewer than q scores get group 0."""
    parts = []
    for _, g in df.sort("date", "code").group_by("date", maintain_order=True):
        parts.append(g.with_columns(group=pl.Series(quantile_groups(g[score].to_numpy(), q))))
    return pl.concat(parts) if parts else df.with_columns(group=pl.lit(0, dtype=pl.Int64))


def group_excess_by_date(grouped: pl.DataFrame, ret: str = "ret") -> pl.DataFrame:
    """date, group, mean return, excess over the date's all-stock mean (rows with a group and a return)."""
    g = grouped.filter((pl.col("group") > 0) & pl.col(ret).is_not_null())
    g = g.with_columns(universe_mean=pl.col(ret).mean().over("date"))
    return (g.group_by("date", "group").agg(mean=pl.col(ret).mean(), universe_mean=pl.col("universe_mean").first())
            .with_columns(excess=pl.col("mean") - pl.col("universe_mean")).sort("date", "group"))


def group_turnover(grouped: pl.DataFrame, group: int) -> pl.DataFrame:
    """date, turnover: share of the group's stocks at a date that were not in it at the previous date."""
    sets = (grouped.filter(pl.col("group") == group).group_by("date").agg(pl.col("code")).sort("date"))
    dates, names = sets["date"].to_list(), [set(x) for x in sets["code"].to_list()]
    rows = [(d, len(b - a) / len(b)) for d, a, b in zip(dates[1:], names[:-1], names[1:], strict=True) if b]
    return pl.DataFrame(rows, schema={"date": pl.Date, "turnover": pl.Float64}, orient="row")


def periods_per_year(dates: list[date]) -> float:
    """Rebalance periods per calendar year actually observed (weeks without a trading day count once)."""
    if len(dates) < 2:
        return 52.0
    span = ((max(dates) - min(dates)).days + 7) / 365.25
    return len(dates) / span


def annualised(r: np.ndarray, ppy: float) -> float:
    """Compounded annual return of per-period returns."""
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return float("nan")
    return float(np.prod(1 + r) ** (ppy / len(r)) - 1)


def max_drawdown(r: np.ndarray) -> float:
    """Largest fall of the compounded NAV from its running peak (a negative number, 0 if none)."""
    nav = np.cumprod(1 + np.nan_to_num(r))
    peak = np.maximum.accumulate(np.r_[1.0, nav])[1:]
    return float((nav / peak - 1).min()) if len(nav) else float("nan")


def by_year(dates: list[date], r: np.ndarray) -> dict[str, float]:
    """Compounded return per calendar year of the period's signal date."""
    years = np.array([d.year for d in dates])
    return {str(y): float(np.prod(1 + np.nan_to_num(r[years == y])) - 1) for y in sorted(set(years))}
