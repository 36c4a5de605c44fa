"""The five datasets of the report: what each sample looks like and what data it needs."""

from __future__ import annotations

from dataclasses import dataclass

from factor_pipeline.datasets.intraday import MS_FEATURES

STEPS = 30
WEEK_DAYS = 150
PRICE_ROWS = ("open", "high", "low", "close", "vwap")
DAY_FEATURES = ("open_rel", "high_rel", "low_rel", "close_rel", "vwap_rel", "ret", "gap", "range", "close_vwap",
                "turnover", "amount_cap")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "image": [steps, rows, cols]; "sequence": [steps, features]
    rows: tuple[str, ...]  # image rows (the channels) or sequence features
    cols: int  # image columns (time inside one image); 0 for sequences
    lookback: int  # trading days a sample needs (listed throughout)
    requires: str  # "daily", "intraday" or "l2"
    doc: str

    def shape(self, n_features: int | None = None) -> tuple[int, ...]:
        if self.kind == "image":
            return (STEPS, len(self.rows), self.cols)
        return (STEPS, n_features or len(self.rows))


DATASETS: dict[str, DatasetSpec] = {
    "week": DatasetSpec(
        "week", "image", (*PRICE_ROWS, "turnover"), 5, WEEK_DAYS, "daily",
        "30 images of 6x5 over the last 150 trading days; block k (oldest first) holds 5 consecutive days; "
        "prices (adjusted) / adjusted close of day t, turnover as is"),
    "msnew": DatasetSpec(
        "msnew", "image", ("open", "high", "low", "close", "amount"), 8, STEPS, "intraday",
        "30 daily images of 5x8 (eight 30-minute bars); prices / previous close (split-adjusted), "
        "amount / float market cap"),
    "day": DatasetSpec(
        "day", "sequence", DAY_FEATURES, 0, STEPS, "daily",
        "30 days of daily features: OHLC and vwap / adjusted close of t, return, open gap, log range, "
        "close/vwap - 1, turnover, amount / float market cap"),
    "ms": DatasetSpec(
        "ms", "sequence", MS_FEATURES, 0, STEPS, "intraday",
        "30 days of daily features from 5-minute bars (datasets/intraday.py)"),
    "l2": DatasetSpec(
        "l2", "sequence", (), 0, STEPS, "l2",
        "30 days of l2_daily order-flow features; CNY amounts / the day's amount, counts as log1p"),
}


# the optional panel parts each dataset reads (datasets.panel.build_panel)
PANEL_PARTS = {"week": frozenset(), "day": frozenset(), "msnew": frozenset({"bars30"}), "ms": frozenset({"ms"}),
               "l2": frozenset({"l2"})}


class DatasetUnavailable(RuntimeError):
    """The market lacks the data a dataset needs (e.g. no intraday bars): skipped, and said so."""
