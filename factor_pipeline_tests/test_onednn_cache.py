"""The package turns oneDNN's per-shape primitive cache off in its processes (a weak-factor batch is one date's
stocks, so nearly every date is a new shape: the cache held GiBs on all A shares) unless the user set it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = ("import factor_pipeline, os; "
        "print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'), os.environ.get('DNNL_PRIMITIVE_CACHE_CAPACITY'))")


def _capacity_after_import(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY",
                                                              "DNNL_PRIMITIVE_CACHE_CAPACITY")}
    out = subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_importing_the_package_turns_the_cache_off() -> None:
    assert _capacity_after_import() == ["0", "None"]


@pytest.mark.parametrize("name", ["ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"])
def test_a_capacity_the_user_set_is_kept(name: str) -> None:
    got = dict(zip(["ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"],
                   _capacity_after_import(**{name: "64"}), strict=True))
    assert got[name] == "64"
    assert "0" not in got.values()

