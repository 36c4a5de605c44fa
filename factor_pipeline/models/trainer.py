"""Training a weak-factor network on cross-sectional batches, and rolling it out of sample.

A batch is one date's samples (the report's cross-sectional batch), preprocessed across stocks of
that date. Adam, early stopping on the validation RankIC (the last part of the training dates,
purged: no training label overlaps a validation one), one seed for initialisation and date order.
An epoch visits every training date, or a fresh random draw of `dates_per_epoch` of them (so a CPU
budget still reaches every date of the window over the epochs instead of a fixed stride).
Rolling: for each prediction period (a calendar year), train on the previous `train_years` of dates
whose labels were realised before the period's first trading date; predict the period. So a weak
factor at t never comes from a model that saw a label realised after t, and every date of a period,
whichever of them a run predicts, gets the same model. `seeds` > 1 trains that many networks
(seed, seed+1, ...) and averages their per-date standardised outputs (z_1..z_K are the first one's).
`folds` >= 2 (issue 15 part 3): member k of the ensemble leaves out time fold k % folds of the window
(purged: no training label shares a day with a held-out one) and predicts it, so every date of the window
gets weak factors from networks that never fitted its label: the combiner's training rows for the period,
at no extra training (the members were being trained anyway).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import NamedTuple

import numpy as np
import polars as pl
import torch
from scipy.special import ndtri
from scipy.stats import rankdata

from factor_pipeline.datasets.base import DatasetBase
from factor_pipeline.datasets.builders import gather
from factor_pipeline.datasets.labels import HORIZON
from factor_pipeline.datasets.preprocess import inputs
from factor_pipeline.datasets.registry import DATASETS
from factor_pipeline.evaluation.ic import rank_ic
from factor_pipeline.models.cadence import period_of
from factor_pipeline.models.cadence import period_start as cadence_start
from factor_pipeline.models.device import autocast
from factor_pipeline.models.loss import factor_loss
from factor_pipeline.models.network import WeakFactorConfig, WeakFactorNet
from factor_pipeline.progress import Progress

TRADING_DAYS_PER_YEAR = 244
# a preceding refit joins a lagged ensemble only if its training window spans a year of trading dates: one
# cut short by the start of the data (a real run's 2016 fit, half a year of 2015) only drags the year down
# (2017, week: 0.089 alone, see README "A lagged ensemble")
LAGGED_MIN_DATES = TRADING_DAYS_PER_YEAR


@dataclass(frozen=True)
class TrainConfig:
    lam: float = 1.0  # weight of the weak-factor correlation penalty
    lr: float = 1e-3
    epochs: int = 8
    patience: int = 2
    date_stride: int = 3  # train on every k-th trading date
    dates_per_epoch: int = 0  # 0: every training date each epoch; else a random draw of that many per epoch
    valid_every: int = 1  # validate on every k-th validation date (10 = non-overlapping labels)
    valid_gap: int = 0  # trading days left out between the last training label and the first validation date
    seeds: int = 1  # networks per fit, averaged
    batch_size: int = 0  # 0: one date's stocks per step; else each date's stocks in random chunks of this size
    dates_per_step: int = 1  # >1: one optimiser step per this many dates, their per-date losses averaged
    label: str = "zscore"  # training target per date: "zscore" (winsorised z-score) or "rank" (normal scores of ranks)
    lagged: int = 0  # a period's weak factors also average the networks of this many preceding refits
    instance_norm: tuple[str, ...] = ()  # datasets whose networks also read instance-normalised inputs
    valid_share: float = 0.2
    train_years: int = 3
    dataset_train_years: tuple[tuple[str, int], ...] = ()  # (dataset, years) where a dataset's window differs
    dataset_seeds: tuple[tuple[str, int], ...] = ()  # (dataset, seeds) where a dataset's ensemble differs
    seed: int = 0
    retrain_months: int = 12  # cadence: one fit per calendar year (the report), or every 6/3/... months
    # >= 2: member k leaves out time fold k % folds of the window and predicts it (out-of-fold weak factors)
    folds: int = 0
    fold: int = -1  # a member's own: the fold it leaves out (-1: none); set by `rolling`


@dataclass
class TrainData:
    """Everything a trainer reads, derived once from a panel."""

    base: DatasetBase
    samples: np.ndarray  # [N, T] bool, for this dataset's lookback
    y_std: np.ndarray  # [N, T] standardised label (NaN where not realised)
    y_raw: np.ndarray  # [N, T]
    codes: np.ndarray
    dates: np.ndarray


@dataclass
class FitResult:
    model: WeakFactorNet
    train_dates: list[int]
    valid_dates: list[int]
    history: list[dict] = field(default_factory=list)  # per epoch: loss, valid_rank_ic
    best_epoch: int = -1
    best_valid_ic: float = float("nan")


def for_dataset(cfg: TrainConfig, name: str) -> TrainConfig:
    """The config dataset `name` trains with: its own `train_years` and `seeds` where `dataset_train_years` and
    `dataset_seeds` give them. The maps themselves are dropped, so a fit's config (and cache key) names only the
    window it trained on; each member is keyed by its own seed, so a larger ensemble reuses the members it shares."""
    years = dict(cfg.dataset_train_years).get(name, cfg.train_years)
    seeds = dict(cfg.dataset_seeds).get(name, cfg.seeds)
    return replace(cfg, train_years=years, seeds=seeds, dataset_train_years=(), dataset_seeds=())


def fold_dates(dates: list[int], folds: int, k: int) -> tuple[list[int], list[int]]:
    """(training dates, held-out dates) of time fold k of `folds` contiguous folds of `dates` (ascending). A date
    trains only if its label (t+1 .. t+HORIZON+1) is more than a day clear of every held-out date's, so the
    member's predictions on its fold come from a model that never fitted those labels (nor their overlaps)."""
    if not 0 <= k < folds:
        raise ValueError(f"fold {k} of {folds}: choose 0 <= fold < folds")
    n = len(dates)
    held = dates[k * n // folds:(k + 1) * n // folds]
    if not held:
        raise ValueError(f"{n} training dates cannot make {folds} folds")
    return [t for t in dates if t < held[0] - HORIZON - 1 or t > held[-1] + HORIZON + 1], held


def member_dates(dates: list[int], cfg: TrainConfig) -> list[int]:
    """The dates one member trains on: the window, less its held-out fold where it has one."""
    return dates if cfg.fold < 0 else fold_dates(dates, cfg.folds, cfg.fold)[0]


def net_config(name: str, data: TrainData, cfg: TrainConfig | None = None, **overrides) -> WeakFactorConfig:
    """The network of dataset `name`; a training preset's `instance_norm` says whether it reads the
    instance-normalised inputs too."""
    spec = DATASETS[name]
    if cfg is not None and name in cfg.instance_norm:
        overrides = {"instance_norm": True, **overrides}
    rows = data.base.l2.shape[-1] if name == "l2" else len(spec.rows)
    return WeakFactorConfig(kind=spec.kind, rows=rows, cols=spec.cols, **overrides)


def _batch(data: TrainData, name: str, t: int, need_label: bool,
           instance_norm: bool = False) -> tuple[np.ndarray, torch.Tensor]:
    ok = data.samples[:, t] & (np.isfinite(data.y_std[:, t]) if need_label else True)
    stocks = np.flatnonzero(ok)
    x = gather(data.base, name, torch.from_numpy(stocks), torch.full((len(stocks),), t))
    return stocks, inputs(x, instance_norm)


def _device(data: TrainData) -> torch.device:
    return data.base.pxt.device


def _chunks(n: int, size: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """Index sets of one date's n stocks per optimiser step: all of them (size 0), or a random split into
    near-equal chunks of about `size` (still one date each: the loss stays cross-sectional, with more steps)."""
    if size <= 0 or n < 2 * size:
        return [torch.arange(n)]
    return list(torch.from_numpy(rng.permutation(n)).tensor_split(round(n / size)))


BATCH_CACHE_BYTES = 256 * 2**20  # the real run's weak-factor stage stays below its portfolio stage


class _Batches:
    """One fit's preprocessed batches by date, kept while they fit in `budget` bytes. Every epoch visits the
    same validation dates (and, without `dates_per_epoch`, the same training dates); gathering and
    preprocessing a date costs a fifth of its training step, so it is done once per fit where memory allows."""

    def __init__(self, data: TrainData, name: str, budget: int | None = None, instance_norm: bool = False):
        self.data, self.name, self.used, self.instance_norm = data, name, 0, instance_norm
        self.budget = BATCH_CACHE_BYTES if budget is None else budget
        self._kept: dict[int, tuple[np.ndarray, torch.Tensor]] = {}

    def __call__(self, t: int) -> tuple[np.ndarray, torch.Tensor]:
        hit = self._kept.get(t)
        if hit is not None:
            return hit
        stocks, x = _batch(self.data, self.name, t, need_label=True, instance_norm=self.instance_norm)
        size = x.element_size() * x.nelement()
        if self.used + size <= self.budget:
            self._kept[t] = (stocks, x)
            self.used += size
        return stocks, x


def _valid_ic(model: WeakFactorNet, data: TrainData, name: str, dates: list[int],
              batches: _Batches | None = None) -> float:
    batches = batches or _Batches(data, name, budget=0, instance_norm=model.cfg.instance_norm)
    model.eval()
    ics = []
    with torch.no_grad():
        for t in dates:
            stocks, x = batches(t)
            if len(stocks) >= 3:
                with autocast(_device(data)):
                    c = model(x)[1]
                ics.append(rank_ic(c.float().cpu().numpy(), data.y_raw[stocks, t]))
    return float(np.nanmean(ics)) if ics else float("nan")


def fit(name: str, data: TrainData, dates: list[int], cfg: TrainConfig, net_cfg: WeakFactorConfig,
        on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train on `dates` (ascending); the last `valid_share` of them choose the epoch. `on_epoch` is told of
    each epoch's loss and validation RankIC (progress)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_valid = max(1, int(len(dates) * cfg.valid_share))
    valid = dates[-n_valid:]
    # purged: a training label (t+1 .. t+11) must be realised before the first validation date
    train = [t for t in dates[:-n_valid] if t + HORIZON + 1 < valid[0]] or dates[:-n_valid]
    if cfg.valid_gap > 0:  # validation further from training: inputs reach back, so neighbours share history
        valid = [t for t in valid if t > train[-1] + HORIZON + 1 + cfg.valid_gap] or valid[-1:]
    valid = valid[::max(1, cfg.valid_every)]
    device = _device(data)
    model = WeakFactorNet(net_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    res = FitResult(model, train, valid)
    batches = _Batches(data, name, instance_norm=net_cfg.instance_norm)
    best_state, stale = None, 0
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(train)
        if 0 < cfg.dates_per_epoch < len(order):
            order = order[:cfg.dates_per_epoch]
        if cfg.dates_per_step > 1:
            losses = _accumulated_epoch(model, opt, data, batches, order, cfg, device)
        else:
            losses = _epoch(model, opt, data, batches, order, cfg, device, rng)
        ic = _valid_ic(model, data, name, valid, batches)
        res.history.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                            "valid_rank_ic": ic})
        if on_epoch:
            on_epoch(res.history[-1])
        if best_state is None or ic > res.best_valid_ic:
            best_state, res.best_valid_ic, res.best_epoch, stale = copy.deepcopy(model.state_dict()), ic, epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return res


def _epoch(model: WeakFactorNet, opt: torch.optim.Optimizer, data: TrainData, batches: _Batches,
           order: np.ndarray, cfg: TrainConfig, device: torch.device, rng: np.random.Generator) -> list[float]:
    """One epoch, a step per date (or per random chunk of a date's stocks, `batch_size`)."""
    losses = []
    for t in order:
        stocks, x = batches(int(t))
        if len(stocks) < 8:
            continue
        y = torch.from_numpy(_target(data, stocks, int(t), cfg.label)).float().to(device)
        parts = _chunks(len(stocks), cfg.batch_size, rng)
        for part in parts:
            xb, yb = (x, y) if len(parts) == 1 else (x[part], y[part])  # the whole date: no copy
            with autocast(device):
                z, c = model(xb)
            loss, _ = factor_loss(c.float(), z.float(), yb, cfg.lam)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


def _accumulated_epoch(model: WeakFactorNet, opt: torch.optim.Optimizer, data: TrainData, batches: _Batches,
                       order: np.ndarray, cfg: TrainConfig, device: torch.device) -> list[float]:
    """One epoch with a step per `cfg.dates_per_step` dates: each date's loss stays cross-sectional (its own
    batch), their gradients are averaged, so a step sees several market days at once (less noise per step,
    as many steps as an epoch of fewer dates)."""
    if cfg.batch_size > 0:
        raise ValueError("dates_per_step > 1 takes whole dates: set batch_size to 0")
    losses = []
    usable = [int(t) for t in order]
    for i in range(0, len(usable), cfg.dates_per_step):
        group = []
        for t in usable[i:i + cfg.dates_per_step]:
            stocks, x = batches(t)
            if len(stocks) >= 8:
                group.append((stocks, x, t))
        if not group:
            continue
        opt.zero_grad()
        for stocks, x, t in group:
            y = torch.from_numpy(_target(data, stocks, t, cfg.label)).float().to(device)
            with autocast(device):
                z, c = model(x)
            loss, _ = factor_loss(c.float(), z.float(), y, cfg.lam)
            (loss / len(group)).backward()
            losses.append(float(loss.detach()))
        opt.step()
    return losses


def predict(model: WeakFactorNet | list[WeakFactorNet], name: str, data: TrainData, dates: list[int]) -> pl.DataFrame:
    """Weak factors z_1..z_K and output c for every sample at each date (code, date, dataset, z_k, output).

    Several models (a seed ensemble): c is the mean of their outputs, each z-scored across the date's
    stocks; z_k are the first model's (factor k of one network is not factor k of another)."""
    members = model if isinstance(model, list) else [model]
    if len({m.cfg.instance_norm for m in members}) > 1:
        raise ValueError("an ensemble's networks must read the same inputs (instance_norm differs)")
    instance_norm = members[0].cfg.instance_norm
    frames = []
    with torch.no_grad():
        for t in dates:
            stocks, x = _batch(data, name, t, need_label=False, instance_norm=instance_norm)
            if len(stocks) == 0:
                continue
            outs = []
            for m in members:
                with autocast(_device(data)):
                    z_m, c_m = m(x)
                outs.append((z_m.float().cpu().numpy(), c_m.float().cpu().numpy().astype(np.float64)))
            z, c = outs[0][0], outs[0][1]
            if len(outs) > 1:
                c = np.mean([_zscore(o[1]) for o in outs], axis=0)
            cols = {f"z_{k + 1}": z[:, k] for k in range(z.shape[1])}
            frames.append(pl.DataFrame({"code": data.codes[stocks], "date": np.repeat(data.dates[t], len(stocks)),
                                        "dataset": name, **cols, "output": c.astype(np.float32)}))
    return pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))


