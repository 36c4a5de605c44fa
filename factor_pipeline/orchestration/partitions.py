"""Weekly partitions. A week is named by its Monday (Asia/Shanghai); its rebalance (signal) date is
its last trading day, normally the Friday close."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

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


def run_window(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """[start, end) dates of the rebalance weeks the *run* targets, or None for an unpartitioned run.

    Unpartitioned assets (risk model, portfolios, report) read this so that, inside the weekly job or a
    backfill of weeks, they cover exactly the weeks the run materialises."""
    tags = context.run.tags
    first = tags.get(ASSET_PARTITION_RANGE_START_TAG) or tags.get(PARTITION_NAME_TAG)
    last = tags.get(ASSET_PARTITION_RANGE_END_TAG) or tags.get(PARTITION_NAME_TAG)
    if not first or not last:
        return None
    return date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=7)
