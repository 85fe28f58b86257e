"""Digitizing archives: the page function of ``ecgscan digitize`` jobs, and its outputs.

:class:`DigitizePage` turns one :class:`~ecgscan.service.PageTask` into the files
``ecgscan digitize`` writes (WFDB, CSV, a JSON summary, the overlay PNG);
:func:`run_digitize_job` runs it over
folders with the resumable job engine (:func:`~ecgscan.service.run_job`). The web service
writes its downloads with the same :func:`result_files`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DigitizationError, EcgscanError
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

#: Output formats of a digitized page and the file suffixes each writes (as `ecgscan
#: digitize` names them; the ``<stem>.json`` summary is always written, ``'json'`` adds the
#: signal to it, and ``overlay=True`` adds ``<stem>-overlay.png``).
OUTPUT_FORMATS: dict[str, tuple[str, ...]] = {
    "wfdb": (".hea", ".dat"),
    "csv": (".csv",),
    "json": (".json",),
}


def _check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    out = tuple(dict.fromkeys(str(f).lower() for f in formats))
    unknown = [f for f in out if f not in OUTPUT_FORMATS]
    if unknown or not out:
        raise EcgscanError(
            f"unknown output format(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(OUTPUT_FORMATS)}"
        )
    return out


def encode_png(image: NDArray[np.uint8]) -> bytes:
    """PNG bytes of an RGB uint8 image (deterministic)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:  # pragma: no cover - OpenCV failing on a valid array
        raise RuntimeError("cannot encode the overlay as PNG")
    return bytes(buf.tobytes())


def load_page(source: str | os.PathLike[str], *, page: int = 0, pdf_dpi: float = 200.0) -> Any:
    """One page of an image or PDF file as an RGB uint8 array (only that page is rendered).

    Raises
    ------
    DigitizationError
        If the file cannot be read, the page does not exist, or it is too small or too large.
    """
    from ..digitize import MAX_PIXELS, load_image

    path = Path(source)
    if path.suffix.lower() != ".pdf":
        return load_image(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception as exc:  # pdfium raises its own types
        raise DigitizationError(
            f"{path}: cannot read the file as a PDF ({exc}); is it corrupt or encrypted?"
        ) from None
    try:
        if not 0 <= page < len(doc):
            raise DigitizationError(f"{path}: the PDF has no page {page + 1} ({len(doc)} pages)")
        pdf_page = doc[page]
        w_pt, h_pt = pdf_page.get_size()
        scale = pdf_dpi / 72.0
        if w_pt * h_pt * scale * scale > MAX_PIXELS:
            scale = float(np.sqrt(MAX_PIXELS / (w_pt * h_pt))) * 0.99
        image = np.array(pdf_page.render(scale=scale).to_pil().convert("RGB"))
        pdf_page.close()
    finally:
        doc.close()
    return load_image(image)


def result_files(
    result: Any,
    *,
    name: str,
    formats: Sequence[str] = ("wfdb",),
    overlay: bool = False,
    summary: bool = True,
    prediction: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The output files of one digitized page as ``{suffix: bytes}``.

    Parameters
    ----------
    result : DigitizationResult
    name : str
        Record name (written into the WFDB header; a plain name, not a path).
    formats : sequence of str
        Keys of :data:`OUTPUT_FORMATS`: ``.hea``/``.dat``, ``.csv``; ``'json'`` puts the
        signal into the summary.
    overlay : bool
        Add ``-overlay.png`` (the page with the traces found).
    summary : bool
        Add the ``.json`` summary: ``result.to_dict()`` without the stage timings (so that a
        page's files are byte-identical from run to run), the classification if any, ``extra``.
    prediction : Prediction, optional
        Classification: its labels go into the record (``# Labels:`` in the WFDB header).
    extra : mapping, optional
        More JSON-able entries for the summary.
    """
    formats = _check_formats(formats)
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"name must be a plain record name, got {name!r}")
    record = result.record
    if prediction is not None:
        record = record.with_signal(record.signal, labels=tuple(prediction.labels))
    if record.name != name:
        record = record.with_signal(record.signal, name=name)
    files: dict[str, bytes] = {}
    if "wfdb" in formats:
        with tempfile.TemporaryDirectory(prefix="ecgscan-page-") as tmp:
            base = record.to_wfdb(Path(tmp) / name)
            files[".hea"] = base.with_suffix(".hea").read_bytes()
            files[".dat"] = base.with_suffix(".dat").read_bytes()
    if "csv" in formats:
        with tempfile.TemporaryDirectory(prefix="ecgscan-page-") as tmp:
            files[".csv"] = record.to_csv(Path(tmp) / f"{name}.csv").read_bytes()
    if summary:
        report = result.to_dict()
        report.pop("timings", None)
        report["record"] = name
        if prediction is not None:
            report["classification"] = {**prediction.to_dict(), "record": name}
        report.update(extra or {})
        if "json" in formats:
            report["signal"] = record.to_dict()
        files[".json"] = (json.dumps(report, indent=1, allow_nan=False) + "\n").encode("utf-8")
    if overlay:
        files["-overlay.png"] = encode_png(result.overlay)
    return files


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
    model: str = "signal"
    layout: str = "auto"
    pdf_dpi: float = 200.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", _check_formats(self.formats))
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
    model: str = "signal",
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
    become ``<stem>-p<k>``. Stage timings are left out of the summary so that a resumed job's
    files are byte-identical to an uninterrupted run's. Pages the digitizer cannot read are
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
        formats=_check_formats(formats),
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
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    fs: float = 500.0,
    samples: int | None = None,
    formats: Sequence[str] | str = ("wfdb",),
    overlay: bool = False,
    classify: bool = False,
    layout: str = "auto",
    pdf_dpi: float = 200.0,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
) -> int:
    """The job mode of ``ecgscan digitize``: run the job, report on stderr, return the status.

    Prints one ``error:`` line per page that failed in this run and a summary line; returns
    0 when every page of the job is done, 1 when some failed (the others are written). Usage
    errors raise :class:`~ecgscan.errors.EcgscanError` (exit status 2 in the CLI).
    """
    report = run_digitize_job(
        paths,
        output,
        fs=fs,
        samples=samples,
        formats=formats,
        overlay=overlay,
        classify=classify,
        layout=layout,
        pdf_dpi=pdf_dpi,
        workers=workers,
        backend=backend,
        address=address,
        resume=resume,
        retry_failed=retry_failed,
        progress=progress,
    )
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
