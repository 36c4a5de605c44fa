"""Fold members on the real data (issue 15 part 3): a year's networks trained as fold members (`folds`: member k
leaves out time fold k mod K of the window and predicts it) against the preset's networks on the whole window, and
a combiner fit on the year's own out-of-fold rows against the plain mean of `week` and `day`.

    FACTOR_PIPELINE_HOME=/tmp/home_real8 .venv/bin/python benchmarks/fold_members.py \\
        --data ../shared/realdata --years 2017 2018 --folds 4 --out /tmp/fold_members

Both ensembles come from `models.weak.weak_factors`, the weak-factor stage's own code (side by side,
single-threaded, each year as a run builds it: with last year's networks where the preset's `lagged` takes
them), their members cached in `<home>/models/weak`: on the home of a real run the preset's networks are read,
only the fold members are trained. Prints, per year, the weekly 10-day RankIC (`../shared/realeval/evaluate.py`,
members of each universe) of each dataset and of the mean of `week` and `day` with either set of networks; then
the combiner's three candidates (`models.combiner`: the tree over the two z-scored outputs, their mean, the blend)
with the tree fit on the year's out-of-fold rows (the fold members' predictions on the dates they left out, labels
realised before the year), scoring the year with the preset's networks. Choose on 2017-2018; 2019 is the test
year. The tables are kept in `--out` (Parquet).
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import torch

from factor_pipeline.config import TRAINING
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.weekly import daily_label_table, signal_dates
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.models.combiner import CombinerConfig, _candidates, _fit_tree, cross_sectional_z, feature_frame
from factor_pipeline.models.tracking import ModelCache
from factor_pipeline.models.trainer import TrainConfig
from factor_pipeline.models.weak import weak_factors

UNIVERSES = ("csi_all", "csi300", "csi500", "csi1000")
OUTPUTS = ["week_output", "day_output"]


def _panel(data: Path):
    return build_panel(connect_memory(), file_source(str(data)).relations())


def _table(res: dict, names: list[str], title: str) -> None:
    print(f"\n{title}")
    print("| score | " + " | ".join(UNIVERSES) + " |")
    print("|---" * (1 + len(UNIVERSES)) + "|")
    for n in names:
        print(f"| {n} | " + " | ".join(f"{res[n][u].get('rankic_mean', float('nan')):.4f}" for u in UNIVERSES) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/realdata"))
    ap.add_argument("--years", type=int, nargs="+", default=[2017, 2018])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path("/tmp/fold_members"))
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("realeval", args.data.resolve().parent / "realeval" / "evaluate.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    args.out.mkdir(parents=True, exist_ok=True)
    panel = _panel(args.data)
    sig = [t for y in args.years for t in signal_dates(panel, date(y, 1, 1), date(y + 1, 1, 1))]
    preset = TrainConfig(**TRAINING["real"])
    runs = {}
    for label, cfg in (("preset", preset), ("folds", replace(preset, folds=args.folds))):
        for name in ("week", "day"):  # the stage consumes the panel's arrays: a fresh panel each time
            run = weak_factors(name, _panel(args.data), sig, cfg, 8, torch.device("cpu"), ModelCache(),
                               side_by_side=True)
            print(f"{label} {name}: {run.trained} networks trained, {run.reused} read from the cache", flush=True)
            run.table.write_parquet(args.out / f"{label}_{name}.parquet")
            if run.oof.height:
                run.oof.write_parquet(args.out / f"{label}_{name}_oof.parquet")
            runs[label, name] = run
    for year in args.years:
        wide = None
        for (label, name), run in runs.items():
            part = run.table.filter(pl.col("date").dt.year() == year)
            part = cross_sectional_z(part.select("code", "date", "output"), ["output"])
            part = part.rename({"output": f"{name}_{label}"})
            wide = part if wide is None else wide.join(part, on=["code", "date"], how="inner")
        for label in ("preset", "folds"):
            wide = wide.with_columns(((pl.col(f"week_{label}") + pl.col(f"day_{label}")) / 2).alias(f"mean_{label}"))
        # the combiner on the year's out-of-fold rows, scoring the year with the preset's networks
        oof = feature_frame(pl.concat([runs["folds", n].oof for n in ("week", "day")], how="diagonal_relaxed")
                            .filter(pl.col("period") == str(year)), ("week", "day"))
        rows = cross_sectional_z(oof.select("code", "date", *OUTPUTS), OUTPUTS)
        labels = daily_label_table(panel, [panel.date_index(d) for d in sorted(rows["date"].unique())])
        train = rows.join(labels, on=["code", "date"]).filter(
            pl.col("y_std").is_not_null() & (pl.col("realised_on") < date(year, 1, 1)))
        tree = _fit_tree(train, OUTPUTS, CombinerConfig())
        pred = wide.select("code", "date", pl.col("week_preset").alias("week_output"),
                           pl.col("day_preset").alias("day_output")).sort("date", "code")
        cand = _candidates(pred, tree.predict(pred.select(OUTPUTS).to_numpy()), OUTPUTS)
        wide = wide.join(pred.select("code", "date", *[v.alias(f"oof_{k}") for k, v in cand.items()]),
                         on=["code", "date"])
        names = [c for c in wide.columns if c not in ("code", "date")]
        res = ev.evaluate(args.data, wide, names, date(year, 1, 1), date(year, 12, 31))
        _table(res, names, f"{year}: weekly 10-day RankIC (realeval), members of each universe; the combiner's "
                           f"rows: {train.height} out-of-fold rows {train['date'].min()} .. {train['date'].max()}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
