"""Classification metrics of the PhysioNet Challenge 2024: macro F-measure, per-class F1, AUROC."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["auroc", "challenge_f_measure"]


def challenge_f_measure(
    true_labels: Sequence[Sequence[str]], pred_labels: Sequence[Sequence[str]]
) -> tuple[float, dict[str, float]]:
    """The Challenge 2024 macro F-measure and the F1 of every class.

    Mirrors ``compute_f_measure`` of the Challenge helper code: the classes are the sorted union
    of the *reference* labels (predicted labels outside them are ignored); each record is one-hot
    encoded by exact string match; per class ``F1 = 2·TP / (2·TP + FP + FN)``, NaN when the
    denominator is 0; the macro F-measure is the NaN-ignoring mean (NaN if every class is NaN).

    Parameters
    ----------
    true_labels, pred_labels : sequence of sequences of str
        Labels per record, in the same record order.

    Returns
    -------
    macro_f : float
    per_class : dict
        ``{class: F1}`` in sorted class order.

    Examples
    --------
    >>> challenge_f_measure([["NORM"], ["MI", "STTC"]], [["NORM"], ["MI"]])
    (0.6666666666666666, {'MI': 1.0, 'NORM': 1.0, 'STTC': 0.0})
    """
    if len(true_labels) != len(pred_labels):
        raise ValueError(
            f"true_labels has {len(true_labels)} records but pred_labels has "
            f"{len(pred_labels)}; give one label list per record on both sides"
        )
    classes = sorted({str(c) for labels in true_labels for c in labels})
    per_class: dict[str, float] = {}
    for c in classes:
        tp = fp = fn = 0
        for truth, pred in zip(true_labels, pred_labels, strict=True):
            t = c in {str(x) for x in truth}
            p = c in {str(x) for x in pred}
            tp += t and p
            fp += p and not t
            fn += t and not p
        denom = 2 * tp + fp + fn
        per_class[c] = 2 * tp / denom if denom > 0 else math.nan
    values = np.array(list(per_class.values()), dtype=np.float64)
    finite = values[~np.isnan(values)]
    macro = float(finite.mean()) if finite.size else math.nan
    return macro, per_class


def auroc(
    y_true: ArrayLike, y_score: ArrayLike, *, classes: Sequence[str] | None = None
) -> dict[str, float] | float:
    """Area under the ROC curve, per class, from scores or probabilities.

    The exact trapezoidal area, computed as the Mann–Whitney statistic with tied scores counted
    one half: the probability that a random positive scores above a random negative.

    Parameters
    ----------
    y_true : array_like of bool/0-1, shape (n,) or (n, n_classes)
        Whether each record belongs to each class.
    y_score : array_like of float, same shape
        Scores or probabilities; higher means more likely.
    classes : sequence of str, optional
        Class names for the columns of 2-D input; returns a dict when given (or when the input is
        2-D, with names ``"0"``, ``"1"``, ...).

    Returns
    -------
    float or dict
        AUROC for 1-D input, ``{class: AUROC}`` for 2-D input; NaN for a class without both
        positives and negatives.

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    truth = np.asarray(y_true)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape or truth.ndim not in (1, 2):
        raise ValueError(
            f"y_true {truth.shape} and y_score {score.shape} must have the same shape, "
            "(n_records,) or (n_records, n_classes)"
        )
    if not np.isfinite(score).all():
        raise ValueError("y_score contains NaN or inf; give a finite score for every record")
    if truth.ndim == 1:
        return _auroc_1d(truth.astype(bool), score)
    names = list(classes) if classes is not None else [str(i) for i in range(truth.shape[1])]
    if len(names) != truth.shape[1]:
        raise ValueError(f"classes has {len(names)} names for {truth.shape[1]} columns")
    out: Mapping[str, float] = {
        name: _auroc_1d(truth[:, k].astype(bool), score[:, k]) for k, name in enumerate(names)
    }
    return dict(out)


def _auroc_1d(truth: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(score)  # average ranks for ties
    u = float(ranks[truth].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)
