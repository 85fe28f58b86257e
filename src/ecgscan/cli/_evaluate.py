"""``ecgscan evaluate``: the Challenge 2024 metrics over folders of records."""

from __future__ import annotations

from ._app import app  # noqa: F401
