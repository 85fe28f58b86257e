"""Test support importable from every test module (``from _shared import shared_path``).

Kept apart from conftest.py because several test folders have a conftest of their own, and the
module name ``conftest`` is then ambiguous.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ECGSCAN_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, or skip the test with a clear message."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared data); not present here")
    return path
