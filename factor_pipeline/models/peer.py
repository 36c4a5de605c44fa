"""The peer: Qlib's LightGBM on Alpha158 with Qlib's benchmark settings, trained the way Qlib trains it.

Protocol (Qlib's `LGBModel` + `Alpha158` handler, rolled yearly):
- rows: every trading date, every stock of the sample universe that trades that day (not only the
  weekly signal dates); features as computed (missing stays missing: LightGBM routes it);
- label: the 10-day VWAP return (t+1 -> t+11), z-scored across the stocks of each date
  (Qlib's `CSZScoreNorm` on the label); rows without a realised label are dropped;
- for each prediction year Y: an expanding training window from the first date with features to
  the validation start, a half-year validation window (the last six months before Y), purged so no
  training label overlaps a validation one; every label seen is realised before Y's first
  prediction date; early stopping (50 rounds) on the validation l2, at most 1000 rounds;
- LightGBM parameters of Qlib's `workflow_config_lightgbm_Alpha158.yaml` (mse, lr 0.2, 210 leaves,
  depth 8, feature fraction 0.8879, `subsample` 0.8789 passed as Qlib passes it, which LightGBM
  ignores without a bagging frequency, L1 205.7, L2 580.98).
LightGBM rather than XGBoost: it is Qlib's own learner, so the peer is the peer and not an imitation,
and its leaf-wise growth with histogram bins trains these 2-3 million rows x 158 columns in minutes
on two cores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from factor_pipeline.datasets import labels as labels_mod
from factor_pipeline.datasets.alpha158 import FEATURES, alpha158_rows
from factor_pipeline.datasets.panel import Panel
from factor_pipeline.datasets.samples import universe_mask
from factor_pipeline.models.combiner import mean_rank_ic

WARMUP = 60  # trading days before the first row: the longest Alpha158 window is full


@dataclass(frozen=True)
class PeerConfig:
    learning_rate: float = 0.2
    num_leaves: int = 210
    max_depth: int = 8
    colsample_bytree: float = 0.8879
    subsample: float = 0.8789
    lambda_l1: float = 205.6999
    lambda_l2: float = 580.9768
    num_boost_round: int = 1000
    early_stopping_rounds: int = 50
    valid_months: int = 6
    seed: int = 0
    threads: int = 2

    def params(self) -> dict:
        return {"objective": "mse", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "max_depth": self.max_depth, "colsample_bytree": self.colsample_bytree,
                "subsample": self.subsample, "lambda_l1": self.lambda_l1, "lambda_l2": self.lambda_l2,
                "num_threads": self.threads, "seed": self.seed, "deterministic": True, "force_row_wise": True,
                "verbosity": -1}


@dataclass
class PeerFit:
    """One yearly fit: what it saw (for the point-in-time check and MLflow) and how it stopped."""

    year: int
    period: str
    train_rows: int
    train_first: date
    train_last: date
    last_realised: date
    valid_first: date
    valid_last: date
    best_iteration: int
    valid_rank_ic: float
    features: list[str] = field(default_factory=list)
    first_prediction: date | None = None
    model: object = None


@dataclass
class Rows:
    """A long matrix of (stock, date) rows: features, the label, and when it is realised."""

    x: np.ndarray  # [R, F] float32
    y: np.ndarray  # [R] label z-scored per date (NaN where not realised)
    y_raw: np.ndarray  # [R]
    date: np.ndarray  # [R] datetime64[D]
    realised_on: np.ndarray  # [R] datetime64[D] (NaT where beyond the data)
    code: np.ndarray  # [R]
    features: list[str]


def zscore_by_date(y: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Qlib's CSZScoreNorm: (y - mean) / std across the rows of each date (NaN rows stay NaN)."""
    df = pl.DataFrame({"d": dates, "y": y}).with_columns(pl.col("y").fill_nan(None))
    z = (pl.col("y") - pl.col("y").mean().over("d")) / pl.col("y").std(ddof=0).over("d")
    return df.select(z.fill_null(float("nan")))["y"].to_numpy().astype(np.float64)


def _months_before(d: date, months: int) -> date:
    m = d.month - months
    y = d.year + (m - 1) // 12
    return date(y, (m - 1) % 12 + 1, 1)


def _cache_key(cfg: PeerConfig, name: str, rows: Rows, tr: np.ndarray, va: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps({"cfg": asdict(cfg), "name": name, "features": rows.features}).encode())
    for sel in (tr, va):
        h.update(rows.date[sel].astype("datetime64[D]").astype(np.int64).tobytes())
        h.update(np.nan_to_num(rows.y[sel]).astype(np.float32).tobytes())
        h.update(_column_sums(rows.x, sel).round(3).tobytes())
    return h.hexdigest()[:20]


