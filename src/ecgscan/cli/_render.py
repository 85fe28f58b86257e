"""``ecgscan render``: see the module ecgscan.render."""

from __future__ import annotations

from ._app import app  # noqa: F401