def _target(data: TrainData, stocks: np.ndarray, t: int, label: str) -> np.ndarray:
    """One date's training target. "rank": the normal scores of the labels' ranks across the date's stocks
    (Blom), which the loss then correlates with the output: a Pearson loss on rank-Gaussian targets tracks
    the RankIC it is judged by, and a few extreme returns (limit moves) no longer steer a date's step."""
    if label == "zscore":
        return data.y_std[stocks, t]
    if label != "rank":
        raise ValueError(f"unknown training label {label!r}; choose 'zscore' or 'rank'")
    return normal_scores(data.y_raw[stocks, t])


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Blom normal scores of y's ranks (ties share their mean rank), standardised; y has no NaN."""
    return _zscore(ndtri((rankdata(y) - 0.375) / (len(y) + 0.25)))


def _zscore(c: np.ndarray) -> np.ndarray:
    sd = c.std()
    return (c - c.mean()) / sd if sd > 0 else np.zeros_like(c)


def period_start(data: TrainData, period: str, months: int) -> int:
    """Panel index of the first trading date of a retraining period: what every fit of that period is
    anchored on, whichever of its dates a run predicts."""
    days = data.dates.astype("datetime64[D]").astype(object)
    return next(t for t, d in enumerate(days) if period_of(d, months) == period)


