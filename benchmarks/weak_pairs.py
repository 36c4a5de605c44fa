"""RankIC of weak-factor ensembles and of their pairs' means from saved outputs (`weak_settings.py --save`), so a
setting of one dataset is judged by what the final score gets: its mean with the other dataset, not alone.

    .venv/bin/python benchmarks/weak_pairs.py --data ../shared/realdata --year 2018 \
        --part week=/tmp/s/week_2018_real_noinst_seed*.parquet --part week_inst=/tmp/s/week_2018_real_seed*.parquet \
        --part day=/tmp/s/day_2018_real_noinst_seed*.parquet

Each part is the mean of its files' per-date z-scored outputs (a seed ensemble, as the trainer averages them);
prints each part's RankIC on the year's signal dates (all samples, the pipeline's RankIC), every pair's
equal-weight mean and the pair's mean per-date rank correlation.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from weak_settings import _ic, _z  # noqa: E402

from factor_pipeline.datasets import labels as labels_mod  # noqa: E402
from factor_pipeline.datasets.panel import build_panel  # noqa: E402
from factor_pipeline.datasets.weekly import signal_dates  # noqa: E402
from factor_pipeline.market.sources import file_source  # noqa: E402
from factor_pipeline.market.warehouse import connect_memory  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--part", action="append", required=True, help="name=glob of saved outputs")
    args = ap.parse_args()
    panel = build_panel(connect_memory(), file_source(args.data).relations())
    y = labels_mod.forward_returns(panel)
    sig = signal_dates(panel, date(args.year, 1, 1), date(args.year + 1, 1, 1))
    wide = None
    for spec in args.part:
        name, pattern = spec.split("=", 1)
        files = sorted(glob.glob(pattern))
        if not files:
            raise SystemExit(f"{name}: no file matches {pattern}")
        outs = [pl.read_parquet(f).select("code", "date", "output") for f in files]
        ens = outs[0].with_columns(output=np.mean([_z(o) for o in outs], axis=0))
        part = ens.with_columns(output=_z(ens)).rename({"output": name})
        print(f"{name}: {len(files)} files, RankIC {_ic(ens, panel, y, sig):.4f}", flush=True)
        wide = part if wide is None else wide.join(part, on=["code", "date"])
    names = [c for c in wide.columns if c not in ("code", "date")]
    for a, b in itertools.combinations(names, 2):
        mean = wide.select("code", "date", (pl.col(a) + pl.col(b)).alias("output"))
        corr = wide.group_by("date").agg(pl.corr(a, b, method="spearman").alias("c"))["c"].mean()
        print(f"{a} + {b}: mean RankIC {_ic(mean, panel, y, sig):.4f}, rank correlation {corr:.3f}", flush=True)


if __name__ == "__main__":
    main()
