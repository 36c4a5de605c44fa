"""The pooled SQLite event log (orchestration/storage.py) writes what Dagster's own storage reads: the same
materialisations, check evaluations and run records, over more runs than it keeps engines for."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from factor_pipeline.orchestration import storage
from factor_pipeline.orchestration.instance import SQLITE_STORAGE, instance_yaml

WEEKS = dg.WeeklyPartitionsDefinition(start_date="2020-01-06", day_offset=1)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dg.asset(partitions_def=WEEKS, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("ok", asset="weekly")])
def weekly(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"weeks": len(context.partition_keys)},
                                check_results=[dg.AssetCheckResult(check_name="ok", passed=True)])


@pytest.fixture
def dagster_home(tmp_path: Path) -> Iterator[Path]:
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(tmp_path)
    yield tmp_path
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


def _materialised(instance: dg.DagsterInstance) -> dict[str, int]:
    recs = instance.fetch_materializations(dg.AssetKey("weekly"), limit=10_000).records
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.partition_key] = counts.get(r.partition_key, 0) + 1
    return counts


def test_pooled_event_log_writes_what_dagsters_own_storage_reads(dagster_home: Path) -> None:
    (dagster_home / "dagster.yaml").write_text(instance_yaml(dagster_home))  # what every new home gets
    keys = WEEKS.get_partition_keys()[:30]
    job = dg.Definitions(assets=[weekly], jobs=[dg.define_asset_job("weekly_job")]).resolve_job_def("weekly_job")
    runs = storage.OPEN_SHARDS + 3  # more run shards than engines kept: the oldest are closed on the way
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, storage.PooledSqliteEventLogStorage)
        for k in range(runs):
            lo, hi = keys[k], keys[k + 10]
            res = job.execute_in_process(instance=instance, run_config=QUIET,
                                         tags={ASSET_PARTITION_RANGE_START_TAG: lo, ASSET_PARTITION_RANGE_END_TAG: hi})
            assert res.success
        assert len(instance.event_log_storage._engines) <= storage.OPEN_SHARDS
        ours = _materialised(instance)
        ours_runs = {r.run_id: r.status for r in instance.get_runs()}
    # partition k is materialised by every run whose range [k', k' + 10] holds it
    expected = {keys[i]: sum(1 for k in range(runs) if k <= i <= k + 10) for i in range(runs + 10)}
    assert ours == expected
    (dagster_home / "dagster.yaml").write_text(SQLITE_STORAGE.format(base=dagster_home))
    with dg.DagsterInstance.get() as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert _materialised(stock) == expected
        assert {r.run_id: r.status for r in stock.get_runs()} == ours_runs
        assert set(ours_runs.values()) == {dg.DagsterRunStatus.SUCCESS}
        checks = stock.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("weekly"), "ok")])
        assert checks, "the check evaluations are in the index shard"
        # and the stock storage's runs read back the same events as the run's own shard holds
        last = stock.get_runs(limit=1)[0]
        mats = [e for e in stock.all_logs(last.run_id) if e.dagster_event and e.dagster_event.is_step_materialization]
        assert len(mats) == 11
