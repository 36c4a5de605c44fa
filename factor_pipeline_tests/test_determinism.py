"""One seed drives everything: same seed, same bytes; another seed, another market."""

from __future__ import annotations

import hashlib

from factor_pipeline.config import preset
from factor_pipeline.market.simulator import simulate_market


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tiny_dir, tmp_path):
    simulate_market(preset("tiny"), 0, tmp_path / "again")
    assert _digest(tmp_path / "again") == _digest(tiny_dir)


def test_other_seed_other_market(tiny_dir, tmp_path):
    simulate_market(preset("tiny"), 1, tmp_path / "other")
    a, b = _digest(tmp_path / "other"), _digest(tiny_dir)
    assert a.keys() == b.keys()
    assert a["daily_bars.parquet"] != b["daily_bars.parquet"]
