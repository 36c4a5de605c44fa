"""All enhanced portfolios of a run (index x model) from plain tables: what the portfolio asset stores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.parallel import in_order
from factor_pipeline.portfolio.enhance import EnhancedRun, Resume, enhance
from factor_pipeline.portfolio.performance import portfolio_figures
from factor_pipeline.portfolio.risk import RiskModel, StoredRisk
from factor_pipeline.progress import Progress

INDICES = ("csi300", "csi500", "csi1000")


def dense(long: pl.DataFrame, codes: np.ndarray, dates: np.ndarray, value: str) -> np.ndarray:
    """[N, D] from (code, date, value) rows; NaN where there is no row."""
    out = np.full((len(codes), len(dates)), np.nan)
    if long.height:
        i = np.searchsorted(codes, long["code"].to_numpy())
        t = np.searchsorted(dates, long["date"].to_numpy().astype("datetime64[D]"))
        ok = (i < len(codes)) & (t < len(dates))
        ok[ok] &= (codes[i[ok]] == long["code"].to_numpy()[ok]) & (dates[t[ok]] == long["date"].to_numpy()[ok])
        out[i[ok], t[ok]] = long[value].to_numpy()[ok]
    return out


def benchmark_weights(weights: pl.DataFrame, codes: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """[N, D] index weights in force at each date (latest weight date at or before it), summing to 1."""
    wdates = np.sort(weights["date"].unique().to_numpy().astype("datetime64[D]"))
    w = dense(weights, codes, wdates, "weight")
    last = np.searchsorted(wdates, dates, side="right") - 1
    out = np.where(last >= 0, np.nan_to_num(w[:, np.clip(last, 0, None)]), np.nan)
    # exactly rounded sums (fsum): the same weights whatever other names the panel spans
    tot = np.array([math.fsum(col[col > 0]) for col in out.T])
    return out / np.where(tot > 0, tot, 1)


@dataclass
class PortfolioRuns:
    runs: list[EnhancedRun]
    risk: RiskModel | StoredRisk

    def weights(self) -> pl.DataFrame:
        return pl.concat([r.weights for r in self.runs])

    def nav(self, panel: Panel, bench_close: dict[str, np.ndarray],
            levels: dict[tuple[str, str], tuple[float, float]] | None = None) -> pl.DataFrame:
        """Daily NAV and benchmark of each portfolio from its first day. `levels[(index, model)]`: the
        stored (nav, bench) on that day when a run resumes, so the series goes on where it stood rather
        than restarting at 1."""
        rows = []
        for r in self.runs:
            d = np.asarray(r.book.days)
            b = bench_close[r.index][d]
            nav0, bench0 = (levels or {}).get((r.index, r.model), (1.0, 1.0))
            rows.append(pl.DataFrame({"date": panel.dates[d], "index": r.index, "model": r.model,
                                      "nav": np.asarray(r.book.nav) * nav0, "bench": b / b[0] * bench0}))
        return pl.concat(rows).with_columns(pl.col("date").cast(pl.Date))

    def held(self) -> pl.DataFrame:
        return pl.concat([r.held for r in self.runs])

    def audit(self) -> pl.DataFrame:
        return pl.concat([r.audit.with_columns(index=pl.lit(r.index), model=pl.lit(r.model),
                                               realised_turnover=pl.Series(r.book.turnover),
                                               cost=pl.Series(r.book.costs),
                                               cancelled=pl.Series(r.book.cancelled)) for r in self.runs])


def resume_points(held: pl.DataFrame | None, panel: Panel) -> dict[tuple[str, str], Resume]:
    """(index, model) -> (panel day, values, cash) of the latest stored holdings (rows of the `holdings`
    table): the book's own values and cash where stored, else its weights (tables of older versions)."""
    out: dict[tuple[str, str], Resume] = {}
    if held is None or held.height == 0:
        return out
    for (index, model), g in held.group_by("index", "model"):
        last = g.filter(pl.col("date") == g["date"].max())
        day = int(np.searchsorted(panel.dates, np.datetime64(last["date"][0], "D")))
        if day >= len(panel.dates) or panel.dates[day] != np.datetime64(last["date"][0], "D"):
            continue  # the panel does not reach back to it: start afresh
        exact = "value" in last.columns and last["value"].null_count() == 0 and last["cash"].null_count() == 0
        w = np.zeros(len(panel.codes))
        i = np.searchsorted(panel.codes, last["code"].to_numpy())
        ok = (i < len(panel.codes))
        ok[ok] &= panel.codes[i[ok]] == last["code"].to_numpy()[ok]
        w[i[ok]] = last["value" if exact else "weight"].to_numpy()[ok]
        out[(index, model)] = (day, w, float(last["cash"][0]) if exact else None)
    return out


