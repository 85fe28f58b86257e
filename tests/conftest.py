"""Shared fixtures: the example record, and paths into ../shared (skipped when absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _shared import SHARED, shared_path
from ecgscan.data import Record
from ecgscan.data.synthetic import synthetic_ecg

__all__ = ["SHARED", "shared_path"]


@pytest.fixture
def example_record() -> Record:
    return synthetic_ecg(fs=500, duration=10, seed=3, name="example")


@pytest.fixture(scope="session")
def ptbxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PTB-XL folder as users download it (folds 1-9), unpacked once from ../shared.

    Set ECGSCAN_PTBXL to an unpacked copy to skip the ~30 s unpacking.
    """
    env = os.environ.get("ECGSCAN_PTBXL")
    if env and (Path(env) / "ptbxl_database.csv").is_file():
        return Path(env)
    src = shared_path("data", "ptb-xl")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgscan-tests"
    dest = cache / "ptb-xl"
    done = dest / ".complete"
    if not done.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        for pack in ("records100-folds1-9.ecgpack", "records500-subset-folds1-9.ecgpack"):
            subprocess.run(
                [sys.executable, str(src / "ecgpack.py"), "unpack", str(src / pack), str(dest)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        for csv in ("ptbxl_database.csv", "scp_statements.csv"):
            (dest / csv).write_bytes((src / csv).read_bytes())
        done.write_text("ok\n")
    return dest
