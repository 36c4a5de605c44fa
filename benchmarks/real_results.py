"""The README's real-data table from a run's report folder, scored exactly as the project is checked
(`../shared/realeval/evaluate.py`: weekly 10-day RankIC over the members of each universe).

    .venv/bin/python benchmarks/real_results.py $FACTOR_PIPELINE_HOME/reports/real \\
        --contract ../shared/realdata --start 2018-01-01 --end 2019-12-31

Prints Markdown: RankIC per universe over the span with ICIR and IC>0 on csi_all, RankIC per year,
and the top-group excess per year from the run's metrics.json (csi_all, 20 groups).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import polars as pl

ROWS = {  # score in the report folder -> what the README calls it
    "alpha158_lgbm": "peer: Qlib's LightGBM on Alpha158 (`alpha158_lgbm`)",
    "week": "`week` weak factor",
    "day": "`day` weak factor",
    "equal_weight": "mean of week and day (`equal_weight`)",
    "model_wd": "`model_wd` (week + day, combiner)",
    "model_wd_alpha": "`model_wd_alpha` (peer + week/day mean)",
}
UNIVERSES = ("csi_all", "csi300", "csi500", "csi1000")


def _evaluator(contract: Path):
    path = contract.resolve().parent / "realeval" / "evaluate.py"
    spec = importlib.util.spec_from_file_location("realeval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--contract", type=Path, default=Path("../shared/realdata"))
    ap.add_argument("--start", default="2018-01-01")
    ap.add_argument("--end", default="2019-12-31")
    args = ap.parse_args()
    ev = _evaluator(args.contract)
    sc = pl.read_parquet(args.report_dir / "scores.parquet").with_columns(pl.col("date").cast(pl.Date))
    names = [n for n in ROWS if n in set(sc["model"].unique())]
    wide = None
    for n in names:
        part = sc.filter(pl.col("model") == n).select("code", "date", pl.col("score").alias(n))
        wide = part if wide is None else wide.join(part, on=["code", "date"], how="full", coalesce=True)
    start, end = pl.Series([args.start, args.end]).str.to_date()
    res = ev.evaluate(args.contract, wide, names, start, end)
    doc = json.loads((args.report_dir / "metrics.json").read_text())
    per = {**doc.get("datasets", {}), **doc.get("models", {}), **doc.get("baselines", {})}
    years = sorted({y for n in names for y in res[n]["csi_all"].get("rankic_by_year", {})})
    print(f"Weekly 10-day RankIC {args.start} .. {args.end} (`../shared/realeval/evaluate.py`), members of each "
          "universe:\n")
    print("| score | " + " | ".join(UNIVERSES) + " | ICIR (csi_all) | IC>0 | " + " | ".join(
        f"RankIC {y}" for y in years) + " | " + " | ".join(f"top-group excess {y}" for y in years) + " |")
    print("|---" * (1 + len(UNIVERSES) + 2 + 2 * len(years)) + "|")
    for n in names:
        r = res[n]
        top = {y: v.get("excess") for y, v in ((per.get(n, {}).get("csi_all") or {}).get("top_by_year") or {}).items()}
        cells = [f"{r[u].get('rankic_mean', float('nan')):.3f}" for u in UNIVERSES]
        cells += [f"{r['csi_all'].get('icir', float('nan')):.2f}", f"{r['csi_all'].get('share_pos', float('nan')):.0%}"]
        cells += [f"{r['csi_all']['rankic_by_year'].get(y, float('nan')):.3f}" for y in years]
        cells += [f"{top[y]:+.1%}" if top.get(y) is not None else "–" for y in years]
        print(f"| {ROWS[n]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
