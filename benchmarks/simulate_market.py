"""Simulate a preset and print wall time, stock-days per second, peak memory and the oracle RankIC.

    .venv/bin/python benchmarks/simulate_market.py --preset demo --seed 0

The ratio printed is against writing the same bytes with a plain NumPy save in the same run, so it
reads as "how much slower than just writing the output".
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from factor_pipeline.config import preset
from factor_pipeline.market.simulator import simulate_market
from factor_pipeline.market.simulator.calibration import oracle_rank_ic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "market"
        t0 = time.perf_counter()
        s = simulate_market(preset(args.preset), args.seed, out)
        wall = time.perf_counter() - t0
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        nbytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        # reference: writing raw float64 bars of the same stock-days (one intraday and one daily array)
        ref = np.random.default_rng(0).random((s["intraday_rows"] + s["stock_days"], 8))
        t1 = time.perf_counter()
        np.save(Path(tmp) / "ref.npy", ref)
        ref_s = time.perf_counter() - t1
        ic = oracle_rank_ic(out)
    print(f"preset={args.preset} seed={args.seed} stocks={s['n_stocks']} days={s['trading_days']}")
    print(f"stock-days={s['stock_days']:,} intraday rows={s['intraday_rows']:,} parquet={nbytes / 2**20:.0f} MiB")
    print(f"wall={wall:.1f}s  stock-days/s={s['stock_days'] / wall:,.0f}  peak RSS={peak_gib:.2f} GiB")
    print(f"np.save of the same rows as float64[8]: {ref_s:.1f}s  -> simulate/np.save time ratio {wall / ref_s:.1f}")
    print(f"oracle 10-day RankIC on csi_all weight dates: mean={ic[0]:.3f} sd={ic[1]:.3f} dates={ic[2]}")


if __name__ == "__main__":
    main()
