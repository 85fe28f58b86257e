"""Stage 6: trace segmentation — the probability that each pixel belongs to an ECG trace.

Methods
-------
``'darkness'`` (default)
    Classical: the trace is the darkest, least coloured ink on the page. Darkness relative to
    the local paper brightness, thresholded between the trace's ink level and the grid's.
``'unet'`` (experimental)
    A small U-Net trained on our renders (:mod:`ecgscan.train.digitizer`), run with ONNX
    Runtime at 4 px/mm; it gates the darkness map to the ink it calls trace (removing grid,
    text and noise). Not yet better than ``'darkness'`` on eik-dev (see its model card).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SEGMENTATION_METHODS",
    "model_path",
    "segment_traces",
    "unet_gate",
    "unet_probability",
]


def _dark_map(
    image: NDArray[np.uint8], px_per_mm: float
) -> tuple[NDArray[np.float32], NDArray[np.bool_], float, float]:
    """Darkness relative to the local paper (0 paper … 1 black), the sheet mask, and the ink
    levels of the trace (99.7th percentile) and of the next darkest population (96th)."""
    import cv2

    # coloured grid lines stay bright in the HSV value channel (max of R, G, B)
    value = np.maximum(np.maximum(image[:, :, 0], image[:, :, 1]), image[:, :, 2])
    # light smoothing against sensor and JPEG noise (a trace is wider than 0.2 mm), only on
    # noisy pages: it costs sharpness on clean ones
    sub = value[:: max(1, value.shape[0] // 400), :: max(1, value.shape[1] // 400)]
    noise = float(np.median(np.abs(sub.astype(np.int16) - cv2.medianBlur(sub, 3))))
    if noise >= 2.0 and 0.08 * px_per_mm >= 0.4:
        value = cv2.GaussianBlur(value, (0, 0), 0.08 * px_per_mm)
    k = max(3, int(round(px_per_mm * 2.0)) | 1)
    paper = cv2.dilate(value, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.blur(paper, (k, k)).astype(np.float32)
    norm = value.astype(np.float32) / np.maximum(paper, 1.0)
    dark = 1.0 - np.clip(norm, 0.0, 1.0)  # 0 on paper, ~1 on black ink
    # the sheet itself: bright on average over a few millimetres (thin ink does not darken
    # that much); margins, scanner beds and the fill of a rotation do
    kb = max(3, int(round(px_per_mm * 4.0)) | 1)
    mean = cv2.blur(value, (kb, kb)).astype(np.float32)
    sheet = mean > 0.45 * float(np.percentile(value, 90))
    ke = max(3, int(round(px_per_mm * 1.5)) | 1)  # and not the ragged edge of the margin
    sheet = cv2.erode(sheet.astype(np.uint8), np.ones((ke, ke), np.uint8)).astype(bool)
    if sheet.mean() <= 0.3:
        sheet = np.ones_like(sheet)
    inside = dark[sheet]
    lo = float(np.percentile(inside, 99.7))
    hi_pop = float(np.percentile(inside, 96.0))
    return dark.astype(np.float32), sheet, lo, hi_pop


def _darkness(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    dark, sheet, lo, hi_pop = _dark_map(image, px_per_mm)
    # threshold between the trace's ink and the grid's, with a soft ramp for the centroid
    thr = hi_pop + 0.45 * max(lo - hi_pop, 0.05)
    width = max(0.05, 0.25 * (lo - hi_pop))
    prob = np.clip((dark - (thr - width / 2)) / width, 0.0, 1.0)
    prob[~sheet] = 0.0
    return prob.astype(np.float32)


def model_path() -> str | None:
    """Path of the segmentation model (ONNX): ``$ECGSCAN_DIGITIZER_MODEL`` or the shipped one;
    None when neither exists."""
    env = os.environ.get("ECGSCAN_DIGITIZER_MODEL")
    if env:
        return env
    shipped = Path(__file__).resolve().parents[1] / "models" / "digitizer" / "digitizer.onnx"
    return str(shipped) if shipped.is_file() else None


@functools.lru_cache(maxsize=2)
def _session(path: str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("ECGSCAN_THREADS", "2"))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def unet_probability(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    """The network's trace probability, computed at its working scale and resized back."""
    import cv2

    from ..errors import DigitizationError

    path = model_path()
    if path is None:
        raise DigitizationError(
            "segmentation method 'unet' needs the model digitizer.onnx, which is not "
            "installed; reinstall ecgscan or use segmentation='darkness'"
        )
    sess = _session(path)
    meta = sess.get_modelmeta().custom_metadata_map
    scale = float(meta.get("px_per_mm", 4.0)) / px_per_mm
    h, w = image.shape[:2]
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    small = cv2.copyMakeBorder(small, 0, (-sh) % 8, 0, (-sw) % 8, cv2.BORDER_REPLICATE)
    x = small.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0, :sh, :sw]
    prob = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


def unet_gate(
    prob: NDArray[np.float32], image: NDArray[np.uint8], px_per_mm: float
) -> NDArray[np.float32]:
    """Keep only the ink of ``prob`` within 0.5 mm of what the network calls trace."""
    import cv2

    net = unet_probability(image, px_per_mm)
    k = max(3, int(round(px_per_mm)) | 1)
    near = cv2.dilate((net > 0.4).astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    out = prob.copy()
    out[~near] = 0.0
    return out


def _unet(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    """The network decides *where* traces are (not grid, text or noise); the full-resolution
    darkness keeps their sub-pixel profile for the centroid."""
    return unet_gate(_darkness(image, px_per_mm), image, px_per_mm)


SEGMENTATION_METHODS = {"darkness": _darkness, "unet": _unet}


def resolve_method(method: str) -> str:
    """``'auto'`` → the default method (``'darkness'``, the better one on our benchmarks so
    far; see the model card of the network); checks names."""
    if method == "auto":
        return "darkness"
    if method not in SEGMENTATION_METHODS:
        raise ValueError(
            f"unknown segmentation method {method!r}; expected one of: "
            f"'auto', {', '.join(repr(m) for m in SEGMENTATION_METHODS)}"
        )
    return method


def segment_traces(
    image: NDArray[np.uint8], *, px_per_mm: float, method: str = "auto"
) -> tuple[NDArray[np.float32], str]:
    """Per-pixel trace probability (H×W float32 in 0–1) and the method used.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        The straightened page.
    px_per_mm : float
        Grid scale, used to size filters and to resize for the network.
    method : {'auto', 'unet', 'darkness'}
        ``'auto'`` uses the network when it is installed, otherwise ``'darkness'``.
    """
    method = resolve_method(method)
    try:
        fn = SEGMENTATION_METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown segmentation method {method!r}; expected one of: "
            f"'auto', {', '.join(repr(m) for m in SEGMENTATION_METHODS)}"
        ) from None
    return fn(image, px_per_mm), method
