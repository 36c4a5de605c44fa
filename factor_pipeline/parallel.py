"""Independent pieces of a stage side by side in single-threaded processes, on a CPU.

Small models use CPU threads poorly (two threads train a weak-factor network 0.9-1.5x as fast as one) and
Clarabel solves a portfolio's week on one thread, while independent pieces in separate processes scale with
the cores (XGBoost does scale with its own threads: the combiners stay in one process). The
pools here start clean processes (spawn: no copied thread pools), end with the process that started them,
and hand their tasks' results back in submission order.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def can_spawn() -> bool:
    """Whether this process may start processes: a Celery prefork worker's task process is daemonic, and a
    daemonic process may not have children (the pieces then run in it, one after another)."""
    import multiprocessing

    return not multiprocessing.current_process().daemon


def _start(parent: int, init: Callable[..., None] | None, args: tuple) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
    if init is not None:
        init(*args)


def in_order(fn: Callable, tasks: Iterable[tuple], workers: int, init: Callable[..., None] | None = None,
             init_args: tuple = (), sizes: list[float] | None = None) -> Iterator:
    """fn(*task) for each task in `workers` processes (each first runs init(*init_args)), yielded in order.

    `sizes`: the tasks' expected work; the largest are handed out first (so the last one a process takes is
    a small one and no core waits long on another's last task), the results still come back in order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    tasks = list(tasks)
    order = sorted(range(len(tasks)), key=lambda k: -sizes[k]) if sizes else range(len(tasks))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start,
                             initargs=(os.getpid(), init, init_args)) as pool:
        futures = {k: pool.submit(fn, *tasks[k]) for k in order}
        for k in range(len(tasks)):
            yield futures[k].result()


COPY_BUDGET = 192 * 2**20  # inputs up to this size are copied to each process (the demo portfolio stage: ~0.1 GB;
# the real 2017-2019 one: ~0.33 GB, which stays in one process within the real run's memory budget)


def workers_for(copied_bytes: int, tasks: int) -> int:
    """Processes for `tasks` independent pieces that each need a copy of `copied_bytes` of inputs: every core
    where the copies are small, else one (this process)."""
    return max(1, min(cores(), tasks)) if copied_bytes <= COPY_BUDGET and can_spawn() else 1
