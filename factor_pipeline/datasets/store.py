"""Reading the warehouse into a panel (the datasets stage reads the market stage's tables only)."""

from __future__ import annotations

from datetime import date

from factor_pipeline.datasets.panel import ALL_PARTS, Panel, build_panel
from factor_pipeline.market.schema import MARKET_TABLES
from factor_pipeline.market.warehouse import Warehouse


def panel_from_warehouse(wh: Warehouse, start: date | None = None, end: date | None = None,
                         parts: frozenset[str] = ALL_PARTS, also: tuple[str, ...] = (),
                         intraday_from: date | None = None) -> Panel:
    present = set(wh.tables())
    missing = {"daily_bars", "index_weights"} - present
    if missing:
        raise FileNotFoundError(f"the warehouse {wh.path} has no {sorted(missing)}: load the market first")
    with wh.connect(read_only=True) as con:
        con.execute("SET threads = 2; SET memory_limit = '3GB'; SET preserve_insertion_order = false")
        panel = build_panel(con, {t: t for t in MARKET_TABLES if t in present}, start, end, parts, also,
                            intraday_from)
    panel.universe = wh.universe()
    return panel