def run_portfolios(panel: Panel, risk: RiskModel | StoredRisk, scores: pl.DataFrame, index_weights: pl.DataFrame,
                   models: list[str], indices: tuple[str, ...] = INDICES,
                   resume: dict[tuple[str, str], Resume] | None = None,
                   progress: Progress | None = None, workers: int = 1) -> PortfolioRuns:
    """One weekly enhancement per (index, model) over the risk model's signal dates, each resuming from
    `resume[(index, model)]` when given; `progress` counts the weekly solves. `workers` > 1: the portfolios
    are solved side by side in that many processes, each given a copy of the panel and the risk model
    (Clarabel is single-threaded and each portfolio's weeks depend only on its own: the same weights)."""
    sdates = panel.dates[np.asarray(risk.signals, dtype=int)]
    todo = []
    for index in indices:
        bench = benchmark_weights(index_weights.filter(pl.col("index") == index), panel.codes, sdates)
        for model in models:
            s = dense(scores.filter(pl.col("model") == model), panel.codes, sdates, "score")
            if np.isfinite(s).any():
                todo.append((index, model, s, bench))
    if progress:  # the weeks enhance() solves: a score, index weights, and a next day to trade on
        tradable = np.asarray(risk.signals, dtype=int) + 1 < len(panel.dates)
        progress.start(sum(int((np.isfinite(s).any(0) & np.isfinite(b).all(0) & tradable).sum())
                           for _, _, s, b in todo))
    if workers > 1 and len(todo) > 1:
        tasks = [(s, bench, index, model, (resume or {}).get((index, model))) for index, model, s, bench in todo]
        runs = []
        for run in in_order(_enhance, tasks, min(workers, len(todo)), _hold, (panel, risk)):
            runs.append(run)
            if progress:
                progress.step(len(run.seconds), f"{run.index} {run.model}: {len(run.seconds)} weeks solved")
        return PortfolioRuns(runs, risk)
    step = (lambda what: progress.step(1, what)) if progress else None
    runs = [enhance(panel, risk, s, bench, index, model, resume=(resume or {}).get((index, model)), on_solve=step)
            for index, model, s, bench in todo]
    return PortfolioRuns(runs, risk)


_HELD: dict = {}


def _hold(panel: Panel, risk: RiskModel | StoredRisk) -> None:
    """A worker's copy of what every portfolio reads."""
    _HELD.update(panel=panel, risk=risk)


def _enhance(scores: np.ndarray, bench: np.ndarray, index: str, model: str, resume: Resume | None) -> EnhancedRun:
    return enhance(_HELD["panel"], _HELD["risk"], scores, bench, index, model, resume=resume)


def figures(nav: pl.DataFrame, audit: pl.DataFrame) -> dict[str, dict[str, dict]]:
    """index -> model -> the report's per-portfolio figures, with the constraint audit's worst week."""
    out: dict[str, dict[str, dict]] = {}
    for (index, model), g in nav.group_by("index", "model"):
        g = g.sort("date")
        a = audit.filter((pl.col("index") == index) & (pl.col("model") == model)).sort("date")
        exec_dates = set(a["date"].to_list())
        dates = g["date"].to_list()
        pos = [i + 1 for i, d in enumerate(dates) if d in exec_dates]  # execution is the day after the signal
        f = portfolio_figures(g["nav"].to_numpy(), g["bench"].to_numpy(), dates, pos)
        f["max_constraint_violation"] = float(a["max_violation"].max())
        f["weeks_relaxed"] = int((a["relaxed"] != "").sum())
        f["turnover_weekly"] = round(float(a["realised_turnover"].mean()), 4)
        f["solve_seconds_median"] = round(float(a["solve_seconds"].median()), 4)
        out.setdefault(index, {})[model] = f
    return out
