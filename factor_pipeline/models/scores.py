"""Scores of Model1-Model4 from the weak-factor and label tables (what the scores asset stores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from factor_pipeline.evaluation.ic import rank_ic
from factor_pipeline.models.combiner import MODELS, CombinerConfig, CombinerFit, feature_frame, rolling_scores
from factor_pipeline.models.fit_cache import CombinerCache


@dataclass
class ModelScores:
    scores: pl.DataFrame  # code, date, model, score
    fits: dict[str, list[CombinerFit]] = field(default_factory=dict)
    not_runnable: dict[str, str] = field(default_factory=dict)  # model -> why
    oos_ic: dict[str, list[float]] = field(default_factory=dict)


def model_scores(weak: pl.DataFrame, labels: pl.DataFrame, predict_dates: list[date], cfg: CombinerConfig,
                 cache: CombinerCache | None = None, oof: pl.DataFrame | None = None) -> ModelScores:
    """`oof`: out-of-fold weak factors (the weak table's columns and `period`), the training rows of the periods
    they cover where every dataset of a model has them; `labels` must then cover their dates too."""
    have = set(weak["dataset"].unique()) if weak.height else set()
    res = ModelScores(pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "model": pl.String,
                                           "score": pl.Float64}))
    frames = []
    for model, datasets in MODELS.items():
        missing = [d for d in datasets if d not in have]
        if missing:
            res.not_runnable[model] = f"no weak factors of {', '.join(missing)} on this market"
            continue
        own = None
        if oof is not None and oof.height and set(datasets) <= set(oof["dataset"].unique()):
            own = feature_frame(oof, datasets)
        s, fits = rolling_scores(feature_frame(weak, datasets), labels, predict_dates, cfg, cache, own)
        res.fits[model] = fits
        s = s.with_columns(model=pl.lit(model)).select("code", "date", "model", "score")
        frames.append(s)
        j = s.join(labels.select("code", "date", "y_raw"), on=["code", "date"]).drop_nulls("y_raw")
        res.oos_ic[model] = [rank_ic(g["score"].to_numpy(), g["y_raw"].to_numpy())
                             for _, g in j.group_by("date") if g.height >= 10]
    if frames:
        res.scores = pl.concat(frames)
    return res
