"""A `run` stage runs in a process of its own: it must not outlive a `run` that is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "from factor_pipeline.cli import in_own_process; from {module} import {fn}; in_own_process({fn}, 300)"


def sleep_through_sigterm(seconds: float) -> None:
    """A stage that catches SIGTERM and carries on, as a Dagster run does (it records the interruption)."""
    signal.signal(signal.SIGTERM, lambda *_: None)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
@pytest.mark.parametrize("stage", ["time.sleep", "factor_pipeline_tests.test_cli_processes.sleep_through_sigterm"])
def test_a_stage_process_ends_when_its_parent_is_killed(stage):
    module, fn = stage.rsplit(".", 1)
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT.format(module=module, fn=fn)], cwd=ROOT)
    try:
        deadline, stage = time.time() + 120, []
        while not stage:  # the spawned stage process (not the resource tracker): it runs the stage
            assert time.time() < deadline and parent.poll() is None, "no stage process started"
            stage = [p for p in _children(parent.pid)
                     if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
            time.sleep(0.2)
        time.sleep(2)  # past its initialiser
        os.kill(parent.pid, signal.SIGKILL)  # the parent alone, as `timeout` or a scheduler would
        parent.wait(timeout=30)
        deadline = time.time() + 40  # a stage that carries on through SIGTERM ends 10 s after its parent
        while any(_alive(p) for p in stage) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in stage), "the stage process outlived its killed parent"
    finally:
        for p in _children(parent.pid):
            os.kill(p, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
