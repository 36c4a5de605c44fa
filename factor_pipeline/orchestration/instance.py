"""The Dagster instance lives under the home too (`<home>/dagster`), so two homes never share runs."""

from __future__ import annotations

import os
from pathlib import Path

from factor_pipeline.config import home

SQLITE_STORAGE = """\
storage:
  sqlite:
    base_dir: {base}/storage
"""
# the same files as SQLITE_STORAGE, written with the event log's connections kept open (storage.py)
POOLED_SQLITE_STORAGE = """\
storage:
  custom:
    module: factor_pipeline.orchestration.storage
    class: PooledSqliteStorage
    config:
      base_dir: {base}/storage
"""

POSTGRES_STORAGE = """\
storage:
  postgres:
    postgres_db:
      hostname: {host}
      port: {port}
      username: {user}
      password:
        env: DAGSTER_PG_PASSWORD
      db_name: {db}
      scheme: postgresql+psycopg2  # the driver dagster-postgres installs (SQLAlchemy 2.1 defaults to psycopg 3)
"""

DAGSTER_YAML = """\
# written by factor-pipeline: Dagster instance under the factor_pipeline home (edit freely: kept as is)
{storage}local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {base}/artifacts
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {base}/logs
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 2
  pools:
    default_limit: 1  # pool `gpu`: one weak-factor training at a time on the device
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    """Create `<home>/dagster/dagster.yaml` if needed and point DAGSTER_HOME at it."""
    base = home() / "dagster"
    base.mkdir(parents=True, exist_ok=True)
    cfg = base / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(instance_yaml(base))
    os.environ["DAGSTER_HOME"] = str(base)
    return base


def instance_yaml(base: Path, postgres: dict | None = None) -> str:
    """dagster.yaml for an instance under `base`: SQLite storage there, or Postgres (`host`, `port`,
    `user`, `db`; the password from $DAGSTER_PG_PASSWORD) for runs, events and schedules."""
    storage = POSTGRES_STORAGE.format(**postgres) if postgres else POOLED_SQLITE_STORAGE.format(base=base)
    return DAGSTER_YAML.format(base=base, storage=storage)
