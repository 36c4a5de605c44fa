"""Dataset and label assets, and `inspect`, against a real warehouse."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from factor_pipeline.cli import main
from factor_pipeline.datasets.inspect import inspect_arrays
from factor_pipeline.market.schema import TABLES
from factor_pipeline.market.sources import file_source
from factor_pipeline.market.warehouse import Warehouse
from factor_pipeline.orchestration.assets.datasets import DATASET_ASSETS
from factor_pipeline.orchestration.resources import WarehouseResource

DAY = date(2017, 6, 30)  # a Friday of the tiny market


def _load(folder: Path, wh: Warehouse) -> None:
    src = file_source(folder)
    for t in TABLES:
        wh.load(src, t)


def _write(frames: dict[str, pl.DataFrame], folder: Path, keep=None) -> Path:
    folder.mkdir(parents=True)
    for name, df in frames.items():
        if keep and name not in keep:
            continue
        df.write_parquet(folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def full_wh(tiny, tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("dsa")
    wh = Warehouse(root / "wh.duckdb")
    _load(_write(tiny, root / "full"), wh)
    return wh


def test_inspect_sees_only_the_past(tiny, full_wh, tmp_path):
    cut = {k: (v.filter(pl.col("date") <= DAY) if "date" in v.columns else v) for k, v in tiny.items()}
    wh = Warehouse(tmp_path / "cut.duckdb")
    _load(_write(cut, tmp_path / "cut"), wh)
    for name in ("week", "msnew", "day", "ms", "l2"):
        a, b = inspect_arrays(full_wh, name, DAY), inspect_arrays(wh, name, DAY)
        assert list(a["codes"]) == list(b["codes"])
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["x_std"], b["x_std"])
        assert np.isfinite(a["label"]).mean() > 0.9 and np.isnan(b["label"]).all()
    assert a["x_std"].shape == a["x"].shape and not np.isnan(a["x_std"]).any()


def test_inspect_cli_writes_the_npz(full_wh, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(full_wh.path.parent))
    full_wh.path.rename(full_wh.path.parent / "warehouse.duckdb")
    full_wh.path = full_wh.path.parent / "warehouse.duckdb"
    assert main(["inspect", "msnew", "--date", str(DAY), "--out", str(tmp_path / "m.npz")]) == 0
    z = np.load(tmp_path / "m.npz")
    assert z["x"].shape[1:] == (30, 5, 8) and len(z["codes"]) == z["x"].shape[0]
    assert list(z["feature_names"]) == ["open", "high", "low", "close", "amount"]


def _materialize(wh: Warehouse, first: str, last: str):
    return dg.materialize(DATASET_ASSETS, resources={"warehouse": WarehouseResource(path=str(wh.path))},
                          instance=dg.DagsterInstance.ephemeral(),
                          tags={"dagster/asset_partition_range_start": first,
                                "dagster/asset_partition_range_end": last})


def test_dataset_assets_store_samples_and_labels_idempotently(full_wh):
    res = _materialize(full_wh, "2017-06-05", "2017-07-24")
    assert res.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in res.get_asset_materialization_events()}
    assert meta["dataset_week"]["sample_shape"].value == "(30, 6, 5)"
    assert meta["dataset_msnew"]["signal_dates"].value == 8
    assert "| close |" in meta["dataset_week"]["preview"].value
    with full_wh.connect(read_only=True) as con:
        n = dict(con.execute("SELECT dataset, count(DISTINCT date) FROM samples GROUP BY ALL").fetchall())
    assert n == {"week": 8, "msnew": 8, "day": 8, "ms": 8, "l2": 8}
    before = (full_wh.checksum("samples"), full_wh.checksum("labels"))
    assert _materialize(full_wh, "2017-06-05", "2017-07-24").success
    assert (full_wh.checksum("samples"), full_wh.checksum("labels")) == before


def test_daily_only_market_builds_week_and_day_and_says_why_not_the_rest(tiny, tmp_path):
    wh = Warehouse(tmp_path / "daily.duckdb")
    _load(_write(tiny, tmp_path / "daily", keep={"stocks", "daily_bars", "index_weights", "index_daily"}), wh)
    res = _materialize(wh, "2017-06-05", "2017-06-12")
    assert res.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in res.get_asset_materialization_events()}
    for name in ("msnew", "ms", "l2"):
        assert meta[f"dataset_{name}"]["absent"].value is True
    checks = {e.asset_check_key.asset_key.to_user_string(): e for e in res.get_asset_check_evaluations()}
    assert not checks["dataset_msnew"].passed and checks["dataset_msnew"].severity == dg.AssetCheckSeverity.WARN
    assert checks["dataset_week"].passed and meta["dataset_week"]["samples"].value > 0
