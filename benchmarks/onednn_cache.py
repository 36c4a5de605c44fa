"""Resident memory and time of weak-factor fits and predictions with oneDNN's primitive cache as the package
sets it (0: off, see factor_pipeline/__init__.py) and at oneDNN's default (1024 primitives), in one run.

    .venv/bin/python benchmarks/onednn_cache.py --data ../shared/realdata --periods 2019 2018

Each way runs in a fresh process (its peak is its own): build the dataset's panel from the contract
files (`--data`) or a synthetic preset (`--preset`), then for each period one fit of the `real` training
preset cut to `--epochs` epochs and the prediction of the period's trading dates. Prints each way's peak,
seconds and resident memory after each period, the ratios (ours / oneDNN's default) and whether the
predictions are identical. A batch is one date's stocks, so nearly every date is a new input shape: with
the default, oneDNN keeps a primitive (and its memory) for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ONEDNN_DEFAULT = 1024  # oneDNN's own primitive cache capacity


def _status_gib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def one_way(args: argparse.Namespace) -> None:
    """The child: fits and predictions at the cache capacity `--capacity`; prints one JSON line at the end."""
    from dataclasses import replace

    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.capacity)  # before torch's first convolution
    from factor_pipeline.config import TRAINING
    from factor_pipeline.datasets import labels as labels_mod
    from factor_pipeline.datasets.base import dataset_base
    from factor_pipeline.datasets.panel import build_panel
    from factor_pipeline.datasets.registry import DATASETS
    from factor_pipeline.datasets.samples import sample_mask
    from factor_pipeline.market.sources import file_source, synthetic_source
    from factor_pipeline.market.warehouse import connect_memory
    from factor_pipeline.models import trainer as tr

    t0 = time.perf_counter()
    source = file_source(args.data) if args.data else synthetic_source(args.preset, 0)
    panel = build_panel(connect_memory(), source.relations())
    base = dataset_base(panel, consume=True)
    y = labels_mod.forward_returns(panel)
    mask = sample_mask(panel, DATASETS[args.dataset].lookback)
    data = tr.TrainData(base, mask, labels_mod.standardised(y, mask), y, panel.codes, panel.dates)
    cfg = replace(tr.TrainConfig(**TRAINING["real"]), epochs=args.epochs, patience=args.epochs)
    net_cfg = tr.net_config(args.dataset, data, n_factors=8)
    rows, outputs = [], []
    years = panel.dates.astype("datetime64[Y]").astype(int) + 1970
    for p in args.periods:
        start = time.perf_counter()
        dates = tr.training_dates(data, args.dataset, tr.period_start(data, str(p), 12), cfg)
        res = tr.fit(args.dataset, data, dates, cfg, net_cfg)
        table = tr.predict(res.model, args.dataset, data, [int(t) for t in (years == p).nonzero()[0]])
        outputs.append(float(table["output"].sum()))
        rows.append({"period": p, "seconds": round(time.perf_counter() - start, 1),
                     "resident_gib": round(_status_gib("VmRSS"), 2)})
    print(json.dumps({"rows": rows, "peak_gib": round(_status_gib("VmHWM"), 2),
                      "seconds": round(time.perf_counter() - t0, 1), "outputs": outputs}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="contract files (e.g. ../shared/realdata); else --preset")
    ap.add_argument("--preset", default="demo", help="synthetic market when --data is not given")
    ap.add_argument("--dataset", default="week")
    ap.add_argument("--periods", type=int, nargs="+", default=[2019, 2018])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--capacity", type=int, help=argparse.SUPPRESS)  # set in the child
    args = ap.parse_args()
    if args.capacity is not None:
        one_way(args)
        return
    import factor_pipeline  # noqa: F401  (sets the capacity its processes use, unless one was set)

    ours = int(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"])
    result = {}
    for label, capacity in (("oneDNN default", ONEDNN_DEFAULT), ("ours", ours)):
        cmd = [sys.executable, __file__, "--capacity", str(capacity), "--dataset", args.dataset, "--epochs",
               str(args.epochs), "--periods", *map(str, args.periods)]
        cmd += ["--data", args.data] if args.data else ["--preset", args.preset]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        result[label] = r = json.loads(out)
        steps = ", ".join(f"{x['period']}: {x['seconds']} s, {x['resident_gib']} GiB" for x in r["rows"])
        print(f"{label:>14} (capacity {capacity}): peak {r['peak_gib']:.2f} GiB, {r['seconds']:.1f} s "
              f"(after each period {steps})")
    a, b = result["oneDNN default"], result["ours"]
    print(f"ratio ours / oneDNN default: peak {b['peak_gib'] / a['peak_gib']:.2f}, "
          f"time {b['seconds'] / a['seconds']:.2f}; predictions identical: {a['outputs'] == b['outputs']}")


if __name__ == "__main__":
    main()
