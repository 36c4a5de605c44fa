"""Weekly partitions. A week is named by its Monday (Asia/Shanghai); its rebalance (signal) date is
its last trading day, normally the Friday close."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

TIMEZONE = "Asia/Shanghai"
MARKET_START = "2005-01-03"  # raw market data: history that later stages look back on
REBALANCE_START = "2017-01-02"  # weeks whose Friday signal the pipeline scores and trades

market_weeks = dg.WeeklyPartitionsDefinition(
    start_date=MARKET_START, day_offset=1, timezone=TIMEZONE, end_offset=1
)
rebalance_weeks = dg.WeeklyPartitionsDefinition(
    start_date=REBALANCE_START, day_offset=1, timezone=TIMEZONE, end_offset=1
)


def week_key(d: date) -> str:
    """Partition key of the week containing `d`."""
    return (d - timedelta(days=d.weekday())).isoformat()


def week_range(start: date, end: date) -> tuple[str, str]:
    """First and last partition keys of the weeks that overlap [start, end]."""
    first = max(week_key(start), MARKET_START)
    return first, week_key(end)


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """[start, end) dates of the partition (or partition range) being materialised."""
    tw = context.partition_time_window
    return tw.start.date(), tw.end.date()
