"""What the scores of a run load on: per year, each score's RankIC and its per-date rank correlation with a few
plain factors (reversal, momentum, low turnover, low volatility, size, amount ratio) and with the other scores,
on the weekly signal dates (all samples, the label of the pipeline). Shows whether two weak factors are two views
of the same thing (what the diagnosis of the real data's `week` and `day` found: both mostly low turnover and
low volatility, the peer neither).

    .venv/bin/python benchmarks/factor_loadings.py <home>/reports/real/scores.parquet --data ../shared/realdata \
        --years 2017 2018 --models week day alpha158_lgbm
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.common_factors import common_factors
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.datasets.windows import stat, window
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory


def plain_factors(panel, ts: np.ndarray) -> dict[str, np.ndarray]:
    """[stock, len(ts)] factors at the panel dates `ts`: the report's common factors (datasets.common_factors),
    signed so that a positive IC is the textbook sign, and 20-day mean turnover, which they lack."""
    common = common_factors(panel, list(ts))
    return {"reversal_20": -common["ret20"], "momentum_20d_120d": common["mom_20d_120d"],
            "low_turnover_20": -stat(window(panel.field("turnover"), 20, ts), "mean"),
            "low_vol_20": -common["vol20"], "small_cap": -common["size"], "ppreversal": -common["ppreversal"],
            "avgamt_20_60": common["avgamt_20_60"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scores")
    ap.add_argument("--data", required=True)
    ap.add_argument("--years", type=int, nargs="+", default=[2017, 2018])
    ap.add_argument("--models", nargs="+", default=["week", "day", "alpha158_lgbm"])
    args = ap.parse_args()
    panel = build_panel(connect_memory(), file_source(args.data).relations())
    y = labels_mod.forward_returns(panel)
    dates = panel.dates.astype("datetime64[D]")
    scores = pl.read_parquet(args.scores).filter(pl.col("model").is_in(args.models))
    ts = np.searchsorted(dates, scores["date"].unique().sort().to_numpy().astype("datetime64[D]"))
    ts = np.unique(ts[ts < len(dates)])
    factors = plain_factors(panel, ts)
    for year in args.years:
        wide = scores.filter(pl.col("date").dt.year() == year).pivot(on="model", index=["code", "date"],
                                                                       values="score")
        rows: dict[str, list] = {k: [] for k in [*factors, *args.models]}
        for (day,), g in wide.group_by("date"):
            t = int(np.searchsorted(dates, np.datetime64(day)))
            if t >= len(dates) or dates[t] != np.datetime64(day):
                continue
            i = np.searchsorted(panel.codes, g["code"].to_numpy())
            k_t = int(np.searchsorted(ts, t))
            cols = {k: v[i, k_t] for k, v in factors.items()} | {m: g[m].to_numpy() for m in args.models}
            ok = np.isfinite(y[i, t])
            for v in cols.values():
                ok &= np.isfinite(v)
            if ok.sum() < 100:
                continue
            for k, v in cols.items():
                rows[k].append([spearmanr(v[ok], y[i, t][ok])[0]] + [spearmanr(v[ok], cols[m][ok])[0]
                                                                    for m in args.models])
        print(f"{year}: mean per signal date; RankIC, then rank correlation with " + ", ".join(args.models))
        for k, v in rows.items():
            if v:
                print(f"  {k:<20}" + " ".join(f"{x:+.3f}" for x in np.mean(v, axis=0)))


if __name__ == "__main__":
    main()
