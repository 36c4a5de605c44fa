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
from factor_pipeline.orchestration.executors import job_executor
from factor_pipeline.orchestration.jobs import STAGE_JOBS, weekly_rebalance_job
from factor_pipeline.orchestration.resources import (
    MarketSourceResource,
    MlflowResource,
    TorchDeviceResource,
    WarehouseResource,
)
from factor_pipeline.orchestration.schedules import friday_rebalance, rebalance_after_market

defs = dg.Definitions(
    assets=[*MARKET_ASSETS, *DATASET_ASSETS, *FEATURE_ASSETS, *WEAK_FACTOR_ASSETS, scores, baseline_scores,
            *PORTFOLIO_ASSETS, *REPORT_ASSETS],
    jobs=[*STAGE_JOBS, weekly_rebalance_job],
    schedules=[friday_rebalance],
    sensors=[rebalance_after_market],
    resources={"warehouse": WarehouseResource(), "market_source": MarketSourceResource(),
               "mlflow": MlflowResource(), "torch_device": TorchDeviceResource()},
    executor=job_executor(),  # Dagster's default, or Celery where $FACTOR_PIPELINE_CELERY_BROKER is set
)
