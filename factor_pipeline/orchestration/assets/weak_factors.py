"""Weak-factor assets: per dataset, rolling out-of-sample ResNet/GRU models and their weak factors
at every signal date of the partitions (warehouse table `weak_factors`) and at every trading date
(table `weak_factors_daily`, what the combiner learns from). With a preset's `folds`, also each predicted
year's out-of-fold weak factors over its training window (table `weak_factors_oof`, by `period`): the rows
that year's combiner learns from.

Models are retrained per calendar year of signal dates on the labels realised before that year's
first signal; a weekly partition reuses its year's model from the cache (same data, same config)
instead of training again. Every new fit is an MLflow run and a registered model version.
"""

import warnings
from datetime import timedelta

import dagster as dg
import polars as pl

from factor_pipeline.audit.checks import finite_scores
from factor_pipeline.config import SIDE_BY_SIDE, TRAINING, training_for_market
from factor_pipeline.datasets.registry import DATASETS, PANEL_PARTS, DatasetUnavailable
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import history_start, signal_dates, trading_dates
from factor_pipeline.evaluation.ic import ic_summary
from factor_pipeline.models.cadence import period_of
from factor_pipeline.models.tracking import ModelCache
from factor_pipeline.models.trainer import TrainConfig
from factor_pipeline.models.weak import NotCached, weak_factors
from factor_pipeline.orchestration.partitions import rebalance_weeks, window_dates
from factor_pipeline.orchestration.resources import MlflowResource, TorchDeviceResource, WarehouseResource
from factor_pipeline.progress import Progress

warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "weak_factors"
GPU_POOL = "gpu"  # weak-factor training: at most one at a time on the device (dagster.yaml pool limit)
# where a scaled-out deployment runs the training steps (docs/deploy.md): a Celery queue served by GPU
# workers, or a Kubernetes pod asking for one GPU; the local executors ignore both tags
GPU_ROUTING = {
    "factor_pipeline/compute": "gpu",
    "dagster-celery/queue": "gpu",
    "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
                           "pod_spec_config": {"node_selector": {"factor_pipeline/accelerator": "nvidia"}}},
}


class WeakFactorRunConfig(dg.Config):
    """Knobs a user may turn in the launchpad; the rest comes from the training preset."""

    # tiny | demo | real (real daily bars on a CPU) | full (GPU); empty: the one that goes with the market
    # in the warehouse (config.training_for_market), so a UI launch or backfill trains as the CLI did
    training_preset: str = ""
    lam: float = 1.0  # λ: weight of the weak factors' correlation penalty in the loss
    n_factors: int = 8  # K: weak factors per dataset
    retrain_months: int = 12  # retrain cadence: 12 = yearly (the report), or 6, 4, 3, 2, 1
    seed: int | None = None  # None: the market's seed (a synthetic market), else 0


def _absent(context: dg.AssetExecutionContext, name: str, exc: DatasetUnavailable) -> dg.MaterializeResult:
    """A dataset this market lacks (e.g. no ms/l2 in daily-only data): said, nothing written."""
    context.log.warning(str(exc))
    return dg.MaterializeResult(metadata={"absent": True, "reason": str(exc), "rows": 0}, check_results=[
        dg.AssetCheckResult(check_name="finite_weak_factors", passed=True, metadata={"rows": 0})])


