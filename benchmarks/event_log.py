"""What Dagster's event log costs a partitioned stage: one run materialising a weekly-partitioned asset (with
an asset check, as ours have) over `--weeks` partitions, on Dagster's stock SQLite storage and on ours
(`orchestration/storage.py`: the same files, connections kept open, `synchronous=NORMAL`), in the same run.

    .venv/bin/python benchmarks/event_log.py --weeks 365

Prints seconds per materialisation on each storage and their ratio; both instances' materialisation
counts, read back with the stock storage, must be equal.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from factor_pipeline.orchestration.instance import POOLED_SQLITE_STORAGE, SQLITE_STORAGE

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
WEEKS = dg.WeeklyPartitionsDefinition(start_date="2015-01-05", day_offset=1)


@dg.asset(partitions_def=WEEKS, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("ok", asset="bench")])
def bench() -> dg.MaterializeResult:
    """Like our partitioned assets: one result for the run's range, one materialisation per partition."""
    return dg.MaterializeResult(metadata={"rows": 1}, check_results=[dg.AssetCheckResult(check_name="ok",
                                                                                         passed=True)])


def _time(storage_yaml: str, weeks: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        (base / "dagster.yaml").write_text(storage_yaml.format(base=base) + "telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(base)
        keys = WEEKS.get_partition_keys()[:weeks]
        job = dg.Definitions(assets=[bench], jobs=[dg.define_asset_job("bench_job")]).resolve_job_def("bench_job")
        with dg.DagsterInstance.get() as instance:
            t = time.perf_counter()
            job.execute_in_process(instance=instance, run_config=QUIET, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0],
                                                           ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
            seconds = time.perf_counter() - t
        (base / "dagster.yaml").write_text(SQLITE_STORAGE.format(base=base))  # read back with Dagster's own
        with dg.DagsterInstance.get() as instance:
            n = instance.fetch_materializations(dg.AssetKey("bench"), limit=10_000).records
        return seconds, len(n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weeks", type=int, default=365)
    args = ap.parse_args()
    stock, n_stock = _time(SQLITE_STORAGE, args.weeks)
    ours, n_ours = _time(POOLED_SQLITE_STORAGE, args.weeks)
    assert n_stock == n_ours == args.weeks, (n_stock, n_ours)
    print(f"{args.weeks} materialisations (+ planned events and checks) in one run")
    print(f"Dagster's SQLite storage : {stock:6.2f} s  ({1000 * stock / args.weeks:5.1f} ms per partition)")
    print(f"pooled event log (ours)  : {ours:6.2f} s  ({1000 * ours / args.weeks:5.1f} ms per partition)")
    print(f"ratio stock / ours = {stock / ours:.2f}")


if __name__ == "__main__":
    main()
