"""Per-class decision thresholds chosen on validation data, and the AUROC used to pick models.

``choose_thresholds(y_true, prob, method='f1')`` returns, for every class, the probability
threshold that maximises that class's F1 on the given data (``method='youden'``: Youden's J,
sensitivity + specificity − 1). Classes without a positive (or without a negative) example get
0.5.

Examples
--------
>>> import numpy as np
>>> y = np.array([[1], [1], [0], [0]])
>>> p = np.array([[0.9], [0.6], [0.4], [0.1]])
>>> choose_thresholds(y, p).tolist()
[0.5]
>>> float(macro_auroc(y, p))
1.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import EcgscanError

__all__ = ["THRESHOLD_METHODS", "choose_thresholds", "macro_auroc", "per_class_auroc"]


def _check(y_true: ArrayLike, prob: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    y = np.asarray(y_true)
    p = np.asarray(prob, dtype=np.float64)
    if y.ndim == 1:
        y, p = y[:, None], p.reshape(-1, 1)
    if y.shape != p.shape or y.ndim != 2:
        raise EcgscanError(
            "y_true and prob must both have shape (n_records, n_classes); "
            f"got {y.shape} and {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise EcgscanError("prob contains NaN or infinite values")
    return y.astype(bool), p


def _best_f1(y: NDArray[np.bool_], p: NDArray[np.float64]) -> float:
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    # a threshold can only sit between distinct scores: take the last index of each tie run
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    below = ps[i + 1] if i + 1 < len(ps) else ps[i] - 1e-6
    return float(np.clip((ps[i] + below) / 2, 0.0, 1.0))


def _best_youden(y: NDArray[np.bool_], p: NDArray[np.float64]) -> float:
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tpr = np.cumsum(ys) / ys.sum()
    fpr = np.cumsum(~ys) / (~ys).sum()
    last = np.r_[ps[1:] != ps[:-1], True]
    j = np.where(last, tpr - fpr, -np.inf)
    i = int(np.argmax(j))
    below = ps[i + 1] if i + 1 < len(ps) else ps[i] - 1e-6
    return float(np.clip((ps[i] + below) / 2, 0.0, 1.0))


THRESHOLD_METHODS: dict[str, Callable[[NDArray[np.bool_], NDArray[np.float64]], float]] = {
    "f1": _best_f1,
    "youden": _best_youden,
}


def choose_thresholds(
    y_true: ArrayLike, prob: ArrayLike, *, method: str = "f1"
) -> NDArray[np.float64]:
    """Per-class thresholds that maximise F1 (or Youden's J) on ``(y_true, prob)``.

    Parameters
    ----------
    y_true : array_like, shape (n_records, n_classes)
        0/1 reference labels.
    prob : array_like, shape (n_records, n_classes)
        Predicted probabilities.
    method : {'f1', 'youden'}
        The criterion maximised per class.

    Returns
    -------
    ndarray, shape (n_classes,)
        Thresholds midway between the two scores that bound the best cut (0.5 for classes
        with no positive or no negative example).
    """
    try:
        func = THRESHOLD_METHODS[method]
    except KeyError:
        raise EcgscanError(
            f"unknown threshold method {method!r}; expected one of {', '.join(THRESHOLD_METHODS)}"
        ) from None
    y, p = _check(y_true, prob)
    out = np.full(y.shape[1], 0.5)
    for c in range(y.shape[1]):
        if y[:, c].any() and not y[:, c].all():
            out[c] = func(y[:, c], p[:, c])
    return out


def per_class_auroc(y_true: ArrayLike, prob: ArrayLike) -> NDArray[np.float64]:
    """AUROC of every class (rank statistic, ties counted half); NaN where a class is constant."""
    from scipy.stats import rankdata

    y, p = _check(y_true, prob)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        pos = int(y[:, c].sum())
        neg = len(y) - pos
        if pos and neg:
            r = rankdata(p[:, c])
            out[c] = (r[y[:, c]].sum() - pos * (pos + 1) / 2) / (pos * neg)
    return out


def macro_auroc(y_true: ArrayLike, prob: ArrayLike) -> float:
    """Mean of :func:`per_class_auroc` over the classes that have both outcomes."""
    values = per_class_auroc(y_true, prob)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
