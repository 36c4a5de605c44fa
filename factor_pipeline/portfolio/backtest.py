"""Weekly execution and daily NAV: target weights decided at the signal date's close are traded at
the next trading day's VWAP, with costs, and held (drifting) until the next execution.

Per stock, holdings are values in NAV units. On an execution day e: holdings move from the last
close to e's VWAP, trades bring them to target x NAV, except where a fill is impossible on e
(suspended, or limit-up all day for a buy: low >= limit_up; limit-down all day for a sell:
high <= limit_down), which leaves that stock as it is. Buys cost 0.1% and sells 0.2% of the traded
value; when cancelled sells leave too little cash, buys are scaled down; spare cash is held at 0%.
Then holdings move from e's VWAP to e's close. Other days: close to close. Adjusted prices throughout.

Sums over names skip the zeros (`total`): a run resumed on a panel that spans other names then
computes bit for bit what an uninterrupted run computed (NumPy's pairwise sum of a vector depends on
where its zeros sit), so a re-run week solves the same problem and stores the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUY_COST, SELL_COST = 0.001, 0.002


@dataclass
class Prices:
    """[N, T] adjusted close and VWAP, and the fill blocks of each day."""

    close: np.ndarray
    vwap: np.ndarray
    no_buy: np.ndarray  # bool [N, T]
    no_sell: np.ndarray  # bool [N, T]


class Book:
    """Holdings (values in NAV units) and cash, moved day by day; NAV recorded at each close."""

    def __init__(self, prices: Prices, start: int):
        self.p = prices
        self.h, self.cash, self.day = np.zeros(prices.close.shape[0]), 1.0, start
        self.days, self.nav = [start], [1.0]
        self.turnover: list[float] = []  # one-way: bought value / NAV, per execution
        self.costs: list[float] = []  # cost / NAV, per execution
        self.cancelled: list[int] = []  # trades a fill block stopped, per execution
        self.executed: list[np.ndarray] = []  # weights right after each execution
        self._scale = 1.0  # NAV units per book value: 1, or 1 / the value a resumed book started from

    @classmethod
    def resume(cls, prices: Prices, day: int, weights: np.ndarray, cash: float | None = None) -> Book:
        """A book at the close of `day` holding `weights` and `cash`: the values an earlier run's book
        held (holdings table), so it goes on exactly as that book would have; without `cash`, `weights`
        are fractions of NAV and the rest is cash. Its NAV series starts at 1 either way."""
        book = cls(prices, day)
        book.h = np.asarray(weights, dtype=np.float64).copy()
        book.cash = float(1 - total(book.h)) if cash is None else float(cash)
        book._scale = 1.0 / (total(book.h) + book.cash)
        return book

    def value(self) -> float:
        return total(self.h) + self.cash

    def weights(self) -> np.ndarray:
        return self.h / self.value()

    def _record(self) -> None:
        self.days.append(self.day)
        self.nav.append(float(self.value() * self._scale))

    def advance(self, to: int) -> None:
        """Hold close to close through day `to`."""
        for d in range(self.day + 1, to + 1):
            self.h = self.h * _ratio(self.p.close[:, d], self.p.close[:, d - 1])
            self.day = d
            self._record()

    def execute(self, e: int, target: np.ndarray) -> None:
        """Day `e` (the day after the signal): close -> VWAP, trade to `target`, VWAP -> close."""
        self.advance(e - 1)
        self.h = self.h * _ratio(self.p.vwap[:, e], self.p.close[:, e - 1])
        value = self.value()
        trade = target * value - self.h
        blocked = ((trade > 0) & self.p.no_buy[:, e]) | ((trade < 0) & self.p.no_sell[:, e])
        blocked &= np.abs(trade) > 1e-6 * value  # solver dust on a suspended name is not a trade
        trade = np.where(blocked, 0.0, trade)
        buys, sells = trade.clip(min=0), -trade.clip(max=0)
        spare = self.cash + total(sells) * (1 - SELL_COST)
        need = total(buys) * (1 + BUY_COST)
        if need > spare:
            buys = buys * (max(spare, 0.0) / need)
        self.h = self.h + buys - sells
        self.cash = spare - total(buys) * (1 + BUY_COST)
        self.turnover.append(float(total(buys) / value))
        self.costs.append(float((total(buys) * BUY_COST + total(sells) * SELL_COST) / value))
        self.cancelled.append(int(blocked.sum()))
        self.executed.append(self.weights())
        self.h = self.h * _ratio(self.p.close[:, e], self.p.vwap[:, e])
        self.day = e
        self._record()


def total(x: np.ndarray) -> float:
    """Sum of the non-zero entries, in code order: independent of how many zeros (absent names) a
    panel holds, unlike x.sum()."""
    return float(x[x != 0].sum())


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        g = a / b
    return np.where(np.isfinite(g), g, 1.0)  # no price (suspended, delisted): value unchanged


def run_backtest(prices: Prices, targets: dict[int, np.ndarray], end: int | None = None) -> Book:
    """NAV from the close before the first execution (= 1) to `end`; `targets`: execution day -> weights."""
    days = sorted(targets)
    book = Book(prices, days[0] - 1)
    for e in days:
        book.execute(e, targets[e])
    book.advance(prices.close.shape[1] - 1 if end is None else end)
    return book
