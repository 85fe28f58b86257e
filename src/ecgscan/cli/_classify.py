"""``ecgscan classify``: see the module ecgscan.classify."""

from __future__ import annotations

from ._app import app  # noqa: F401
