"""Operations on the tiny market: the README's main job end to end, a run killed midway and resumed
(same results as one uninterrupted), and the Friday schedule taking the newest week through the
target weights and the report. One uninterrupted run is shared by the module (it takes minutes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import polars as pl
import pytest

from factor_pipeline.market.warehouse import Warehouse
from factor_pipeline.orchestration.instance import instance_yaml
from factor_pipeline_tests.pg import postgres_bin, postgres_server
from factor_pipeline_tests.test_orchestration import _checksums, wait_for_webserver

RUN = [sys.executable, "-m", "factor_pipeline.cli", "run", "--preset", "tiny", "--seed", "0"]
pytestmark = pytest.mark.slow


def _env(home: Path) -> dict:
    return {**os.environ, "FACTOR_PIPELINE_HOME": str(home), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module", autouse=True)
def _restore_environment() -> Iterator[None]:
    """The tests below point this process at their homes (FACTOR_PIPELINE_HOME, DAGSTER_HOME); undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _timeless(doc):
    """metrics.json without what depends on the clock: the run record and solve times."""
    if isinstance(doc, dict):
        return {k: _timeless(v) for k, v in doc.items() if k != "run" and "seconds" not in k}
    return doc


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict | None]:
    """A real PostgreSQL server on 127.0.0.1 for the module (None where PostgreSQL is not installed)."""
    if postgres_bin() is None:
        yield None
        return
    os.environ.setdefault("DAGSTER_PG_PASSWORD", "unused-trust-auth")
    with postgres_server() as pg:
        yield pg


PRISTINE: dict[Path, dict] = {}  # every table's checksum right after the reference run: later tests rewrite some


@pytest.fixture(scope="module")
def reference(tmp_path_factory, postgres) -> Path:
    """A home where `factor-pipeline run --preset tiny` ran once, uninterrupted, with Dagster's storage
    (runs, events, schedules) on the PostgreSQL server where one is installed."""
    home = tmp_path_factory.mktemp("reference") / "home"
    if postgres:
        (home / "dagster").mkdir(parents=True)
        (home / "dagster" / "dagster.yaml").write_text(instance_yaml(home / "dagster", postgres))
    out = subprocess.run(RUN, capture_output=True, text=True, timeout=900, env=_env(home))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "loaded weeks" in out.stdout
    PRISTINE[home] = _checksums(Warehouse(home / "warehouse.duckdb"))
    return home


def test_dagster_storage_on_a_real_postgres_server(reference, postgres):
    """The tiny pipeline's runs, materialisations and asset checks live in PostgreSQL, not in SQLite."""
    if postgres is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it)")
    import psycopg2

    con = psycopg2.connect(host=postgres["host"], port=postgres["port"], user=postgres["user"],
                           dbname=postgres["db"])
    with con.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM runs GROUP BY status")
        runs = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        materialisations = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM asset_check_executions")
        checks = cur.fetchone()[0]
    con.close()
    assert runs.get("SUCCESS", 0) >= 7 and set(runs) == {"SUCCESS"}  # market (2), datasets .. report
    assert materialisations >= 30 and checks >= 10
    assert not (reference / "dagster" / "storage").exists()


def test_cli_run_on_the_tiny_market(reference):
    home = reference
    wh = Warehouse(home / "warehouse.duckdb")
    assert {"daily_bars", "intraday_bars", "l2_daily", "index_weights", "index_daily", "oracle"} <= set(wh.tables())
    report = home / "reports" / "tiny-seed0"
    assert (report / "run.json").exists() and (report / "report.html").stat().st_size > 10_000
    run = json.loads((report / "run.json").read_text())
    peaks = run["peak_rss_gb_by_stage"]  # each stage ran in a process of its own and measured itself
    assert list(peaks) == list(run["seconds_by_stage"])
    assert all(0.1 < v < 24 for v in peaks.values()) and 0.05 < run["peak_rss_gb_parent"] < 24
    assert len({v for v in peaks.values()}) > 1  # not one process's high-water mark repeated
    from factor_pipeline.report.metrics import validate_metrics

    doc = json.loads((report / "metrics.json").read_text())
    validate_metrics(doc)
    assert set(doc["models"]) == {"model1", "model2", "model3", "model4", "model_wd", "model_wd_alpha"}
    assert set(doc["baselines"]) == {"equal_weight", "alpha158_lgbm"}
    assert doc["not_runnable"] == {}
    assert doc["oracle_rank_ic_mean"]["csi_all"] > 0.1
    assert {"scores", "baseline_scores", "common_factors", "alpha158_features", "weights", "portfolio_nav"} \
        <= set(wh.tables())
    assert set(doc["portfolios"]) == {"csi300", "csi500", "csi1000"}
    assert all(f["max_constraint_violation"] < 1e-6 for per in doc["portfolios"].values() for f in per.values())
    assert len(list((home / "trading").glob("target_weights_*.csv"))) == 1


