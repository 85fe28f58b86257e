"""``ecgscan digitize``: see the module ecgscan.digitize."""

from __future__ import annotations

from ._app import app  # noqa: F401
