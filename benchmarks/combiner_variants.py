"""Combiner variants for `model_wd` on a finished real run: which way of combining the week and day weak
factors to choose, judged on a selection year and reported on a later test year apart.

    .venv/bin/python benchmarks/combiner_variants.py $FACTOR_PIPELINE_HOME --contract ../shared/realdata \\
        --select-year 2018 --test-year 2019

Reads the run's `weak_factors_daily` / `labels_daily` (the combiner's daily training rows) and the weekly
signal dates of `weak_factors` from the warehouse, fits each variant per year exactly as the scores
asset does (labels realised before the year, the last 3 years), and scores the weekly signal dates with
`../shared/realeval/evaluate.py` (members of each universe). Prints a Markdown table: RankIC per
universe in the selection year, then the test year. Choose on the selection year's row only.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from factor_pipeline.models.combiner import (
    CombinerConfig,
    _fit_tree,
    cross_sectional_z,
    feature_frame,
    mean_rank_ic,
    rolling_scores,
)

UNIVERSES = ("csi_all", "csi300", "csi500", "csi1000")


def _evaluator(contract: Path):
    spec = importlib.util.spec_from_file_location("realeval", contract.resolve().parent / "realeval" / "evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tree(train: pl.DataFrame, cols: list[str], cfg: CombinerConfig, seed: int, margin=None):
    """The scores asset's tree (`_fit_tree`) with another seed; with `margin`, boosted from that start."""
    if margin is None:
        return _fit_tree(train, cols, replace(cfg, seed=seed))
    import xgboost as xgb

    model = xgb.XGBRegressor(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, learning_rate=cfg.learning_rate,
                             subsample=cfg.subsample, colsample_bytree=cfg.colsample_bytree,
                             min_child_weight=max(20.0, cfg.min_child_share * train.height), tree_method="hist",
                             n_jobs=2, random_state=seed)
    model.fit(train.select(cols).to_numpy(), train["y_std"].to_numpy(), base_margin=margin)
    return model


def variants(train: pl.DataFrame, pred: pl.DataFrame, cols: list[str], cfg: CombinerConfig) -> dict[str, np.ndarray]:
    """Scores of every variant on `pred`'s rows (features already z-scored per date)."""
    outputs = [c for c in cols if c.endswith("_output")]
    z = lambda frame, v: cross_sectional_z(frame.select("date").with_columns(v=pl.Series(v)), ["v"])["v"].to_numpy()  # noqa: E731
    x_tr, x_pr = train.select(cols).to_numpy(), pred.select(cols).to_numpy()
    mean_tr = train.select(pl.mean_horizontal(outputs)).to_series().to_numpy()
    mean_pr = pred.select(pl.mean_horizontal(outputs)).to_series().to_numpy()
    lam = 0.1 * train.height
    out: dict[str, np.ndarray] = {"week": pred["week_output"].to_numpy(), "day": pred["day_output"].to_numpy(),
                                  "mean": mean_pr}
    trees = [_tree(train, cols, cfg, s).predict(x_pr) for s in range(5)]
    out["tree"] = trees[0]
    out["tree5"] = np.mean(trees, axis=0)
    zm = z(pred, mean_pr)
    out["blend"] = (z(pred, trees[0]) + zm) / 2
    out["blend5"] = (z(pred, out["tree5"]) + zm) / 2
    ics = np.array([mean_rank_ic(train, c, "y_std") for c in cols])
    out["icw_all"] = x_pr @ ics / np.abs(ics).sum()
    w_out = np.array([ics[cols.index(c)] for c in outputs])
    out["icw_outputs"] = pred.select(outputs).to_numpy() @ np.clip(w_out, 0, None)
    y = train["y_std"].to_numpy()
    out["ridge"] = x_pr @ np.linalg.solve(x_tr.T @ x_tr + lam * np.eye(len(cols)), x_tr.T @ y)
    beta = float(mean_tr @ y / (mean_tr @ mean_tr))
    resid = _tree(train, cols, cfg, 0, margin=beta * mean_tr)
    out["tree_on_mean"] = beta * mean_pr + resid.predict(x_pr, base_margin=np.zeros(len(mean_pr)))
    # the outputs alone: the one weak factor per dataset whose meaning survives a refit (z_1..z_K are a new
    # network's latent axes every year, so what a fit learns about them does not carry to the next model)
    o_tr, o_pr = train.select(outputs).to_numpy(), pred.select(outputs).to_numpy()
    tree_out = np.mean([_tree(train, outputs, cfg, s).predict(o_pr) for s in range(5)], axis=0)
    out["tree5_outputs"] = tree_out
    out["blend5_outputs"] = (z(pred, tree_out) + zm) / 2
    out["ridge_outputs"] = o_pr @ np.linalg.solve(o_tr.T @ o_tr + lam * np.eye(len(outputs)), o_tr.T @ y)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home", type=Path)
    ap.add_argument("--contract", type=Path, default=Path("../shared/realdata"))
    ap.add_argument("--select-year", type=int, default=2018)
    ap.add_argument("--test-year", type=int, default=2019)
    args = ap.parse_args()
    cfg = CombinerConfig()
    con = duckdb.connect(str(args.home / "warehouse.duckdb"), read_only=True)
    weak = con.sql("SELECT * FROM weak_factors_daily WHERE dataset IN ('week', 'day')").pl()
    labels = con.sql("SELECT code, date, y_std, realised_on FROM labels_daily").pl()
    signal = [r[0] for r in con.execute("SELECT DISTINCT date FROM weak_factors ORDER BY date").fetchall()]
    con.close()
    feats = feature_frame(weak, ("week", "day"))
    del weak
    cols = [c for c in feats.columns if c not in ("code", "date")]
    outputs = [c for c in cols if c.endswith("_output")]
    data = cross_sectional_z(feats, cols).join(labels, on=["code", "date"], how="left")
    frames = []
    for year in (args.select_year, args.test_year):
        these = [d for d in signal if d.year == year]
        first = date(year, 1, 1)
        train = data.filter(pl.col("y_std").is_not_null() & (pl.col("realised_on") < first)
                            & (pl.col("date") >= date(year - cfg.train_years, 1, 1)))
        pred = data.filter(pl.col("date").is_in(these))
        scored = pred.select("code", "date").with_columns(
            **{k: pl.Series(v.astype(np.float64)) for k, v in variants(train, pred, cols, cfg).items()})
        for name, frame in (("select", feats), ("select_outputs", feats.select("code", "date", *outputs))):
            sel, fits = rolling_scores(frame, labels, these, cfg)
            scored = scored.join(sel.rename({"score": name}), on=["code", "date"], how="left")
            print(f"{year}: {train.height:,} training rows, {name} chose {[f.chosen for f in fits]} "
                  f"({fits[0].valid_rank_ic if fits else {}})", flush=True)
        frames.append(scored)
    wide = pl.concat(frames, how="diagonal")
    names = [c for c in wide.columns if c not in ("code", "date")]
    ev = _evaluator(args.contract)
    for year in (args.select_year, args.test_year):
        res = ev.evaluate(args.contract, wide, names, date(year, 1, 1), date(year, 12, 31))
        print(f"\n{year} weekly RankIC (`evaluate.py`), {'selection' if year == args.select_year else 'test'} year:\n")
        print("| variant | " + " | ".join(UNIVERSES) + " |\n|---|" + "---|" * len(UNIVERSES))
        for n in names:
            cells = [f"{res[n][u].get('rankic_mean', float('nan')):.4f}" for u in UNIVERSES]
            print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
