"""Progress of long work (weak-factor fits, portfolio solves): a tqdm bar on a terminal, and lines for a
run log at a bounded rate, so a slow run can be told from a hung one in the shell and in the UI.

Domain code takes a `Progress` (or None) and calls `start`, `note`, `step`; the Dagster shell passes
`log=context.log.info`, which puts the lines in the run's event log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class Progress:
    """done / total with rate and time left. The bar shows only when stderr is a terminal; `log` gets a
    line at every `log_every` share of the total (and at the end), or at every step with log_every=0."""

    def __init__(self, desc: str, unit: str, log: Callable[[str], None] | None = None, log_every: float = 0.05):
        self.desc, self.unit, self.log, self.log_every = desc, unit, log, log_every
        self.total, self.done, self._logged = 0, 0, 0
        self._t0 = time.monotonic()
        self._bar: tqdm | None = None

    def start(self, total: int) -> None:
        """Add `total` units of work (callable again when more is found)."""
        self.total += int(total)
        if self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr, disable=None,
                             dynamic_ncols=True, leave=False)
        else:
            self._bar.total = self.total
            self._bar.refresh()

    def note(self, text: str) -> None:
        """What is being worked on now (e.g. an epoch's validation RankIC): on the bar only."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        share = self.done / self.total if self.total else 1.0
        per = f"{rate * 60:.1f} {self.unit}s/min" if rate < 1 else f"{rate:.1f} {self.unit}s/s"
        eta = f", ~{_duration(left)} left" if self.done < self.total and left == left else ""
        return f"{self.desc}: {self.done}/{self.total} {self.unit}s ({share:.0%}), {per}{eta}"

    def step(self, n: int = 1, what: str = "") -> None:
        """`n` units done; `what` (e.g. "2018 seed 1 trained, best valid RankIC 0.05") goes with the log line."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self.log is None:
            return
        due = self.log_every <= 0 or self.done >= self.total or \
            self.done - self._logged >= max(1.0, self.log_every * self.total)
        if due:
            self._logged = self.done
            self.log(self.line() + (f"; {what}" if what else ""))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
