"""``ecgscan serve``: see the module ecgscan.serve."""

from __future__ import annotations

from ._app import app  # noqa: F401
