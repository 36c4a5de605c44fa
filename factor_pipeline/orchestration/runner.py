"""Materialise asset ranges in-process for the CLI; the runs land in the home's Dagster instance.

Each stage imports only its own assets (and their libraries): `run` starts a process per stage, and torch,
cvxpy, XGBoost and LightGBM cost a stage that does not use them about a second each to import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from factor_pipeline.market.sources import MarketSource
from factor_pipeline.market.warehouse import connect_memory
from factor_pipeline.orchestration.instance import dagster_home
from factor_pipeline.orchestration.partitions import REBALANCE_START, week_key, week_range
from factor_pipeline.orchestration.resources import (
    MarketSourceResource,
    MlflowResource,
    TorchDeviceResource,
    WarehouseResource,
)

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class MarketRun:
    first_week: str
    last_week: str
    rows: dict[str, int]
    absent: list[str]
    run_ids: list[str]


PID_TAG = "factor_pipeline/pid"
_reaped: set[str] = set()


def reap_orphans(instance: dg.DagsterInstance) -> list[str]:
    """Runs this machine's CLI started whose process is gone (killed midway) are marked failed and their
    concurrency slots freed, so a resumed run neither waits on a dead run's GPU slot nor shows it running."""
    import os

    gone = []
    active = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    for rec in instance.get_run_records(dg.RunsFilter(statuses=active)):
        run = rec.dagster_run
        pid = run.tags.get(PID_TAG)
        if not pid or _alive(int(pid)) or int(pid) == os.getpid():
            continue
        instance.report_run_failed(run, "the process that ran it (pid " + pid + ") is gone: killed midway")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        gone.append(run.run_id)
    return gone


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


RUN_TAG, WEEKS_TAG, STAGE_TAG = "factor_pipeline/run", "factor_pipeline/weeks", "factor_pipeline/stage"
_labels: dict[str, str] = {}


def label_runs(name: str, start: date, end: date) -> None:
    """Tag every stage run this process launches from now on with the `run`'s name and span, so that the
    Runs page filtered by `factor_pipeline/run=<name>` reads as that run's pipeline."""
    _labels.clear()
    _labels.update({RUN_TAG: name, WEEKS_TAG: f"{start}..{end}"})


def _materialize(assets, job: str, stage: str, tags: dict | None = None, selection=None, run_config=None,
                 resources: dict | None = None) -> dg.ExecuteInProcessResult:
    """One in-process run of the named stage job (jobs.STAGE_JOBS) in the home's instance, tagged with the
    `run`, its span, the stage and this process id (as dg.materialize does, but not as an anonymous
    `__ephemeral_asset_job__`)."""
    import os

    base = dagster_home()
    instance = dg.DagsterInstance.get()
    if str(base) not in _reaped:
        reap_orphans(instance)
        _reaped.add(str(base))
    defs = dg.Definitions(jobs=[dg.define_asset_job(job, selection=selection)], assets=assets, resources=resources)
    all_tags = {**_labels, STAGE_TAG: stage, **(tags or {}), PID_TAG: str(os.getpid())}
    return defs.resolve_job_def(job).execute_in_process(run_config=run_config, instance=instance, tags=all_tags)


def _resources(source: MarketSource) -> dict:
    spec = source.spec
    if spec["kind"] == "files":
        ms = MarketSourceResource(kind="files", data_dir=spec["path"])
    else:
        ms = MarketSourceResource(kind="synthetic", preset=spec["preset"], seed=int(spec["seed"]))
    return {"warehouse": WarehouseResource(), "market_source": ms}


def materialize_market(source: MarketSource, end: date | None = None, quiet: bool = True) -> MarketRun:
    """Load every week of `source` (through `end`) as one Dagster run per partitions definition."""
    from factor_pipeline.orchestration.assets.market import MARKET_ASSETS, PARTITIONED_MARKET_ASSETS

    lo, hi = source.date_range(connect_memory())
    first, last = week_range(lo, min(hi, end) if end else hi)
    res = _resources(source)
    cfg = QUIET if quiet else None
    r1 = _materialize(MARKET_ASSETS, "stocks_job", "market", selection=["stocks"], resources=res, run_config=cfg)
    r2 = _materialize(
        PARTITIONED_MARKET_ASSETS, "market_job", "market", resources=res, run_config=cfg,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )
    rows: dict[str, int] = {}
    absent: list[str] = []
    for r in (r1, r2):
        for ev in r.get_asset_materialization_events():
            md = ev.materialization.metadata
            name = ev.asset_key.to_user_string()
            if "absent" in md:
                absent.append(name)
            rows[name] = int(md["rows"].value)
    return MarketRun(first, last, rows, sorted(set(absent)), [r1.run_id, r2.run_id])


