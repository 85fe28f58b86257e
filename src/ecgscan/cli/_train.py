"""``ecgscan train``: see the module ecgscan.train."""

from __future__ import annotations

from ._app import app  # noqa: F401