def test_asset_checks_pass_and_are_recorded(reference):
    os.environ["FACTOR_PIPELINE_HOME"] = str(reference)
    from factor_pipeline.orchestration.instance import dagster_home

    dagster_home()
    instance = dg.DagsterInstance.get()
    checks = {
        ("scores", "finite_scores"), ("scores", "every_date_scored"), ("scores", "point_in_time"),
        ("baseline_scores", "finite_scores"), ("baseline_scores", "point_in_time"),
        ("target_weights", "constraint_audit"), ("weak_factors_week", "finite_weak_factors"),
    }
    for asset, name in checks:
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        rec = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        assert rec is not None, f"{asset}.{name} never ran"
        assert rec.event.dagster_event.event_specific_data.passed, f"{asset}.{name} failed"


def test_rerun_changes_nothing_and_another_market_is_refused(reference, tmp_path):
    wh = Warehouse(reference / "warehouse.duckdb")
    before = _checksums(wh)
    out = subprocess.run(RUN, capture_output=True, text=True, timeout=900, env=_env(reference))
    assert out.returncode == 0, out.stderr[-3000:]
    assert _checksums(wh) == before
    other = [*RUN[:-1], "1"]
    out = subprocess.run(other, capture_output=True, text=True, timeout=900, env=_env(reference))
    assert out.returncode == 2 and "--replace" in out.stderr


def _instance(home: Path) -> dg.DagsterInstance:
    os.environ["FACTOR_PIPELINE_HOME"] = str(home)
    from factor_pipeline.orchestration.instance import dagster_home

    dagster_home()
    return dg.DagsterInstance.get()


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.user_message]


def test_a_cli_run_shows_as_named_jobs_tagged_with_the_run_and_logs_progress(reference):
    """The Runs page, filtered by the run's tag, reads as its pipeline; the long stages log progress."""
    from factor_pipeline.orchestration.jobs import STAGE_JOBS
    from factor_pipeline.orchestration.runner import RUN_TAG, STAGE_TAG, WEEKS_TAG

    instance = _instance(reference)
    records = instance.get_run_records(dg.RunsFilter(tags={RUN_TAG: "tiny-seed0"}))
    assert records and len(records) == len(instance.get_run_records())  # every run of the home is the CLI's
    jobs = {r.dagster_run.job_name for r in records}
    assert jobs == {j.name for j in STAGE_JOBS} and "__ephemeral_asset_job__" not in jobs
    assert {r.dagster_run.tags[STAGE_TAG] for r in records} == {"market", "datasets", "weak factors", "scores",
                                                                   "portfolio", "report"}
    assert {r.dagster_run.tags[WEEKS_TAG] for r in records} == {"2017-01-01..2023-12-31"}
    by_job = {r.dagster_run.job_name: r.dagster_run.run_id for r in records}
    weak = _messages(instance, by_job["weak_factors_job"])
    fits = [m for m in weak if m.startswith("weak_factors_week fits: ")]
    assert fits and "trained, best valid RankIC" in fits[0] and fits[-1].split(": ")[1].split(" fits")[0] in \
        {f"{k}/{k}" for k in range(1, 50)}
    assert any("fits trained" in m and "reused from the cache" in m for m in weak)
    solves = [m for m in _messages(instance, by_job["portfolio_job"]) if m.startswith("portfolio solves: ")]
    assert 10 <= len(solves) <= 25 and "(100%)" in solves[-1]  # every 5%, and the end


