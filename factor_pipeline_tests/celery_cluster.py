"""A throwaway Redis broker on 127.0.0.1 (Debian's redis-server) and dagster-celery workers for tests:
the distributed executor run the way docs/deploy.md tells a team to run it, on one machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from factor_pipeline.orchestration.executors import worker_config


def redis_bin() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def redis_server() -> Iterator[str]:
    """A fresh Redis on a free loopback port, nothing persisted; yields its URL, stops it after."""
    exe = redis_bin()
    if exe is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="fp-redis-"))
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def celery_workers(broker: str, env: dict, workers: dict[str, tuple[str, int]], log_dir: Path) -> Iterator[dict]:
    """Start `dagster-celery worker start` per name -> (queue, concurrency), wait until each answers a ping
    over the broker; yields {name: hostname}; stops them (their process groups) after."""
    from celery import Celery

    cfg = log_dir / "celery.yaml"
    cfg.write_text(yaml.safe_dump(worker_config(broker)))
    exe = str(Path(sys.executable).with_name("dagster-celery"))
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}  # it runs `celery`
    procs = {}
    try:
        for name, (queue, concurrency) in workers.items():
            log = open(log_dir / f"worker-{name}.log", "w")  # noqa: SIM115 (closed with the process)
            procs[name] = (subprocess.Popen([exe, "worker", "start", "-A", "dagster_celery.app", "-y", str(cfg),
                                             "-q", queue, "-n", name, "--", f"--concurrency={concurrency}"],
                                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True),
                           log)
        app = Celery(broker=broker, backend=broker)
        hosts = {n: f"{n}@{socket.gethostname()}" for n in workers}
        deadline = time.monotonic() + 180
        while True:
            answered = {k for r in (app.control.ping(timeout=2) or []) for k in r}
            if set(hosts.values()) <= answered:
                break
            dead = [n for n, (p, _) in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = {n: (log_dir / f"worker-{n}.log").read_text()[-2000:] for n in workers}
                raise RuntimeError(f"celery workers did not come up (exited: {dead}): {logs}")
            time.sleep(1)
        yield hosts
    finally:
        for proc, _log in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            log.close()
