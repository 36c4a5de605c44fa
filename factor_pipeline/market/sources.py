"""Where raw market data comes from: a simulated market (cached under the home) or a folder of files."""

from __future__ import annotations

import fcntl
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from factor_pipeline.config import home, preset
from factor_pipeline.market.io import duckdb_reader, table_files
from factor_pipeline.market.simulator import SIMULATOR_VERSION, simulate_market


@dataclass(frozen=True)
class MarketSource:
    """A folder of contract tables plus an identity, so a warehouse never mixes two markets."""

    folder: Path
    spec: dict  # {"kind": "synthetic", "preset", "seed"} or {"kind": "files", "path"}

    @property
    def identity(self) -> str:
        """Which market this is (a file source's content stamp is not part of it: re-import replaces)."""
        return json.dumps({k: v for k, v in self.spec.items() if k != "stamp"}, sort_keys=True)

    @property
    def files(self) -> dict[str, list[Path]]:
        return table_files(self.folder)

    def relations(self) -> dict[str, str]:
        """Contract table name -> DuckDB table expression over the source files."""
        return {k: duckdb_reader(v) for k, v in self.files.items()}

    def date_range(self, con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
        rel = self.relations()["daily_bars"]
        lo, hi = con.execute(f"SELECT min(CAST(date AS DATE)), max(CAST(date AS DATE)) FROM {rel}").fetchone()
        return lo, hi


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def synthetic_source(preset_name: str, seed: int, root: Path | None = None) -> MarketSource:
    """The simulated market for (preset, seed), generated once and cached under the home."""
    root = root or home()
    folder = root / "sources" / f"synthetic-{preset_name}-seed{seed}-v{SIMULATOR_VERSION}"
    with _lock(root / "sources" / f".{folder.name}.lock"):
        if not (folder / "market.json").is_file():
            simulate_market(preset(preset_name), seed, folder)
    return MarketSource(folder, {"kind": "synthetic", "preset": preset_name, "seed": seed,
                                 "version": SIMULATOR_VERSION})


def file_source(path: str | Path) -> MarketSource:
    """A user's folder of contract tables (Parquet or CSV), read in place."""
    folder = Path(path).expanduser().resolve()
    files = table_files(folder)
    stamp = hashlib.sha256()
    for name in sorted(files):
        for p in files[name]:
            st = p.stat()
            stamp.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return MarketSource(folder, {"kind": "files", "path": str(folder), "stamp": stamp.hexdigest()[:16]})