def training_dates(data: TrainData, name: str, first_prediction: int, cfg: TrainConfig) -> list[int]:
    """Dates whose labels were realised before `first_prediction` (t + 11 < first_prediction), within
    `train_years`, every `date_stride`-th, counted back from the newest so the newest is kept."""
    newest = first_prediction - (HORIZON + 2)
    oldest = max(newest - cfg.train_years * TRADING_DAYS_PER_YEAR, DATASETS[name].lookback - 1)
    has = data.samples.any(axis=0)
    return [t for t in range(newest, oldest - 1, -cfg.date_stride) if has[t]][::-1]


@dataclass
class PeriodJob:
    """One retraining period: the dates it predicts, the dates its members train on, each member's config
    and the member already trained (from the cache) or None."""

    period: str
    these: list[int]
    dates: list[int]
    member_cfgs: list[TrainConfig]
    cached: list[WeakFactorNet | None]
    predict: bool = True  # False: only train (a lagged ensemble predicts once all its periods' members exist)


def lagged_periods(data: TrainData, period: str, cfg: TrainConfig) -> list[str]:
    """The `cfg.lagged` retraining periods before `period` whose networks join its ensemble, newest first
    (those the panel holds no trading date of are left out)."""
    out = []
    day = np.datetime64(data.dates[period_start(data, period, cfg.retrain_months)], "D").astype(object)
    for _ in range(cfg.lagged):
        day = cadence_start(day, cfg.retrain_months) - timedelta(days=1)
        p = period_of(day, cfg.retrain_months)
        if not any(period_of(d, cfg.retrain_months) == p for d in data.dates.astype("datetime64[D]").astype(object)):
            break
        out.append(p)
    return out


