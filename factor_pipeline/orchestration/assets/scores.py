"""The scores asset: Model1-Model4 (XGBoost over weak factors) per rebalance week (table `scores`)."""

import warnings
from datetime import timedelta

import dagster as dg

from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.evaluation.ic import ic_summary
from factor_pipeline.models.combiner import CombinerConfig
from factor_pipeline.models.scores import model_scores
from factor_pipeline.orchestration.partitions import rebalance_weeks, window_dates
from factor_pipeline.orchestration.resources import WarehouseResource

warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

HISTORY = dg.TimeWindowPartitionMapping(start_offset=-52 * 4 - 4)


class ScoresConfig(dg.Config):
    n_estimators: int = 200
    max_depth: int = 4
    learning_rate: float = 0.05
    train_years: int = 3
    seed: int = 0


@dg.asset(
    group_name="scores",
    deps=[dg.AssetDep(f"weak_factors_{n}", partition_mapping=HISTORY) for n in DATASETS]
    + [dg.AssetDep("labels", partition_mapping=HISTORY)],
    partitions_def=rebalance_weeks,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"xgboost", "duckdb"},
    description="Model1-Model4 scores: XGBoost over the weak factors of each model's datasets, retrained per "
                "year on labels realised before it (table `scores`: code, date, model, score).",
)
def scores(context: dg.AssetExecutionContext, config: ScoresConfig,
           warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    start, end = window_dates(context)
    since = start - timedelta(days=366 * (config.train_years + 1))
    with wh.connect(read_only=True) as con:
        span = f"date >= DATE '{since}' AND date < DATE '{end}'"
        weak = con.sql(f"SELECT * FROM weak_factors WHERE {span}").pl()
        labels = con.sql(f"SELECT * FROM labels WHERE {span}").pl()
    dates = sorted({d for d in weak["date"].to_list() if start <= d < end}) if weak.height else []
    cfg = CombinerConfig(n_estimators=config.n_estimators, max_depth=config.max_depth,
                         learning_rate=config.learning_rate, train_years=config.train_years, seed=config.seed)
    res = model_scores(weak, labels, dates, cfg)
    if res.scores.height:
        wh.replace_rows("scores", res.scores, f"date >= DATE '{start}' AND date < DATE '{end}'")
    meta: dict = {"rows": res.scores.height, "signal_dates": len(dates)}
    for model, why in res.not_runnable.items():
        context.log.warning(f"{model} is not runnable: {why}")
        meta[f"{model}_not_runnable"] = why
    for model, ics in res.oos_ic.items():
        s = ic_summary(ics)
        meta[f"{model}_rank_ic_mean"], meta[f"{model}_icir"] = s["rank_ic_mean"], s["icir"]
        meta[f"{model}_ic_positive_share"] = s["ic_positive_share"]
        meta[f"{model}_fits"] = len(res.fits[model])
    return dg.MaterializeResult(metadata=meta)
