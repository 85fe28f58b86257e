"""Writing a digitized page: its files as bytes, and atomically into a folder.

One writer serves ``ecgscan digitize`` (and its archive jobs), the web service's downloads and
the demo, so that a page's files are the same whichever wrote them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._io import atomic_files, ensure_output_dir
from ..errors import EcgscanError

__all__ = ["OUTPUT_FORMATS", "check_formats", "encode_png", "result_files", "write_result"]

#: Output formats of a digitized page and the file suffixes each writes (as `ecgscan
#: digitize` names them; the ``<stem>.json`` summary is always written, ``'json'`` adds the
#: signal to it, and ``overlay=True`` adds ``<stem>-overlay.png``).
OUTPUT_FORMATS: dict[str, tuple[str, ...]] = {
    "wfdb": (".hea", ".dat"),
    "csv": (".csv",),
    "json": (".json",),
}


def check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
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
        Add the ``.json`` summary: ``result.to_dict()`` (layout, calibration (with
        ``gain_chest``, the chest leads' mm/mV on a split-gain page, else null), geometry,
        grid, per-lead quality, stage timings), the classification if any, and ``extra``.
    prediction : Prediction, optional
        Classification: its labels go into the record (``# Labels:`` in the WFDB header).
    extra : mapping, optional
        More JSON-able entries for the summary.
    """
    formats = check_formats(formats)
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


def write_result(
    result: Any,
    folder: str | os.PathLike[str],
    name: str,
    *,
    formats: Sequence[str] | str = ("wfdb",),
    overlay: bool = False,
    prediction: Any = None,
) -> list[Path]:
    """Write one digitized page's files into ``folder`` (all appear together, or none).

    The files are those of :func:`result_files` (``<name>.hea``/``.dat``, ``<name>.json``,
    ``<name>.csv``, ``<name>-overlay.png``), written through temporary files and renamed into
    place with the WFDB header last. Returns the written paths.
    """
    out = ensure_output_dir(folder)
    files = result_files(result, name=name, formats=formats, overlay=overlay,
                         prediction=prediction)  # fmt: skip
    order = sorted(files, key=lambda suffix: suffix == ".hea")  # header last: marks completion
    targets = [out / f"{name}{suffix}" for suffix in order]
    with atomic_files(targets) as temps:
        for suffix, tmp in zip(order, temps, strict=True):
            tmp.write_bytes(files[suffix])
    return targets
