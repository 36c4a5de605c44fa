"""The periods of one dataset's rolling fits side by side in processes, on a CPU.

These small networks use CPU threads poorly: two threads train a fit 0.9-1.5x as fast as one
(`benchmarks/train_speed.py --threads 1`), while independent fits in single-threaded processes scale with
the cores. So where the part of the panel a dataset reads is small enough to hand each process its own copy
(up to 1 GiB: the synthetic presets, and all A shares' daily bars at 0.1-0.2 GiB), every period (train its
missing members, predict its dates) runs single-threaded, in `min(cores, periods)` processes, the largest fits
handed out first. A lagged ensemble's periods only train there (a period is predicted with its predecessors'
networks too), so they go out one member at a time, and its dates are then predicted in chunks side by side.
The numbers do not depend on the process count: one thread everywhere, each member seeded on its own, results
taken in order. A larger panel or a GPU runs the periods in this process as it is set up, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import polars as pl
import torch

from factor_pipeline.datasets.base import DatasetBase
from factor_pipeline.models.network import WeakFactorConfig, WeakFactorNet
from factor_pipeline.models.trainer import FitResult, PeriodJob, TrainConfig, TrainData, predict, run_period
from factor_pipeline.parallel import can_spawn, cores, in_order

SMALL_BASE_BYTES = 2**30  # a panel up to this size is copied to each process; larger ones train here


def _parts(name: str) -> tuple[str, ...]:
    """The DatasetBase fields dataset `name` gathers from (pxt also says where tensors live)."""
    return {"week": ("pxt",), "day": ("pxt", "day"), "msnew": ("pxt", "msnew"), "ms": ("pxt", "ms"),
            "l2": ("pxt", "l2")}[name]


def base_bytes(base: DatasetBase, name: str) -> int:
    return sum(getattr(base, k).element_size() * getattr(base, k).nelement() for k in _parts(name))


def plan(data: TrainData, name: str, periods: int) -> int:
    """0: run the periods here as the process is set up (GPU, or a panel too large to copy); else the number
    of single-threaded processes (1: this process, with one thread: one period, e.g. the Friday job's)."""
    if data.base.pxt.device.type != "cpu" or base_bytes(data.base, name) > SMALL_BASE_BYTES:
        return 0
    return max(1, min(cores(), periods))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_periods(name: str, data: TrainData, jobs: list[PeriodJob], net_cfg: WeakFactorConfig, workers: int,
                on_epoch: Callable[[TrainConfig, dict], None] | None = None
                ) -> Iterator[tuple[list[FitResult | None], pl.DataFrame]]:
    """Each job's (fits, predictions), in job order."""
    if workers == 0:
        for job in jobs:
            yield run_period(name, data, job, net_cfg, on_epoch)
        return
    if workers == 1 or len(jobs) < 2 or not can_spawn():  # the same numbers: one thread either way
        with _one_thread():
            for job in jobs:
                yield run_period(name, data, job, net_cfg, on_epoch)
        return
    units = [u for job in jobs for u in _units(job)]
    if not units:
        yield from run_periods(name, data, jobs, net_cfg, 0, on_epoch)  # nothing to train or predict apart
        return
    shipped = _ship(name, data)
    # work of a unit: its members still to train, each over its training dates (prediction is small)
    sizes = [len(u.dates) * sum(m is None for m in u.cached) + 1 for u in units]
    results = in_order(_worker_period, [(_bare(u),) for u in units], min(workers, len(units)), _worker_init,
                       (name, shipped, net_cfg), sizes)
    for job in jobs:
        if job.predict:
            fits, table = next(results)
            yield [None if f is None else _fit_result(f, net_cfg) for f in fits], table
            continue
        # a period that only trains (a lagged ensemble is predicted by the caller) went out member by member
        fits = [None if m is not None else _fit_result(next(results)[0][0], net_cfg) for m in job.cached]
        yield fits, pl.DataFrame()


def _units(job: PeriodJob) -> list[PeriodJob]:
    """What goes to a process: a period that predicts, whole (its members, then its dates); a period that only
    trains, one unit per member still to train, so the seeds of a few long fits (the real preset: 3 periods x 4
    seeds on 2 cores) spread over the cores. Each member is seeded on its own and trained single-threaded, so
    its weights do not depend on which unit or process trained it."""
    if job.predict:
        return [job]
    return [PeriodJob(job.period, job.these, job.dates, [c], [None], False)
            for c, m in zip(job.member_cfgs, job.cached, strict=True) if m is None]


PREDICT_PIECES_PER_WORKER = 4  # date chunks per process: a slow chunk leaves little of a core idle
PREDICT_APART_MIN_DATES = 20  # fewer (the Friday job's week): predicted here, not worth starting processes


def predict_apart(name: str, data: TrainData, tasks: list[tuple[list[WeakFactorNet], list[int]]],
                  net_cfg: WeakFactorConfig, workers: int) -> list[pl.DataFrame]:
    """predict(members, dates) for each (members, dates) task, single-threaded, the dates in chunks side by side
    (inference on every trading date with a lagged ensemble's networks is half the real run's weak-factor stage).
    A date's prediction reads only that date's samples, so the chunks put together are the task's table to the
    bit, whatever the number of processes; one process (or none allowed) predicts here with one thread."""
    total = sum(len(d) for _, d in tasks)
    if workers <= 1 or total < PREDICT_APART_MIN_DATES or not can_spawn():
        with _one_thread():
            return [predict(members, name, data, dates) for members, dates in tasks]
    size = max(1, -(-total // (workers * PREDICT_PIECES_PER_WORKER)))
    pieces = [(k, dates[i:i + size]) for k, (_, dates) in enumerate(tasks) for i in range(0, len(dates), size)]
    states = [[_state(m) for m in members] for members, _ in tasks]
    results = in_order(_worker_predict, [(states[k], chunk) for k, chunk in pieces], min(workers, len(pieces)),
                       _worker_init, (name, _ship(name, data), net_cfg), [len(c) for _, c in pieces])
    tables: list[list[pl.DataFrame]] = [[] for _ in tasks]
    for (k, _), table in zip(pieces, results, strict=True):
        tables[k].append(table)
    return [pl.concat(t) for t in tables]


# --- what crosses between processes: plain arrays, no shared-memory tensors -------------------------------

def _ship(name: str, data: TrainData) -> dict:
    keep = _parts(name)
    base = {k: (v.numpy() if isinstance(v, torch.Tensor) and k in keep else None if isinstance(v, torch.Tensor)
                else v) for k, v in data.base.__dict__.items()}
    return {"base": base, "samples": data.samples, "y_std": data.y_std, "y_raw": data.y_raw,
            "codes": data.codes, "dates": data.dates}


def _unship(d: dict) -> TrainData:
    base = DatasetBase(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in d["base"].items()})
    return TrainData(base, d["samples"], d["y_std"], d["y_raw"], d["codes"], d["dates"])


def _state(model: WeakFactorNet) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def _model(state: dict[str, np.ndarray], net_cfg: WeakFactorConfig) -> WeakFactorNet:
    model = WeakFactorNet(net_cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()


def _bare(job: PeriodJob) -> PeriodJob:
    """The job with its cached members as plain state (a module's tensors would travel as shared memory)."""
    return PeriodJob(job.period, job.these, job.dates, job.member_cfgs,
                     [None if m is None else _state(m) for m in job.cached], job.predict)


def _fit_result(f: dict, net_cfg: WeakFactorConfig) -> FitResult:
    return FitResult(_model(f["state"], net_cfg), f["train_dates"], f["valid_dates"], f["history"],
                     f["best_epoch"], f["best_valid_ic"])


# --- the worker side -------------------------------------------------------------------------------------

_WORKER: dict = {}


def _worker_init(name: str, shipped: dict, net_cfg: WeakFactorConfig) -> None:
    torch.set_num_threads(1)
    _WORKER.update(name=name, data=_unship(shipped), net_cfg=net_cfg)


def _worker_period(job: PeriodJob) -> tuple[list[dict | None], pl.DataFrame]:
    net_cfg = _WORKER["net_cfg"]
    job.cached = [None if s is None else _model(s, net_cfg) for s in job.cached]
    fits, table = run_period(_WORKER["name"], _WORKER["data"], job, net_cfg)
    return [None if f is None else {"state": _state(f.model), "train_dates": f.train_dates,
                                    "valid_dates": f.valid_dates, "history": f.history, "best_epoch": f.best_epoch,
                                    "best_valid_ic": f.best_valid_ic} for f in fits], table


def _worker_predict(states: list[dict[str, np.ndarray]], dates: list[int]) -> pl.DataFrame:
    members = [_model(s, _WORKER["net_cfg"]) for s in states]
    return predict(members, _WORKER["name"], _WORKER["data"], dates)