def _weak_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"weak_factors_{name}",
        group_name=GROUP,
        deps=[f"dataset_{name}", dg.AssetDep("labels", partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-52 * 4 - 4, end_offset=-2))],
        partitions_def=rebalance_weeks,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"pytorch", "mlflow"},
        op_tags=GPU_ROUTING,
        pool=GPU_POOL,
        check_specs=[dg.AssetCheckSpec("finite_weak_factors", asset=f"weak_factors_{name}",
                                       description="no NaN or infinite weak factor or output")],
        description=f"Weak factors z_1..z_K and output of the `{name}` network at each signal date, from models "
                    "retrained yearly on labels realised before the year (table `weak_factors`).",
    )
    def _asset(context: dg.AssetExecutionContext, config: WeakFactorRunConfig, warehouse: WarehouseResource,
               mlflow: MlflowResource, torch_device: TorchDeviceResource) -> dg.MaterializeResult:
        wh = warehouse.get()
        start, end = window_dates(context)
        preset, seed = training_for_market(wh.source_identity())
        if config.training_preset and config.training_preset != preset:
            context.log.warning(f"training preset {config.training_preset!r} set in the launch config differs from "
                                f"{preset!r}, the one that goes with this market: these weeks' models (and the "
                                "weak factors written) will differ from a run with the defaults")
        if config.seed is not None and config.seed != seed:
            context.log.warning(f"seed {config.seed} set in the launch config differs from the market's {seed}")
        preset = config.training_preset or preset
        seed = seed if config.seed is None else config.seed
        if preset not in TRAINING:
            raise ValueError(f"unknown training preset {preset!r} (known: {', '.join(TRAINING)})")
        cfg = TrainConfig(**{**TRAINING[preset], "lam": config.lam, "seed": seed,
                             "retrain_months": config.retrain_months})
        first = history_start(start - timedelta(days=366 * (cfg.train_years + 1)), DATASETS[name].lookback)
        # the Friday job: its year's fits are cached, and it reads the intraday parts only for its own windows
        # (the long daily history still serves the cache keys); where that saves most of the intraday load
        short = history_start(start, DATASETS[name].lookback)
        attempts = [short, None] if PANEL_PARTS[name] & {"bars30", "ms"} and short - first > end - short else [None]
        tags = {"dagster_run_id": context.run_id, "partitions": f"{start}..{end - timedelta(days=1)}"}
        for intraday_from in attempts:
            panel = panel_from_warehouse(wh, first, end - timedelta(days=1), PANEL_PARTS[name],
                                         intraday_from=intraday_from)
            dates = signal_dates(panel, start, end)
            every = trading_dates(panel, start, end)
            progress = Progress(f"weak_factors_{name} fits", "fit", log=context.log.info, log_every=0)
            try:
                run = weak_factors(name, panel, every, cfg, config.n_factors, torch_device.get(), ModelCache(),
                                   mlflow.uri(), tags, signal=dates, progress=progress,
                                   side_by_side=preset in SIDE_BY_SIDE, cached_only=intraday_from is not None)
                break
            except DatasetUnavailable as exc:
                return _absent(context, name, exc)
            except NotCached as exc:
                context.log.info(f"{exc}: the full intraday history is loaded to train it")
            finally:
                progress.close()
        context.log.info(f"weak_factors_{name}: training preset {preset}, seed {seed}: {run.trained} fits trained, "
                         f"{run.reused} reused from the cache")
        daily = run.table
        run.table = daily.filter(pl.col("date").is_in([panel.dates[t].astype(object) for t in dates]))
        if daily.height:
            where = f"dataset = '{name}' AND date >= DATE '{start}' AND date < DATE '{end}'"
            # the periods' out-of-fold weak factors (`folds`; none without): the combiner's rows, per period; replaced
            # (or cleared) with the weak factors, so a combiner never reads rows of networks that no longer score
            periods = ", ".join(f"'{p}'" for p in sorted({period_of(d, cfg.retrain_months)
                                                          for d in daily["date"].unique()}))
            oof = run.oof if run.oof.height else daily.clear().with_columns(period=pl.lit(None, pl.String))
            wh.replace_many([("weak_factors", run.table, where), ("weak_factors_daily", daily, where),
                             ("weak_factors_oof", oof, f"dataset = '{name}' AND period IN ({periods})")])
        ic = ic_summary(run.oos_ic)
        values = [c for c in run.table.columns if c.startswith("z_") or c == "output"]
        long = run.table.unpivot(values, index=["code", "date"], value_name="score") if run.table.height \
            else pl.DataFrame(schema={"code": pl.String, "date": pl.Date, "score": pl.Float64})
        ok, details = finite_scores(long)
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
            check_name="finite_weak_factors", passed=ok, metadata=details)], metadata={
            "rows": run.table.height, "signal_dates": len(dates), "daily_rows": daily.height,
            "trading_dates": len(every), "out_of_fold_rows": run.oof.height, "fits_trained": run.trained,
            "fits_reused": run.reused, "intraday_from": str(intraday_from or panel.dates[0]),
            "registered_versions": ", ".join(run.registered) or "none",
            "oos_rank_ic_mean": ic["rank_ic_mean"], "oos_icir": ic["icir"],
            "oos_ic_positive_share": ic["ic_positive_share"],
            "top_group_turnover_weekly": round(run.top_turnover, 4),
        })

    return _asset


WEAK_FACTOR_ASSETS = [_weak_asset(n) for n in DATASETS]
