"""From a page image to the tensor an image classifier reads.

Every image model reads one grey channel of a fixed size (``(height, width)`` from its
configuration, 240 × 320 for the shipped models): the page is converted to grey, resized with
area averaging (so a 200-DPI scan and a 72-DPI training render look alike) and inverted and
scaled to ``[0, 1]`` (ink ≈ 1, paper ≈ 0). Training (:mod:`ecgscan.train.classifier`) and
inference use the same function here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import EcgscanError

__all__ = ["IMAGE_SIZE", "encode_pages", "page_thumbnail", "trace_map"]

#: Default (height, width) of :func:`page_thumbnail`: the size training pages are cached at
#: (each model's own input size is in its config: 240 × 320 for the shipped models).
IMAGE_SIZE: tuple[int, int] = (384, 512)


def page_thumbnail(image: Any, *, size: Sequence[int] = IMAGE_SIZE) -> NDArray[np.uint8]:
    """A page as a grey uint8 thumbnail of ``size = (height, width)``.

    Parameters
    ----------
    image : array or path
        An RGB/RGBA/grey uint8 array (H × W [× C]) or anything
        :func:`ecgscan.digitize.load_image` reads (PNG, JPEG, TIFF, PDF page 0, ...).
    size : (int, int), keyword-only
        Output height and width; the page is stretched to it (pages are landscape, about 3:4).
    """
    import cv2

    if not isinstance(image, np.ndarray):
        from ..digitize._load import load_image

        image = load_image(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise EcgscanError(f"page image must be uint8, got {arr.dtype}; load it with load_image")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    if arr.ndim != 2 or min(arr.shape) < 16:
        raise EcgscanError(f"page image must be H×W or H×W×3 and at least 16 px, got {arr.shape}")
    h, w = int(size[0]), int(size[1])
    interp = cv2.INTER_AREA if arr.shape[0] >= h and arr.shape[1] >= w else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(arr, (w, h), interpolation=interp))


def encode_pages(thumbnails: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Grey thumbnails ``(batch, H, W)`` or ``(H, W)`` → network input ``(batch, 1, H, W)``.

    Inverted and scaled: ``(255 - grey) / 255`` (ink ≈ 1, white paper 0).
    """
    x = np.asarray(thumbnails)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise EcgscanError(f"thumbnails must have shape (batch, H, W), got {x.shape}")
    return ((255.0 - x.astype(np.float32)) / 255.0)[:, None]


def trace_map(
    image: Any, *, model: Any = "multitask", full_size: bool = True
) -> NDArray[np.float32]:
    """Probability that each pixel of a page lies on an ECG trace, from a multi-task model.

    Parameters
    ----------
    image : array or path
        The page, as for :func:`page_thumbnail`.
    model : str, path or ImageClassifier, keyword-only
        A model with a ``trace`` output: the registered ``'multitask'`` (default), its ONNX
        file, or an :class:`~ecgscan.classify.ImageClassifier` loaded from one.
    full_size : bool, keyword-only
        Resize the map (bilinear) to the page's size (default); ``False`` returns the model's
        own resolution (half its input size, 120 × 160 for the shipped model).

    Returns
    -------
    ndarray of float32, shape (H, W)
        Values in [0, 1]; the model card's threshold (``config['trace']['threshold']``)
        separates trace from background.

    Examples
    --------
    >>> from ecgscan.render import render_page
    >>> from ecgscan import synthetic_ecg
    >>> page = render_page(synthetic_ecg(fs=500, duration=10, seed=1), dpi=72)
    >>> trace_map(page.image).shape == page.image.shape[:2]
    True
    """
    import cv2

    from ._predict import ImageClassifier, load_classifier

    clf = model if isinstance(model, ImageClassifier) else load_classifier(model)
    if not isinstance(clf, ImageClassifier) or "trace" not in {
        o.name for o in clf.session.get_outputs()
    }:
        raise EcgscanError(
            f"model {str(model)!r} has no trace output; give a multi-task image model "
            "(e.g. 'multitask' or an ONNX file from `ecgscan train classifier --model multitask`)"
        )
    if not isinstance(image, np.ndarray):  # read once: its size scales the map back
        from ..digitize._load import load_image

        image = load_image(image)
    x = encode_pages(page_thumbnail(image, size=clf.size))
    with clf._lock:
        (prob,) = clf.session.run(["trace"], {"image": x})
    out = np.asarray(prob[0], dtype=np.float32)
    if full_size:
        h, w = np.asarray(image).shape[:2]
        out = np.asarray(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    return np.clip(out, 0.0, 1.0)
