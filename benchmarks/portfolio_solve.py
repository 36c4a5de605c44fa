"""The weekly enhancement solve: our solve against the bare solver on the same problem, the share of
the portfolio stage that is solver work, and the old cvxpy form against the conic form, in one run.

    .venv/bin/python benchmarks/portfolio_solve.py                                  # demo market, CSI500
    .venv/bin/python benchmarks/portfolio_solve.py --data ../shared/realdata --weeks 12   # ~3,600 real names

Builds the risk model point in time from the bars and runs the stage's own loop (`enhance`: risk
lookups, problem, solve, audit, book) over the last `--weeks` signal dates. The alpha is the planted
oracle score on the synthetic market and the 20-day reversal (minus the 20-day return) on a real
one, so no trained model is needed. Aims (issue 16): median solve <= 1 s over ~3,600 names; solver
share of the stage >= 0.7.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import numpy as np
import polars as pl

from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.market.sources import file_source, synthetic_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.portfolio.enhance import enhance
from factor_pipeline.portfolio.risk import build_risk_model
from factor_pipeline.portfolio.weekly import benchmark_weights, dense

HISTORY_DAYS = 900  # calendar days of bars before the first benchmarked week: momentum + a year of factor returns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="", help="a contract folder (e.g. ../shared/realdata); default: synthetic")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", default="csi500")
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--cvxpy-weeks", type=int, default=3, help="weeks also solved through cvxpy (the old form)")
    args = ap.parse_args()
    folder = (file_source(args.data) if args.data else synthetic_source(args.preset, args.seed)).folder
    con = connect_memory()
    for t in ("daily_bars", "index_weights", "stocks"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{folder}/{t}.parquet')")
    last = con.sql("SELECT max(date) AS d FROM daily_bars").pl()["d"][0]
    first = last - timedelta(days=HISTORY_DAYS + 7 * args.weeks + 30)
    t0 = time.perf_counter()
    panel = build_panel(con, {"daily_bars": "daily_bars", "index_weights": "index_weights"}, start=first,
                        parts=frozenset())
    stocks = con.sql("SELECT code, industry FROM stocks").pl()
    industries = sorted(stocks["industry"].unique().to_list())
    ind_of = dict(zip(stocks["code"].to_list(), stocks["industry"].to_list(), strict=True))
    industry = np.searchsorted(industries, [ind_of[c] for c in panel.codes])
    sig = signal_dates(panel, panel.dates[0].astype(object), panel.dates[-1].astype(object) + timedelta(days=1))
    risk = build_risk_model(panel, industry, industries, sig)
    print(f"panel {len(panel.codes)} stocks x {len(panel.dates)} days, {len(sig)} signal dates, risk model built in "
          f"{time.perf_counter() - t0:.1f} s")
    sdates = panel.dates[np.asarray(sig)]
    iw = con.sql(f"SELECT date, code, weight FROM index_weights WHERE \"index\" = '{args.index}'").pl()
    bench = benchmark_weights(iw, panel.codes, sdates)
    if args.data:
        ac = panel.field("close").astype(np.float64) * panel.field("adj_factor")
        t = np.asarray(sig)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = -(ac[:, t] / ac[:, np.clip(t - 20, 0, None)] - 1)
    else:
        oracle = pl.read_parquet(f"{folder}/oracle.parquet").select("code", "date", score="expected_return_10d")
        alpha = dense(oracle, panel.codes, sdates, "score")
    ks = [k for k in range(len(sig)) if np.isfinite(bench[:, k]).all() and np.isfinite(alpha[:, k]).any()
          and sig[k] + 1 < len(panel.dates)][-args.weeks:]
    only = np.full(alpha.shape, np.nan)
    only[:, ks] = alpha[:, ks]

    t0 = time.perf_counter()
    run = enhance(panel, risk, only, bench, args.index, "bench")
    stage = time.perf_counter() - t0
    ours, bare = run.audit["solve_seconds"].to_numpy(), run.audit["solver_seconds"].to_numpy()
    names = int((panel.members["csi_all"][:, sig[ks[-1]]] & panel.listed[:, sig[ks[-1]]]).sum())
    print(f"{args.index}, {len(ks)} weeks over ~{names} names: median solve {np.median(ours):.3f} s, bare Clarabel "
          f"{np.median(bare):.3f} s on the same problem (ours / bare = {np.median(ours) / np.median(bare):.2f}); "
          f"stage {stage:.1f} s, solver share of the stage {bare.sum() / stage:.2f}; median / 1 s aim = "
          f"{np.median(ours):.2f}")

    if args.cvxpy_weeks:
        few = np.full(alpha.shape, np.nan)
        few[:, ks[:args.cvxpy_weeks]] = alpha[:, ks[:args.cvxpy_weeks]]
        old = enhance(panel, risk, few, bench, args.index, "bench", method="cvxpy")
        new = run.audit["solve_seconds"].to_numpy()[:args.cvxpy_weeks]
        cvx = old.audit["solve_seconds"].to_numpy()
        same = run.weights.filter(pl.col("date").is_in(old.weights["date"].unique().implode()))
        j = same.join(old.weights, on=["date", "code"], how="full", coalesce=True).fill_null(0.0)
        print(f"cvxpy form on the first {len(cvx)} weeks: median {np.median(cvx):.3f} s vs conic "
              f"{np.median(new):.3f} s "
              f"(cvxpy / conic = {np.median(cvx) / np.median(new):.1f}); largest weight difference "
              f"{float((j['weight'] - j['weight_right']).abs().max()):.1e}")


if __name__ == "__main__":
    main()
