"""From the stage tables to a report folder: evaluate every score, write metrics.json and the tables
behind it (so anyone can recompute a figure), then report.html."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import polars as pl

from factor_pipeline.evaluation.evaluate import Evaluation, evaluate
from factor_pipeline.portfolio.weekly import figures
from factor_pipeline.report.html import render_report
from factor_pipeline.report.metrics import ORACLE, build_metrics, validate_metrics, write_json

NOT_BUILT = ["portfolios: risk model, index-enhanced weights and their backtest (weights.parquet) are not built "
             "yet, so `portfolios` is empty"]
INFO_COLS = ("csi_all", "csi300", "csi500", "csi1000")


def score_table(weak: pl.DataFrame, scores: pl.DataFrame, baselines: pl.DataFrame,
                oracle: pl.DataFrame | None, signal_dates: list[date]) -> pl.DataFrame:
    """code, date, name, score: dataset outputs, Model1-4, baselines and the oracle at the signal dates."""
    parts = [weak.select("code", "date", pl.col("dataset").alias("name"), pl.col("output").alias("score")),
             scores.select("code", "date", pl.col("model").alias("name"), "score"),
             baselines.select("code", "date", pl.col("model").alias("name"), "score")]
    if oracle is not None and oracle.height:
        parts.append(oracle.filter(pl.col("date").is_in(signal_dates)).select(
            "code", "date", pl.lit(ORACLE).alias("name"), pl.col("expected_return_10d").alias("score")))
    return pl.concat([p.with_columns(pl.col("score").cast(pl.Float64)) for p in parts])


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_run(table: pl.DataFrame, labels: pl.DataFrame, info: pl.DataFrame) -> Evaluation:
    factors = tuple(c for c in info.columns if c not in ("code", "date", *INFO_COLS))
    return evaluate(table, labels, info, factors)


def write_evaluation(out: Path, ev: Evaluation, table: pl.DataFrame, weak: pl.DataFrame, run: dict,
                     nav: pl.DataFrame | None = None, audit: pl.DataFrame | None = None,
                     weights: pl.DataFrame | None = None) -> dict:
    """metrics.json (validated against its schema) and the Parquet tables behind it, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    have_portfolios = nav is not None and audit is not None and nav.height > 0
    portfolios = figures(nav, audit) if have_portfolios else {}
    doc = build_metrics(ev, run, portfolios, not_built=[] if have_portfolios else NOT_BUILT)
    if have_portfolios:
        nav.write_parquet(out / "portfolio_nav.parquet")
        audit.write_parquet(out / "portfolio_audit.parquet")
    if weights is not None and weights.height:
        weights.write_parquet(out / "weights.parquet")
    validate_metrics(doc)
    weak.write_parquet(out / "weak_factors.parquet")
    table.filter(pl.col("name") != ORACLE).rename({"name": "model"}).write_parquet(out / "scores.parquet")
    if ev.ic is not None:
        ev.ic.write_parquet(out / "rank_ic.parquet")
    if ev.groups is not None:
        ev.groups.write_parquet(out / "groups.parquet")
    write_json(out / "metrics.json", doc)
    return doc


def write_html(out: Path) -> Path:
    """report.html from the folder's metrics.json and per-date tables."""
    doc = json.loads((out / "metrics.json").read_text())
    ic = pl.read_parquet(out / "rank_ic.parquet") if (out / "rank_ic.parquet").exists() else None
    groups = pl.read_parquet(out / "groups.parquet") if (out / "groups.parquet").exists() else None
    nav = pl.read_parquet(out / "portfolio_nav.parquet") if (out / "portfolio_nav.parquet").exists() else None
    return render_report(doc, ic, groups, out, nav)
