"""Weekly index enhancement of one index with one model's scores: risk model, optimiser and the
book, stepped together so each week's turnover limit starts from what was really held.

At signal date t: the universe is csi_all at t (plus anything still held); alpha is the score
z-scored over it; a stock suspended at t or closing at its limit-up cannot be bought, one
suspended or closing at its limit-down cannot be sold. Trades execute at t+1's VWAP (Book).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.portfolio.backtest import Book, Prices
from factor_pipeline.portfolio.optimiser import TE, Limits, Problem, ex_ante_te, settle, solve, violations
from factor_pipeline.portfolio.risk import RiskModel, StoredRisk


def prices_of(panel: Panel) -> Prices:
    f = panel.field
    adj = f("adj_factor").astype(np.float64)
    with np.errstate(invalid="ignore"):
        no_buy = panel.suspended | ~panel.listed | (f("low") >= f("limit_up"))
        no_sell = panel.suspended | ~panel.listed | (f("high") <= f("limit_down"))
    return Prices(f("close") * adj, f("vwap") * adj, no_buy, no_sell)


Resume = tuple[int, np.ndarray, float | None]  # panel day, values held at its close, cash (None: values are weights)


@dataclass
class EnhancedRun:
    index: str
    model: str
    book: Book
    weights: pl.DataFrame  # date, index, model, code, weight (targets at each signal date)
    audit: pl.DataFrame  # date, max_violation, relaxed, ex_ante_te, solve_seconds, turnover_target
    held: pl.DataFrame  # date (execution day), index, model, code, weight, value, cash at its close: where a
    # later run resumes (value and cash: the book's own numbers, so it resumes exactly)
    seconds: list[float] = field(default_factory=list)


def enhance(panel: Panel, risk: RiskModel | StoredRisk, scores: np.ndarray, bench: np.ndarray, index: str, model: str,
            limits: Limits | None = None, resume: Resume | None = None,
            method: str = "conic", on_solve: Callable[[str], None] | None = None) -> EnhancedRun:
    """scores, bench: [N, D] at the risk model's signal dates (NaN: no score; bench weights sum to 1).

    `resume`: (panel day, values held at its close, cash) of an earlier run's last execution (cash None:
    the values are weights): the book starts from them, so the first week's turnover limit applies as in
    an uninterrupted run. `method`: the optimiser's form (optimiser.solve); `on_solve(what)` is told of
    each week solved (progress)."""
    lim = limits or Limits(te=TE[index])
    prices = prices_of(panel)
    f = panel.field
    with np.errstate(invalid="ignore"):
        up_at_t = panel.suspended | (f("close") >= f("limit_up"))
        down_at_t = panel.suspended | (f("close") <= f("limit_down"))
    book, rows, audit, held = None, [], [], []
    if resume is not None:
        book = Book.resume(prices, *resume)
    n_t = len(panel.dates)
    for k, t in enumerate(risk.signals):
        s = scores[:, k]
        if t + 1 >= n_t or not np.isfinite(s).any() or not np.isfinite(bench[:, k]).all():
            continue
        if book is None:
            book = Book(prices, int(t))
        else:
            book.advance(int(t))
        prev = book.weights() if (book.executed or resume is not None) else None
        universe = panel.members["csi_all"][:, t] & panel.listed[:, t] & np.isfinite(s)
        u = s[universe]  # moments over the universe's values alone: the same whatever names the panel spans
        z = np.where(universe, (s - u.mean()) / (u.std() or 1.0), 0.0)
        cov, spec = risk.covariance(int(t))
        x = risk.exposures(k)
        n_ind = len(risk.industries)
        p = Problem(z, bench[:, k], bench[:, k] > 0, x[:, n_ind:], x[:, :n_ind], cov, spec, prev,
                    can_buy=universe & ~up_at_t[:, t], can_sell=~down_at_t[:, t])
        sol = solve(p, lim, method)
        target = settle(p, sol.weights)
        v = violations(p, target, sol.limits)
        te = ex_ante_te(p, target)
        date = panel.dates[t]
        keep = target > 0
        rows.append(pl.DataFrame({"date": np.repeat(date, keep.sum()), "index": index, "model": model,
                                  "code": panel.codes[keep], "weight": target[keep]}))
        audit.append({"date": date.astype(object), "max_violation": max(v.values()), "worst": max(v, key=v.get),
                      "relaxed": ", ".join(sol.relaxed), "status": sol.status, "ex_ante_te": te,
                      "solve_seconds": sol.seconds, "solver_seconds": sol.solver_seconds,
                      "turnover_target": float(np.abs(target - prev).sum() / 2) if prev is not None else 1.0})
        book.execute(int(t) + 1, target)
        if on_solve:
            on_solve(f"{index} {model} {date}: {sol.seconds:.2f} s" + (f", relaxed {', '.join(sol.relaxed)}"
                                                                     if sol.relaxed else ""))
        w, on = book.weights(), book.h != 0
        held.append(pl.DataFrame({"date": np.repeat(panel.dates[t + 1], on.sum()), "index": index, "model": model,
                                  "code": panel.codes[on], "weight": w[on], "value": book.h[on],
                                  "cash": book.cash}))
    if book is None:
        raise ValueError(f"no signal date with {model} scores and {index} weights to build a portfolio on")
    book.advance(n_t - 1)
    weights = pl.concat(rows).with_columns(pl.col("date").cast(pl.Date))
    aud = pl.DataFrame(audit).with_columns(pl.col("date").cast(pl.Date))
    hold = pl.concat(held).with_columns(pl.col("date").cast(pl.Date))
    return EnhancedRun(index, model, book, weights, aud, hold, aud["solve_seconds"].to_list())
