"""The two baselines every model is compared with, on the same dates and the same evaluation.

equal_weight      the mean of the datasets' outputs, each z-scored across the stocks of the date:
                  what the weak factors give without a combiner
alpha158_lgbm     Qlib's LightGBM on Alpha158 (`models.peer`): the peer a user would pick instead of
                  the report's networks
and, beyond the report, `model_wd_alpha`: the hand-crafted and the deep factors together, as the
mean of two per-date z-scores, the peer's score and the equal-weight mean of the week and day outputs.
An unweighted blend, not a fitted one: nothing in it is chosen on the years it scores, and it cannot
fall far below the better of its two parts when they are only weakly correlated (0.28 on the real
data). One booster over Alpha158 and the weak factors was tried first and lost to the peer (README):
it can learn only from the dates the weak factors exist out of sample (2017 on), the peer from 2015.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.models.peer import (
    WARMUP,
    PeerConfig,
    PeerFit,
    cached_fits,
    fit_keys,
    panel_rows,
    rolling_peer,
    score_cached,
)

BASELINES = ("equal_weight", "alpha158_lgbm")
EXTRA_MODELS = ("model_wd_alpha",)  # scored beside the baselines, reported with the models
WD_ALPHA_DATASETS = ("week", "day")


def equal_weight(weak: pl.DataFrame, predict_dates: list[date]) -> pl.DataFrame:
    """code, date, score: mean of the z-scored outputs of the datasets a stock has on that date."""
    out = weak.filter(pl.col("date").is_in(predict_dates)).select("code", "date", "dataset", "output")
    if out.height == 0:
        return pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "score": pl.Float64})
    z = out.with_columns(((pl.col("output") - pl.col("output").mean().over("date", "dataset"))
                          / pl.col("output").std().over("date", "dataset")).fill_nan(None).alias("output"))
    return z.group_by("code", "date").agg(score=pl.col("output").mean()).drop_nulls("score").sort("date", "code")


def zscore(s: pl.DataFrame) -> pl.DataFrame:
    """code, date, score with the score z-scored across the stocks of each date."""
    z = (pl.col("score") - pl.col("score").mean().over("date")) / pl.col("score").std().over("date")
    return s.select("code", "date", z.fill_nan(None).alias("score")).drop_nulls("score")


def wd_alpha(peer: pl.DataFrame, weak: pl.DataFrame, predict_dates: list[date]) -> pl.DataFrame:
    """model_wd_alpha: mean of the z-scored peer score and the z-scored equal-weight mean of the week
    and day outputs, on the (stock, date) rows that have both."""
    deep = equal_weight(weak.filter(pl.col("dataset").is_in(WD_ALPHA_DATASETS)), predict_dates)
    j = zscore(peer).join(zscore(deep), on=["code", "date"], how="inner", suffix="_deep")
    return j.select("code", "date", score=(pl.col("score") + pl.col("score_deep")) / 2).sort("date", "code")


def alpha_models(panel: Panel, weak: pl.DataFrame, predict_dates: list[date], cfg: PeerConfig,
                 cache_dir: Path | None = None) -> dict[str, tuple[pl.DataFrame, list[PeerFit]]]:
    """`alpha158_lgbm` (yearly LightGBM fits on every trading date of the panel after the features'
    warm-up, scored at `predict_dates`) and, where the week and day weak factors exist,
    `model_wd_alpha` (no fit of its own: the peer's fits are its fits)."""
    name = "alpha158_lgbm"
    keys = fit_keys(panel, sorted({d.year for d in predict_dates}), cfg, name) if cache_dir else None
    cached = cached_fits(cache_dir, name, keys) if cache_dir and keys else None
    if cached is not None:  # e.g. the Friday job: Alpha158 at its own dates only
        peer, fits = score_cached(panel, cached, predict_dates), list(cached.values())
    else:
        rows = panel_rows(panel, list(range(WARMUP, len(panel.dates))))
        peer, fits = rolling_peer(rows, rows, predict_dates, cfg, name, cache_dir, keys)
    out = {name: (peer, fits)}
    have = set(weak["dataset"].unique()) if weak.height else set()
    if set(WD_ALPHA_DATASETS) <= have:
        out["model_wd_alpha"] = (wd_alpha(peer, weak, predict_dates), [])
    return out
