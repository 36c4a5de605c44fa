"""Scores of Model1-Model4 from the weak-factor and label tables (what the scores asset stores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from factor_pipeline.evaluation.ic import rank_ic
from factor_pipeline.models.combiner import MODELS, CombinerConfig, CombinerFit, feature_frame, rolling_scores
from factor_pipeline.parallel import cores, in_order


@dataclass
class ModelScores:
    scores: pl.DataFrame  # code, date, model, score
    fits: dict[str, list[CombinerFit]] = field(default_factory=dict)
    not_runnable: dict[str, str] = field(default_factory=dict)  # model -> why
    oos_ic: dict[str, list[float]] = field(default_factory=dict)


SIDE_BY_SIDE_BYTES = 2**30  # feature frames up to this size (all models together) are copied to processes


def model_scores(weak: pl.DataFrame, labels: pl.DataFrame, predict_dates: list[date],
                 cfg: CombinerConfig, workers: int | None = None) -> ModelScores:
    """Every runnable model's rolling scores. `workers`: processes that fit the models side by side, each
    with single-threaded XGBoost (the same trees as one process: hist trees do not depend on the thread
    count); None: min(cores, models) where the frames are small, else one process with every core."""
    have = set(weak["dataset"].unique()) if weak.height else set()
    res = ModelScores(pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "model": pl.String,
                                           "score": pl.Float64}))
    runnable = {}
    for model, datasets in MODELS.items():
        missing = [d for d in datasets if d not in have]
        if missing:
            res.not_runnable[model] = f"no weak factors of {', '.join(missing)} on this market"
            continue
        runnable[model] = feature_frame(weak, datasets)
    if workers is None:
        small = sum(f.estimated_size() for f in runnable.values()) <= SIDE_BY_SIDE_BYTES
        workers = min(cores(), len(runnable)) if small else 1
    tasks = [(f, labels, predict_dates, cfg) for f in runnable.values()]
    results = in_order(rolling_scores, tasks, workers, _one_tree_thread) if workers > 1 \
        else (rolling_scores(*t) for t in tasks)
    frames = []
    for model, (s, fits) in zip(runnable, results, strict=True):
        res.fits[model] = fits
        s = s.with_columns(model=pl.lit(model)).select("code", "date", "model", "score")
        frames.append(s)
        j = s.join(labels.select("code", "date", "y_raw"), on=["code", "date"]).drop_nulls("y_raw")
        res.oos_ic[model] = [rank_ic(g["score"].to_numpy(), g["y_raw"].to_numpy())
                             for _, g in j.group_by("date") if g.height >= 10]
    if frames:
        res.scores = pl.concat(frames)
    return res


def _one_tree_thread() -> None:
    from factor_pipeline.models import combiner

    combiner.TREE_THREADS = 1
