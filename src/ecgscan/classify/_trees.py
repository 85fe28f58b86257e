"""Beat trees: gradient-boosted trees on measurements of the median beats.

The ensemble's signal members are networks over the 10-s signal or the median beats. Some
Challenge labels are, in PTB-XL, the output of rules on a few measurements: Acute MI is the
GE 12SL algorithm's ST-elevation statements, HYP leans on voltage criteria, TACHY and BRADY
on the rate. A network averaging over the beat blurs such steps; trees on the measurements
themselves (:func:`ecgscan.data.beats.beat_features`: ST levels at the J point, contiguous-
lead ST elevation, QRS extremes, heart rate) draw them. The ensemble stacks the trees'
probability onto its own per label (its ``trees`` rule); on its own the model is weaker.

The trees are fitted with scikit-learn's ``HistGradientBoostingClassifier`` (``ecgscan train
classifier --model ensemble --fit-trees ENSEMBLE.json``, the ``train`` extra) and stored as
plain arrays in an ``.npz`` file, so that inference needs only NumPy: all trees of all labels
are walked together, one level per step.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.beats import BEAT_FEATURES
from ..errors import InputFileError

__all__ = ["BeatTrees", "pack_trees"]

_REFIT = "fit it with `ecgscan train classifier --model ensemble --fit-trees ENSEMBLE.json`"
_NODE_FIELDS = ("feature", "threshold", "left", "right", "missing_left", "leaf", "value")


class BeatTrees:
    """Boosted trees per label on :func:`~ecgscan.data.beats.beat_features`.

    Parameters
    ----------
    path : path-like
        An ``.npz`` written by :func:`pack_trees` (``labels``, ``features``, ``baseline`` per
        label, the trees' roots and owning labels, and the nodes of every tree).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"beat-trees file {str(self.path)!r} not found; {_REFIT}")
        try:
            with np.load(self.path, allow_pickle=False) as z:
                self.labels = tuple(str(v) for v in z["labels"])
                features = tuple(str(v) for v in z["features"])
                self.baseline = np.asarray(z["baseline"], dtype=np.float64)
                self.roots = np.asarray(z["roots"], dtype=np.int64)
                self.tree_label = np.asarray(z["tree_label"], dtype=np.int64)
                nodes = {k: z[k] for k in _NODE_FIELDS}
        except (OSError, ValueError, zipfile.BadZipFile):
            raise InputFileError(
                f"{str(self.path)!r} is not an ecgscan beat-trees file (not a NumPy .npz "
                f"archive); {_REFIT}"
            ) from None
        except KeyError as exc:
            raise InputFileError(
                f"{str(self.path)!r} is not an ecgscan beat-trees file (no {exc} array); {_REFIT}"
            ) from None
        if features != BEAT_FEATURES:
            raise InputFileError(
                f"{str(self.path)!r} was fitted on other beat features than this ecgscan "
                f"computes; {_REFIT.replace('fit it', 'refit it')}"
            )
        self.feature = np.asarray(nodes["feature"], dtype=np.int64)
        self.threshold = np.asarray(nodes["threshold"], dtype=np.float64)
        self.left = np.asarray(nodes["left"], dtype=np.int64)
        self.right = np.asarray(nodes["right"], dtype=np.int64)
        self.missing_left = np.asarray(nodes["missing_left"], dtype=bool)
        self.leaf = np.asarray(nodes["leaf"], dtype=bool)
        self.value = np.asarray(nodes["value"], dtype=np.float64)

    def __repr__(self) -> str:
        return f"BeatTrees({str(self.path)!r}, labels={list(self.labels)}, trees={len(self.roots)})"

    def decision_function(self, features: ArrayLike) -> NDArray[np.float64]:
        """Raw scores (log-odds), shape (n, labels), of feature rows (n, len(BEAT_FEATURES))."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(BEAT_FEATURES):
            raise ValueError(
                f"features must have shape (n, {len(BEAT_FEATURES)}), got shape {x.shape}"
            )
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        rows = np.arange(len(x))[:, None]
        while True:
            inner = ~self.leaf[node]
            if not inner.any():
                break
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        scores = np.tile(self.baseline, (len(x), 1))
        for k in range(len(self.labels)):
            scores[:, k] += self.value[node[:, self.tree_label == k]].sum(axis=1)
        return scores

    def predict_proba(self, features: ArrayLike) -> NDArray[np.float64]:
        """Probabilities, shape (n, labels), of feature rows (n, len(BEAT_FEATURES))."""
        return np.asarray(1.0 / (1.0 + np.exp(-self.decision_function(features))))


def pack_trees(
    models: Mapping[str, Any | Sequence[Any]], labels: Sequence[str]
) -> dict[str, NDArray[Any]]:
    """The arrays of a :class:`BeatTrees` file from fitted binary scikit-learn
    ``HistGradientBoostingClassifier`` models (label → model, or a bag of models, fitted on
    ``BEAT_FEATURES``).

    A label's bag (several models, e.g. fitted with different random states, so that their
    early-stopping splits differ) scores the mean of its models' raw scores: the baselines are
    averaged and every leaf value is divided by the bag's size, so that the file still holds
    plain sums of trees.

    Reads the fitted predictors' node tables (``_predictors``, ``_baseline_prediction``), the
    only way to take the trees out of scikit-learn; checked against ``decision_function`` by
    the training command.
    """
    parts: dict[str, list[NDArray[Any]]] = {k: [] for k in _NODE_FIELDS}
    roots: list[int] = []
    tree_label: list[int] = []
    baseline = np.zeros(len(labels))
    offset = 0
    for k, name in enumerate(labels):
        entry = models[name]
        bag = list(entry) if isinstance(entry, Sequence) else [entry]
        baseline[k] = np.mean([float(np.ravel(m._baseline_prediction)[0]) for m in bag])
        for predictor in (p for model in bag for (p,) in model._predictors):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise ValueError("categorical splits are not supported in beat trees")
            roots.append(offset)
            tree_label.append(k)
            parts["feature"].append(nodes["feature_idx"].astype(np.int32))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["left"].append((nodes["left"] + offset).astype(np.int32))
            parts["right"].append((nodes["right"] + offset).astype(np.int32))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64) / len(bag))
            offset += len(nodes)
    return {
        "labels": np.asarray(list(labels)),
        "features": np.asarray(BEAT_FEATURES),
        "baseline": baseline,
        "roots": np.asarray(roots, dtype=np.int32),
        "tree_label": np.asarray(tree_label, dtype=np.int16),
        **{k: np.concatenate(v) for k, v in parts.items()},
    }
