"""A retraining period's combiner fit on disk, so a weekly partition reuses its year's fit (as it reuses the
year's weak-factor networks) instead of fitting the folds and the final tree again every Friday.

The key is the configuration, the features, the period's anchor, the XGBoost version and a fingerprint of
every training row (its code, date, features, label and the day the label was realised): new or corrected
rows make a new fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import asdict
from datetime import date
from pathlib import Path

import polars as pl


class CombinerCache:
    def __init__(self, root: Path):
        self.root = root

    def key(self, cfg, cols: list[str], first: date, train: pl.DataFrame) -> str:
        import xgboost

        rows = train.select("code", "date", *cols, "y_std", "realised_on").sort("date", "code")
        h = hashlib.sha256(json.dumps({"cfg": asdict(cfg), "cols": cols, "first": str(first),
                                       "xgboost": xgboost.__version__}, sort_keys=True).encode())
        h.update(rows.hash_rows(seed=0).to_numpy().tobytes())
        h.update(rows.hash_rows(seed=1).to_numpy().tobytes())  # two 64-bit hashes per row
        return h.hexdigest()[:24]

    def load(self, key: str) -> tuple[str, dict, object] | None:
        """(chosen candidate, its validation RankICs, the fitted tree), or None."""
        path = self.root / f"{key}.pkl"
        if not path.exists():
            return None
        with path.open("rb") as f:
            return pickle.load(f)

    def save(self, key: str, chosen: str, ics: dict, model: object) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{key}.pkl"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump((chosen, ics, model), f)
        tmp.rename(path)
