"""The Dagster shell: partitions load exactly their weeks, reruns change nothing, bad weeks write nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from factor_pipeline.market.sources import file_source, synthetic_source
from factor_pipeline.market.warehouse import SourceMismatch, Warehouse
from factor_pipeline.orchestration.assets.market import MARKET_ASSETS, PARTITIONED_MARKET_ASSETS
from factor_pipeline.orchestration.partitions import market_weeks, week_range
from factor_pipeline.orchestration.resources import MarketSourceResource, WarehouseResource
from factor_pipeline.orchestration.runner import materialize_market
from factor_pipeline_tests.test_validate import small_dir  # noqa: F401  (fixture)

TABLES = ("stocks", "daily_bars", "intraday_bars", "l2_daily", "index_weights", "index_daily", "oracle")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACTOR_PIPELINE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _checksums(wh: Warehouse) -> dict:
    """Every table's checksum, but the audit's solve times (wall clock, never the same twice)."""
    out = {t: wh.checksum(t) for t in wh.tables() if not t.startswith("_") and t != "portfolio_audit"}
    if "portfolio_audit" in wh.tables():
        with wh.connect(read_only=True) as con:
            out["portfolio_audit"] = con.execute(
                "SELECT sum(hash(date, \"index\", model, relaxed, round(max_violation, 6), "
                "round(realised_turnover, 9))) FROM portfolio_audit").fetchone()
    return out


def wait_for_webserver(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll the webserver's /server_info until it answers; fail if the process dies or time runs out."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/server_info", timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, "webserver did not come up"
            assert proc.poll() is None, "ui exited early"
            time.sleep(1)


def _resources(folder: Path) -> dict:
    return {"warehouse": WarehouseResource(), "market_source": MarketSourceResource(kind="files", data_dir=str(folder))}


def test_full_load_matches_the_source(home, small_dir):  # noqa: F811
    run = materialize_market(file_source(small_dir))
    wh = Warehouse()
    for t in TABLES:
        n = pl.read_parquet(small_dir / f"{t}.parquet").height
        assert wh.checksum(t)[0] == n == run.rows[t]
    inst = dg.DagsterInstance.get()
    assert inst.get_latest_materialization_event(dg.AssetKey("daily_bars")) is not None


def test_rematerialising_a_partition_changes_nothing(home, small_dir):  # noqa: F811
    materialize_market(file_source(small_dir))
    wh = Warehouse()
    before = _checksums(wh)
    key = week_range(date(2016, 1, 11), date(2016, 1, 11))[0]
    assert key in market_weeks.get_partition_keys()
    res = dg.materialize(PARTITIONED_MARKET_ASSETS, partition_key=key, resources=_resources(small_dir),
                         instance=dg.DagsterInstance.ephemeral())
    assert res.success
    assert _checksums(wh) == before


def test_a_bad_week_fails_and_writes_nothing(home, small_dir, tmp_path):  # noqa: F811
    materialize_market(file_source(small_dir))
    wh = Warehouse()
    before = _checksums(wh)
    broken = tmp_path / "broken"
    shutil.copytree(small_dir, broken)
    d = pl.read_parquet(broken / "daily_bars.parquet")
    d.with_columns(high=pl.when(pl.col("date") == date(2016, 1, 12)).then(pl.col("low") - 1)
                   .otherwise(pl.col("high"))).write_parquet(broken / "daily_bars.parquet")
    # same folder identity is required: point the warehouse's source at the broken copy
    wh.reset()
    materialize_market(file_source(broken), end=date(2016, 1, 8))  # the clean first week loads
    good = _checksums(wh)
    res = dg.materialize([a for a in MARKET_ASSETS if a.key.path[0] == "daily_bars"],
                         partition_key="2016-01-11", resources=_resources(broken),
                         instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not res.success
    assert _checksums(wh) == good
    assert before["daily_bars"][0] > good["daily_bars"][0]


def test_a_warehouse_never_mixes_two_markets(home, small_dir):  # noqa: F811
    materialize_market(file_source(small_dir))
    with pytest.raises(SourceMismatch, match="holds the market"):
        Warehouse().load(synthetic_source("tiny", 0), "daily_bars", date(2016, 1, 4), date(2016, 1, 11))


def test_a_market_without_intraday_or_l2_flows(home, small_dir, tmp_path):  # noqa: F811
    daily_only = tmp_path / "daily_only"
    shutil.copytree(small_dir, daily_only)
    for t in ("intraday_bars", "l2_daily", "oracle"):
        (daily_only / f"{t}.parquet").unlink()
    first, last = week_range(date(2016, 1, 4), date(2016, 1, 22))
    res = dg.materialize(PARTITIONED_MARKET_ASSETS, resources=_resources(daily_only),
                         instance=dg.DagsterInstance.ephemeral(),
                         tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
    assert res.success
    by_asset = {e.asset_key.path[0]: e.materialization.metadata for e in res.get_asset_materialization_events()}
    assert "absent" in by_asset["intraday_bars"] and "absent" in by_asset["l2_daily"]
    checks = {e.asset_check_key.asset_key.path[0]: e for e in res.get_asset_check_evaluations()}
    assert not checks["intraday_bars"].passed
    assert checks["intraday_bars"].severity == dg.AssetCheckSeverity.WARN
    assert checks["daily_bars"].passed
    assert "intraday_bars" not in Warehouse().tables()


def test_definitions_load():
    from factor_pipeline.definitions import defs

    job = defs.resolve_job_def("market_job")
    assert job.partitions_def == market_weeks
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert set(TABLES) <= keys


def test_no_dagster_outside_the_shell():
    root = Path(__file__).resolve().parents[1] / "factor_pipeline"
    leaks = [str(p) for p in root.rglob("*.py")
             if re.search(r"^\s*(import dagster|from dagster)", p.read_text(), re.M)
             and "orchestration" not in p.parts and p.name != "definitions.py"]
    assert leaks == []


@pytest.mark.slow
def test_ui_serves_the_asset_graph_on_loopback_and_stops_on_sigterm(home):
    import signal
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "factor_pipeline.cli", "ui", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_webserver(base, proc)
        query = json.dumps({"query": "{ assetNodes { assetKey { path } groupName } }"}).encode()
        req = urllib.request.Request(base + "/graphql", data=query, headers={"Content-Type": "application/json"})
        nodes = json.load(urllib.request.urlopen(req, timeout=30))["data"]["assetNodes"]
        assert {n["assetKey"]["path"][0] for n in nodes if n["groupName"] == "market"} >= set(TABLES)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode is not None


def test_replace_rows_adds_columns_a_newer_version_writes(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace_rows("t", pl.DataFrame({"k": [1, 2], "a": [1.0, 2.0]}), "true")
    wh.replace_rows("t", pl.DataFrame({"k": [2], "a": [3.0], "b": ["x"]}), "k = 2")
    with wh.connect(read_only=True) as con:
        rows = con.execute("SELECT k, a, b FROM t ORDER BY k").fetchall()
    assert rows == [(1, 1.0, None), (2, 3.0, "x")]
