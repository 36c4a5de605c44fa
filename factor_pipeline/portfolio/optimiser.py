"""The index-enhancement optimiser: the report's constraints, each a small function that reads like its
formula (the cvxpy reference), a documented order of relaxation when they cannot all hold, and the
same problem solved fast in Clarabel's sparse standard form (conic.py).

maximise   alpha' w
subject to w >= 0, sum(w) = 1                                    long only, fully invested
           |X_style' (w - w_b)| <= style_bound                    style active exposure
           |H' (w - w_b)| <= industry_bound                       industry active weight (wider where
                                                                  unsellable holdings force it: industry_limits)
           sqrt((w - w_b)' (X F X' + diag(s)) (w - w_b)) <= te     ex-ante tracking error (annual)
           sum(w over index members) >= member_min
           sum|w - w_prev| / 2 <= turnover                        weekly one-way turnover
           w <= max(name_cap, w_b)                                single-name cap
           w <= w_prev where a stock cannot be bought (suspended, closed limit-up)
           w >= w_prev where it cannot be sold (suspended, closed limit-down)
Relaxation (RELAXATION, in order, each step kept once taken): turnover 0.3, 0.5, then none;
tracking error +1%, +3%; style bound 1.0; industry bound 5%; member share 50%.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import cvxpy as cp
import numpy as np

from factor_pipeline.portfolio import conic
from factor_pipeline.portfolio.backtest import total


@dataclass(frozen=True)
class Limits:
    style_bound: float = 0.5
    industry_bound: float = 0.02
    te: float = 0.05
    member_min: float = 0.8
    turnover: float | None = 0.2  # None: no limit (the first build)
    name_cap: float = 0.05


TE = {"csi300": 0.04, "csi500": 0.05, "csi1000": 0.05}

RELAXATION: list[tuple[str, dict]] = [
    ("turnover 0.3", {"turnover": 0.3}), ("turnover 0.5", {"turnover": 0.5}), ("turnover off", {"turnover": None}),
    ("te +1%", {"te": +0.01}), ("te +3%", {"te": +0.03}), ("style 1.0", {"style_bound": 1.0}),
    ("industry 5%", {"industry_bound": 0.05}), ("members 50%", {"member_min": 0.5}),
]


@dataclass
class Problem:
    alpha: np.ndarray  # [N] expected active return (the score, standardised)
    benchmark: np.ndarray  # [N] index weights (0 outside the index), summing to 1
    members: np.ndarray  # [N] bool: in the index
    styles: np.ndarray  # [N, S] style exposures
    industry: np.ndarray  # [N, I] industry dummies
    factor_cov: np.ndarray  # [K, K] annual, K = I + S with exposures = [industry, styles]
    specific_var: np.ndarray  # [N] annual
    previous: np.ndarray | None = None  # [N] weights held before this rebalance (drifted)
    can_buy: np.ndarray | None = None  # [N] bool
    can_sell: np.ndarray | None = None  # [N] bool

    @property
    def exposures(self) -> np.ndarray:
        return np.concatenate([self.industry, self.styles], axis=1)


@dataclass
class Solution:
    weights: np.ndarray
    status: str
    limits: Limits
    relaxed: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole solve, relaxation steps included
    solver_seconds: float = 0.0  # of which Clarabel's own work (setup and iterations)


def _bounds(p: Problem, lim: Limits) -> tuple[np.ndarray, np.ndarray]:
    n = len(p.alpha)
    prev = p.previous if p.previous is not None else np.zeros(n)
    lo, hi = np.zeros(n), np.maximum(lim.name_cap, p.benchmark)
    if p.can_buy is not None:
        hi = np.where(p.can_buy, hi, np.minimum(hi, prev))
    if p.can_sell is not None:
        lo = np.where(p.can_sell, lo, prev)
        hi = np.maximum(hi, lo)
    return lo, hi


def industry_limits(p: Problem, lim: Limits) -> np.ndarray:
    """[I] bound on each industry's active weight: `industry_bound`, widened (by 1e-6 beyond what is
    forced) where holdings that cannot be sold, or names that cannot be bought, leave no portfolio
    inside the band: e.g. a suspended 5% holding in an industry the index does not hold."""
    lo, hi = _bounds(p, lim)
    wb = p.industry.T @ p.benchmark
    forced = np.maximum(p.industry.T @ lo - wb, wb - p.industry.T @ hi)
    return np.maximum(lim.industry_bound, forced + 1e-6)


def _constraints(p: Problem, w: cp.Variable, lim: Limits) -> list:
    """Each of the report's constraints, with the problem's numbers as constants."""
    d = w - p.benchmark
    lo, hi = _bounds(p, lim)
    f = (p.factor_cov + p.factor_cov.T) / 2
    risk_t = (p.exposures @ np.linalg.cholesky(f + np.eye(len(f)) * 1e-10)).T  # (X L)': factor part of the TE
    cons = [cp.sum(w) == 1, w >= lo, w <= hi,
            cp.abs(p.styles.T @ d) <= lim.style_bound,
            cp.abs(p.industry.T @ d) <= industry_limits(p, lim),
            cp.norm(cp.hstack([risk_t @ d, cp.multiply(np.sqrt(np.clip(p.specific_var, 0, None)), d)]), 2) <= lim.te,
            p.members.astype(np.float64) @ w >= lim.member_min]
    if lim.turnover is not None and p.previous is not None:
        cons.append(cp.norm(w - p.previous, 1) / 2 <= lim.turnover)
    return cons


def _relax(lim: Limits, change: dict, base: Limits) -> Limits:
    return replace(lim, **{k: (base.te + v if k == "te" else v) for k, v in change.items()})


def _subset(p: Problem, keep: np.ndarray) -> Problem:
    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[keep]

    return Problem(p.alpha[keep], p.benchmark[keep], p.members[keep], p.styles[keep], p.industry[keep], p.factor_cov,
                   p.specific_var[keep], cut(p.previous), cut(p.can_buy), cut(p.can_sell))


def _solve_cvxpy(p: Problem, lim: Limits) -> tuple[np.ndarray | None, str, float]:
    """The constraints as written above, through cvxpy: the reference the fast form is tested against."""
    w = cp.Variable(len(p.alpha))
    prob = cp.Problem(cp.Maximize(p.alpha @ w), _constraints(p, w, lim))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "may be inaccurate": the status says so, and we audit
            prob.solve(solver=cp.CLARABEL, tol_gap_abs=conic.TOL, tol_gap_rel=conic.TOL,
                       tol_feas=conic.TOL)
    except cp.SolverError:
        return None, "solver_error", 0.0
    ok = prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and w.value is not None
    stats = prob.solver_stats
    bare = (stats.solve_time or 0.0) + (stats.setup_time or 0.0)
    return (np.asarray(w.value, dtype=np.float64) if ok else None), prob.status, bare


def _solve_conic(p: Problem, lim: Limits) -> tuple[np.ndarray | None, str, float]:
    lo, hi = _bounds(p, lim)
    r = conic.solve_conic(p.alpha, p.benchmark, p.members, p.exposures, p.industry.shape[1], p.factor_cov,
                          p.specific_var, lo, hi, p.previous, lim.style_bound, industry_limits(p, lim), lim.te,
                          lim.member_min, lim.turnover)
    return r.weights, r.status, r.solver_seconds


def solve(p: Problem, limits: Limits, method: str = "conic") -> Solution:
    """Optimal weights under `limits`, relaxing in RELAXATION order until feasible.

    method "conic" hands the problem to Clarabel in its sparse standard form (conic.py, ~30x faster
    over ~3,400 names); "cvxpy" builds the constraints above through cvxpy (the reference: same optimum).
    Names that must stay at zero (no benchmark weight, nothing held, cannot be bought: outside a
    narrowed sample universe) are left out of the problem: every constraint is a sum over names in
    which they add nothing, so the optimum is the same and the solve is smaller."""
    lo, hi = _bounds(p, limits)
    keep = (hi > 0) | (lo > 0) | (p.benchmark > 0)
    if not keep.all():
        sol = solve(_subset(p, keep), limits, method)
        full = np.zeros(len(p.alpha))
        full[keep] = sol.weights
        return replace(sol, weights=full)
    run = {"conic": _solve_conic, "cvxpy": _solve_cvxpy}[method]
    t0 = time.perf_counter()
    lim, relaxed, bare = limits, [], 0.0
    for name, change in [("", {})] + RELAXATION:
        if name:
            lim = _relax(lim, change, limits)
            relaxed.append(name)
        w, status, seconds = run(p, lim)
        bare += seconds
        if w is not None:
            wv = np.clip(w, 0, None)
            return Solution(wv / wv.sum(), status, lim, relaxed, time.perf_counter() - t0, bare)
    raise RuntimeError(f"no feasible portfolio even after relaxing {', '.join(relaxed)}")


DUST = 1e-6  # a target weight below this is not traded


def settle(p: Problem, w: np.ndarray) -> np.ndarray:
    """The weights actually traded: dust (below DUST, a solver's near-zeros) dropped where it may be
    sold, the rest rescaled to sum 1. What a run stores as targets is then exactly what its book
    executed, so a run resumed from stored holdings solves the same problems as an uninterrupted one."""
    prev = p.previous if p.previous is not None else np.zeros(len(w))
    stuck = np.zeros(len(w), dtype=bool) if p.can_sell is None else (~p.can_sell & (prev > 0))
    out = np.where((w >= DUST) | stuck, w, 0.0)
    return out / total(out)  # over the names held: the same sum whatever zeros the panel spans


def violations(p: Problem, w: np.ndarray, lim: Limits) -> dict[str, float]:
    """How far `w` breaks each constraint (0 when it holds), in plain NumPy: the audit of a solution."""
    d = w - p.benchmark
    lo, hi = _bounds(p, lim)
    te = ex_ante_te(p, w)
    out = {
        "budget": abs(w.sum() - 1), "long_only": max(0.0, -w.min()),
        "lower_bound": max(0.0, float((lo - w).max())), "upper_bound": max(0.0, float((w - hi).max())),
        "style": max(0.0, float(np.abs(p.styles.T @ d).max() - lim.style_bound)),
        "industry": max(0.0, float((np.abs(p.industry.T @ d) - industry_limits(p, lim)).max())),
        "tracking_error": max(0.0, te - lim.te),
        "members": max(0.0, lim.member_min - float(w[p.members].sum())),
    }
    if lim.turnover is not None and p.previous is not None:
        out["turnover"] = max(0.0, float(np.abs(w - p.previous).sum() / 2 - lim.turnover))
    return out


def ex_ante_te(p: Problem, w: np.ndarray) -> float:
    d = w - p.benchmark
    x = p.exposures
    return float(np.sqrt(d @ x @ p.factor_cov @ x.T @ d + (p.specific_var * d * d).sum()))
