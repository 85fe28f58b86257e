"""``ecgscan digitize PATH... -o DIR``: page images and PDFs to 12-lead records.

A thin layer over :func:`ecgscan.digitize.digitize`, run as a resumable archive job
(:func:`ecgscan.service.run_digitize_job`). For every page ``<stem>`` (``<stem>-p<k>`` for PDF
pages; sub-folders of an input folder are kept) it writes ``<stem>.hea/.dat`` (WFDB, 12 leads
I…V6 in mV), ``<stem>.json`` (layout, calibration, geometry, per-lead quality), ``<stem>.csv``
with ``--format csv`` and ``<stem>-overlay.png`` with ``--overlay``. A page's files appear
together or not at all; ``--resume`` continues an interrupted job without losing or repeating a
page. Exit status: 0 when every page worked, 1 when some failed (the others are written), 2 for
usage errors.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail


@app.command("digitize")
def digitize_command(
    paths: list[Path] = typer.Argument(
        ..., help="Images (PNG, JPEG, TIFF, BMP, WebP), PDFs or folders."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write the records into."),
    fs: float = typer.Option(500.0, "--fs", help="Sampling frequency of the records (Hz)."),
    samples: int | None = typer.Option(
        None, "--samples", help="Samples per record (default: 10 s)."
    ),
    format: str = typer.Option(
        "wfdb",
        "--format",
        help=(
            "Comma-separated outputs: wfdb, csv, json (the .json summary is always written; "
            "'json' adds the signal to it)."
        ),
    ),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <stem>-overlay.png."),
    classify: bool = typer.Option(
        False, "--classify", help="Add the Challenge labels to each record."
    ),
    layout: str = typer.Option(
        "auto", "--layout", help="Page layout, e.g. 3x4+II, 6x2, 12x1 (default: detect)."
    ),
    pdf_dpi: float = typer.Option(200.0, "--pdf-dpi", help="Resolution for rasterising PDF pages."),
    workers: int = typer.Option(1, "--workers", help="Pages digitized in parallel (processes)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted job in the same output folder."
    ),
    backend: str = typer.Option(
        "local", "--backend", help="Where workers run: local processes or a Ray cluster (ray)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (with --backend ray; default: start one)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Digitize ECG page images and PDFs into 12-lead records."""
    from .._io import ensure_output_dir
    from ..digitize import LAYOUTS, OUTPUT_FORMATS

    formats = {f.strip().lower() for f in format.split(",") if f.strip()}
    if not formats or not formats <= set(OUTPUT_FORMATS):
        raise fail(
            "--format must be a comma-separated subset of "
            f"{', '.join(OUTPUT_FORMATS)}, got {format!r}"
        )
    if not fs > 0 or fs > 10_000:
        raise fail(f"--fs must be a sampling frequency in Hz (0 < fs ≤ 10000), got {fs:g}")
    if samples is not None and samples <= 0:
        raise fail(f"--samples must be a positive number of samples, got {samples}")
    if workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")
    if layout != "auto" and layout.split("+")[0] not in LAYOUTS:
        raise fail(
            f"--layout must be 'auto' or one of {', '.join(LAYOUTS)} (with optional +LEAD), "
            f"got {layout!r}"
        )
    if not pdf_dpi > 0:
        raise fail(f"--pdf-dpi must be positive, got {pdf_dpi:g}")
    if backend not in {"local", "ray"}:
        raise fail(f"--backend must be 'local' or 'ray', got {backend!r}")
    if address is not None and backend != "ray":
        raise fail("--address needs --backend ray")
    for path in paths:
        if not path.exists():
            raise fail(f"input {str(path)!r} not found (an image, PDF or folder)")
    from ..service import digitize_job_cli

    ensure_output_dir(output)
    code = digitize_job_cli(
        paths,
        output,
        fs=fs,
        samples=samples,
        formats=sorted(formats),
        overlay=overlay,
        classify=classify,
        layout=layout,
        pdf_dpi=pdf_dpi,
        workers=workers,
        backend=backend,
        address=address,
        resume=resume,
        progress=progress,
    )
    if code:
        raise typer.Exit(code)
