"""Helpers of the service tests: rendered ECG pages and a real `ecgscan serve` on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.errors import EcgscanError
from ecgscan.render import render_page
from ecgscan.service import PageTask

SEEDS = {"a": 0, "b": 1, "c1": 2, "c2": 3}


def page_image(seed: int) -> np.ndarray:
    record = synthetic_ecg(fs=500, duration=10, seed=seed, heart_rate=60 + 8 * seed)
    return render_page(record, layout="3x4+II", dpi=150, style="clean", seed=seed).image


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(*args: str, results_dir: Path | None = None) -> Iterator[str]:
    """Run `ecgscan serve` on loopback in a subprocess; yield its base URL; stop it."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "ecgscan", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *args]  # fmt: skip
    if results_dir is not None:
        cmd += ["--results-dir", str(results_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`ecgscan serve` exited with status {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=2).json()["status"] == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("`ecgscan serve` did not become healthy within 120 s")
            time.sleep(0.25)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful: the lifespan stops the workers
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclasses.dataclass(frozen=True)
class HashPage:
    """A cheap, deterministic page function for engine tests (picklable for worker processes).

    Files starting with ``bad`` fail as a user error, ``bug`` as a bug; ``evil`` returns an
    output name that would escape the output folder.
    """

    salt: str = ""

    def __call__(self, task: PageTask) -> dict[str, bytes]:
        data = Path(task.source).read_bytes()
        if data.startswith(b"bad"):
            raise EcgscanError(f"{task.source}: not a page")
        if data.startswith(b"bug"):
            raise ZeroDivisionError("division by zero")
        if data.startswith(b"evil"):
            return {"/../../escape.txt": b"x"}
        digest = hashlib.sha256(data + f"{task.page}{self.salt}".encode()).hexdigest()
        return {".txt": digest.encode(), ".meta.json": f'{{"page": {task.page}}}'.encode()}
