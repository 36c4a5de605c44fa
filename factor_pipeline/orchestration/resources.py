"""Resources: the warehouse and the market source, configurable in the launchpad."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from factor_pipeline.market.sources import MarketSource, file_source, synthetic_source
from factor_pipeline.market.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """DuckDB warehouse; empty path means `$FACTOR_PIPELINE_HOME/warehouse.duckdb`."""

    path: str = ""

    def get(self) -> Warehouse:
        return Warehouse(Path(self.path) if self.path else None)


class MarketSourceResource(dg.ConfigurableResource):
    """Where raw-data assets read from.

    kind: `auto` (the market the warehouse already holds, else the synthetic one below),
    `synthetic` (simulated for `preset` and `seed`, cached under the home) or `files`
    (contract tables in `data_dir`).
    """

    kind: str = "auto"
    preset: str = "demo"
    seed: int = 0
    data_dir: str = ""

    def get(self, warehouse: Warehouse) -> MarketSource:
        kind = self.kind
        if kind == "auto":
            held = warehouse.source_identity()
            if held:
                spec = json.loads(held)
                if spec["kind"] == "files":
                    return file_source(spec["path"])
                return synthetic_source(spec["preset"], int(spec["seed"]))
            kind = "files" if self.data_dir else "synthetic"
        if kind == "files":
            if not self.data_dir:
                raise ValueError("market source kind 'files' needs data_dir")
            return file_source(self.data_dir)
        if kind == "synthetic":
            return synthetic_source(self.preset, self.seed)
        raise ValueError(f"unknown market source kind {kind!r} (auto, synthetic, files)")


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: empty URI means `sqlite:///<home>/mlflow.db` (artifacts in `<home>/mlruns`)."""

    tracking_uri: str = ""
    enabled: bool = True

    def uri(self) -> str | None:
        from factor_pipeline.models.tracking import default_tracking_uri

        return (self.tracking_uri or default_tracking_uri()) if self.enabled else None


class TorchDeviceResource(dg.ConfigurableResource):
    """`auto` picks CUDA when torch sees it (bf16 autocast), else the CPU with all cores."""

    device: str = "auto"

    def get(self):
        from factor_pipeline.models.device import pick_device

        return pick_device(self.device)
