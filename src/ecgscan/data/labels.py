"""The eleven diagnostic labels of the George B. Moody PhysioNet Challenge 2024.

The Challenge classifies each ECG into any subset of :data:`CHALLENGE_LABELS` (multi-label):
``NORM``, ``Acute MI``, ``Old MI``, ``STTC``, ``CD``, ``HYP``, ``PAC``, ``PVC``, ``AFIB/AFL``,
``TACHY`` and ``BRADY``. This module converts between label tuples and multi-hot vectors in that
fixed order, the one every ecgscan model, metric and file uses. How the labels are derived from
PTB-XL is in :mod:`ecgscan.data.ptbxl`.

Label names are matched without regard to case or surrounding spaces (``'acute mi'`` is
``'Acute MI'``); an unknown name raises :class:`LabelError` listing the valid ones.

Examples
--------
>>> labels_to_vector(["STTC", "NORM"])
array([1., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0.], dtype=float32)
>>> vector_to_labels([0, 0.9, 0, 0.2, 0, 0, 0, 0, 0, 0, 0])
('Acute MI',)
>>> normalize_labels("afib/afl | norm")
('NORM', 'AFIB/AFL')
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import RecordError

__all__ = [
    "CHALLENGE_LABELS",
    "LabelError",
    "labels_to_matrix",
    "labels_to_vector",
    "normalize_labels",
    "vector_to_labels",
]

#: The Challenge 2024 labels, in the order of vectors, files and model outputs.
CHALLENGE_LABELS: tuple[str, ...] = (
    "NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY",
)  # fmt: skip

_INDEX = {name.casefold(): i for i, name in enumerate(CHALLENGE_LABELS)}
_SEPARATORS = re.compile(r"[|,]")


class LabelError(RecordError):
    """A label is not one of :data:`CHALLENGE_LABELS`, or a label vector has the wrong shape."""


def _split(labels: str | Iterable[str]) -> list[str]:
    if isinstance(labels, str):
        # 'NORM, STTC' (Challenge headers) or 'NORM|STTC' (our CSV files); '' means no label.
        return [part for part in (p.strip() for p in _SEPARATORS.split(labels)) if part]
    out = []
    for label in labels:
        if not isinstance(label, str):
            raise LabelError(f"labels must be strings, got {label!r} ({type(label).__name__})")
        out.append(label.strip())
    return out


def _index(label: str) -> int:
    try:
        return _INDEX[label.strip().casefold()]
    except KeyError:
        raise LabelError(
            f"unknown label {label!r}; expected one of {', '.join(CHALLENGE_LABELS)} "
            "(the PhysioNet Challenge 2024 labels, case-insensitive)"
        ) from None


def normalize_labels(labels: str | Iterable[str]) -> tuple[str, ...]:
    """Return ``labels`` spelled canonically, without duplicates, in :data:`CHALLENGE_LABELS` order.

    Parameters
    ----------
    labels : str or iterable of str
        Label names; a single string is split on ``,`` and ``|`` (``''`` means no label).

    Raises
    ------
    LabelError
        If a name is not a Challenge label.
    """
    found = {_index(label) for label in _split(labels)}
    return tuple(CHALLENGE_LABELS[i] for i in sorted(found))


def labels_to_vector(labels: str | Iterable[str]) -> NDArray[np.float32]:
    """Multi-hot float32 vector of length 11 (order of :data:`CHALLENGE_LABELS`).

    Parameters
    ----------
    labels : str or iterable of str
        Label names, as for :func:`normalize_labels`.

    Raises
    ------
    LabelError
        If a name is not a Challenge label.
    """
    vec = np.zeros(len(CHALLENGE_LABELS), dtype=np.float32)
    for label in _split(labels):
        vec[_index(label)] = 1.0
    return vec


def labels_to_matrix(records_labels: Iterable[str | Iterable[str]]) -> NDArray[np.float32]:
    """Stack :func:`labels_to_vector` over many records: float32 array of shape (n, 11)."""
    rows = [labels_to_vector(labels) for labels in records_labels]
    if not rows:
        return np.zeros((0, len(CHALLENGE_LABELS)), dtype=np.float32)
    return np.stack(rows)


def vector_to_labels(vector: ArrayLike, *, threshold: float = 0.5) -> tuple[str, ...]:
    """Labels whose score in ``vector`` is at least ``threshold``, in canonical order.

    Parameters
    ----------
    vector : array_like, shape (11,)
        Multi-hot vector or per-label scores/probabilities.
    threshold : float, keyword-only
        Minimum score of a present label (default 0.5).

    Raises
    ------
    LabelError
        If ``vector`` does not hold exactly one finite value per Challenge label.
    """
    try:
        vec = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise LabelError(f"label vector must be numeric, got {vector!r}") from None
    if vec.shape != (len(CHALLENGE_LABELS),):
        raise LabelError(
            f"label vector must have shape ({len(CHALLENGE_LABELS)},), one value per label in "
            f"the order {', '.join(CHALLENGE_LABELS)}; got shape {vec.shape}"
        )
    if not np.all(np.isfinite(vec)):
        raise LabelError("label vector contains NaN or infinite values")
    return tuple(
        name for name, value in zip(CHALLENGE_LABELS, vec, strict=True) if value >= threshold
    )
