"""Evaluation and report: every score of the run, the report's tables, metrics.json and report.html
under `$FACTOR_PIPELINE_HOME/reports/<name>/`."""

import json
from datetime import timedelta

import dagster as dg
import polars as pl

from factor_pipeline.config import home
from factor_pipeline.orchestration.partitions import run_window
from factor_pipeline.orchestration.resources import WarehouseResource
from factor_pipeline.report.build import evaluate_run, score_table, write_evaluation, write_html


class ReportConfig(dg.Config):
    """Which signal dates the report covers and where it goes."""

    name: str = "latest"
    start: str = "2017-01-01"
    end: str = ""  # empty: the end of the weeks the run targets (weekly job, backfill), else 2023-12-31


def _span(config: ReportConfig, context: dg.AssetExecutionContext) -> tuple[str, str]:
    window = run_window(context)
    return config.start, config.end or (str(window[1] - timedelta(days=1)) if window else "2023-12-31")


def _run_record(wh, start: str, end: str) -> dict:
    """What the figures ran on: the market, the sample universe and the oddities of its data."""
    from factor_pipeline.market.oddities import count_oddities
    from factor_pipeline.report.build import git_commit

    identity = wh.source_identity()
    spec = json.loads(identity) if identity else {}
    with wh.connect(read_only=True) as con:
        odd = count_oddities(con, {t: t for t in ("daily_bars", "stocks", "index_weights")})
    return {"data": spec, "preset": spec.get("preset"), "seed": spec.get("seed"), "start": start,
            "end": end, "git": git_commit(), "universe": wh.universe(), "oddities": odd}


@dg.asset(
    group_name="report",
    deps=["scores", "baseline_scores", "labels", "common_factors", "oracle", "backtest",
          *[f"weak_factors_{n}" for n in ("week", "msnew", "day", "ms", "l2")]],
    kinds={"polars", "html"},
    description="Evaluates the datasets' weak factors, Model1-4, the baselines and the oracle (RankIC, ICIR, "
                "20/5 groups, top-group risk, turnover, correlations, common-factor exposure, size bias) and "
                "writes reports/<name>/: metrics.json and the tables behind it (Parquet).",
)
def evaluation(context: dg.AssetExecutionContext, config: ReportConfig,
           warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get()
    present = set(wh.tables())
    start, end = _span(config, context)
    span = f"date >= DATE '{start}' AND date <= DATE '{end}'"

    def read(t: str, cols: str = "*"):
        if t not in present:
            return None
        with wh.connect(read_only=True) as con:
            return con.sql(f"SELECT {cols} FROM {t} WHERE {span}").pl()

    weak, labels = read("weak_factors"), read("labels")
    if weak is None or labels is None or weak.height == 0:
        raise FileNotFoundError("no weak factors or labels in the warehouse for the report's dates: "
                                "materialise the weak factors first")
    scores = read("scores", "code, date, model, score")
    baselines = read("baseline_scores", "code, date, model, score")
    empty = weak.head(0).select("code", "date").with_columns(model=pl.lit(None, pl.String),
                                                             score=pl.lit(None, pl.Float64))
    dates = sorted(labels["date"].unique().to_list())
    table = score_table(weak, scores if scores is not None else empty,
                        baselines if baselines is not None else empty, read("oracle"), dates)
    info = read("common_factors")
    if info is None:
        raise FileNotFoundError("no common_factors table: materialise `common_factors` first")
    ev = evaluate_run(table, labels, info)
    out = home() / "reports" / config.name
    nav, audit, weights = read("portfolio_nav"), read("portfolio_audit"), read("weights")
    doc = write_evaluation(out, ev, table, weak, _run_record(wh, start, end), nav, audit, weights)
    meta: dict = {"folder": dg.MetadataValue.path(str(out)),
                  "metrics_json": dg.MetadataValue.path(str(out / "metrics.json"))}
    for section in ("datasets", "models", "baselines"):
        for name, per in doc[section].items():
            meta[f"{name}_rank_ic_csi_all"] = (per.get("csi_all") or {}).get("rank_ic_mean")
    meta["oracle_rank_ic_csi_all"] = doc["oracle_rank_ic_mean"].get("csi_all")
    meta["orderings"] = dg.MetadataValue.md("\n".join(
        f"- {k}: {'holds' if v['holds'] else 'fails' if v['holds'] is False else 'n/a'}"
        for k, v in doc["orderings"].items()))
    return dg.MaterializeResult(metadata={k: v for k, v in meta.items() if v is not None})


@dg.asset(group_name="report", deps=[evaluation], kinds={"html"},
          description="report.html: the report's tables 1-7 and figures (group bars, cumulative RankIC) of a run.")
def report(config: ReportConfig) -> dg.MaterializeResult:
    path = write_html(home() / "reports" / config.name)
    return dg.MaterializeResult(metadata={"html": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size})


REPORT_ASSETS = [evaluation, report]
