"""Shared fixtures: one tiny synthetic market per session, read as Polars frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from factor_pipeline.config import preset
from factor_pipeline.market.simulator import simulate_market

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("market") / "tiny"
    simulate_market(preset("tiny"), 0, out)
    return out


@pytest.fixture(scope="session")
def tiny(tiny_dir) -> dict[str, pl.DataFrame]:
    frames = {p.stem: pl.read_parquet(p) for p in tiny_dir.glob("*.parquet")}
    frames["intraday_bars"] = pl.read_parquet(tiny_dir / "intraday_bars" / "*.parquet")
    return frames


@pytest.fixture(scope="session")
def returns(tiny) -> pl.DataFrame:
    """Adjusted close-to-close returns on trading days (not suspended, not the listing day)."""
    d = tiny["daily_bars"].sort("code", "date")
    tr = pl.col("close") * pl.col("adj_factor")
    return d.with_columns(ret=tr / tr.shift(1).over("code") - 1).filter(
        ~pl.col("is_suspended") & pl.col("ret").is_not_null()
    )


def rank_ic_by_date(df: pl.DataFrame, x: str, y: str) -> np.ndarray:
    """Spearman correlation of x and y within each date."""
    out = (
        df.with_columns(pl.col(x).rank().over("date").alias("_rx"), pl.col(y).rank().over("date").alias("_ry"))
        .group_by("date")
        .agg(pl.corr("_rx", "_ry").alias("ic"), pl.len().alias("n"))
        .filter(pl.col("n") >= 10)
    )
    return out["ic"].drop_nulls().to_numpy()
