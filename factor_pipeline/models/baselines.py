"""The two baselines every model is compared with, on the same dates and the same evaluation.

equal_weight      the mean of the datasets' outputs, each z-scored across the stocks of the date:
                  what the weak factors give without a combiner
alpha158_lgbm     Qlib's LightGBM on Alpha158 (`models.peer`): the peer a user would pick instead of
                  the report's networks
and, beyond the report, `model_wd_alpha`: the same booster over Alpha158 and the week/day weak
factors, which answers whether the deep factors add anything to the hand-crafted ones.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from factor_pipeline.datasets.panel import Panel
from factor_pipeline.models.combiner import feature_frame
from factor_pipeline.models.peer import WARMUP, PeerConfig, PeerFit, panel_rows, rolling_peer, with_weak_factors

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


def alpha_models(panel: Panel, weak_daily: pl.DataFrame, predict_dates: list[date], cfg: PeerConfig,
                 cache_dir: Path | None = None) -> dict[str, tuple[pl.DataFrame, list[PeerFit]]]:
    """`alpha158_lgbm` and, where the week and day weak factors exist, `model_wd_alpha`: yearly LightGBM
    fits on every trading date of the panel (after the features' warm-up), scored at `predict_dates`."""
    rows = panel_rows(panel, list(range(WARMUP, len(panel.dates))))
    out = {"alpha158_lgbm": rolling_peer(rows, rows, predict_dates, cfg, "alpha158_lgbm", cache_dir)}
    have = set(weak_daily["dataset"].unique()) if weak_daily.height else set()
    if set(WD_ALPHA_DATASETS) <= have:
        both = with_weak_factors(rows, feature_frame(weak_daily, WD_ALPHA_DATASETS))
        del rows
        out["model_wd_alpha"] = rolling_peer(both, both, predict_dates, cfg, "model_wd_alpha", cache_dir)
    return out
