"""The two baselines every model is compared with, on the same dates and the same evaluation.

equal_weight      the mean of the datasets' outputs, each z-scored across the stocks of the date:
                  what the weak factors give without a combiner
gbdt_handcrafted  XGBoost on the Alpha158-style daily-bar features (`datasets.alpha158`), rolled
                  yearly on labels realised before the prediction year exactly like Model1-4: the
                  peer a user would pick instead of the report's networks
"""

from __future__ import annotations

from datetime import date

import polars as pl

from factor_pipeline.models.combiner import CombinerConfig, CombinerFit, cross_sectional_z, rolling_scores

BASELINES = ("equal_weight", "gbdt_handcrafted")


def equal_weight(weak: pl.DataFrame, predict_dates: list[date]) -> pl.DataFrame:
    """code, date, score: mean of the z-scored outputs of the datasets a stock has on that date."""
    out = weak.filter(pl.col("date").is_in(predict_dates)).select("code", "date", "dataset", "output")
    if out.height == 0:
        return pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "score": pl.Float64})
    z = out.with_columns(((pl.col("output") - pl.col("output").mean().over("date", "dataset"))
                          / pl.col("output").std().over("date", "dataset")).fill_nan(None).alias("output"))
    return z.group_by("code", "date").agg(score=pl.col("output").mean()).drop_nulls("score").sort("date", "code")


def gbdt_handcrafted(features: pl.DataFrame, labels: pl.DataFrame, predict_dates: list[date],
                     cfg: CombinerConfig) -> tuple[pl.DataFrame, list[CombinerFit]]:
    """code, date, score from yearly XGBoost fits on the hand-crafted features (code, date, a_*)."""
    cols = [c for c in features.columns if c.startswith("a_")]
    feats = cross_sectional_z(features.select("code", "date", *cols), cols)
    return rolling_scores(feats, labels, predict_dates, CombinerConfig(**{**cfg.__dict__, "standardise": False}))