@dataclass
class StageRun:
    """One Dagster run over a range of rebalance weeks and what its assets reported."""

    first_week: str
    last_week: str
    metadata: dict[str, dict]  # asset name -> its materialisation metadata (plain values)
    run_id: str


def _metadata(res: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in res.get_asset_materialization_events()}


def materialize_datasets(start: date, end: date, quiet: bool = True) -> StageRun:
    """Datasets, labels and hand-crafted features for the rebalance weeks overlapping [start, end], as one run."""
    from factor_pipeline.orchestration.assets.datasets import DATASET_ASSETS
    from factor_pipeline.orchestration.assets.features import FEATURE_ASSETS

    first = max(week_key(start), REBALANCE_START)
    last = week_key(end)
    if last < first:
        raise ValueError(f"no rebalance week in {start} .. {end} (rebalance weeks start {REBALANCE_START})")
    res = _materialize(
        [*DATASET_ASSETS, *FEATURE_ASSETS], "datasets_job", "datasets", resources={"warehouse": WarehouseResource()},
        run_config=QUIET if quiet else None,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )
    return StageRun(first, last, _metadata(res), res.run_id)


def materialize_weak_factors(first_week: str, last_week: str, training_preset: str, seed: int = 0,
                             quiet: bool = True) -> StageRun:
    """Weak factors of every dataset for a range of rebalance weeks, as one run."""
    from factor_pipeline.orchestration.assets.weak_factors import WEAK_FACTOR_ASSETS

    ops = {a.key.to_user_string(): {"config": {"training_preset": training_preset, "seed": seed}}
           for a in WEAK_FACTOR_ASSETS}
    cfg = {**(QUIET if quiet else {}), "ops": ops}
    res = _materialize(
        WEAK_FACTOR_ASSETS, "weak_factors_job", "weak factors", run_config=cfg,
        resources={"warehouse": WarehouseResource(), "mlflow": MlflowResource(), "torch_device": TorchDeviceResource()},
        tags={ASSET_PARTITION_RANGE_START_TAG: first_week, ASSET_PARTITION_RANGE_END_TAG: last_week},
    )
    return StageRun(first_week, last_week, _metadata(res), res.run_id)


def materialize_scores(first_week: str, last_week: str, quiet: bool = True) -> StageRun:
    """Model1-Model4 scores and the baselines for a range of rebalance weeks, as one run."""
    from factor_pipeline.orchestration.assets.scores import baseline_scores
    from factor_pipeline.orchestration.assets.scores import scores as scores_asset

    res = _materialize(
        [scores_asset, baseline_scores], "scores_job", "scores", run_config=QUIET if quiet else None,
        resources={"warehouse": WarehouseResource(), "mlflow": MlflowResource()},
        tags={ASSET_PARTITION_RANGE_START_TAG: first_week, ASSET_PARTITION_RANGE_END_TAG: last_week},
    )
    return StageRun(first_week, last_week, _metadata(res), res.run_id)


def materialize_report(name: str, start: date, end: date, quiet: bool = True) -> StageRun:
    """Evaluation (metrics.json and tables) and report.html over the signal dates in [start, end]."""
    from factor_pipeline.orchestration.assets.report import REPORT_ASSETS

    cfg = {"config": {"name": name, "start": str(start), "end": str(end)}}
    res = _materialize(
        REPORT_ASSETS, "report_job", "report",
        run_config={**(QUIET if quiet else {}), "ops": {"evaluation": cfg, "report": cfg}},
        resources={"warehouse": WarehouseResource()},
    )
    return StageRun(str(start), str(end), _metadata(res), res.run_id)


def materialize_portfolios(start: date, end: date, models: list[str] | None = None, quiet: bool = True) -> StageRun:
    """Risk model, enhanced portfolios and their backtest over the signal dates in [start, end]."""
    from factor_pipeline.orchestration.assets.portfolio import PORTFOLIO_ASSETS

    cfg = {"start": str(start), "end": str(end)}
    if models:
        cfg["models"] = models
    res = _materialize(
        PORTFOLIO_ASSETS, "portfolio_job", "portfolio",
        run_config={**(QUIET if quiet else {}), "ops": {"risk_model": {"config": cfg},
                                                         "enhanced_portfolios": {"config": cfg}}},
        resources={"warehouse": WarehouseResource()},
    )
    return StageRun(str(start), str(end), _metadata(res), res.run_id)
