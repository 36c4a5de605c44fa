"""Jobs: loading the market, and the weekly rebalance (datasets → weak factors → scores → portfolios →
report) for one week or a backfill of weeks."""

from __future__ import annotations

import dagster as dg

from factor_pipeline.config import training_for_market
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

# the stages `factor-pipeline run` executes one after another, each as a run of its named job (runner.py)
stocks_job = dg.define_asset_job("stocks_job", selection=dg.AssetSelection.assets("stocks"),
                                 description="Load the stocks table (codes, boards, industries, listing dates).")
weak_factors_job = dg.define_asset_job(
    "weak_factors_job", selection=dg.AssetSelection.groups("weak_factors"), partitions_def=rebalance_weeks,
    description="Train (or reuse) the yearly weak-factor models of every dataset and write their weak factors.")
scores_job = dg.define_asset_job(
    "scores_job", selection=dg.AssetSelection.groups("scores"), partitions_def=rebalance_weeks,
    description="Model1-Model4 scores from the weak factors, and the baselines (equal weight, Alpha158 LightGBM).")
portfolio_job = dg.define_asset_job(
    "portfolio_job", selection=dg.AssetSelection.groups("portfolio"),
    description="Risk model, enhanced CSI300/500/1000 weights and their backtest over a span of signal dates.")
report_job = dg.define_asset_job(
    "report_job", selection=dg.AssetSelection.groups("report"),
    description="Evaluation (metrics.json) and report.html over a span of signal dates.")
STAGE_JOBS = [stocks_job, market_job, datasets_job, weak_factors_job, scores_job, portfolio_job, report_job]

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
    preset, market_seed = training_for_market(source_identity)
    s = seed if seed is not None else market_seed
    return {"ops": {a.key.to_user_string(): {"config": {"training_preset": preset, "seed": s}}
                    for a in WEAK_FACTOR_ASSETS}}
