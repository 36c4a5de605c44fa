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
from dataclasses import asdict, dataclass, field, replace
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
    reused: bool = False  # read from the cache (tracked by the run that fitted it)


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


def _live(panel: Panel) -> np.ndarray:
    """[N, T] the cells that are rows: in the sample universe, listed and trading."""
    return universe_mask(panel) & panel.listed & ~panel.suspended


def _code_version() -> bytes:
    """The code a fit is a function of besides its data: the features and this protocol."""
    from factor_pipeline.datasets import alpha158

    return hashlib.sha256(Path(alpha158.__file__).read_bytes() + Path(__file__).read_bytes()).digest()


def fit_keys(panel: Panel, years: list[int], cfg: PeerConfig, name: str) -> dict[int, str]:
    """Each year's cache key, from what its fit is a function of, without computing a feature: the settings,
    the code, which (stock, date) rows train and validate it, their labels, and the daily bars (and
    listed / suspended flags) of those stocks from the panel's start to its last row (the features'
    series start there). The Friday job recognises its year's fit from this and computes Alpha158 only
    for its own dates; the key does not depend on the panel's end or on stocks without a row in the fit."""
    dates = panel.dates.astype("datetime64[D]")
    live = _live(panel)
    live[:, :WARMUP] = False
    y = labels_mod.forward_returns(panel)
    live &= np.isfinite(y)
    realised = labels_mod.realised_dates(panel, np.arange(len(dates)))
    version = _code_version()
    keys = {}
    for year in years:
        first = np.datetime64(date(year, 1, 1), "D")
        valid_start = np.datetime64(_months_before(date(year, 1, 1), cfg.valid_months), "D")
        seen = ~np.isnat(realised) & (realised < first)
        on = seen & ((realised < valid_start) | (dates >= valid_start))  # training or validation dates
        cells = live & on[None, :]
        if not cells.any():
            continue
        last = int(np.flatnonzero(on)[-1]) + 1
        stocks = cells.any(axis=1)
        h = hashlib.sha256(json.dumps({"cfg": asdict(cfg), "name": name, "features": FEATURES, "year": year,
                                       "realised_before": str(first), "valid_from": str(valid_start)},
                                      sort_keys=True).encode())
        h.update(version)
        h.update(dates[:last].astype(np.int64).tobytes())
        h.update(panel.codes[stocks].astype("U12").tobytes())
        h.update(np.packbits(cells[stocks, :last]).tobytes())
        h.update(np.nan_to_num(y[stocks, :last][cells[stocks, :last]]).astype(np.float64).tobytes())
        for k in range(panel.daily.shape[-1]):
            h.update(np.nansum(panel.daily[stocks, :last, k], axis=0, dtype=np.float64).tobytes())
        h.update(panel.listed[stocks, :last].sum(axis=0).tobytes())
        h.update(panel.suspended[stocks, :last].sum(axis=0).tobytes())
        keys[year] = h.hexdigest()[:20]
    return keys


_DATES = ("train_first", "train_last", "last_realised", "valid_first", "valid_last", "first_prediction")


def _save_fit(path: Path, booster, fit: PeerFit) -> None:
    """The booster and what the fit saw (its MLflow record and point-in-time check), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if k in _DATES else v) for k, v in asdict(replace(fit, model=None)).items()
            if k not in ("model", "reused")}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta))
    tmp.rename(path.with_suffix(".json"))
    tmp = path.with_suffix(".tmp")
    booster.save_model(str(tmp), num_iteration=booster.best_iteration)
    tmp.rename(path)


def cached_fits(cache_dir: Path, name: str, keys: dict[int, str]) -> dict[int, PeerFit] | None:
    """Every year's fit from the cache, or None if one is missing."""
    import lightgbm as lgb

    out = {}
    for year, key in keys.items():
        path = cache_dir / name / f"{key}.txt"
        if not (path.exists() and path.with_suffix(".json").exists()):
            return None
        meta = json.loads(path.with_suffix(".json").read_text())
        meta.update({k: date.fromisoformat(meta[k]) for k in _DATES if meta.get(k) not in (None, "None")})
        out[year] = PeerFit(**meta, model=lgb.Booster(model_file=str(path)), reused=True)
    return out


def _scores(booster, predict: Rows, year: int, predict_dates: list[date]) -> pl.DataFrame | None:
    pdays = predict.date.astype("datetime64[D]")
    sel = (pdays.astype("datetime64[Y]").astype(int) + 1970 == year) & np.isin(
        pdays, np.array(predict_dates, dtype="datetime64[D]"))
    if not sel.any():
        return None
    return pl.DataFrame({"code": predict.code[sel], "date": pdays[sel],
                         "score": booster.predict(predict.x[sel]).astype(np.float64)})


