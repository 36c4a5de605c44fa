"""The table contract of DESIGN.md: one definition used by the simulator, validator and warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field

# logical kinds, checked against the DuckDB type a file was read with
STR, DATE, FLOAT, BOOL, TIME = "str", "date", "float", "bool", "time"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional: tuple[Column, ...] = ()
    required: bool = True  # a market may come without intraday_bars / l2_daily
    open_columns: bool = False  # l2_daily: further numeric feature columns are accepted
    date_column: str | None = "date"
    doc: str = ""
    price_columns: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column | None:
        for c in (*self.columns, *self.optional):
            if c.name == name:
                return c
        return None


def _c(name: str, kind: str, doc: str = "", nullable: bool = False) -> Column:
    return Column(name, kind, nullable, doc)


STOCKS = Table(
    "stocks",
    (
        _c("code", STR, "exchange code, e.g. 600000.SH"),
        _c("industry", STR, "industry name (31 SW-L1-like names on the synthetic market)"),
        _c("board", STR, "main / chinext / star / bse (Beijing Stock Exchange, from 2021-11-15, +-30% limits)"),
        _c("list_date", DATE, "first trading date"),
        _c("delist_date", DATE, "first date no longer listed (rows end the trading day before)", True),
    ),
    key=("code",),
    optional=(_c("name", STR, nullable=True), _c("industry_l1", STR, nullable=True)),
    date_column=None,
)

DAILY_BARS = Table(
    "daily_bars",
    (
        _c("code", STR), _c("date", DATE),
        _c("open", FLOAT, "raw (unadjusted) price, CNY"), _c("high", FLOAT), _c("low", FLOAT),
        _c("close", FLOAT), _c("vwap", FLOAT, "amount / volume; the close on zero-volume days"),
        _c("volume", FLOAT, "shares"), _c("amount", FLOAT, "CNY"),
        _c("turnover", FLOAT, "volume / float_shares (a fraction)"),
        _c("float_shares", FLOAT, "tradable shares"),
        _c("adj_factor", FLOAT, "backward cumulative factor: close * adj_factor is a total-return series"),
        _c("is_suspended", BOOL, "no trading that day; prices carried from the last close"),
        _c("limit_up", FLOAT, "price limit of the day; null without a fixed limit (first days after IPO)", True),
        _c("limit_down", FLOAT, "", True),
    ),
    key=("code", "date"),
    optional=(_c("is_st", BOOL, nullable=True),),
    price_columns=("open", "high", "low", "close", "vwap"),
)

INTRADAY_BARS = Table(
    "intraday_bars",
    (
        _c("code", STR), _c("date", DATE), _c("time", TIME, "bar end, 09:35 ... 15:00 for 5-minute bars"),
        _c("open", FLOAT), _c("high", FLOAT), _c("low", FLOAT), _c("close", FLOAT),
        _c("volume", FLOAT, "shares"), _c("amount", FLOAT, "CNY"),
    ),
    key=("code", "date", "time"),
    required=False,
    price_columns=("open", "high", "low", "close"),
)

# The synthetic market's order-flow columns: every trade is classified by its aggressor (active
# buy / active sell) and by the aggressor order's size, so the six buckets add up to the day's amount.
L2_FEATURES = {
    "buy_large": "active buying by large orders (>= 1M CNY), CNY",
    "sell_large": "active selling by large orders, CNY",
    "buy_medium": "active buying by medium orders (200k-1M CNY), CNY",
    "sell_medium": "active selling by medium orders, CNY",
    "buy_small": "active buying by small orders (< 200k CNY), CNY",
    "sell_small": "active selling by small orders, CNY",
    "net_inflow": "all active buying minus all active selling, CNY",
    "net_inflow_large": "buy_large - sell_large, CNY",
    "order_imbalance": "net_inflow / amount, in [-1, 1]",
    "large_share": "(buy_large + sell_large) / amount",
    "n_trades": "number of trades",
}
L2_DAILY = Table(
    "l2_daily",
    (_c("code", STR), _c("date", DATE)),
    key=("code", "date"),
    optional=tuple(_c(n, FLOAT, d, True) for n, d in L2_FEATURES.items()),
    required=False,
    open_columns=True,
    doc="order-flow features per stock and day; any further numeric column is a feature",
)

INDEX_WEIGHTS = Table(
    "index_weights",
    (_c("index", STR, "csi300 / csi500 / csi1000 / csi_all"), _c("date", DATE), _c("code", STR),
     _c("weight", FLOAT, "weight at that date's close; carried forward until the next date")),
    key=("index", "date", "code"),
)

INDEX_DAILY = Table(
    "index_daily",
    (_c("index", STR), _c("date", DATE),
     _c("open", FLOAT, "null where unknown (e.g. a computed index's first day)", True),
     _c("close", FLOAT), _c("vwap", FLOAT, "null where unknown", True)),
    key=("index", "date"),
    price_columns=("open", "close", "vwap"),
)

# Written by the simulator only; read only by evaluation (the ceiling of what is knowable).
ORACLE = Table(
    "oracle",
    (_c("code", STR), _c("date", DATE),
     _c("expected_return_10d", FLOAT, "planted expected 10-day return given information up to the date")),
    key=("code", "date"),
    required=False,
)

TABLES: dict[str, Table] = {
    t.name: t for t in (STOCKS, DAILY_BARS, INTRADAY_BARS, L2_DAILY, INDEX_WEIGHTS, INDEX_DAILY, ORACLE)
}
MARKET_TABLES = ("stocks", "daily_bars", "intraday_bars", "l2_daily", "index_weights", "index_daily")
INDICES = ("csi300", "csi500", "csi1000", "csi_all")
BARS_PER_DAY = 48
