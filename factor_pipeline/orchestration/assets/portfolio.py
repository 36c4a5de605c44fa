"""Index enhancement: the risk model, then weekly target weights per index and model and their
backtest (one op: each week's turnover limit starts from what the backtest really holds)."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl

from factor_pipeline.audit.checks import constraint_audit
from factor_pipeline.config import home
from factor_pipeline.datasets.samples import indices_within
from factor_pipeline.datasets.store import panel_from_warehouse
from factor_pipeline.datasets.weekly import signal_dates
from factor_pipeline.orchestration.partitions import run_window
from factor_pipeline.orchestration.resources import WarehouseResource
from factor_pipeline.parallel import workers_for
from factor_pipeline.portfolio.risk import StoredRisk, bias_statistic, build_risk_model, risk_tables
from factor_pipeline.portfolio.weekly import INDICES, figures, resume_points, run_portfolios
from factor_pipeline.progress import Progress

SIDE_BY_SIDE_WEEKS = 52  # fewer signal weeks: the portfolios are solved in this process
RISK_HISTORY_DAYS = 800  # calendar days before the first signal: 252-day momentum + a year of factor returns
GROUP = "portfolio"
DEFAULT_SPAN = ("2017-01-01", "2023-12-31")


class PortfolioConfig(dg.Config):
    """Which models, indices and signal dates to build enhanced portfolios for."""

    models: list[str] = []  # empty: every model that has scores in the span
    indices: list[str] = list(INDICES)
    start: str = ""  # empty: the weeks the run targets (weekly job, backfill), else 2017-01-01
    end: str = ""  # empty: the end of the weeks the run targets, else 2023-12-31


def _span(config: PortfolioConfig, context: dg.AssetExecutionContext) -> tuple[date, date]:
    """Signal dates [start, end] the portfolios cover: the config's, else the run's weeks."""
    window = run_window(context)
    start = config.start or (str(window[0]) if window else DEFAULT_SPAN[0])
    end = config.end or (str(window[1] - timedelta(days=1)) if window else DEFAULT_SPAN[1])
    return date.fromisoformat(start), date.fromisoformat(end)


def _industries(wh) -> tuple[list[str], dict[str, str]]:
    with wh.connect(read_only=True) as con:
        stocks = con.sql("SELECT code, industry FROM stocks").pl()
    return sorted(stocks["industry"].unique().to_list()), dict(zip(stocks["code"], stocks["industry"], strict=True))


@dg.asset(
    group_name=GROUP, deps=["daily_bars", "index_weights", "stocks"], kinds={"numpy", "duckdb"},
    description="Point-in-time risk model at each signal date: style exposures (size, beta, momentum, residual "
                "volatility, liquidity, non-linear size, short-term reversal), industries, EWMA factor covariance "
                "and shrunk specific variance (tables `risk_exposures`, `risk_factor_cov`, `risk_specific`).",
    check_specs=[dg.AssetCheckSpec("calibration", asset="risk_model",
                                   description="bias statistic of random active portfolios over the next week "
                                               "within 0.7 .. 1.3")],
)
def risk_model(context: dg.AssetExecutionContext, config: PortfolioConfig,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    start, end = _span(config, context)
    industries, ind_of = _industries(wh)
    panel = panel_from_warehouse(wh, start - timedelta(days=RISK_HISTORY_DAYS), end + timedelta(days=10), frozenset())
    industry = np.searchsorted(industries, [ind_of[c] for c in panel.codes])
    signals = signal_dates(panel, panel.dates[0].astype(object), end + timedelta(days=1))
    model = build_risk_model(panel, industry, industries, signals)
    keep = [k for k, t in enumerate(signals) if panel.dates[t] >= np.datetime64(start)]
    tables = risk_tables(model, panel, keep)
    for name, table in tables.items():
        wh.replace_rows(name, table, f"date >= DATE '{start}' AND date <= DATE '{end}'")
    bias = bias_statistic(model, panel, keep)
    return dg.MaterializeResult(
        metadata={"signal_dates": len(keep), "factors": len(model.factor_names), "bias_statistic": round(bias, 3)},
        check_results=[dg.AssetCheckResult(check_name="calibration", passed=bool(0.7 <= bias <= 1.3),
                                           severity=dg.AssetCheckSeverity.WARN,
                                           metadata={"bias_statistic": round(bias, 3)})])


def _write_csv(weights: pl.DataFrame, ind_of: dict[str, str]) -> str:
    last = weights["date"].max()
    out = home() / "trading"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"target_weights_{last}.csv"
    tmp = path.with_suffix(".csv.tmp")
    (weights.filter(pl.col("date") == last).with_columns(industry=pl.col("code").replace_strict(ind_of, default=None))
     .sort("index", "model", "weight", descending=[False, False, True]).write_csv(tmp))
    tmp.replace(path)
    return str(path)


def _bench_close(wh, panel) -> dict[str, np.ndarray]:
    with wh.connect(read_only=True) as con:
        idx = con.sql("SELECT \"index\", date, close FROM index_daily").pl()
    out = {}
    for k in INDICES:
        s = idx.filter(pl.col("index") == k).sort("date")
        t = np.searchsorted(panel.dates, s["date"].to_numpy().astype("datetime64[D]"))
        ok = t < len(panel.dates)
        c = np.full(len(panel.dates), np.nan)
        c[t[ok]] = s["close"].to_numpy()[ok]
        out[k] = pl.Series(c).fill_nan(None).fill_null(strategy="forward").to_numpy()
    return out


def _nav_levels(wh, points: dict, panel) -> dict[tuple[str, str], tuple[float, float]]:
    """(index, model) -> the stored (nav, bench) on the day each resumed book starts from."""
    if not points or "portfolio_nav" not in wh.tables():
        return {}
    with wh.connect(read_only=True) as con:
        stored = con.sql("SELECT * FROM portfolio_nav").pl()
    out = {}
    for (index, model), (day, _, _) in points.items():
        row = stored.filter((pl.col("index") == index) & (pl.col("model") == model)
                            & (pl.col("date") == panel.dates[day].astype(object)))
        if row.height:
            out[(index, model)] = (float(row["nav"][0]), float(row["bench"][0]))
    return out


@dg.multi_asset(
    group_name=GROUP,
    check_specs=[dg.AssetCheckSpec("constraint_audit", asset="target_weights",
                                   description="every portfolio-week holds the limits in force within 1e-6; weights "
                                               "long-only and summing to 1")],
    specs=[dg.AssetSpec("target_weights", deps=["risk_model", "scores", "index_weights"], kinds={"cvxpy"},
                        description="Weekly CSI300/500/1000 enhanced weights per model under the report's constraints "
                                    "(table `weights`; the latest week as "
                                    "$FACTOR_PIPELINE_HOME/trading/target_weights_DATE.csv)."),
           dg.AssetSpec("backtest", deps=["target_weights", "daily_bars", "index_daily"], kinds={"numpy"},
                        description="Execution at next-day VWAP with costs and fill blocks, daily NAV vs the index, "
                                    "constraint audit (tables `portfolio_nav`, `portfolio_audit`).")],
)
def enhanced_portfolios(context: dg.AssetExecutionContext, config: PortfolioConfig, warehouse: WarehouseResource):
    wh = warehouse.get()
    start, end = _span(config, context)
    span = f"date >= DATE '{start}' AND date <= DATE '{end}'"
    if "scores" not in wh.tables():
        raise FileNotFoundError("no scores table in the warehouse: materialise `scores` first (a model scores a "
                                "year only once a year of weak factors before it exists to fit on)")
    with wh.connect(read_only=True) as con:
        scores = con.sql(f"SELECT code, date, model, score FROM scores WHERE {span}").pl()
        iw = con.sql("SELECT \"index\", date, code, weight FROM index_weights").pl()
        tables = {t: con.sql(f"SELECT * FROM {t} WHERE {span}").pl()
                  for t in ("risk_exposures", "risk_factor_cov", "risk_specific")}
    if scores.height == 0:
        raise FileNotFoundError("no scores in the warehouse for the portfolio's dates: materialise `scores` first")
    first = scores["date"].min()
    held = None
    if "holdings" in wh.tables():  # resume from what each portfolio held after its last execution before the span
        with wh.connect(read_only=True) as con:
            held = con.sql(f"SELECT * FROM holdings WHERE date < DATE '{first}' AND date >= DATE '{first}' - 14").pl()
    industries, ind_of = _industries(wh)
    also = tuple(held["code"].unique().to_list()) if held is not None else ()  # held, perhaps without a bar
    panel = panel_from_warehouse(wh, start - timedelta(days=14), None, frozenset(), also)
    risk = StoredRisk(tables, panel, industries)
    models = config.models or sorted(scores["model"].unique().to_list())
    unknown = sorted(set(config.indices) - set(INDICES))
    if unknown:
        raise ValueError(f"unknown indices {unknown} in the portfolio config (known: {', '.join(INDICES)})")
    # an index whose members lie outside the sample universe has no scores to enhance it with
    indices = [k for k in config.indices if k in indices_within(panel.universe)]
    skipped = [k for k in config.indices if k not in indices]
    if skipped:
        context.log.warning(f"no enhanced {', '.join(skipped)}: its members lie outside the sample universe "
                            f"{panel.universe}")
    if not indices:
        raise ValueError(f"none of the indices {config.indices} lies inside the sample universe {panel.universe}")
    points = resume_points(held, panel)
    progress = Progress("portfolio solves", "solve", log=context.log.info, log_every=0.05)
    try:
        # processes pay for their start (~3 s of imports each) over a year of weeks, not over the Friday job's one
        workers = workers_for(panel.nbytes + risk.nbytes, len(indices) * len(models)) \
            if len(risk.signals) >= SIDE_BY_SIDE_WEEKS else 1
        res = run_portfolios(panel, risk, scores, iw, models, indices=tuple(indices), resume=points,
                             progress=progress, workers=workers)
    finally:
        progress.close()
    weights, audit = res.weights(), res.audit()
    nav = res.nav(panel, _bench_close(wh, panel), _nav_levels(wh, points, panel))
    # the run owns its models' rows from `start` on (a NAV runs to the end of the data), so re-running a
    # span is idempotent and a later span does not erase an earlier one's weights
    owned = ("model IN (" + ", ".join(f"'{m}'" for m in models) + ") AND \"index\" IN ("
             + ", ".join(f"'{k}'" for k in indices) + ")")
    wh.replace_rows("weights", weights, f"{owned} AND {span}")
    wh.replace_rows("portfolio_audit", audit, f"{owned} AND {span}")
    wh.replace_rows("portfolio_nav", nav, f"{owned} AND date >= DATE '{start}'")
    wh.replace_rows("holdings", res.held(), f"{owned} AND date > DATE '{first}'")
    csv = _write_csv(weights, ind_of)
    ok, details = constraint_audit(audit, weights)
    check = dg.AssetCheckResult(asset_key="target_weights", check_name="constraint_audit", passed=ok,
                                metadata=details)
    yield dg.MaterializeResult(asset_key="target_weights", check_results=[check], metadata={
        "portfolios": len(res.runs), "weeks": int(audit["date"].n_unique()), "rows": weights.height,
        "latest_csv": dg.MetadataValue.path(csv),
        "solve_seconds_median": round(float(audit["solve_seconds"].median()), 4),
        "max_constraint_violation": float(audit["max_violation"].max()),
        "weeks_relaxed": int((audit["relaxed"] != "").sum()),
        "resumed_from_holdings": len(points), "universe": panel.universe,
        "indices_skipped": ", ".join(skipped) or "none"})
    meta: dict = {"days": nav["date"].n_unique()}
    for index, per in figures(nav, audit).items():
        for model, f in per.items():
            meta[f"{index}_{model}_excess_ann"] = f["excess_ann"]
    yield dg.MaterializeResult(asset_key="backtest", metadata=meta)


PORTFOLIO_ASSETS = [risk_model, enhanced_portfolios]