def _table(out: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(out).with_columns(pl.col("date").cast(pl.Date)) if out else pl.DataFrame(
        schema={"code": pl.String, "date": pl.Date, "score": pl.Float64})


def score_cached(panel: Panel, fits: dict[int, PeerFit], predict_dates: list[date]) -> pl.DataFrame:
    """Scores at `predict_dates` from cached fits: Alpha158 only at those dates."""
    ts = np.flatnonzero(np.isin(panel.dates.astype("datetime64[D]"),
                                np.array(predict_dates, dtype="datetime64[D]")))
    predict = panel_rows(panel, [int(t) for t in ts])
    return _table([s for year, f in sorted(fits.items())
                   if (s := _scores(f.model, predict, year, predict_dates)) is not None])


def rolling_peer(rows: Rows, predict: Rows, predict_dates: list[date], cfg: PeerConfig, name: str,
                 cache_dir: Path | None = None, keys: dict[int, str] | None = None
                 ) -> tuple[pl.DataFrame, list[PeerFit]]:
    """Scores (code, date, score) at `predict_dates`, one LightGBM fit per calendar year.

    `rows`: the training candidates (every trading date); `predict`: the rows to score; `keys` (fit_keys):
    where each year's fit is cached under `cache_dir`."""
    import lightgbm as lgb

    out, fits = [], []
    for year in sorted({d.year for d in predict_dates}):
        first = date(year, 1, 1)  # the year's anchor, not its first date in this run: same fit whatever the span
        first64 = np.datetime64(first, "D")
        valid_start = np.datetime64(_months_before(date(year, 1, 1), cfg.valid_months), "D")
        seen = np.isfinite(rows.y) & ~np.isnat(rows.realised_on) & (rows.realised_on < first64)
        va = seen & (rows.date >= valid_start)
        tr = seen & (rows.realised_on < valid_start)  # purged: realised before validation starts
        if tr.sum() < 1000 or va.sum() < 100:
            continue
        path = cache_dir / name / f"{keys[year]}.txt" if cache_dir and keys and year in keys else None
        reused = path is not None and path.exists()
        if reused:
            booster = lgb.Booster(model_file=str(path))
        else:
            dtrain = lgb.Dataset(rows.x[tr], rows.y[tr], free_raw_data=True)
            dvalid = lgb.Dataset(rows.x[va], rows.y[va], reference=dtrain)
            booster = lgb.train(cfg.params(), dtrain, num_boost_round=cfg.num_boost_round, valid_sets=[dvalid],
                                callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
        best = booster.best_iteration or booster.current_iteration()
        vic = mean_rank_ic(pl.DataFrame({"date": rows.date[va], "p": booster.predict(rows.x[va]),
                                         "y": rows.y_raw[va]}), "p", "y")
        d_tr = rows.date[tr]
        fit = PeerFit(year, str(year), int(tr.sum()), d_tr.min().astype(object), d_tr.max().astype(object),
                      rows.realised_on[seen].max().astype(object), rows.date[va].min().astype(object),
                      rows.date[va].max().astype(object), int(best), vic, list(rows.features), first, booster,
                      reused)
        if path is not None and not reused:
            _save_fit(path, booster, fit)
            fit.model = booster = lgb.Booster(model_file=str(path))  # scores from the saved model, cached or not
        if (s := _scores(booster, predict, year, predict_dates)) is not None:
            out.append(s)
        fits.append(fit)
    return _table(out), fits


def panel_rows(panel: Panel, ts: list[int]) -> Rows:
    """Alpha158 rows of every stock of the sample universe trading at each of the dates `ts`, with
    the label (labels.forward_returns: the only forward-looking part) and the date it is realised."""
    live = _live(panel)
    keep = np.flatnonzero(live.any(axis=1))  # a narrowed universe computes only its stocks' features
    sub = Panel(panel.codes[keep], panel.dates, panel.daily[keep], panel.listed[keep], panel.suspended[keep])
    x, k, t = alpha158_rows(sub, ts, live[keep])
    i = keep[k]
    y = labels_mod.forward_returns(panel)[i, t]
    d = panel.dates.astype("datetime64[D]")[t]
    return Rows(x, zscore_by_date(y, d), y, d, labels_mod.realised_dates(panel, t), panel.codes[i],
                [f"a_{f.lower()}" for f in FEATURES])
