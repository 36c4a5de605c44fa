"""metrics.json: every headline figure of a run in one documented layout (DESIGN.md), and its schema.

NaN is not JSON: a figure that cannot be computed (too few dates, an empty group) is null.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import polars as pl

from factor_pipeline.evaluation.evaluate import UNIVERSES, Evaluation
from factor_pipeline.models.baselines import BASELINES, EXTRA_MODELS
from factor_pipeline.models.combiner import MODELS, REPORT_MODELS

DATASET_NAMES = ("week", "msnew", "day", "ms", "l2")
ORACLE = "oracle"

_num = {"type": ["number", "null"]}
_score_universe = {
    "type": "object",
    "required": ["rank_ic_mean", "icir", "ic_positive_share", "top_excess_ann", "top_turnover_weekly",
                 "group_excess_ann"],
    "properties": {
        "rank_ic_mean": _num, "icir": _num, "ic_positive_share": {"type": ["number", "null"], "minimum": 0,
                                                                  "maximum": 1},
        "top_excess_ann": _num, "top_turnover_weekly": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "group_excess_ann": {"type": "array", "items": _num, "minItems": 1},
        "top_abs_ann": _num, "top_vol_ann": _num, "top_max_drawdown": {"type": ["number", "null"], "maximum": 0},
        "top_by_year": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["absolute", "excess"],
            "properties": {"absolute": _num, "excess": _num}}},
        "periods": {"type": "integer", "minimum": 0},
    },
}
_by_universe = {"type": "object", "propertyNames": {"enum": list(UNIVERSES)}, "additionalProperties": _score_universe}
_portfolio = {
    "type": "object",
    "required": ["excess_ann", "excess_vol_ann", "weekly_win_rate", "max_drawdown", "excess_by_year",
                 "realised_te", "max_constraint_violation"],
    "properties": {"excess_ann": _num, "excess_vol_ann": _num, "weekly_win_rate": _num, "max_drawdown": _num,
                   "excess_by_year": {"type": "object", "additionalProperties": _num}, "realised_te": _num,
                   "max_constraint_violation": _num},
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "factor_pipeline metrics.json",
    "type": "object",
    "required": ["datasets", "models", "baselines", "portfolios", "oracle_rank_ic_mean", "run"],
    "properties": {
        "datasets": {"type": "object", "propertyNames": {"enum": list(DATASET_NAMES)},
                     "additionalProperties": _by_universe},
        "models": {"type": "object", "propertyNames": {"enum": [*MODELS, *EXTRA_MODELS]},
                   "additionalProperties": _by_universe},
        "baselines": {"type": "object", "propertyNames": {"enum": list(BASELINES)},
                      "additionalProperties": _by_universe},
        "portfolios": {"type": "object", "propertyNames": {"enum": [u for u in UNIVERSES if u != "csi_all"]},
                       "additionalProperties": {"type": "object", "additionalProperties": _portfolio}},
        "oracle_rank_ic_mean": {"type": "object", "propertyNames": {"enum": list(UNIVERSES)},
                                "additionalProperties": _num},
        "exposures": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _num}},
        "size_bias": {"type": "object", "additionalProperties": _num},
        "correlations": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _num}},
        "orderings": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["holds"], "properties": {"holds": {"type": ["boolean", "null"]}}}},
        "not_built": {"type": "array", "items": {"type": "string"}},
        "not_runnable": {"type": "object", "propertyNames": {"enum": list(MODELS)},
                         "additionalProperties": {"type": "string"}},
        "run": {"type": "object", "required": ["data", "preset", "seed", "start", "end", "git"],
                "properties": {"data": {}, "preset": {"type": ["string", "null"]},
                               "seed": {"type": ["integer", "null"]}, "start": {"type": "string"},
                               "end": {"type": "string"}, "git": {"type": ["string", "null"]}}},
    },
}


def clean(x):
    """NaN/inf -> None, recursively (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def common_period_ic(ic: pl.DataFrame | None, names: list[str], universe: str = "csi_all") -> dict[str, float | None]:
    """Mean RankIC of each name over the dates every one of them has (a fair comparison: weak factors
    start a year before the models that need a year of their history)."""
    if ic is None or ic.height == 0:
        return {n: None for n in names}
    sub = ic.filter((pl.col("universe") == universe) & pl.col("name").is_in(names))
    have = [n for n in names if sub.filter(pl.col("name") == n).height]
    dates = sub.group_by("date").agg(k=pl.col("name").n_unique()).filter(pl.col("k") == len(have))["date"]
    means = sub.filter(pl.col("date").is_in(dates.implode())).group_by("name").agg(pl.col("rank_ic").mean())
    got = dict(zip(means["name"].to_list(), means["rank_ic"].to_list(), strict=True))
    return {n: (round(got[n], 4) if got.get(n) is not None else None) for n in names}


def orderings(ic: pl.DataFrame | None) -> dict[str, dict]:
    """The report's findings, checked on csi_all RankIC over the common dates: each holds, fails, or
    cannot be said (null)."""
    common = common_period_ic(ic, [*DATASET_NAMES, *REPORT_MODELS])
    d = {n: common[n] for n in DATASET_NAMES}
    md = {n: common[n] for n in REPORT_MODELS}
    wd = common_period_ic(ic, ["model_wd", "week", "day"])
    singles = [v for v in d.values() if v is not None]
    best = max(singles) if singles else None

    def check(ok_inputs: list, cond) -> dict:
        if any(v is None for v in ok_inputs):
            return {"holds": None, "values": ok_inputs}
        return {"holds": bool(cond()), "values": ok_inputs}

    return {
        "week > day": check([d["week"], d["day"]], lambda: d["week"] > d["day"]),
        "model3 > model1 and model4 > model2 (adding week lifts)": check(
            [md["model3"], md["model1"], md["model4"], md["model2"]],
            lambda: md["model3"] > md["model1"] and md["model4"] > md["model2"]),
        "model1..4 > best single dataset": check(
            [*md.values(), best], lambda: min(md.values()) > best),
        "model3/4 > best single dataset": check([md["model3"], md["model4"], best],
                                                lambda: min(md["model3"], md["model4"]) > best),
        "msnew ~ ms (RankIC within 0.01)": check([d["msnew"], d["ms"]], lambda: abs(d["msnew"] - d["ms"]) <= 0.01),
        # the daily-only market's version of "combined > every single dataset", on model_wd's dates
        "model_wd > week and day": check([wd["model_wd"], wd["week"], wd["day"]],
                                         lambda: wd["model_wd"] > max(wd["week"], wd["day"])),
        "week > day (on model_wd's dates)": check([wd["week"], wd["day"]], lambda: wd["week"] > wd["day"]),
    }


def _why_not(datasets: tuple[str, ...], have: dict) -> str:
    missing = [d for d in datasets if d not in have]
    return f"no weak factors of {', '.join(missing)} on this data" if missing else "no scores in this run"


def build_metrics(ev: Evaluation, run: dict, portfolios: dict | None = None,
                  not_built: list[str] | None = None) -> dict:
    """The metrics.json document from an evaluation whose names are datasets, models, baselines, oracle."""
    out: dict = {"datasets": {}, "models": {}, "baselines": {}, "portfolios": portfolios or {},
                 "oracle_rank_ic_mean": {}}
    for name, per in ev.metrics.items():
        if name in DATASET_NAMES:
            out["datasets"][name] = per
        elif name in MODELS or name in EXTRA_MODELS:
            out["models"][name] = per
        elif name in BASELINES:
            out["baselines"][name] = per
        elif name == ORACLE:
            out["oracle_rank_ic_mean"] = {u: v["rank_ic_mean"] for u, v in per.items()}
    out["exposures"] = ev.exposures
    out["size_bias"] = {n: e.get("size") for n, e in ev.exposures.items() if "size" in e}
    out["correlations"] = ev.correlations
    out["orderings"] = orderings(ev.ic)
    out["not_runnable"] = {m: _why_not(ds, ev.metrics) for m, ds in MODELS.items() if m not in ev.metrics}
    out["not_built"] = not_built or []
    out["run"] = run
    return clean(out)


def validate_metrics(doc: dict) -> None:
    """Raise jsonschema.ValidationError naming the offending path when `doc` breaks the layout."""
    import jsonschema

    jsonschema.validate(doc, SCHEMA)


def write_json(path: Path, doc: dict) -> None:
    """Atomic write: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False))
    tmp.replace(path)
