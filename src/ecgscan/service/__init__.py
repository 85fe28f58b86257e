"""ecgscan.service: the web service (``ecgscan serve``) and resumable archive jobs.

Archive jobs run a page function over folders of scans and PDFs with atomic per-page commits,
``resume`` after any interruption, local worker processes or a Ray cluster
(:func:`run_job`, :func:`run_digitize_job`). The web service is a FastAPI app
(:func:`create_app`, needs the ``serve`` extra) that digitizes and classifies uploads with a
pool of worker processes and serves a page that works offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._batch import (
    OUTPUT_FORMATS,
    DigitizePage,
    digitize_job_cli,
    load_page,
    result_files,
    run_digitize_job,
)
from ._jobs import (
    BACKENDS,
    JOB_DIR,
    JobReport,
    PageFailure,
    PageTask,
    expand_inputs,
    read_job_state,
    run_job,
)

__all__ = [
    "BACKENDS",
    "JOB_DIR",
    "OUTPUT_FORMATS",
    "DigitizePage",
    "JobReport",
    "PageFailure",
    "PageTask",
    "ServiceConfig",
    "create_app",
    "digitize_job_cli",
    "expand_inputs",
    "load_page",
    "read_job_state",
    "result_files",
    "run_digitize_job",
    "run_job",
]

if TYPE_CHECKING:
    from ._app import ServiceConfig, create_app


def __getattr__(name: str) -> Any:
    if name in {"create_app", "ServiceConfig"}:  # FastAPI is an optional dependency
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'ecgscan.service' has no attribute {name!r}")
