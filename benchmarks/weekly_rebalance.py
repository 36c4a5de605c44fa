"""The Friday job for one week, end to end on a home that already holds a run (market loaded, models
trained): that week's datasets and labels, weak-factor inference (the year's models reused), Model1-4,
the risk model and one model's CSI300/CSI500/CSI1000 target weights. Prints seconds per stage.

    FACTOR_PIPELINE_HOME=... .venv/bin/python benchmarks/weekly_rebalance.py --week 2023-12-18 --model model3

It re-materialises partitions that already exist (idempotent); the portfolio tables of `--model`
are replaced from that week on. Aim: <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

from factor_pipeline.orchestration.runner import (
    materialize_datasets,
    materialize_portfolios,
    materialize_scores,
    materialize_weak_factors,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--week", required=True, help="Monday of the rebalance week")
    ap.add_argument("--model", default="model3")
    ap.add_argument("--training", default="demo")
    args = ap.parse_args()
    monday = date.fromisoformat(args.week)
    stages = {}
    t = time.perf_counter()
    run = materialize_datasets(monday, monday + timedelta(days=4))
    stages["datasets + labels + features"] = time.perf_counter() - t
    t = time.perf_counter()
    md = materialize_weak_factors(run.first_week, run.last_week, args.training).metadata
    stages["weak factors (inference)"] = time.perf_counter() - t
    trained = sum(m.get("fits_trained", 0) for m in md.values())
    t = time.perf_counter()
    materialize_scores(run.first_week, run.last_week)
    stages["Model1-4 + baselines"] = time.perf_counter() - t
    t = time.perf_counter()
    pm = materialize_portfolios(monday, monday + timedelta(days=6), [args.model]).metadata
    stages[f"risk model + 3 indices x {args.model}"] = time.perf_counter() - t
    for k, v in stages.items():
        print(f"{k:<36} {v:6.1f} s")
    total = sum(stages.values())
    print(f"{'total':<36} {total:6.1f} s   (weak-factor fits trained: {trained}; "
          f"median solve {pm.get('target_weights', {}).get('solve_seconds_median')} s); total / 60 s aim = "
          f"{total / 60:.2f}")


if __name__ == "__main__":
    main()
