"""Index enhancement: risk model, weekly target weights per index and model, and their backtest
(tables `weights`, `portfolio_nav`, `portfolio_audit`); the latest week's targets as a CSV."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl

from factor_pipeline.config import home
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.orchestration.resources import WarehouseResource
from factor_pipeline.portfolio.weekly import INDICES, figures, run_portfolios

RISK_HISTORY_DAYS = 800  # calendar days before the first signal: 252-day momentum + a year of factor returns


class PortfolioConfig(dg.Config):
    """Which models and signal dates to build enhanced portfolios for."""

    models: list[str] = ["model1", "model2", "model3", "model4"]
    start: str = "2017-01-01"
    end: str = "2023-12-31"


def _write_csv(weights: pl.DataFrame, codes_industry: pl.DataFrame) -> str:
    last = weights["date"].max()
    out = home() / "trading"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"target_weights_{last}.csv"
    tmp = path.with_suffix(".csv.tmp")
    (weights.filter(pl.col("date") == last).join(codes_industry, on="code", how="left")
     .sort("index", "model", "weight", descending=[False, False, True]).write_csv(tmp))
    tmp.replace(path)
    return str(path)


@dg.asset(
    group_name="portfolio",
    deps=["scores", "daily_bars", "index_weights", "index_daily", "stocks"],
    kinds={"cvxpy", "duckdb"},
    description="Risk model (styles + industries, EWMA covariance) and weekly CSI300/500/1000 enhanced portfolios "
                "per model under the report's constraints, executed at next-day VWAP with costs (tables `weights`, "
                "`portfolio_nav`, `portfolio_audit`; latest targets in <home>/trading/).",
)
def portfolios(context: dg.AssetExecutionContext, config: PortfolioConfig,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    start, end = date.fromisoformat(config.start), date.fromisoformat(config.end)
    with wh.connect(read_only=True) as con:
        scores = con.sql(f"SELECT code, date, model, score FROM scores WHERE date >= DATE '{start}' "
                         f"AND date <= DATE '{end}'").pl()
        stocks = con.sql("SELECT code, industry FROM stocks").pl()
        iw = con.sql("SELECT \"index\", date, code, weight FROM index_weights").pl()
        idx = con.sql("SELECT \"index\", date, close FROM index_daily").pl()
    if scores.height == 0:
        raise FileNotFoundError("no scores in the warehouse for the portfolio's dates: materialise `scores` first")
    panel = panel_from_warehouse(wh, start - timedelta(days=RISK_HISTORY_DAYS), None, frozenset())
    industries = sorted(stocks["industry"].unique().to_list())
    ind_of = dict(zip(stocks["code"].to_list(), stocks["industry"].to_list(), strict=True))
    industry = np.searchsorted(industries, [ind_of[c] for c in panel.codes])
    signals = signal_dates(panel, panel.dates[0].astype(object), end + timedelta(days=1))
    res = run_portfolios(panel, industry, industries, scores, iw, signals, config.models)
    bench_close = {}
    for k in INDICES:
        s = idx.filter(pl.col("index") == k).sort("date")
        t = np.searchsorted(panel.dates, s["date"].to_numpy().astype("datetime64[D]"))
        c = np.full(len(panel.dates), np.nan)
        ok = t < len(panel.dates)
        c[t[ok]] = s["close"].to_numpy()[ok]
        bench_close[k] = pl.Series(c).fill_nan(None).fill_null(strategy="forward").to_numpy()
    weights, nav, audit = res.weights(), res.nav(panel, bench_close), res.audit()
    models = ", ".join(f"'{m}'" for m in config.models)
    where = f"model IN ({models})"
    wh.replace_rows("weights", weights, where)
    wh.replace_rows("portfolio_nav", nav, where)
    wh.replace_rows("portfolio_audit", audit, where)
    csv = _write_csv(weights, stocks)
    figs = figures(nav, audit)
    meta: dict = {"portfolios": len(res.runs), "weeks": int(audit["date"].n_unique()), "target_weights_csv":
                  dg.MetadataValue.path(csv),
                  "solve_seconds_median": round(float(audit["solve_seconds"].median()), 4),
                  "max_constraint_violation": float(audit["max_violation"].max()),
                  "weeks_relaxed": int((audit["relaxed"] != "").sum())}
    for index, per in figs.items():
        for model, f in per.items():
            meta[f"{index}_{model}_excess_ann"] = f["excess_ann"]
    return dg.MaterializeResult(metadata=meta)


PORTFOLIO_ASSETS = [portfolios]
