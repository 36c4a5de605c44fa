"""Hand-crafted daily features at each signal date: the common factors (with the universe flags the
evaluation needs) and the Alpha158-style inputs of the GBDT baseline. Point in time: trailing windows."""

import warnings
from datetime import timedelta

import dagster as dg
import numpy as np
import polars as pl

from factor_pipeline.datasets.alpha158 import alpha158_table
from factor_pipeline.datasets.common_factors import common_factor_table
from factor_pipeline.datasets.samples import universe_mask
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import history_start, signal_dates
from factor_pipeline.market.schema import INDICES
from factor_pipeline.orchestration.partitions import rebalance_weeks, window_dates
from factor_pipeline.orchestration.resources import WarehouseResource

warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

LOOKBACK = 250  # trading days: P2HIGH reads 243
HISTORY = dg.TimeWindowPartitionMapping(start_offset=-56)


def _cells(panel, table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Panel (stock, date) indices of a table's (code, date) rows."""
    return (np.searchsorted(panel.codes, table["code"].to_numpy()),
            np.searchsorted(panel.dates, table["date"].to_numpy().astype("datetime64[D]")))


def _panel(warehouse: WarehouseResource, context: dg.AssetExecutionContext, parts: frozenset[str]):
    wh = warehouse.get()
    start, end = window_dates(context)
    present = set(wh.tables())
    parts = frozenset(p for p in parts if p != "ms" or "intraday_bars" in present)
    panel = panel_from_warehouse(wh, history_start(start, LOOKBACK), end - timedelta(days=1), parts)
    return wh, start, end, panel, signal_dates(panel, start, end)


@dg.asset(
    group_name="datasets", deps=[dg.AssetDep("daily_bars", partition_mapping=HISTORY),
                                 dg.AssetDep("index_weights", partition_mapping=HISTORY)],
    partitions_def=rebalance_weeks, backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb"},
    description="Common factors of SPEC.md (VOL20, RET20, PPREVERSAL, CGO60, P2HIGH, AVGAMT_20_60, DWF, "
                "MAXRET20, mom_20d_120d, 20-day means of the intraday ones, log float cap) and index membership "
                "at each signal date (table `common_factors`).",
)
def common_factors(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh, start, end, panel, ts = _panel(warehouse, context, frozenset({"ms"}))
    table = common_factor_table(panel, ts)
    i, t = _cells(panel, table)
    table = table.with_columns(**{k: pl.Series(panel.members[k][i, t]) for k in INDICES})
    wh.replace_rows("common_factors", table, f"date >= DATE '{start}' AND date < DATE '{end}'")
    cols = [c for c in table.columns if c not in ("code", "date", *INDICES)]
    return dg.MaterializeResult(metadata={
        "rows": table.height, "signal_dates": len(ts), "factors": ", ".join(cols),
        "null_share": round(float(np.mean([table[c].null_count() / max(table.height, 1) for c in cols])), 4)})


@dg.asset(
    group_name="datasets", deps=[dg.AssetDep("daily_bars", partition_mapping=HISTORY)],
    partitions_def=rebalance_weeks, backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb"},
    description="Qlib's Alpha158 (158 daily-bar features) at each signal date for the stocks of the sample "
                "universe (table `alpha158_features`): what the `alpha158_lgbm` peer scores (it computes them on "
                "every trading date itself for training).",
)
def alpha158_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh, start, end, panel, ts = _panel(warehouse, context, frozenset())
    table = alpha158_table(panel, ts)
    # the baseline learns and scores the same sample universe as the networks
    table = table.filter(pl.Series(universe_mask(panel)[_cells(panel, table)]))
    wh.replace_rows("alpha158_features", table, f"date >= DATE '{start}' AND date < DATE '{end}'")
    return dg.MaterializeResult(metadata={"rows": table.height, "signal_dates": len(ts),
                                          "features": len(table.columns) - 2, "universe": panel.universe})


FEATURE_ASSETS = [common_factors, alpha158_features]
