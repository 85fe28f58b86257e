"""Digitizing archives: the page function of ``ecgscan digitize`` jobs, and its outputs.

:class:`DigitizePage` turns one :class:`~ecgscan.service.PageTask` into the files
``ecgscan digitize`` writes (WFDB, CSV, a JSON summary, the overlay PNG);
:func:`run_digitize_job` runs it over
folders with the resumable job engine (:func:`~ecgscan.service.run_job`). The web service
writes its downloads with the same :func:`result_files`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..classify._registry import DEFAULT_MODEL
from ..digitize._write import OUTPUT_FORMATS, check_formats, encode_png, result_files
from ..errors import EcgscanError
from ._jobs import JobReport, PageTask, read_job_state, run_job

__all__ = [
    "OUTPUT_FORMATS",
    "DigitizePage",
    "digitize_job_cli",
    "encode_png",
    "load_page",
    "result_files",
    "run_digitize_job",
]


def load_page(source: str | os.PathLike[str], *, page: int = 0, pdf_dpi: float = 200.0) -> Any:
    """One page of an image or PDF file as an RGB uint8 array (only that page is rendered).

    Raises
    ------
    DigitizationError
        If the file cannot be read, the page does not exist, or it is too small or too large.
    """
    from ..digitize import load_image

    return load_image(Path(source), page=page, pdf_dpi=pdf_dpi)


@dataclass(frozen=True)
class DigitizePage:
    """The page function of digitization jobs (picklable; models load once per process).

    Parameters
    ----------
    fs : float
        Output sampling frequency (Hz).
    samples : int, optional
        Output length; default the printed duration.
    formats : tuple of str
        Output formats (:data:`OUTPUT_FORMATS`).
    classify : bool
        Also classify each page; the labels go into the summary and the WFDB header.
    model : str
        Classifier (registry name or ONNX path) when ``classify``.
    pdf_dpi : float
        Resolution at which PDF pages are rasterised.
    """

    fs: float = 500.0
    samples: int | None = None
    formats: tuple[str, ...] = ("wfdb",)
    overlay: bool = False
    classify: bool = False
    model: str = DEFAULT_MODEL
    layout: str = "auto"
    pdf_dpi: float = 200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", check_formats(self.formats))
        if not np.isfinite(self.fs) or self.fs <= 0:
            raise EcgscanError(f"fs must be a positive number of Hz, got {self.fs!r}")
        if self.samples is not None and self.samples <= 0:
            raise EcgscanError(f"samples must be a positive integer, got {self.samples!r}")
        if not self.pdf_dpi > 0:
            raise EcgscanError(f"pdf_dpi must be positive, got {self.pdf_dpi!r}")

    def settings(self) -> dict[str, Any]:
        """What the outputs depend on (stored in the job manifest)."""
        return {
            "fs": float(self.fs),
            "samples": self.samples,
            "formats": list(self.formats),
            "overlay": self.overlay,
            "classify": self.classify,
            "model": self.model if self.classify else None,
            "layout": self.layout,
            "pdf_dpi": float(self.pdf_dpi),
        }

    def __call__(self, task: PageTask) -> dict[str, bytes]:
        from ..digitize import digitize

        image = load_page(task.source, page=task.page, pdf_dpi=self.pdf_dpi)
        result = digitize(
            image, fs=self.fs, samples=self.samples, layout=self.layout, name=task.name
        )
        prediction = None
        if self.classify:
            from ..classify import classify

            prediction = classify(result, model=self.model)
        return result_files(
            result,
            name=task.name,
            formats=self.formats,
            overlay=self.overlay,
            prediction=prediction,
            extra={"source": task.source, "page": task.page + 1},
        )


def run_digitize_job(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fs: float = 500.0,
    samples: int | None = None,
    formats: Sequence[str] | str = ("wfdb",),
    overlay: bool = False,
    classify: bool = False,
    model: str = DEFAULT_MODEL,
    layout: str = "auto",
    pdf_dpi: float = 200.0,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    recursive: bool = True,
    progress: bool = True,
) -> JobReport:
    """Digitize every page of ``inputs`` into ``output_dir`` as a resumable job.

    Each page ``<stem>`` gets the files ``ecgscan digitize`` writes: ``<stem>.hea``/``.dat``
    (WFDB), ``<stem>.json`` (layout, calibration, geometry, quality; the signal with
    ``formats`` holding ``'json'``; the classification with ``classify``), ``<stem>.csv`` with
    ``'csv'``, ``<stem>-overlay.png`` with ``overlay``. Folder structure is kept; PDF pages
    become ``<stem>-p<k>``. A resumed job's files equal an uninterrupted run's (but for the
    stage timings in the summary). Pages the digitizer cannot read are
    recorded as failures (:attr:`JobReport.failed`) and the job goes on. See
    :func:`~ecgscan.service.run_job` for ``workers``, ``backend``, ``address``, ``resume``.

    Examples
    --------
    The command line's job mode is this call::

        ecgscan digitize scans/ -o out/ --workers 2 --resume
        run_digitize_job(["scans/"], "out/", workers=2, resume=True)
    """
    page = DigitizePage(
        fs=fs,
        samples=samples,
        formats=check_formats(formats),
        overlay=overlay,
        classify=classify,
        model=model,
        layout=layout,
        pdf_dpi=pdf_dpi,
    )
    return run_job(
        inputs,
        output_dir,
        process_page=page,
        settings=page.settings(),
        workers=workers,
        backend=backend,
        address=address,
        resume=resume,
        retry_failed=retry_failed,
        recursive=recursive,
        progress=progress,
    )


def digitize_job_cli(
    paths: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], **options: Any
) -> int:
    """The job mode of ``ecgscan digitize``: run the job, report on stderr, return the status.

    ``options`` are those of :func:`run_digitize_job`. Prints one ``error:`` line per page that
    failed in this run and a summary line; returns 0 when every page of the job is done, 1 when
    some failed (the others are written). Usage errors raise
    :class:`~ecgscan.errors.EcgscanError` (exit status 2 in the CLI).
    """
    report = run_digitize_job(paths, output, **options)
    workers, backend = options.get("workers", 1), options.get("backend", "local")
    for failure in report.failed:
        where = "" if failure.source in failure.error else f"{failure.source}: "
        print(f"error: {where}{failure.error}", file=sys.stderr)
    state = read_job_state(report.output_dir)
    print(
        f"digitized {state['done']} of {state['total']} page(s) into {report.output_dir} "
        f"({report.processed} now, {report.skipped} already finished, {state['failed']} failed; "
        f"{report.pages_per_second:.2f} pages/s with {workers} {backend} worker(s))",
        file=sys.stderr,
    )
    return 1 if state["failed"] else 0
