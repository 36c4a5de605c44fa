"""What the scores of a run load on: per year, each score's RankIC and its per-date rank correlation with a few
plain factors (reversal, momentum, low turnover, low volatility, size, turnover ratio) and with the other scores,
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
from factor_pipeline.datasets.panel import build_panel
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import connect_memory


def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean of the last w dates up to and including each date (NaN before w dates)."""
    cs = np.cumsum(np.nan_to_num(x), axis=1)
    out = np.full_like(x, np.nan)
    out[:, w:] = (cs[:, w:] - cs[:, :-w]) / w
    return out


def plain_factors(panel) -> dict[str, np.ndarray]:
    """[stock, date] factors from data up to each date, signed so that a positive IC is the textbook sign."""
    f = panel.field
    close = f("close") * f("adj_factor")
    turnover = f("turnover")
    ret = np.full_like(close, np.nan)
    ret[:, 1:] = close[:, 1:] / close[:, :-1] - 1

    def back(k: int) -> np.ndarray:
        out = np.full_like(close, np.nan)
        out[:, k:] = close[:, k:] / close[:, :-k] - 1
        return out

    with np.errstate(divide="ignore", invalid="ignore"):
        return {"reversal_5": -back(5), "reversal_20": -back(20), "momentum_120": back(120),
                "low_turnover_20": -_rolling_mean(turnover, 20), "low_vol_20": -np.sqrt(_rolling_mean(ret**2, 20)),
                "small_cap": -np.log(f("close") * f("float_shares")),
                "turnover_5_over_60": -(_rolling_mean(turnover, 5) / _rolling_mean(turnover, 60))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scores")
    ap.add_argument("--data", required=True)
    ap.add_argument("--years", type=int, nargs="+", default=[2017, 2018])
    ap.add_argument("--models", nargs="+", default=["week", "day", "alpha158_lgbm"])
    args = ap.parse_args()
    panel = build_panel(connect_memory(), file_source(args.data).relations())
    y = labels_mod.forward_returns(panel)
    factors = plain_factors(panel)
    dates = panel.dates.astype("datetime64[D]")
    scores = pl.read_parquet(args.scores).filter(pl.col("model").is_in(args.models))
    for year in args.years:
        wide = scores.filter(pl.col("date").dt.year() == year).pivot(on="model", index=["code", "date"],
                                                                       values="score")
        rows: dict[str, list] = {k: [] for k in [*factors, *args.models]}
        for (day,), g in wide.group_by("date"):
            t = int(np.searchsorted(dates, np.datetime64(day)))
            if t >= len(dates) or dates[t] != np.datetime64(day):
                continue
            i = np.searchsorted(panel.codes, g["code"].to_numpy())
            cols = {k: v[i, t] for k, v in factors.items()} | {m: g[m].to_numpy() for m in args.models}
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
