"""Optimiser, trading rules, costs/NAV and the risk model's calibration."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from factor_pipeline.portfolio.backtest import BUY_COST, SELL_COST, Prices, run_backtest
from factor_pipeline.portfolio.optimiser import RELAXATION, Limits, Problem, solve, violations
from factor_pipeline.portfolio.performance import portfolio_figures

LOOSE = Limits(style_bound=10, industry_bound=10, te=10, member_min=0.0, turnover=None, name_cap=0.5)


def _toy(alpha, prev=None) -> Problem:
    n = len(alpha)
    return Problem(np.asarray(alpha, float), np.full(n, 1 / n), np.ones(n, bool), np.zeros((n, 1)),
                   np.ones((n, 1)), np.eye(2) * 0.01, np.full(n, 0.01), prev)


def test_toy_problems_are_solved_to_their_known_optimum():
    sol = solve(_toy([3, 2, 1]), LOOSE)
    np.testing.assert_allclose(sol.weights, [0.5, 0.5, 0.0], atol=1e-6)
    # a 10% one-way turnover limit from equal weights: move 0.1 from the worst to the best
    prev = np.full(3, 1 / 3)
    sol = solve(_toy([3, 2, 1], prev), Limits(**{**LOOSE.__dict__, "turnover": 0.1}))
    np.testing.assert_allclose(sol.weights, [1 / 3 + 0.1, 1 / 3, 1 / 3 - 0.1], atol=1e-6)
    assert sol.relaxed == []


def _random_problem(seed: int, n: int = 300, prev: bool = True) -> Problem:
    rng = np.random.default_rng(seed)
    ni, ns = 10, 4
    ind = np.zeros((n, ni))
    ind[np.arange(n), rng.integers(0, ni, n)] = 1
    members = np.zeros(n, bool)
    members[rng.choice(n, 60, replace=False)] = True
    bench = np.where(members, rng.uniform(0.5, 1.5, n), 0)
    bench /= bench.sum()
    a = rng.normal(0, 0.1, (ni + ns, ni + ns))
    cov = a @ a.T * 0.05 + np.eye(ni + ns) * 1e-3
    p = Problem(rng.normal(size=n), bench, members, rng.normal(size=(n, ns)), ind, cov, rng.uniform(0.04, 0.15, n))
    if prev:
        w = solve(_random_problem(seed + 100, n, prev=False), Limits()).weights
        p.previous = w
    return p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_constraint_holds_at_the_solution(seed):
    p = _random_problem(seed)
    lim = Limits(te=0.05)
    sol = solve(p, lim)
    w, d, tol = sol.weights, sol.weights - p.benchmark, 1e-6
    lim = sol.limits
    assert abs(w.sum() - 1) < tol and w.min() > -tol
    assert np.abs(p.styles.T @ d).max() <= lim.style_bound + tol
    assert np.abs(p.industry.T @ d).max() <= lim.industry_bound + tol
    x = np.hstack([p.industry, p.styles])
    te = np.sqrt(d @ x @ p.factor_cov @ x.T @ d + (p.specific_var * d ** 2).sum())
    assert te <= lim.te + tol
    assert w[p.members].sum() >= lim.member_min - tol
    assert (w <= np.maximum(lim.name_cap, p.benchmark) + tol).all()
    if lim.turnover is not None:
        assert np.abs(w - p.previous).sum() / 2 <= lim.turnover + tol
    assert sol.relaxed == [] or sol.relaxed == [r for r, _ in RELAXATION][: len(sol.relaxed)]


def test_names_fixed_at_zero_are_left_out_without_changing_the_optimum():
    import cvxpy as cp

    from factor_pipeline.portfolio.optimiser import _constraints

    p = _random_problem(6, prev=False)
    rng = np.random.default_rng(3)
    outside = ~p.members & (rng.uniform(size=len(p.alpha)) < 0.6)  # outside a narrowed universe: unbuyable
    p.alpha = np.where(outside, 3.0, p.alpha)  # and the most attractive, so leaving them out would show
    p.can_buy = ~outside
    sol = solve(p, Limits(te=0.05))
    # the same problem over every name, solved directly
    w = cp.Variable(len(p.alpha))
    full = cp.Problem(cp.Maximize(p.alpha @ w), _constraints(p, w, sol.limits))
    full.solve(solver=cp.CLARABEL)
    assert (sol.weights[outside] == 0).all()
    assert p.alpha @ sol.weights == pytest.approx(full.value, rel=1e-5, abs=1e-6)
    assert np.abs(sol.weights - np.clip(w.value, 0, None)).max() < 1e-4


def test_limit_up_never_rises_and_limit_down_never_falls():
    p = _random_problem(4)
    rng = np.random.default_rng(7)
    held = np.flatnonzero(p.previous > 1e-4)
    up = np.zeros(len(p.alpha), bool)
    down = np.zeros(len(p.alpha), bool)
    up[rng.choice(len(p.alpha), 40, replace=False)] = True
    down[rng.choice(held, min(5, len(held)), replace=False)] = True
    p.alpha = np.where(up, 5.0, np.where(down, -5.0, p.alpha))  # the optimiser wants to buy / sell them
    p.can_buy, p.can_sell = ~up, ~down
    w = solve(p, Limits()).weights
    assert (w[up] <= p.previous[up] + 1e-7).all()
    assert (w[down] >= p.previous[down] - 1e-7).all()


def test_an_unsellable_holding_beyond_the_industry_band_widens_only_its_industry():
    """A suspended 6% holding in an industry the index does not hold: no portfolio keeps that industry
    within 2%, so its band widens to what the holding forces, and every other limit still holds."""
    p = _random_problem(4)
    ind = p.industry.argmax(1)
    k = 0
    p.benchmark = np.where(ind == k, 0.0, p.benchmark)
    p.benchmark /= p.benchmark.sum()
    p.members &= p.benchmark > 0
    stuck = int(np.flatnonzero(ind == k)[0])
    prev = p.previous * 0.94 / p.previous.sum()
    prev[stuck] += 0.06
    p.previous = prev
    p.can_sell = np.ones(len(prev), bool)
    p.can_sell[stuck] = False
    sol = solve(p, Limits())
    assert sol.weights[stuck] >= 0.06 - 1e-9
    v = violations(p, sol.weights, sol.limits)
    assert max(v.values()) < 1e-6, v
    active = np.abs(p.industry.T @ (sol.weights - p.benchmark))
    assert active[k] > 0.02 and np.delete(active, k).max() <= sol.limits.industry_bound + 1e-6


def test_infeasible_limits_relax_in_the_documented_order():
    p = _random_problem(5)
    # last week was all outside the index: 80% in members within 20% turnover is impossible
    outside = np.flatnonzero(~p.members)[:40]
    p.previous = np.zeros(len(p.alpha))
    p.previous[outside] = 1 / 40
    sol = solve(p, Limits())
    names = [r for r, _ in RELAXATION]
    assert sol.relaxed == names[: len(sol.relaxed)] and sol.relaxed[0] == "turnover 0.3"
    assert "turnover" in sol.relaxed[-1]
    assert sol.weights[p.members].sum() >= 0.8 - 1e-6


def _same_optimum(p: Problem, lim: Limits) -> np.ndarray:
    """Solve `p` in the fast conic form and through cvxpy; assert the same optimum; return the weights.

    At the production tolerance (1e-9) the objectives agree to 1e-7 and weights to 1e-5: along the flat
    directions a turnover limit leaves, weights settle only with the tolerance, so at 1e-11 both forms
    must give the same weights within 1e-6 and objectives within 1e-9 (absolute)."""
    from factor_pipeline.portfolio import conic

    fast, ref = solve(p, lim), solve(p, lim, method="cvxpy")
    assert fast.relaxed == ref.relaxed and fast.status.startswith("optimal")
    assert p.alpha @ fast.weights == pytest.approx(p.alpha @ ref.weights, rel=1e-7, abs=1e-9)
    tol, conic.TOL = conic.TOL, 1e-11
    try:
        tight, tight_ref = solve(p, lim), solve(p, lim, method="cvxpy")
    finally:
        conic.TOL = tol
    assert np.abs(tight.weights - tight_ref.weights).max() < 1e-6
    assert p.alpha @ tight.weights == pytest.approx(p.alpha @ tight_ref.weights, rel=1e-9, abs=1e-9)
    assert np.abs(fast.weights - tight.weights).max() < 1e-5
    return fast.weights


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_conic_form_reaches_the_cvxpy_optimum(seed):
    """Binding turnover, trading blocks, a narrowed universe, and (seed 3) a week that must relax."""
    p = _random_problem(seed)
    rng = np.random.default_rng(seed)
    p.can_buy = rng.uniform(size=len(p.alpha)) > 0.1
    p.can_sell = rng.uniform(size=len(p.alpha)) > 0.05
    if seed == 3:
        outside = np.flatnonzero(~p.members)[:40]
        p.previous = np.zeros(len(p.alpha))
        p.previous[outside] = 1 / 40
    _same_optimum(p, Limits(te=0.05))
    _same_optimum(_random_problem(seed, prev=False), Limits(te=0.04))


@pytest.mark.slow
def test_a_run_of_weeks_reaches_the_same_optimum_both_ways(tiny_risk):
    """Ten consecutive weeks of the tiny market's risk model, each starting from the last one's weights."""
    panel, rm, industries = tiny_risk
    rng = np.random.default_rng(0)
    bench = np.where(panel.members["csi300"][:, -1], 1.0, 0.0)
    bench /= bench.sum()
    prev, n_ind = None, len(industries)
    for k in range(len(rm.signals) - 10, len(rm.signals)):
        t = int(rm.signals[k])
        cov, spec = rm.covariance(t)
        x = rm.exposures(k)
        live = panel.listed[:, t]
        p = Problem(np.where(live, rng.normal(size=len(live)), 0.0), bench, bench > 0, x[:, n_ind:], x[:, :n_ind],
                    cov, spec, prev, can_buy=live, can_sell=np.ones(len(live), bool))
        prev = _same_optimum(p, Limits(te=0.04))


def test_costs_and_nav_match_a_hand_computation():
    close = np.array([[10.0, 12.0, 13.0, 14.0], [20.0, 22.0, 23.0, 25.0]])
    vwap = np.array([[10.0, 11.0, 12.0, 13.0], [20.0, 20.0, 23.0, 24.0]])
    blocked = np.zeros_like(close, bool)
    book = run_backtest(Prices(close, vwap, blocked, blocked), {1: np.array([0.5, 0.5]), 2: np.array([1.0, 0.0])})
    # day 1: buy 1 of NAV, scaled so cash stays >= 0: each holds 0.5 / 1.001; then VWAP -> close
    h = np.array([0.5, 0.5]) / (1 + BUY_COST) * np.array([12 / 11, 22 / 20])
    nav1 = h.sum()
    # day 2: close -> VWAP, sell stock 2, buy stock 1 with the proceeds net of both costs
    h = h * np.array([12 / 12, 23 / 22])
    total = h.sum()
    sell = h[1]
    buy = total - h[0]
    spare = sell * (1 - SELL_COST)
    buy = min(buy, spare / (1 + BUY_COST))
    h = np.array([h[0] + buy, 0.0])
    cash = spare - buy * (1 + BUY_COST)
    nav2 = h[0] * 13 / 12 + cash
    nav3 = h[0] * 13 / 12 * 14 / 13 + cash
    np.testing.assert_allclose(book.nav, [1.0, nav1, nav2, nav3], rtol=1e-12)
    assert book.costs[0] == pytest.approx(BUY_COST / (1 + BUY_COST))
    # a blocked buy leaves the cash in cash
    no_buy = blocked.copy()
    no_buy[0, 1] = True
    book = run_backtest(Prices(close, vwap, no_buy, blocked), {1: np.array([0.5, 0.5])})
    assert book.nav[1] == pytest.approx(1 - 0.5 * (1 + BUY_COST) + 0.5 * 22 / 20, rel=1e-12) and book.cancelled == [1]


def test_portfolio_figures_on_a_constant_excess():
    from datetime import date, timedelta

    days = 253
    dates = [date(2020, 1, 1) + timedelta(days=i) for i in range(days)]
    bench = 1.0005 ** np.arange(days)
    nav = bench * 1.0004 ** np.arange(days)
    f = portfolio_figures(nav, bench, dates, list(range(1, days, 5)))
    assert f["excess_ann"] == pytest.approx(1.0004 ** 252 - 1, abs=1e-4)
    assert f["max_drawdown"] == 0 and f["weekly_win_rate"] == 1.0 and f["excess_vol_ann"] < 1e-6


@pytest.fixture(scope="module")
def tiny_risk(tiny):
    from datetime import timedelta

    from factor_pipeline.datasets.panel import build_panel
    from factor_pipeline.datasets.weekly import signal_dates
    from factor_pipeline.portfolio.risk import build_risk_model

    con = duckdb.connect()
    for k in ("daily_bars", "index_weights"):
        con.register(k, tiny[k])
    panel = build_panel(con, {"daily_bars": "daily_bars", "index_weights": "index_weights"}, parts=frozenset())
    stocks = tiny["stocks"]
    industries = sorted(stocks["industry"].unique().to_list())
    ind_of = dict(zip(stocks["code"], stocks["industry"], strict=True))
    ind = np.searchsorted(industries, [ind_of[c] for c in panel.codes])
    sig = signal_dates(panel, panel.dates[0].astype(object), panel.dates[-1].astype(object) + timedelta(days=1))
    return panel, build_risk_model(panel, ind, industries, sig), industries


@pytest.mark.slow
def test_risk_model_is_calibrated_on_random_active_portfolios(tiny_risk):
    """Bias statistic: sd of realised active return / predicted active risk over the next week, ~1."""
    from factor_pipeline.portfolio.risk import bias_statistic

    panel, rm, _ = tiny_risk
    bias = bias_statistic(rm, panel, [k for k, t in enumerate(rm.signals) if t >= 300])
    print(f"bias statistic {bias:.3f}")
    assert 0.75 < bias < 1.35, bias


@pytest.mark.slow
def test_stored_risk_model_reads_back_what_was_built(tiny_risk):
    from factor_pipeline.portfolio.risk import StoredRisk, risk_tables

    panel, rm, industries = tiny_risk
    ks = list(range(len(rm.signals) - 20, len(rm.signals)))
    tables = risk_tables(rm, panel, ks)
    stored = StoredRisk(tables, panel, industries)
    assert list(stored.signals) == [int(rm.signals[k]) for k in ks]
    for k in ks[::7]:
        t = int(rm.signals[k])
        live = panel.listed[:, t]
        np.testing.assert_allclose(stored.exposures(ks.index(k))[live], rm.exposures(k)[live], rtol=1e-12)
        c1, s1 = rm.covariance(t)
        c2, s2 = stored.covariance(t)
        np.testing.assert_allclose(c2, c1, rtol=1e-12)
        np.testing.assert_allclose(s2[live], s1[live], rtol=1e-12)


@pytest.mark.slow
def test_a_run_resumed_from_stored_holdings_equals_an_uninterrupted_one(tiny_risk):
    from factor_pipeline.portfolio.enhance import enhance
    from factor_pipeline.portfolio.weekly import resume_points

    panel, rm, _ = tiny_risk
    rng = np.random.default_rng(3)
    n, d = len(panel.codes), len(rm.signals)
    scores = rng.normal(size=(n, d))
    bench = np.where(panel.members["csi500"][:, rm.signals], 1.0, 0.0)
    bench = bench / bench.sum(0)
    ks = list(range(d - 14, d - 2))

    def only(weeks):
        s = np.full((n, d), np.nan)
        s[:, weeks] = scores[:, weeks]
        return s

    whole = enhance(panel, rm, only(ks), bench, "csi500", "model3")
    first = enhance(panel, rm, only(ks[:6]), bench, "csi500", "model3")
    point = resume_points(first.held, panel)[("csi500", "model3")]
    second = enhance(panel, rm, only(ks[6:]), bench, "csi500", "model3", resume=point)
    a = whole.weights.filter(pl.col("date") >= second.weights["date"].min()).sort("date", "code")
    b = second.weights.sort("date", "code")
    assert a["code"].to_list() == b["code"].to_list()
    np.testing.assert_array_equal(a["weight"].to_numpy(), b["weight"].to_numpy())  # bit for bit
    assert second.audit["turnover_target"].max() <= 0.2 + 1e-6 or second.audit["relaxed"].str.len_chars().max() > 0
    # the resumed NAV, carried on from the level stored on its first day, is the uninterrupted NAV
    from factor_pipeline.portfolio.weekly import PortfolioRuns

    close = {"csi500": np.linspace(1000.0, 1200.0, len(panel.dates))}
    i0 = whole.book.days.index(second.book.days[0])
    nav_whole = PortfolioRuns([whole], rm).nav(panel, close)
    level = (float(nav_whole["nav"][i0]), float(nav_whole["bench"][i0]))
    nav_second = PortfolioRuns([second], rm).nav(panel, close, {("csi500", "model3"): level})
    np.testing.assert_allclose(nav_second["nav"].to_numpy(), nav_whole["nav"].to_numpy()[i0:], rtol=1e-12)
    np.testing.assert_allclose(nav_second["bench"].to_numpy(), nav_whole["bench"].to_numpy()[i0:], rtol=1e-12)


@pytest.mark.slow
def test_portfolios_side_by_side_hold_the_weights_of_one_process(tiny, tiny_risk):
    """Two indices x two models over the last weeks, solved in two processes and in this one: the same
    weights and audit to the bit (only the solve times differ), in the same order."""
    from factor_pipeline.portfolio.weekly import run_portfolios

    panel, rm, _ = tiny_risk
    rng = np.random.default_rng(5)
    ks = list(range(len(rm.signals) - 6, len(rm.signals) - 1))
    dates = panel.dates[np.asarray(rm.signals)[ks]]
    n = len(panel.codes)
    scores = pl.concat([pl.DataFrame({"code": panel.codes, "date": d, "model": m, "score": rng.normal(size=n)})
                        for d in dates.astype(object) for m in ("model3", "model4")])
    runs = {w: run_portfolios(panel, rm, scores, tiny["index_weights"], ["model3", "model4"],
                              indices=("csi300", "csi500"), workers=w) for w in (1, 2)}
    one, two = runs[1], runs[2]
    assert [(r.index, r.model) for r in one.runs] == [(r.index, r.model) for r in two.runs] and len(one.runs) == 4
    assert one.weights().height > 0 and one.weights().equals(two.weights())
    timing = ["solve_seconds", "solver_seconds"]
    assert one.audit().drop(timing).equals(two.audit().drop(timing))
    assert one.held().equals(two.held())