def _column_sums(x: np.ndarray, sel: np.ndarray, rows_per_block: int = 1 << 16) -> np.ndarray:
    """np.nansum(x[sel], axis=0, dtype=float64) without two copies of the selected rows (the stage's
    peak memory): blocks of rows are added in order onto the running total, the sum's own order."""
    idx = np.flatnonzero(sel)
    total = np.zeros(x.shape[1])
    for a in range(0, len(idx), rows_per_block):
        block = x[idx[a:a + rows_per_block]].astype(np.float64)
        block[np.isnan(block)] = 0.0
        block[0] += total
        total = block.sum(axis=0)
    return total


def rolling_peer(rows: Rows, predict: Rows, predict_dates: list[date], cfg: PeerConfig, name: str,
                 cache_dir: Path | None = None) -> tuple[pl.DataFrame, list[PeerFit]]:
    """Scores (code, date, score) at `predict_dates`, one LightGBM fit per calendar year.

    `rows`: the training candidates (every trading date); `predict`: the rows to score."""
    import lightgbm as lgb

    out, fits = [], []
    pdays = predict.date.astype("datetime64[D]")
    for year in sorted({d.year for d in predict_dates}):
        first = date(year, 1, 1)  # the year's anchor, not its first date in this run: same fit whatever the span
        first64 = np.datetime64(first, "D")
        valid_start = np.datetime64(_months_before(date(year, 1, 1), cfg.valid_months), "D")
        seen = np.isfinite(rows.y) & ~np.isnat(rows.realised_on) & (rows.realised_on < first64)
        va = seen & (rows.date >= valid_start)
        tr = seen & (rows.realised_on < valid_start)  # purged: realised before validation starts
        if tr.sum() < 1000 or va.sum() < 100:
            continue
        key = _cache_key(cfg, name, rows, tr, va)
        path = cache_dir / name / f"{key}.txt" if cache_dir else None
        if path is not None and path.exists():
            booster = lgb.Booster(model_file=str(path))
        else:
            dtrain = lgb.Dataset(rows.x[tr], rows.y[tr], free_raw_data=True)
            dvalid = lgb.Dataset(rows.x[va], rows.y[va], reference=dtrain)
            booster = lgb.train(cfg.params(), dtrain, num_boost_round=cfg.num_boost_round, valid_sets=[dvalid],
                                callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                booster.save_model(str(tmp), num_iteration=booster.best_iteration)
                tmp.rename(path)
                booster = lgb.Booster(model_file=str(path))  # scores from the saved model, cached or not
        best = booster.best_iteration or booster.current_iteration()
        vic = mean_rank_ic(pl.DataFrame({"date": rows.date[va], "p": booster.predict(rows.x[va]),
                                         "y": rows.y_raw[va]}), "p", "y")
        sel = (pdays.astype("datetime64[Y]").astype(int) + 1970 == year) & np.isin(
            pdays, np.array(predict_dates, dtype="datetime64[D]"))
        if sel.any():
            out.append(pl.DataFrame({"code": predict.code[sel], "date": pdays[sel],
                                     "score": booster.predict(predict.x[sel]).astype(np.float64)}))
        d_tr = rows.date[tr]
        fits.append(PeerFit(year, str(year), int(tr.sum()), d_tr.min().astype(object), d_tr.max().astype(object),
                            rows.realised_on[seen].max().astype(object), rows.date[va].min().astype(object),
                            rows.date[va].max().astype(object), int(best), vic, list(rows.features), first,
                            booster))
    scores = pl.concat(out).with_columns(pl.col("date").cast(pl.Date)) if out else pl.DataFrame(
        schema={"code": pl.String, "date": pl.Date, "score": pl.Float64})
    return scores, fits


def panel_rows(panel: Panel, ts: list[int]) -> Rows:
    """Alpha158 rows of every stock of the sample universe trading at each of the dates `ts`, with
    the label (labels.forward_returns: the only forward-looking part) and the date it is realised."""
    live = universe_mask(panel) & panel.listed & ~panel.suspended
    keep = np.flatnonzero(live.any(axis=1))  # a narrowed universe computes only its stocks' features
    sub = Panel(panel.codes[keep], panel.dates, panel.daily[keep], panel.listed[keep], panel.suspended[keep])
    x, k, t = alpha158_rows(sub, ts, live[keep])
    i = keep[k]
    y = labels_mod.forward_returns(panel)[i, t]
    d = panel.dates.astype("datetime64[D]")[t]
    return Rows(x, zscore_by_date(y, d), y, d, labels_mod.realised_dates(panel, t), panel.codes[i],
                [f"a_{f.lower()}" for f in FEATURES])
