"""Dataset assets (week, msnew, day, ms, l2) and the labels, per rebalance week.

Each partition records which stocks are samples at the week's signal date (warehouse table
`samples`); the images themselves are gathered from the panel when a model needs them. Labels
(table `labels`) are the only forward-looking asset: a week's labels are realised 11 trading days
after its signal date, so recent weeks hold nulls until re-materialised.
"""

import warnings
from datetime import timedelta

import dagster as dg

from factor_pipeline.datasets.base import dataset_base
from factor_pipeline.datasets.registry import DATASETS, PANEL_PARTS, DatasetUnavailable
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import (
    daily_label_table,
    dataset_weeks,
    history_start,
    label_table,
    signal_dates,
    trading_dates,
)
from factor_pipeline.orchestration.partitions import rebalance_weeks, window_dates
from factor_pipeline.orchestration.resources import WarehouseResource

warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "datasets"
HISTORY_WEEKS = 36  # 150 trading days and holidays
LABEL_WEEKS = 4  # 11 trading days ahead
NEEDS = {"daily": ("daily_bars", "index_weights"), "intraday": ("daily_bars", "index_weights", "intraday_bars"),
         "l2": ("daily_bars", "index_weights", "l2_daily")}


def _history(key: str) -> dg.AssetDep:
    return dg.AssetDep(key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-HISTORY_WEEKS))


def _dataset_asset(name: str) -> dg.AssetsDefinition:
    spec = DATASETS[name]

    @dg.asset(
        name=f"dataset_{name}",
        group_name=GROUP,
        deps=[_history(k) for k in NEEDS[spec.requires]],
        partitions_def=rebalance_weeks,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"torch", "duckdb"},
        description=f"`{name}`: {spec.doc}. Stores the sample list per signal date (table `samples`).",
        check_specs=[dg.AssetCheckSpec("available", asset=f"dataset_{name}",
                                       description="the market has the data this dataset needs, and every "
                                                   "signal date has samples")],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.get()
        start, end = window_dates(context)
        panel = panel_from_warehouse(wh, history_start(start, spec.lookback), end - timedelta(days=1),
                                     PANEL_PARTS[name])
        dates = signal_dates(panel, start, end)
        where = f"dataset = '{name}' AND date >= DATE '{start}' AND date < DATE '{end}'"
        try:
            res = dataset_weeks(panel, dataset_base(panel, consume=True), name, dates)
        except DatasetUnavailable as exc:
            context.log.warning(str(exc))
            return dg.MaterializeResult(
                metadata={"absent": True, "reason": str(exc)},
                check_results=[dg.AssetCheckResult(check_name="available", passed=False,
                                                   severity=dg.AssetCheckSeverity.WARN, description=str(exc))])
        wh.replace_rows("samples", res.samples, where)
        ok = not res.dates_without_samples
        return dg.MaterializeResult(
            metadata={
                "signal_dates": len(dates), "samples": res.samples.height, "stocks_covered": res.stocks,
                "sample_shape": str(res.shape), "nan_share_before_filling": round(res.nan_share, 6),
                "universe": panel.universe,
                "preview": dg.MetadataValue.md(res.preview),
            },
            check_results=[dg.AssetCheckResult(
                check_name="available", passed=ok, severity=dg.AssetCheckSeverity.WARN,
                metadata={"dates_without_samples": ", ".join(res.dates_without_samples) or "none"})],
        )

    return _asset


@dg.asset(
    group_name=GROUP,
    deps=[dg.AssetDep("daily_bars", partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-HISTORY_WEEKS, end_offset=LABEL_WEEKS)), _history("index_weights")],
    partitions_def=rebalance_weeks,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"duckdb"},
    description="10-day forward return from the VWAP of t+1 to the VWAP of t+11 (raw and standardised) and "
                "the cannot-buy flag, at each signal date (table `labels`); the 10-day labels of every trading "
                "date (table `labels_daily`, the combiner's daily training rows). The only forward-looking asset.",
)
def labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    start, end = window_dates(context)
    panel = panel_from_warehouse(wh, history_start(start, 30), end + timedelta(weeks=LABEL_WEEKS), frozenset())
    table = label_table(panel, signal_dates(panel, start, end))
    daily = daily_label_table(panel, trading_dates(panel, start, end))
    span = f"date >= DATE '{start}' AND date < DATE '{end}'"
    wh.replace_many([("labels", table, span), ("labels_daily", daily, span)])
    realised = table["y_raw"].is_not_null().mean() if table.height else 0.0
    return dg.MaterializeResult(metadata={"rows": table.height, "daily_rows": daily.height,
                                          "realised_share": round(float(realised or 0), 4),
                                          "cannot_buy_share": round(float(table["cannot_buy"].mean() or 0), 4)})


DATASET_ASSETS = [_dataset_asset(n) for n in DATASETS] + [labels]