def run_period(name: str, data: TrainData, job: PeriodJob, net_cfg: WeakFactorConfig,
               on_epoch: Callable[[TrainConfig, dict], None] | None = None
               ) -> tuple[list[FitResult | None], pl.DataFrame]:
    """Train the period's missing members, then predict its dates with the ensemble: the unit of work that
    `rolling` runs in order, or side by side in processes (models.side_by_side)."""
    fits: list[FitResult | None] = []
    members = []
    for mcfg, model in zip(job.member_cfgs, job.cached, strict=True):
        res = None
        if model is None:
            res = fit(name, data, member_dates(job.dates, mcfg), mcfg, net_cfg,
                      (lambda h, c=mcfg: on_epoch(c, h)) if on_epoch else None)
            model = res.model
        fits.append(res)
        members.append(model.to(_device(data)))
    return fits, predict(members, name, data, job.these) if job.predict else pl.DataFrame()


def rolling(name: str, data: TrainData, predict_dates: list[int], cfg: TrainConfig, net_cfg: WeakFactorConfig,
            model_for: Callable[[list[int], list[int], TrainConfig], WeakFactorNet | None] | None = None,
            on_fit: Callable[[list[int], list[int], FitResult, TrainConfig], None] | None = None,
            progress: Progress | None = None, workers: int | None = 0) -> Rolled:
    """Rolling retraining: one model (or seed ensemble) per period of `predict_dates` (a calendar year
    by default), predicting that period.

    `model_for(train_dates, period_dates, member_cfg)` may return an already trained model (a cache);
    `on_fit` is told of every new fit (tracking), in period order. A member's config is `cfg` with its own
    seed and `seeds=1`: each network of an ensemble is cached and tracked on its own. `progress` counts the
    members (trained or reused). `workers`: how the periods run: 0 in this process as it is set up;
    n >= 1 single-threaded, in n processes side by side (one: in this process), the same numbers for every n;
    None: models.side_by_side.plan decides from the device, the panel's size and the cores."""
    from factor_pipeline.models import side_by_side

    days = data.dates[predict_dates].astype("datetime64[D]").astype(object)
    periods = [period_of(d, cfg.retrain_months) for d in days]
    mcfgs = member_configs(cfg)

    def job_for(p: str, these: list[int], predicts: bool, a_predecessor: bool) -> PeriodJob | None:
        dates = training_dates(data, name, period_start(data, p, cfg.retrain_months), cfg)
        if len(dates) < 5 or (a_predecessor and len(dates) * cfg.date_stride < LAGGED_MIN_DATES):
            return None
        return PeriodJob(p, these, dates, mcfgs, [model_for(dates, these, m) if model_for else None for m in mcfgs],
                         predicts)

    own = sorted(set(periods))
    lags = {p: lagged_periods(data, p, cfg) for p in own}
    extra = sorted({q for p in own for q in lags[p]} - set(own))  # predecessors this run does not predict
    if progress:
        progress.start((len(own) + len(extra)) * max(1, cfg.seeds))
    jobs = []
    for p in sorted([*own, *extra]):
        these = [t for t, pp in zip(predict_dates, periods, strict=True) if pp == p] if p in lags else \
            [period_start(data, p, cfg.retrain_months)]  # names the fit's period; nothing predicted
        job = job_for(p, these, p in lags and not cfg.lagged, p not in lags)
        if job is None:
            if progress:
                progress.step(max(1, cfg.seeds), f"{p}: " + ("too few training dates, not predicted" if p in lags
                                                             else "training window under a year, not in the ensemble"))
            continue
        jobs.append(job)
    if workers is None:
        workers = side_by_side.plan(data, name, len(jobs))

    def on_epoch(mcfg: TrainConfig, h: dict) -> None:
        if progress:
            progress.note(f"seed {mcfg.seed} epoch {h['epoch'] + 1}: valid RankIC {h['valid_rank_ic']:.3f}")

    out, fits, members, deferred = [], [], {}, []
    span = {job.period: len(job.dates) * cfg.date_stride for job in jobs}  # a predecessor joins if a year or more
    for job, (job_fits, table) in zip(jobs, side_by_side.run_periods(name, data, jobs, net_cfg, workers, on_epoch),
                                      strict=True):
        members[job.period] = [m if res is None else res.model for m, res in zip(job.cached, job_fits, strict=True)]
        for mcfg, res in zip(job.member_cfgs, job_fits, strict=True):
            if res is not None:
                fits.append(res)
                if on_fit:
                    on_fit(job.dates, job.these, res, mcfg)
                what = f"{job.period} seed {mcfg.seed} trained, best valid RankIC {res.best_valid_ic:.3f} " \
                       f"(epoch {res.best_epoch + 1})"
            else:
                what = f"{job.period} seed {mcfg.seed} reused from the cache"
            if progress:
                progress.step(1, what)
        if job.predict:
            out.append(table)
        elif job.period in lags:  # a lagged ensemble, as soon as its period is trained (its predecessors came first):
            # its own networks first (z_1..z_K are its first one's), then those of the predecessors that joined
            joined = [job.period, *(q for q in lags[job.period] if q in members and span[q] >= LAGGED_MIN_DATES)]
            ensemble = [m.to(_device(data)) for q in joined for m in members[q]]
            if workers == 0:
                out.append(predict(ensemble, name, data, job.these))
            else:  # side by side: predicted in the processes once every period is trained, in this order
                deferred.append((len(out), ensemble, job.these))
                out.append(None)
    # out of fold: each own period's members that left out fold k predict it (its own networks only: last year's
    # fitted these labels); in the processes beside the deferred predictions
    oof = [(job.period, [m for m, c in zip(members[job.period], job.member_cfgs, strict=True) if c.fold == k],
            fold_dates(job.dates, cfg.folds, k)[1]) for job in jobs if cfg.folds >= 2 and job.period in lags
           for k in range(cfg.folds)]
    tasks = [(e, these) for _, e, these in deferred] + [([m.to(_device(data)) for m in e], held) for _, e, held in oof]
    tables = (side_by_side.predict_apart(name, data, tasks, net_cfg, workers) if workers
              else [predict(e, name, data, these) for e, these in tasks]) if tasks else []
    for (k, _, _), table in zip(deferred, tables[:len(deferred)], strict=True):
        out[k] = table
    oof_tables = [t.with_columns(period=pl.lit(p)) for (p, _, _), t in zip(oof, tables[len(deferred):], strict=True)]
    return Rolled(pl.concat(out) if out else pl.DataFrame(), fits,
                  pl.concat(oof_tables) if oof_tables else pl.DataFrame())


def member_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """Each network of a period's ensemble: `cfg` with its own seed and `seeds=1` (cached and tracked on its own),
    and with `folds`, the fold it leaves out (member k leaves out fold k % folds, so every fold is held out by
    `seeds / folds` members)."""
    if cfg.folds >= 2 and cfg.seeds < cfg.folds:
        raise ValueError(f"{cfg.folds} folds need at least as many seeds per fit (seeds={cfg.seeds}): "
                         "every fold is held out by some member")
    return [replace(cfg, seed=cfg.seed + k, seeds=1, lagged=0, fold=k % cfg.folds if cfg.folds >= 2 else -1)
            for k in range(max(1, cfg.seeds))]


class Rolled(NamedTuple):
    """What `rolling` gives: the predictions, the new fits, and (with `folds`) the out-of-fold weak factors of
    each predicted period's training window (columns of `table` and `period`: the period whose combiner they
    train)."""

    table: pl.DataFrame
    fits: list[FitResult]
    oof: pl.DataFrame
