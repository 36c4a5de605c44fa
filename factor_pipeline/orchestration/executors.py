"""Which executor the jobs run with: Dagster's default (steps in processes of this machine) unless
`$FACTOR_PIPELINE_CELERY_BROKER` names a Celery broker, then `dagster-celery`'s executor on it: every
step becomes a task on the queue its `dagster-celery/queue` tag names (the weak-factor steps: `gpu`;
the rest: `dagster`), served by workers started with `dagster-celery worker start` (docs/deploy.md).

The workers read the same variable, so they validate a run's config against the same executor."""

from __future__ import annotations

import os

import dagster as dg

BROKER_ENV = "FACTOR_PIPELINE_CELERY_BROKER"
BACKEND_ENV = "FACTOR_PIPELINE_CELERY_BACKEND"  # the result backend; the broker's URL where unset


def job_executor() -> dg.ExecutorDefinition | None:
    """The celery executor on the broker of `$FACTOR_PIPELINE_CELERY_BROKER`, or None (Dagster's default)."""
    broker = os.environ.get(BROKER_ENV)
    if not broker:
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured({"broker": broker, "backend": os.environ.get(BACKEND_ENV) or broker},
                                      name="celery")


def worker_config(broker: str, backend: str | None = None) -> dict:
    """The config file `dagster-celery worker start -y` reads: the same broker and backend as the executor."""
    return {"execution": {"config": {"broker": broker, "backend": backend or broker}}}
