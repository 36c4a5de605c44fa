"""One weekly CSI500 enhancement solve over the demo universe: median seconds, and how the time
splits between the conic solver (Clarabel) and cvxpy's problem building, in the same run.

    .venv/bin/python benchmarks/portfolio_solve.py --preset demo --seed 0 --weeks 40

Builds the risk model point in time from the simulated bars; the alpha is the planted oracle
score (so no trained model is needed). Aim: median <= 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import cvxpy as cp
import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.sources import synthetic_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.portfolio.optimiser import TE, Limits, Problem, _constraints, solve
from factor_pipeline.portfolio.risk import build_risk_model
from factor_pipeline.portfolio.weekly import benchmark_weights, dense


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weeks", type=int, default=40)
    args = ap.parse_args()
    src = synthetic_source(args.preset, args.seed)
    con = connect_memory()
    folder = src.folder
    for t in ("daily_bars", "index_weights", "stocks", "oracle"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{folder}/{t}.parquet')")
    t0 = time.perf_counter()
    panel = build_panel(con, {"daily_bars": "daily_bars", "index_weights": "index_weights"}, parts=frozenset())
    stocks = con.sql("SELECT code, industry FROM stocks").pl()
    industries = sorted(stocks["industry"].unique().to_list())
    ind_of = dict(zip(stocks["code"].to_list(), stocks["industry"].to_list(), strict=True))
    industry = np.searchsorted(industries, [ind_of[c] for c in panel.codes])
    sig = signal_dates(panel, panel.dates[0].astype(object), panel.dates[-1].astype(object) + timedelta(days=1))
    risk = build_risk_model(panel, industry, industries, sig)
    print(f"risk model: {len(panel.codes)} stocks, {len(sig)} signal dates, built in {time.perf_counter() - t0:.1f} s")
    sdates = panel.dates[np.asarray(sig)]
    bench = benchmark_weights(con.sql("SELECT date, code, weight FROM index_weights WHERE \"index\" = 'csi500'").pl(),
                              panel.codes, sdates)
    oracle = con.sql("SELECT code, date, expected_return_10d AS score FROM oracle").pl()
    alpha = dense(oracle.filter(pl.col("date").is_in(list(sdates.astype(object)))), panel.codes, sdates, "score")
    ks = [k for k in range(len(sig)) if sig[k] > 400 and np.isfinite(bench[:, k]).all()][-args.weeks:]
    total, solver, prev = [], [], None
    n_ind = len(industries)
    for k in ks:
        t = sig[k]
        cov, spec = risk.covariance(int(t))
        x = risk.exposures(k)
        uni = panel.members["csi_all"][:, t] & panel.listed[:, t] & np.isfinite(alpha[:, k])
        a = np.where(uni, alpha[:, k], 0.0)
        p = Problem(a, bench[:, k], bench[:, k] > 0, x[:, n_ind:], x[:, :n_ind], cov, spec, prev,
                    can_buy=uni, can_sell=np.ones(len(a), bool))
        sol = solve(p, Limits(te=TE["csi500"]))
        total.append(sol.seconds)
        w = cp.Variable(len(a))  # the same problem once more, to read the solver's own time
        prob = cp.Problem(cp.Maximize(a @ w), _constraints(p, w, sol.limits))
        prob.solve(solver=cp.CLARABEL)
        solver.append(prob.solver_stats.solve_time)
        prev = sol.weights
    med, med_solver = float(np.median(total)), float(np.median(solver))
    print(f"CSI500 weekly solve over {len(panel.codes)} names, {len(ks)} weeks: median {med:.3f} s "
          f"(Clarabel itself {med_solver:.3f} s; solver share {med_solver / med:.2f}); "
          f"median / 1 s aim = {med:.2f}")


if __name__ == "__main__":
    main()
