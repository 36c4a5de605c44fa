"""The Dagster instance lives under the home too (`<home>/dagster`), so two homes never share runs."""

from __future__ import annotations

import os
from pathlib import Path

from factor_pipeline.config import home

DAGSTER_YAML = """\
# written by factor-pipeline: Dagster instance storage under the factor_pipeline home
storage:
  sqlite:
    base_dir: {base}/storage
local_artifact_storage:
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
  config:
    max_concurrent_runs: 2
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    """Create `<home>/dagster/dagster.yaml` if needed and point DAGSTER_HOME at it."""
    base = home() / "dagster"
    base.mkdir(parents=True, exist_ok=True)
    cfg = base / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML.format(base=base))
    os.environ["DAGSTER_HOME"] = str(base)
    return base
