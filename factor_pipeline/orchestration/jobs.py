"""Jobs: loading the market, and the weekly rebalance (datasets → weak factors → scores → portfolios →
report) for one week or a backfill of weeks."""

from __future__ import annotations

import json

import dagster as dg

from factor_pipeline.config import training_preset_for
from factor_pipeline.orchestration.assets.weak_factors import WEAK_FACTOR_ASSETS
from factor_pipeline.orchestration.partitions import market_weeks, rebalance_weeks

market_job = dg.define_asset_job(
    "market_job",
    selection=dg.AssetSelection.groups("market") - dg.AssetSelection.assets("stocks"),
    partitions_def=market_weeks,
    description="Load raw market data (bars, order flow, indices) for a range of weeks.",
)

datasets_job = dg.define_asset_job(
    "datasets_job",
    selection=dg.AssetSelection.groups("datasets"),
    partitions_def=rebalance_weeks,
    description="Build the week/msnew/day/ms/l2 datasets and the labels for a range of rebalance weeks.",
)

weekly_rebalance_job = dg.define_asset_job(
    "weekly_rebalance_job",
    selection=dg.AssetSelection.groups("datasets", "weak_factors", "scores", "portfolio", "report"),
    partitions_def=rebalance_weeks,
    description="One rebalance week (or a backfill of weeks, as one run): datasets, labels, weak factors, "
                "Model1-4 and baselines, risk model, enhanced target weights and backtest, evaluation and "
                "report. Portfolios and report cover the run's weeks unless their config says otherwise.",
)


def weekly_run_config(source_identity: str | None, seed: int | None = None) -> dict:
    """Launch config of the weekly job for the market the warehouse holds: the training preset that goes
    with it and the market's seed (a synthetic one) for training."""
    spec = json.loads(source_identity) if source_identity else None
    preset = training_preset_for(spec)
    s = seed if seed is not None else int((spec or {}).get("seed", 0) or 0)
    return {"ops": {a.key.to_user_string(): {"config": {"training_preset": preset, "seed": s}}
                    for a in WEAK_FACTOR_ASSETS}}
