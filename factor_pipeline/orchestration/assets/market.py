"""Raw-data assets: contract tables loaded from the market source into the warehouse, week by week."""


import warnings

import dagster as dg

from factor_pipeline.market.schema import TABLES
from factor_pipeline.market.warehouse import LoadResult
from factor_pipeline.orchestration.partitions import market_weeks, window_dates
from factor_pipeline.orchestration.resources import MarketSourceResource, WarehouseResource

# single-run backfills are the point here (years of weeks in one run); the API is marked beta
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "market"
ABSENT_CONSEQUENCE = {
    "intraday_bars": "datasets ms and msnew (and Model1-Model4) cannot be built on this market",
    "l2_daily": "dataset l2 (and Model1-Model4) cannot be built on this market",
    "oracle": "no oracle ceiling: this is not a synthetic market",
}


def _result(table: str, res: LoadResult, identity: str, context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    meta = {
        "rows": res.rows,
        "source": identity,
        "start": str(res.start) if res.start else "all",
        "end_exclusive": str(res.end) if res.end else "all",
    }
    if res.absent:
        note = f"{table} is absent from the source: {ABSENT_CONSEQUENCE.get(table, '')}"
        context.log.warning(note)
        meta["absent"] = True
        check = dg.AssetCheckResult(check_name="contract", passed=False, severity=dg.AssetCheckSeverity.WARN,
                                    description=note, metadata={"absent": True})
    else:
        meta["stocks_covered"] = res.codes
        meta["first_date"] = str(res.first)
        meta["last_date"] = str(res.last)
        check = dg.AssetCheckResult(
            check_name="contract", passed=True,
            metadata={"rules": dg.MetadataValue.md("\n".join(f"- {r}" for r in res.report.rules.get(table, []))),
                      "rows_checked": res.report.rows.get(table, 0)},
        )
    return dg.MaterializeResult(metadata=meta, check_results=[check])


def _raw_asset(table: str, deps: tuple[str, ...], partitioned: bool = True, note: str = "") -> dg.AssetsDefinition:
    spec = TABLES[table]

    @dg.asset(
        name=table,
        group_name=GROUP,
        deps=list(deps),
        partitions_def=market_weeks if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        kinds={"duckdb"},
        description=f"Contract table `{table}` in the warehouse, validated before it is written. "
        f"Key: {', '.join(spec.key)}. {note}",
        check_specs=[dg.AssetCheckSpec(
            "contract", asset=table,
            description="the rows written passed every contract rule (types, NaN/inf, prices, OHLC order, "
                        "duplicate keys, cross-table rules); bad input fails the run and writes nothing")],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               market_source: MarketSourceResource) -> dg.MaterializeResult:
        wh = warehouse.get()
        source = market_source.get(wh)
        start, end = window_dates(context) if partitioned else (None, None)
        res = wh.load(source, table, start, end)
        return _result(table, res, source.identity, context)

    return _asset


stocks = _raw_asset("stocks", (), partitioned=False)
daily_bars = _raw_asset("daily_bars", ("stocks",))
intraday_bars = _raw_asset("intraday_bars", ("daily_bars",))
l2_daily = _raw_asset("l2_daily", ("daily_bars",))
index_weights = _raw_asset("index_weights", ("stocks",))
index_daily = _raw_asset("index_daily", ())
oracle = _raw_asset("oracle", ("daily_bars",), note="Synthetic market only: the planted expected 10-day "
                   "return given public information (the ceiling). Read by evaluation only.")

MARKET_ASSETS = [stocks, daily_bars, intraday_bars, l2_daily, index_weights, index_daily, oracle]
PARTITIONED_MARKET_ASSETS = [a for a in MARKET_ASSETS if a.partitions_def is not None]