def test_a_run_killed_midway_and_resumed_equals_one_uninterrupted(reference, tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen(RUN, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(home),
                            start_new_session=True)
    try:
        for line in proc.stdout:  # the datasets are built
            if line.lstrip().startswith("labels"):
                break
        os.environ["FACTOR_PIPELINE_HOME"] = str(home)
        from factor_pipeline.orchestration.instance import dagster_home

        dagster_home()
        started = dg.RunsFilter(job_name="weak_factors_job", statuses=[dg.DagsterRunStatus.STARTED])
        deadline = time.time() + 300
        while not dg.DagsterInstance.get().get_run_records(started):  # its process is up: training has begun
            assert proc.poll() is None and time.time() < deadline, "the weak-factor stage did not start"
            time.sleep(1)
        time.sleep(5)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (home / "reports" / "tiny-seed0" / "metrics.json").exists()

    out = subprocess.run(RUN, capture_output=True, text=True, timeout=900, env=_env(home))
    assert out.returncode == 0, out.stderr[-3000:]
    resumed, uninterrupted = Warehouse(home / "warehouse.duckdb"), Warehouse(reference / "warehouse.duckdb")
    assert _checksums(resumed) == _checksums(uninterrupted)
    got = json.loads((home / "reports" / "tiny-seed0" / "metrics.json").read_text())
    want = json.loads((reference / "reports" / "tiny-seed0" / "metrics.json").read_text())
    assert _timeless(got) == _timeless(want)
    # the killed run is on record as failed, not left "running" holding the GPU pool's slot
    os.environ["FACTOR_PIPELINE_HOME"] = str(home)
    from factor_pipeline.orchestration.instance import dagster_home

    dagster_home()
    instance = dg.DagsterInstance.get()
    statuses = [r.dagster_run.status for r in instance.get_run_records()]
    assert dg.DagsterRunStatus.FAILURE in statuses
    assert not {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING} & set(statuses)


def test_a_launch_without_config_reuses_the_cli_models_and_changes_nothing(reference):
    """What the UI's launchpad or backfill dialog starts with no config typed: the weekly job over the
    CLI run's last three weeks trains nothing, reuses every fit, and leaves the tables as they were: the
    models' tables and the weights bit for bit, the NAV going on from where it stood (within 1e-12).
    (It runs after the killed-run test, which compares every table with the reference: the features it
    recomputes over three weeks differ from the full run's in float32's last digits.)"""
    from factor_pipeline.definitions import defs
    from factor_pipeline.orchestration.partitions import rebalance_weeks

    instance = _instance(reference)
    wh = Warehouse(reference / "warehouse.duckdb")
    with wh.connect(read_only=True) as con:
        last = con.sql("SELECT max(date) AS d FROM weak_factors").pl()["d"][0]
    keys = [k for k in rebalance_weeks.get_partition_keys() if k <= str(last)][-3:]
    tables = ("weak_factors", "weak_factors_daily", "scores", "baseline_scores", "weights")
    before = {t: wh.checksum(t) for t in tables}
    with wh.connect(read_only=True) as con:
        nav_before = con.sql("SELECT * FROM portfolio_nav").pl()
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    res = defs.resolve_job_def("weekly_rebalance_job").execute_in_process(
        instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
    assert res.success
    assert {t: wh.checksum(t) for t in tables} == before
    with wh.connect(read_only=True) as con:
        nav_after = con.sql("SELECT * FROM portfolio_nav").pl()
    both = nav_before.join(nav_after, on=["date", "index", "model"], suffix="_after")
    assert both.height == nav_before.height == nav_after.height
    for col in ("nav", "bench"):  # a rerun NAV goes on from the stored level, it does not restart at 1
        np.testing.assert_allclose(both[f"{col}_after"].to_numpy(), both[col].to_numpy(), rtol=1e-12)
    md = {e.asset_key.to_user_string(): e.materialization.metadata for e in res.get_asset_materialization_events()}
    for name in ("week", "msnew", "day", "ms", "l2"):
        assert md[f"weak_factors_{name}"]["fits_trained"].value == 0
        assert md[f"weak_factors_{name}"]["fits_reused"].value > 0
    msgs = _messages(instance, res.run_id)
    assert any("training preset tiny, seed 0: 0 fits trained" in m for m in msgs)
    assert not any("differs from" in m for m in msgs)


def test_friday_schedule_takes_the_newest_week_through_weights_and_report(reference):
    """The schedule's tick on the market's last Friday loads that week; the sensor then runs the week
    through the target weights and the report; the week's weights hold the constraints."""
    os.environ["FACTOR_PIPELINE_HOME"] = str(reference)
    from factor_pipeline.definitions import defs
    from factor_pipeline.orchestration.instance import dagster_home
    from factor_pipeline.orchestration.schedules import WEEK_TAG, friday_rebalance, rebalance_after_market

    dagster_home()
    instance = dg.DagsterInstance.get()
    wh = Warehouse(reference / "warehouse.duckdb")
    with wh.connect(read_only=True) as con:
        last = con.sql("SELECT max(date) AS d FROM weights").pl()["d"][0]
        before = con.sql(f"SELECT * FROM weights WHERE date < DATE '{last}'").pl().sort("index", "model", "date",
                                                                                         "code")
    tick = datetime(last.year, last.month, last.day, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    req = friday_rebalance(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    week = req.partition_key
    assert week == str(last - timedelta(days=last.weekday()))
    market = defs.resolve_job_def("market_job").execute_in_process(partition_key=week, instance=instance,
                                                                tags=req.tags)
    assert market.success

    ctx = dg.build_run_status_sensor_context(sensor_name="rebalance_after_market", dagster_instance=instance,
                                             dagster_run=market.dagster_run,
                                             dagster_event=market.get_run_success_event(),
                                             resources={"warehouse": defs.resources["warehouse"]})
    follow = rebalance_after_market(ctx)
    assert isinstance(follow, dg.RunRequest) and follow.partition_key == week and follow.tags[WEEK_TAG] == week
    weekly = defs.resolve_job_def("weekly_rebalance_job").execute_in_process(
        partition_key=week, instance=instance, run_config=follow.run_config, tags=follow.tags)
    assert weekly.success
    done = {e.asset_key.to_user_string() for e in weekly.get_asset_materialization_events()}
    assert {"scores", "target_weights", "backtest", "evaluation", "report"} <= done
    with wh.connect(read_only=True) as con:
        after = con.sql(f"SELECT * FROM weights WHERE date < DATE '{last}'").pl().sort("index", "model", "date",
                                                                                        "code")
        this = con.sql(f"SELECT * FROM weights WHERE date = DATE '{last}'").pl()
    assert after.equals(before)  # earlier weeks untouched
    sums = this.group_by("index", "model").agg(pl.col("weight").sum())
    assert sums.height == 15 and (sums["weight"] - 1).abs().max() < 1e-6
    assert (reference / "reports" / "latest" / "metrics.json").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser():
    """Headless Chromium from Debian's packages (chromium, chromium-driver), or a skip where absent."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1600,1400"):
        opts.add_argument(a)
    opts.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=opts)


def _shots() -> Path:
    """Where the browser tests keep their screenshots (data/, git-ignored)."""
    shots = Path(__file__).resolve().parents[1] / "data" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _page_text(browser, url: str, wanted: list[str], timeout: float = 90, ready=lambda text: True) -> str:
    """Open `url`, dismiss Dagster's first-visit dialog, wait until every wanted string shows (and
    `ready(text)` holds: statuses load after the names)."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    deadline = time.monotonic() + timeout
    while True:
        for b in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            b.click()
        text = browser.find_element(By.TAG_NAME, "body").text
        missing = [w for w in wanted if w not in text]
        if not missing and ready(text):
            return text
        assert time.monotonic() < deadline, f"{url} never showed {missing}"
        time.sleep(1)


def test_the_ui_in_a_real_browser_shows_the_graph_materialised(reference):
    """`factor-pipeline ui` on loopback, opened in headless Chromium: the asset graph's groups, every asset
    in the catalog, and the latest materialisation of the target weights; screenshots kept."""
    shots = _shots()
    browser = _browser()
    port = _free_port()
    ui = subprocess.Popen([sys.executable, "-m", "factor_pipeline.cli", "ui", "--port", str(port)],
                          env=_env(reference), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_webserver(base, ui)
        groups = ["market", "datasets", "weak_factors", "scores", "portfolio", "report"]
        _page_text(browser, base + "/asset-groups", groups)
        browser.save_screenshot(str(shots / "asset_graph.png"))
        from factor_pipeline.definitions import defs

        graph = defs.resolve_asset_graph()
        for group in groups:  # each group's graph: its assets, with their latest materialisation
            keys = [k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == group]
            n = len(keys)
            text = _page_text(browser, f"{base}/locations/factor_pipeline.definitions/asset-groups/{group}/list",
                              keys, ready=lambda t, n=n: t.count("Materialized") + t.count(" partitions") >= n)
            assert "Never materialized" not in text, group
            browser.save_screenshot(str(shots / f"group_{group}.png"))
        _page_text(browser, base + "/assets/target_weights",
                   ["Latest materialization", "max_constraint_violation", "weekly_rebalance_job"],
                   ready=lambda t: " ago" in t.split("Latest materialization", 1)[-1][:200])
        browser.save_screenshot(str(shots / "target_weights.png"))
        from urllib.parse import quote

        from factor_pipeline.orchestration.jobs import STAGE_JOBS
        from factor_pipeline.orchestration.runner import RUN_TAG

        # the Runs page filtered by the CLI run's tag reads as its pipeline: its named jobs, each succeeded
        text = _page_text(browser, f"{base}/runs?q[0]={quote(f'tag:{RUN_TAG}=tiny-seed0', safe='')}",
                          [j.name for j in STAGE_JOBS], ready=lambda t: "Success" in t)
        assert "__ephemeral_asset_job__" not in text
        browser.save_screenshot(str(shots / "runs.png"))
    finally:
        browser.quit()
        ui.send_signal(signal.SIGINT)
        ui.wait(timeout=60)
    assert (shots / "asset_graph.png").stat().st_size > 10_000


BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on PartitionSetNotFoundError { message } ... on PipelineNotFoundError { message } } }"""
BACKFILL_STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions runs { runId status } } ... on PythonError { message } } }"""
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _graphql(base: str, query: str, variables: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(base + "/graphql", data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        doc = json.loads(resp.read())
    assert "errors" not in doc, doc["errors"]
    return doc["data"]


def _ui_backfill(base: str, keys: list[str], timeout: float = 1200) -> tuple[str, dict]:
    """What the UI's backfill dialog sends for the weekly job's partitions (the job's assets, the chosen
    weeks, no config, no tags), then wait until the daemon has finished it."""
    from factor_pipeline.definitions import defs

    job = defs.resolve_job_def("weekly_rebalance_job")
    assets = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    params = {"selector": {"partitionSetName": "weekly_rebalance_job_partition_set",
                           "repositorySelector": {"repositoryLocationName": "factor_pipeline.definitions",
                                                  "repositoryName": "__repository__"}},
              "assetSelection": [{"path": a.split("/")} for a in assets], "partitionNames": keys,
              "fromFailure": False, "tags": []}
    res = _graphql(base, BACKFILL, {"p": params})["launchPartitionBackfill"]
    assert res["__typename"] == "LaunchBackfillSuccess", res
    deadline = time.monotonic() + timeout
    while True:
        status = _graphql(base, BACKFILL_STATUS, {"id": res["backfillId"]})["partitionBackfillOrError"]
        if status.get("status") in DONE and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                                                 for r in status["runs"]):
            return res["backfillId"], status
        assert time.monotonic() < deadline, f"backfill not finished after {timeout} s: {status}"
        time.sleep(3)


def _market_only_home(tmp_path: Path) -> Path:
    """A fresh home holding only the tiny market (what `factor-pipeline run` loads first)."""
    home = tmp_path / "home"
    load = subprocess.run([sys.executable, "-c", "from factor_pipeline.market.sources import synthetic_source; "
                           "from factor_pipeline.orchestration.runner import materialize_market; "
                           "materialize_market(synthetic_source('tiny', 0))"],
                          capture_output=True, text=True, timeout=600, env=_env(home))
    assert load.returncode == 0, load.stderr[-3000:]
    return home


def _reference_weeks(reference: Path) -> list[str]:
    """The rebalance weeks (partition keys) the reference CLI run built."""
    from factor_pipeline.orchestration.partitions import rebalance_weeks

    with Warehouse(reference / "warehouse.duckdb").connect(read_only=True) as con:
        span = con.sql("SELECT min(date) AS a, max(date) AS b FROM weak_factors").pl()
    first, last = span["a"][0], span["b"][0]
    return [k for k in rebalance_weeks.get_partition_keys()
            if str(first - timedelta(days=first.weekday())) <= k <= str(last)]


def test_a_ui_backfill_through_the_daemon_equals_the_cli_run_and_a_second_changes_nothing(reference, tmp_path):
    """A fresh home with the tiny market loaded, `factor-pipeline ui` (webserver + daemon), and a partition
    backfill of the weekly job over the CLI run's weeks launched through the webserver's GraphQL API as the
    UI's dialog launches it: the daemon builds every table exactly as the CLI run did (one run over the
    range), and a second backfill over the same weeks trains nothing, reuses every fit and changes no table.
    The backfills and their runs show as succeeded in the UI (headless Chromium, where installed)."""
    home = _market_only_home(tmp_path)
    keys = _reference_weeks(reference)
    port = _free_port()
    ui = subprocess.Popen([sys.executable, "-m", "factor_pipeline.cli", "ui", "--port", str(port)], env=_env(home),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_webserver(base, ui)
        t0 = time.monotonic()
        first_id, first_status = _ui_backfill(base, keys)
        built_s = time.monotonic() - t0
        assert first_status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), first_status
        assert [r["status"] for r in first_status["runs"]] == ["SUCCESS"]  # one run over the range
        wh = Warehouse(home / "warehouse.duckdb")
        built = _checksums(wh)
        want = PRISTINE[reference]
        assert {t: built.get(t) for t in want} == want
        second_id, second_status = _ui_backfill(base, keys)
        assert second_status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), second_status
        assert _checksums(wh) == built
        instance = _instance(home)
        msgs = [m for r in second_status["runs"] for m in _messages(instance, r["runId"])]
        fits = [m for m in msgs if "fits trained" in m]
        assert fits and all(": 0 fits trained" in m and "reused" in m for m in fits), fits
        print(f"backfill of {len(keys)} weeks: {built_s:.0f} s building, then reused")
        _backfills_in_the_browser(base, [first_id, second_id])
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(timeout=60)


def _backfills_in_the_browser(base: str, ids: list[str]) -> None:
    browser = _browser()  # skips where Chromium is absent, after the GraphQL checks above
    try:
        for i in ids:
            _page_text(browser, f"{base}/runs/b/{i}?tab=runs", [i, "Success"],
                       ready=lambda t: "Completed" in t or "Succeeded" in t)
        browser.save_screenshot(str(_shots() / "backfill.png"))
        _page_text(browser, f"{base}/runs?q[0]=tag%3Adagster%2Fbackfill%3D{ids[0]}",
                   ["weekly_rebalance_job", "Success"])
    finally:
        browser.quit()


@pytest.mark.timeout(2400)  # with the reference run where this test runs alone
def test_the_weekly_job_on_celery_workers_trains_on_the_gpu_queue_and_equals_the_in_process_run(reference, tmp_path):
    """dagster-celery's executor on a real Redis broker with two workers, as docs/deploy.md runs it: one on
    the default queue, one on `gpu` (room for two tasks at once). The weekly job over the CLI run's weeks:
    exactly the weak-factor steps run on the `gpu` worker, the GPU pool still lets only one train at a time,
    and every table equals the in-process CLI run's."""
    pytest.importorskip("dagster_celery")
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from factor_pipeline.orchestration.executors import BROKER_ENV
    from factor_pipeline_tests.celery_cluster import celery_workers, redis_bin, redis_server

    if redis_bin() is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    home = _market_only_home(tmp_path)
    keys = _reference_weeks(reference)
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    dagster = str(Path(sys.executable).with_name("dagster"))
    with redis_server() as broker:
        env = {**_env(home), BROKER_ENV: broker, "DAGSTER_HOME": str(home / "dagster")}
        with celery_workers(broker, env, {"cpu": ("dagster", 2), "gpu": ("gpu", 2)}, tmp_path) as hosts:
            t0 = time.monotonic()
            out = subprocess.run([dagster, "job", "execute", "-m", "factor_pipeline.definitions", "-j",
                                  "weekly_rebalance_job", "--tags", json.dumps(tags)],
                                 capture_output=True, text=True, timeout=1800, env=env)
            took = time.monotonic() - t0
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    instance = _instance(home)
    (record,) = instance.get_run_records(dg.RunsFilter(job_name="weekly_rebalance_job"))
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert record.dagster_run.run_config.get("execution") is None  # the executor came from the environment
    events = [e for e in instance.all_logs(record.dagster_run.run_id) if e.dagster_event]
    worker = {}
    for e in events:
        data = e.dagster_event.engine_event_data if e.dagster_event.is_engine_event else None
        if data and "Celery worker" in data.metadata:
            worker[e.step_key] = getattr(data.metadata["Celery worker"], "value", data.metadata["Celery worker"])
    started = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_START}
    ended = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert set(worker) == set(started) == set(ended) and len(started) > 5
    weak = {s for s in started if s.startswith("weak_factors_")}
    assert len(weak) == 5
    assert {s for s, w in worker.items() if w == hosts["gpu"]} == weak
    assert {w for s, w in worker.items() if s not in weak} == {hosts["cpu"]}
    spans = sorted((started[s], ended[s]) for s in weak)  # the pool, not the worker, keeps them one at a time
    assert all(nxt[0] >= prev[1] for prev, nxt in zip(spans, spans[1:], strict=False)), spans
    built = _checksums(Warehouse(home / "warehouse.duckdb"))
    want = PRISTINE[reference]
    assert {t: built.get(t) for t in want} == want
    print(f"celery run of {len(keys)} weeks: {took:.0f} s, {len(started)} steps, {len(weak)} on the gpu worker")
