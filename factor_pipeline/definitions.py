"""The pipeline's table of contents: every asset, check, resource and job Dagster shows."""

from __future__ import annotations

import dagster as dg

from factor_pipeline.orchestration.assets.datasets import DATASET_ASSETS
from factor_pipeline.orchestration.assets.features import FEATURE_ASSETS
from factor_pipeline.orchestration.assets.market import MARKET_ASSETS
from factor_pipeline.orchestration.assets.portfolio import PORTFOLIO_ASSETS
from factor_pipeline.orchestration.assets.report import REPORT_ASSETS
from factor_pipeline.orchestration.assets.scores import baseline_scores, scores
from factor_pipeline.orchestration.assets.weak_factors import WEAK_FACTOR_ASSETS
from factor_pipeline.orchestration.partitions import market_weeks, rebalance_weeks
from factor_pipeline.orchestration.resources import (
    MarketSourceResource,
    MlflowResource,
    TorchDeviceResource,
    WarehouseResource,
)

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

defs = dg.Definitions(
    assets=[*MARKET_ASSETS, *DATASET_ASSETS, *FEATURE_ASSETS, *WEAK_FACTOR_ASSETS, scores, baseline_scores,
            *PORTFOLIO_ASSETS, *REPORT_ASSETS],
    jobs=[market_job, datasets_job],
    resources={"warehouse": WarehouseResource(), "market_source": MarketSourceResource(),
               "mlflow": MlflowResource(), "torch_device": TorchDeviceResource()},
)
