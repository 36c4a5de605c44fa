"""The Friday rebalance: at 18:00 Asia/Shanghai load the newest market week, and when that run succeeds
materialise the same week through the target weights and the report."""

from __future__ import annotations

import dagster as dg

from factor_pipeline.orchestration.jobs import market_job, weekly_rebalance_job, weekly_run_config
from factor_pipeline.orchestration.partitions import REBALANCE_START, TIMEZONE, market_weeks
from factor_pipeline.orchestration.resources import WarehouseResource

FRIDAY_1800 = "0 18 * * 5"
WEEK_TAG = "factor_pipeline/rebalance_week"


@dg.schedule(cron_schedule=FRIDAY_1800, execution_timezone=TIMEZONE, job=market_job,
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Fridays 18:00 Asia/Shanghai: load the newest market week; `rebalance_after_market` "
                         "then runs that week through target weights and report. Turn it on in the UI "
                         "(Automation) once new bars reach the market source each week.")
def friday_rebalance(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    # the week holding the tick: with end_offset=1 the newest partition, the one whose Friday just closed
    key = market_weeks.get_partition_key_for_timestamp(context.scheduled_execution_time.timestamp())
    return dg.RunRequest(run_key=f"market-{key}", partition_key=key, tags={WEEK_TAG: key})


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[market_job],
                      request_job=weekly_rebalance_job, default_status=dg.DefaultSensorStatus.RUNNING,
                      description="After the Friday market load succeeds: the weekly rebalance job for its week.")
def rebalance_after_market(context: dg.RunStatusSensorContext,
                           warehouse: WarehouseResource) -> dg.RunRequest | dg.SkipReason:
    key = context.dagster_run.tags.get(WEEK_TAG)
    if not key:
        return dg.SkipReason("a market load not started by the Friday schedule")
    if key < REBALANCE_START:
        return dg.SkipReason(f"week {key} is before the first rebalance week")
    return dg.RunRequest(run_key=f"rebalance-{key}", partition_key=key, tags={WEEK_TAG: key},
                         run_config=weekly_run_config(warehouse.get().source_identity()))
