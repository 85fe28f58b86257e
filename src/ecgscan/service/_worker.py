"""What a web-service worker process does: load the models once, then digitize uploads.

Runs inside the spawned processes of :class:`~ecgscan.service._pool.WorkerPool`. A request
names an uploaded file and a result folder chosen by the server (never by the client); the
reply is the JSON body of ``POST /v1/digitize`` or an HTTP status with a message.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..classify._registry import DEFAULT_MODEL
from ..errors import EcgscanError

__all__ = ["handle_request", "result_links", "setup_worker"]

_STATE: dict[str, Any] = {}


def result_links(result_id: str) -> dict[str, str]:
    """Download links of a result, relative to the service root."""
    base = f"/v1/results/{result_id}"
    return {
        "result": base,
        "wfdb": f"{base}/record.zip",
        "csv": f"{base}/record.csv",
        "json": f"{base}/record.json",
        "overlay": f"{base}/overlay.png",
    }


def setup_worker(options: Mapping[str, Any]) -> dict[str, Any]:
    """Load the models of this worker process (once) and report what it has."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)
    info: dict[str, Any] = {"pid": os.getpid(), "classifier": None, "classifier_error": None}
    model = options.get("model", DEFAULT_MODEL)
    if model:
        from ..classify import load_classifier

        try:
            _STATE["classifier"] = load_classifier(model)
            info["classifier"] = _STATE["classifier"].name
        except (EcgscanError, FileNotFoundError) as exc:
            info["classifier_error"] = str(exc)
    from ..digitize import _segment, model_path

    path = model_path()
    info["segmentation"] = "unet" if path else "darkness"
    load_session = getattr(_segment, "_session", None)  # cached per process by the digitizer
    if path and callable(load_session):
        load_session(path)  # load the U-Net now, once per worker, not on the first request

    return info


def _error(status: int, detail: str) -> dict[str, Any]:
    return {"status": status, "detail": detail}


def _check_pixels(path: Path, kind: str, max_pixels: int) -> dict[str, Any] | None:
    """Refuse rasters over ``max_pixels`` from their header, before decoding them."""
    if kind == "pdf":
        return None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        w = h = max_pixels + 1  # far over PIL's own limit
    except (OSError, SyntaxError, ValueError) as exc:
        return _error(422, f"the upload is not a readable {kind.upper()} image ({exc})")
    if w * h > max_pixels:
        return _error(
            422,
            f"the image is {w}×{h} px ({w * h / 1e6:.0f} Mpx), over this server's limit of "
            f"{max_pixels / 1e6:g} Mpx; scan or export the page at 200–300 DPI",
        )
    return None


def _pdf_dpi(path: Path, max_pixels: int, dpi: float = 200.0) -> float:
    """A rasterisation DPI that keeps the first PDF page within ``max_pixels``."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception:  # unreadable: load_page reports it
        return dpi
    try:
        if len(doc) == 0:
            return dpi
        w_pt, h_pt = doc[0].get_size()
    finally:
        doc.close()
    if w_pt <= 0 or h_pt <= 0:
        return dpi
    fit = 72.0 * math.sqrt(max_pixels / (w_pt * h_pt)) * 0.99
    return min(dpi, fit)


def _leads(record: Any) -> dict[str, list[float | None]]:
    return {
        name: [round(float(v), 4) if math.isfinite(v) else None for v in record.signal[:, j]]
        for j, name in enumerate(record.leads)
    }


def handle_request(request: dict[str, Any]) -> dict[str, Any]:
    """Digitize (and classify) one uploaded page; write its downloads; return the reply."""
    from ..digitize import digitize
    from ..errors import DigitizationError
    from ._batch import load_page, result_files

    upload = Path(request["upload"])
    kind = str(request["kind"])
    result_id = str(request["id"])
    name = str(request["name"])
    max_pixels = int(request["max_pixels"])
    refused = _check_pixels(upload, kind, max_pixels)
    if refused:
        return refused
    dpi = _pdf_dpi(upload, max_pixels) if kind == "pdf" else 200.0
    try:
        image = load_page(upload, page=0, pdf_dpi=dpi)
        if image.shape[0] * image.shape[1] > max_pixels:
            return _error(422, f"the page is over this server's limit of {max_pixels / 1e6:g} Mpx")
        result = digitize(image, fs=float(request["fs"]), samples=request.get("samples"), name=name)
    except DigitizationError as exc:
        # messages name the server's temporary file; the client knows its file by its name
        detail = str(exc).replace(str(upload), "upload").replace(upload.name, "upload")
        return _error(422, detail)
    except (ValueError, EcgscanError) as exc:
        return _error(422, str(exc))

    warnings_out: list[str] = []
    prediction = None
    classifier = _STATE.get("classifier")
    if classifier is not None:
        prediction = classifier.predict(result.record)
    else:
        warnings_out.append("no classifier is loaded on this server; labels are not available")

    files = result_files(result, name=name, formats=("wfdb", "csv"), overlay=True,
                         summary=False, prediction=prediction)  # fmt: skip
    record = result.record.with_signal(result.record.signal, name=name)
    if prediction is not None:
        record = record.with_signal(record.signal, labels=tuple(prediction.labels))
    files[".json"] = json.dumps(record.to_dict(), allow_nan=False).encode("utf-8")
    summary = result.to_dict()
    body: dict[str, Any] = {
        "id": result_id,
        "name": name,
        "fs": result.record.fs,
        "n_samples": result.record.n_samples,
        "units": "mV",
        "leads": _leads(result.record),
        "labels": list(prediction.labels) if prediction else [],
        "probabilities": dict(prediction.probabilities) if prediction else {},
        "thresholds": dict(prediction.thresholds) if prediction else {},
        "classifier": prediction.model if prediction else None,
        "layout": summary["layout"],
        "quality": summary["quality"],
        "calibration": summary["calibration"],
        "grid": summary["grid"],
        "geometry": summary["geometry"],
        "segmentation": summary["segmentation"],
        "timings": summary["timings"],
        "image": {"width": int(result.overlay.shape[1]), "height": int(result.overlay.shape[0])},
        "warnings": warnings_out,
        "files": result_links(result_id),
    }

    # write the downloads into a hidden folder, then rename it into place (all or nothing)
    root = Path(request["results_root"])
    staging = root / f".{result_id}"
    final = root / result_id
    staging.mkdir(parents=True)
    try:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for suffix in (".hea", ".dat"):
                info = zipfile.ZipInfo(f"{name}{suffix}", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, files[suffix])
        (staging / "record.zip").write_bytes(buf.getvalue())
        (staging / "record.csv").write_bytes(files[".csv"])
        (staging / "record.json").write_bytes(files[".json"])
        (staging / "overlay.png").write_bytes(files["-overlay.png"])
        (staging / "result.json").write_text(json.dumps(body, allow_nan=False), encoding="utf-8")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"status": 200, "body": body}
