"""``ecgscan digitize PATH... -o DIR``: page images and PDFs to 12-lead records.

A thin layer over :func:`ecgscan.digitize.digitize`. For every page ``<stem>`` (``<stem>-p<k>``
for PDF pages) it writes ``<stem>.hea/.dat`` (WFDB, 12 leads I…V6 in mV), ``<stem>.json``
(layout, calibration, geometry, per-lead quality, timings), ``<stem>.csv`` with ``--format
csv`` and ``<stem>-overlay.png`` with ``--overlay``. A page's files appear together or not at
all. Exit status: 0 when every page worked, 1 when some failed (the others are written), 2 for
usage errors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer

from ._app import app, fail

_FORMATS = ("wfdb", "csv", "json")


def _expand(paths: list[Path]) -> list[Path]:
    from ..digitize import IMAGE_SUFFIXES

    suffixes = {*IMAGE_SUFFIXES, ".pdf"}
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
            )
            if not found:
                raise FileNotFoundError(
                    f"folder {str(path)!r} holds no image or PDF ({', '.join(sorted(suffixes))})"
                )
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"input {str(path)!r} not found (an image, PDF or folder)")
    return out


def _write_page(result: Any, stem: str, out_dir: Path, formats: set[str], overlay: bool) -> None:
    """Write one page's files into a private folder, then move them into place together."""
    tmp = Path(tempfile.mkdtemp(prefix=".ecgscan-digitize-", dir=out_dir))
    try:
        record = result.record
        names: list[str] = []
        if "csv" in formats:
            record.to_csv(tmp / f"{stem}.csv")
            names.append(f"{stem}.csv")
        if overlay:
            from PIL import Image

            Image.fromarray(result.overlay).save(tmp / f"{stem}-overlay.png")
            names.append(f"{stem}-overlay.png")
        summary = result.to_dict()
        if "json" in formats:
            summary["signal"] = record.to_dict()
        (tmp / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        names.append(f"{stem}.json")
        if "wfdb" in formats:
            record.to_wfdb(tmp / stem)
            names += [f"{stem}.dat", f"{stem}.hea"]  # header last: it marks completion
        for name in names:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _process_file(
    path: Path, out_dir: Path, options: dict[str, Any]
) -> list[tuple[str, str | None]]:
    """Digitize every page of one file; returns (page stem, error message or None)."""
    from ..digitize import digitize, iter_pages
    from ..errors import EcgscanError

    statuses: list[tuple[str, str | None]] = []
    try:
        pages = list(iter_pages(path, pdf_dpi=options["pdf_dpi"]))
    except (EcgscanError, OSError) as exc:
        return [(path.stem, str(exc))]
    for stem, image in pages:
        try:
            result = digitize(image, fs=options["fs"], samples=options["samples"],
                              layout=options["layout"], name=stem)  # fmt: skip
            if options["classify"]:
                import dataclasses

                from ..classify import classify

                pred = classify(result.record)
                result = dataclasses.replace(
                    result,
                    record=result.record.with_signal(result.record.signal, labels=pred.labels),
                )
            _write_page(result, stem, out_dir, options["formats"], options["overlay"])
            statuses.append((stem, None))
        except EcgscanError as exc:
            statuses.append((stem, f"{path}: {exc}" if str(path) not in str(exc) else str(exc)))
    return statuses


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
    workers: int = typer.Option(1, "--workers", help="Files digitized in parallel (processes)."),
) -> None:
    """Digitize ECG page images and PDFs into 12-lead records."""
    from .._io import ensure_output_dir
    from ..digitize import LAYOUTS

    formats = {f.strip().lower() for f in format.split(",") if f.strip()}
    if not formats or not formats <= set(_FORMATS):
        raise fail(
            f"--format must be a comma-separated subset of {', '.join(_FORMATS)}, got {format!r}"
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
    inputs = _expand(paths)
    out_dir = ensure_output_dir(output)
    options = {"fs": fs, "samples": samples, "formats": formats, "overlay": overlay,
               "classify": classify, "layout": layout, "pdf_dpi": pdf_dpi}  # fmt: skip
    results: list[tuple[str, str | None]] = []
    if workers == 1 or len(inputs) == 1:
        for path in inputs:
            results.extend(_report(_process_file(path, out_dir, options)))
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_process_file, p, out_dir, options) for p in inputs]
            for fut in futures:
                results.extend(_report(fut.result()))
    failed = sum(1 for _, err in results if err is not None)
    typer.echo(
        f"digitized {len(results) - failed} of {len(results)} page(s) into {out_dir}", err=True
    )
    if failed:
        raise typer.Exit(1)


def _report(statuses: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    for stem, err in statuses:
        if err is None:
            typer.echo(f"ok: {stem}", err=True)
        else:
            typer.echo(f"error: {err}", err=True)
    return statuses
