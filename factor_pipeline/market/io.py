"""Reading and writing folders of contract tables (Parquet or CSV), atomically."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from factor_pipeline.market.schema import TABLES


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside `final`; it replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def table_files(folder: Path) -> dict[str, list[Path]]:
    """Contract tables found in `folder`: `<table>.parquet`, `<table>.csv` or a folder `<table>/`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    found: dict[str, list[Path]] = {}
    for name in TABLES:
        files: list[Path] = []
        for ext in ("parquet", "csv"):
            if (folder / f"{name}.{ext}").is_file():
                files.append(folder / f"{name}.{ext}")
        sub = folder / name
        if sub.is_dir():
            files += sorted(p for p in sub.rglob("*") if p.suffix in (".parquet", ".csv"))
        if files:
            found[name] = files
    return found


def duckdb_reader(files: list[Path]) -> str:
    """A DuckDB table expression reading these files (one format per table)."""
    suffixes = {p.suffix for p in files}
    if len(suffixes) > 1:
        raise ValueError(f"mixed formats for one table: {[str(p) for p in files]}")
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    if suffixes == {".parquet"}:
        return f"read_parquet([{quoted}], union_by_name = true)"
    return f"read_csv([{quoted}], header = true, union_by_name = true)"
