"""The ensemble classifier: a calibrated weighted average of signal and image models.

How it combines its members (what ``ensemble.json`` holds and its model card states):

1. **Calibration.** Each member's probability ``p`` of each class (both heads) is mapped by
   Platt scaling fitted on that member's validation predictions:
   ``p' = sigmoid(a · logit(p) + b)`` with one ``(a, b)`` per member and class.
2. **Averaging.** The ensemble probability is ``Σ w_m p'_m / Σ w_m`` over the members that
   apply to the input: signal members need a record (given, or digitized from the page),
   image members need the page. A record without an image is classified by the signal members
   alone; the weights are renormalised over the members used. A member may have one weight
   per head (``head_weights``: a member may serve the superclasses better than the Challenge
   labels); ``weight`` is used for the heads it does not list.
3. **Thresholds.** Per class, chosen (F1-optimal) on validation data for each *set* of members
   that can occur (``'signal'``, ``'signal+image'``, ``'image'``), since an average over fewer
   members has another distribution.
4. **Rate rule.** The labels that name a heart rate (BRADY, TACHY: :data:`RATE_LABELS`) are
   decided by PTB-XL's cardiologists mostly from the rate itself (BRADY below about 50 bpm,
   TACHY above about 100), which convolutional networks over a 10-s window count poorly. For
   these labels the ensemble's probability is refined by a logistic rule on its logit and on
   whether the measured rate (:func:`heart_rates`, median RR interval) lies beyond the label's
   limit: ``p'' = sigmoid(a · logit(p') + c · [rate beyond limit] + b)``, the limit chosen
   among a few clinical values and ``(a, c, b)`` fitted on validation data (``rate`` in the
   JSON). A record whose rate cannot be measured (fewer than three beats) keeps
   ``sigmoid(a · logit(p') + b)``. Image-only predictions, which have no signal, skip it.
5. **Beat trees** (``trees``, optional). Gradient-boosted trees on measurements of the median
   beats (:class:`~ecgscan.classify._trees.BeatTrees`: ST levels at the J point, contiguous-
   lead ST elevation, QRS extremes, rate) give a second probability ``g`` per label, stacked
   onto the ensemble's: ``sigmoid(a · logit(p) + c · logit(g) + b)``, ``(a, c, b)`` fitted
   per label on validation data (the labels listed in ``trees.stack``), after the rate rule.
   Acute MI, in PTB-XL the 12SL algorithm's ST-elevation statements, gains most. The
   superclasses may have trees of their own, stacked in the same way
   (``trees.superclass_stack``; their trees are named ``'superclass:HYP'`` etc.).
   Image-only predictions skip it.
6. **Mutually exclusive labels** (``exclusive``: Acute MI and Old MI, which never occur
   together in PTB-XL): when both pass their thresholds only one is kept, the more probable
   (``exclusive_by='probability'``) or the one further above its threshold (``'ratio'``);
   the rule (or none) is chosen on validation data.

Fitting (:func:`fit_platt`, :func:`choose_member_weight`) is plain NumPy; the command
``ecgscan train classifier --model ensemble`` runs it on PTB-XL fold 8 and writes the JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.beats import BEAT_FEATURES, beat_features, heart_rates
from ..data.record import Record
from ..errors import EcgscanError, InputFileError
from ._predict import (
    ImageClassifier,
    Prediction,
    SignalClassifier,
    load_classifier,
    make_prediction,
    with_threshold_override,
)
from ._signal import prepare_record
from ._trees import BeatTrees

__all__ = [
    "EXCLUSIVE_LABELS",
    "RATE_LABELS",
    "EnsembleClassifier",
    "apply_platt",
    "apply_rate_rule",
    "apply_tree_stack",
    "choose_member_weight",
    "combine",
    "fit_platt",
    "fit_rate_rule",
    "fit_tree_stack",
    "tree_label",
]

#: Challenge labels of which at most one is predicted (the most probable).
EXCLUSIVE_LABELS: tuple[tuple[str, ...], ...] = (("Acute MI", "Old MI"),)

#: Challenge labels named by a heart rate: the side of the limit they lie on and the limits
#: (bpm) tried when the rate rule is fitted. PTB-XL's BRADY records mostly beat below 50 bpm,
#: though the textbook limit is 60, so the limit is chosen on validation data.
RATE_LABELS: dict[str, tuple[str, tuple[float, ...]]] = {
    "BRADY": ("below", (45.0, 50.0, 55.0, 60.0)),
    "TACHY": ("above", (95.0, 100.0, 105.0, 110.0)),
}

_EPS = 1e-6


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(q) - np.log1p(-q))


def fit_platt(
    y_true: ArrayLike, prob: ArrayLike, *, l2: float = 1e-3, iterations: int = 50
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Platt scaling per class: ``(a, b)`` minimising the log-loss of ``sigmoid(a·logit(p)+b)``.

    Parameters
    ----------
    y_true : array_like, shape (n, k)
        0/1 labels.
    prob : array_like, shape (n, k)
        The model's probabilities.
    l2 : float
        Ridge penalty pulling ``(a, b)`` towards the identity ``(1, 0)`` (keeps rare classes
        stable).
    iterations : int
        Newton steps.

    Returns
    -------
    a, b : ndarray, shape (k,)
        Classes with no positive or no negative example keep the identity.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.01, 0.99, (2000, 1))
    >>> y = rng.uniform(size=p.shape) < p                 # already calibrated
    >>> a, b = fit_platt(y, p)
    >>> bool(abs(a[0] - 1) < 0.15 and abs(b[0]) < 0.15)
    True
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if y.ndim == 1:
        y, p = y[:, None], p.reshape(-1, 1)
    if y.shape != p.shape or y.ndim != 2:
        raise EcgscanError(
            f"y_true and prob must have the same (n, k) shape; got {y.shape}, {p.shape}"
        )
    n, k = y.shape
    a, b = np.ones(k), np.zeros(k)
    z = _logit(p)
    for c in range(k):
        if not 0 < y[:, c].sum() < n:
            continue
        x = np.stack([z[:, c], np.ones(n)], axis=1)
        a[c], b[c] = _fit_logistic(x, y[:, c], prior=(1.0, 0.0), l2=l2, iterations=iterations)
    return a, b


def _fit_logistic(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    prior: Sequence[float],
    l2: float,
    iterations: int = 50,
) -> NDArray[np.float64]:
    """Coefficients ``θ`` minimising the mean log-loss of ``sigmoid(x @ θ)`` plus
    ``l2 · |θ - prior|² / 2``, by Newton steps from ``prior``."""
    n, d = x.shape
    prior_ = np.asarray(prior, dtype=np.float64)
    theta = prior_.copy()
    for _ in range(iterations):
        q = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (q - y) / n + l2 * (theta - prior_)
        hess = (x.T * (q * (1 - q))) @ x / n + l2 * np.eye(d)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta


def _beyond(heart_rate: NDArray[np.float64], side: str, limit: float) -> NDArray[np.float64]:
    """1 where the rate lies beyond ``limit`` on ``side`` (``'below'``/``'above'``), else 0
    (also where it is unknown)."""
    with np.errstate(invalid="ignore"):
        hit = heart_rate < limit if side == "below" else heart_rate > limit
    return np.asarray(hit & np.isfinite(heart_rate), dtype=np.float64)


def fit_rate_rule(
    y_true: ArrayLike,
    prob: ArrayLike,
    heart_rate: ArrayLike,
    labels: Sequence[str],
    *,
    l2: float = 1e-3,
) -> dict[str, dict[str, Any]]:
    """Fit the rate rule (module docstring, step 4) of each of :data:`RATE_LABELS` in ``labels``.

    Parameters
    ----------
    y_true, prob : array_like, shape (n, k)
        0/1 labels and the ensemble's probabilities, columns in ``labels`` order.
    heart_rate : array_like, shape (n,)
        bpm (:func:`heart_rates`), NaN where unknown.
    labels : sequence of str
        The columns' label names.
    l2 : float
        Ridge penalty pulling ``(a, c, b)`` towards ``(1, 0, 0)``, the probability unchanged.

    Returns
    -------
    dict
        Label → ``{"side", "limit", "coef": [a, c, b]}``; per label the limit of
        :data:`RATE_LABELS` whose fitted rule has the lowest log-loss. Labels without
        positive or negative examples are left out.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    hr = np.asarray(heart_rate, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or y.ndim != 2 or len(hr) != len(y) or y.shape[1] != len(labels):
        raise EcgscanError(
            f"fit_rate_rule needs y_true and prob of shape (n, {len(labels)}) and n heart rates;"
            f" got {y.shape}, {p.shape}, {hr.shape}"
        )
    rule: dict[str, dict[str, Any]] = {}
    for name, (side, limits) in RATE_LABELS.items():
        if name not in labels:
            continue
        c = list(labels).index(name)
        if not 0 < y[:, c].sum() < len(y):
            continue
        z = _logit(p[:, c])
        best: tuple[float, float, NDArray[np.float64]] | None = None
        for limit in limits:
            x = np.stack([z, _beyond(hr, side, limit), np.ones(len(z))], axis=1)
            theta = _fit_logistic(x, y[:, c], prior=(1.0, 0.0, 0.0), l2=l2)
            q = np.clip(1.0 / (1.0 + np.exp(-(x @ theta))), _EPS, 1 - _EPS)
            loss = float(-np.mean(y[:, c] * np.log(q) + (1 - y[:, c]) * np.log1p(-q)))
            if best is None or loss < best[0]:
                best = (loss, limit, theta)
        assert best is not None
        rule[name] = {"side": side, "limit": best[1],
                      "coef": [round(float(t), 6) for t in best[2]]}  # fmt: skip
    return rule


def apply_rate_rule(
    prob: ArrayLike,
    heart_rate: ArrayLike,
    rule: Mapping[str, Mapping[str, Any]],
    labels: Sequence[str],
) -> NDArray[np.float64]:
    """``prob`` (n, k) with the columns of the labels in ``rule`` refined by the rate rule.

    Examples
    --------
    >>> import numpy as np
    >>> rule = {"BRADY": {"side": "below", "limit": 50.0, "coef": [1.0, 3.0, 0.0]}}
    >>> p = np.array([[0.2], [0.2], [0.2]])
    >>> apply_rate_rule(p, [45.0, 70.0, np.nan], rule, ["BRADY"]).round(3).ravel().tolist()
    [0.834, 0.2, 0.2]
    """
    out = np.array(prob, dtype=np.float64)
    hr = np.asarray(heart_rate, dtype=np.float64).reshape(-1)
    for name, r in rule.items():
        c = list(labels).index(name)
        a, k, b = (float(v) for v in r["coef"])
        z = a * _logit(out[:, c]) + k * _beyond(hr, str(r["side"]), float(r["limit"])) + b
        out[:, c] = 1.0 / (1.0 + np.exp(-z))
    return out


#: Where each head's beat-tree stacking is kept in ``ensemble.json``'s ``trees`` entry.
_TREE_STACK_KEYS = {"challenge": "stack", "superclass": "superclass_stack"}


def tree_label(head: str, label: str) -> str:
    """The name of a head's label among the beat trees' labels: the Challenge labels by their
    own names, the other heads' as ``'head:label'`` (NORM and HYP are in both heads)."""
    return label if head == "challenge" else f"{head}:{label}"


def fit_tree_stack(
    y_true: ArrayLike,
    prob: ArrayLike,
    tree_prob: ArrayLike,
    labels: Sequence[str],
    *,
    l2: float = 1e-3,
) -> dict[str, list[float]]:
    """Fit the beat-tree stacking (module docstring, step 5) of every label.

    Parameters
    ----------
    y_true, prob, tree_prob : array_like, shape (n, k)
        0/1 labels, the ensemble's probabilities (after the rate rule) and the beat trees'
        probabilities, columns in ``labels`` order.
    labels : sequence of str
        The columns' label names.
    l2 : float
        Ridge penalty pulling ``(a, c, b)`` towards ``(1, 0, 0)``, the probability unchanged.

    Returns
    -------
    dict
        Label → ``[a, c, b]``; labels without positive or negative examples are left out.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    g = np.asarray(tree_prob, dtype=np.float64)
    if not (y.shape == p.shape == g.shape) or y.ndim != 2 or y.shape[1] != len(labels):
        raise EcgscanError(
            f"fit_tree_stack needs y_true, prob and tree_prob of shape (n, {len(labels)}); "
            f"got {y.shape}, {p.shape}, {g.shape}"
        )
    stack: dict[str, list[float]] = {}
    for c, name in enumerate(labels):
        if not 0 < y[:, c].sum() < len(y):
            continue
        x = np.stack([_logit(p[:, c]), _logit(g[:, c]), np.ones(len(y))], axis=1)
        theta = _fit_logistic(x, y[:, c], prior=(1.0, 0.0, 0.0), l2=l2)
        stack[str(name)] = [round(float(t), 6) for t in theta]
    return stack


def apply_tree_stack(
    prob: ArrayLike,
    tree_prob: ArrayLike,
    stack: Mapping[str, Sequence[float]],
    labels: Sequence[str],
    tree_labels: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """``prob`` (n, k) with the columns of the labels in ``stack`` stacked with the beat
    trees' probabilities ``tree_prob`` (n, k'), whose columns are ``tree_labels`` (default:
    ``labels``).

    Examples
    --------
    >>> import numpy as np
    >>> stack = {"Acute MI": [0.5, 1.0, 0.0]}
    >>> p, g = np.array([[0.1], [0.1]]), np.array([[0.9], [0.01]])
    >>> apply_tree_stack(p, g, stack, ["Acute MI"]).round(3).ravel().tolist()
    [0.79, 0.003]
    """
    out = np.array(prob, dtype=np.float64)
    g = np.asarray(tree_prob, dtype=np.float64)
    cols = list(labels if tree_labels is None else tree_labels)
    for name, (a, k, b) in stack.items():
        c = list(labels).index(name)
        z = a * _logit(out[:, c]) + k * _logit(g[:, cols.index(name)]) + b
        out[:, c] = 1.0 / (1.0 + np.exp(-z))
    return out


def apply_platt(prob: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """``sigmoid(a · logit(prob) + b)`` column by column."""
    z = _logit(np.asarray(prob, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + np.exp(-(z * np.asarray(a) + np.asarray(b)))))


def combine(
    calibrated: Sequence[NDArray[np.float64]], weights: Sequence[float]
) -> NDArray[np.float64]:
    """Weighted average ``Σ w_m p_m / Σ w_m`` of calibrated probabilities of equal shape."""
    if not calibrated or len(calibrated) != len(weights):
        raise EcgscanError("combine() needs one weight per calibrated probability array")
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or w.sum() <= 0:
        raise EcgscanError(f"ensemble weights must be >= 0 with a positive sum, got {list(w)}")
    return np.asarray(sum(wi * p for wi, p in zip(w, calibrated, strict=True)) / w.sum())


def choose_member_weight(
    y_true: Sequence[ArrayLike],
    base: Sequence[ArrayLike],
    extra: Sequence[ArrayLike],
    *,
    grid: Sequence[float] = tuple(np.round(np.arange(0.0, 1.01, 0.05), 2)),
) -> tuple[float, list[float]]:
    """The weight ``w`` of ``extra`` in ``(1 - w)·base + w·extra`` maximising macro AUROC.

    ``y_true``, ``base``, ``extra``: one array per head (e.g. Challenge labels and
    superclasses); the score is the mean over heads of their macro AUROC.

    Returns
    -------
    weight : float
        The best ``w`` of ``grid`` (the smallest on ties).
    scores : list of float
        The score of every ``w`` of ``grid``.
    """
    from ._thresholds import macro_auroc

    scores = []
    for w in grid:
        per_head = [
            macro_auroc(y, (1 - w) * np.asarray(pb) + w * np.asarray(pe))
            for y, pb, pe in zip(y_true, base, extra, strict=True)
        ]
        scores.append(float(np.mean(per_head)))
    best = int(np.argmax(np.round(scores, 6)))
    return float(grid[best]), scores


def thresholds_of(spec: Mapping[str, Any]) -> dict[str, dict[str, NDArray[np.float64]]]:
    """An ensemble file's ``thresholds`` entry (member combination → head → per-class list)
    as arrays."""
    return {
        str(key): {str(h): np.asarray(v, dtype=np.float64) for h, v in heads.items()}
        for key, heads in spec.items()
    }


class EnsembleClassifier:
    """An ensemble loaded from its JSON file (see the module docstring for the rule).

    Parameters
    ----------
    path : path
        ``ensemble.json`` written by ``ecgscan train classifier --model ensemble``. Members
        are registered model names or ONNX files relative to the JSON's folder.
    name : str, optional
        Name reported in predictions.
    trees : bool
        Load the beat trees (``False``: the ensemble without them, as when fitting new ones,
        which may read other features than the old ones were fitted on).
    """

    input = "ensemble"

    def __init__(
        self, path: str | os.PathLike[str], *, name: str | None = None, trees: bool = True
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ensemble file {str(self.path)!r} not found")
        try:
            self.config: dict[str, Any] = json.loads(self.path.read_text())
            entries = list(self.config["members"])
            self.heads: dict[str, list[str]] = {k: list(v) for k, v in self.config["heads"].items()}
            self.thresholds = thresholds_of(self.config["thresholds"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(
                f"{str(self.path)!r} is not an ecgscan ensemble file ({exc}); write it with "
                "`ecgscan train classifier --model ensemble`"
            ) from None
        self.name = name or str(self.config.get("model", self.path.stem))
        self.exclusive = [tuple(g) for g in self.config.get("exclusive", EXCLUSIVE_LABELS)]
        self.exclusive_by = str(self.config.get("exclusive_by", "probability"))
        self.rate: dict[str, dict[str, Any]] = {
            str(k): dict(v) for k, v in self.config.get("rate", {}).items()
        }
        unknown = set(self.rate) - set(self.heads["challenge"])
        if unknown or any(r.get("side") not in ("below", "above") for r in self.rate.values()):
            raise InputFileError(
                f"{str(self.path)!r}: its rate rule names unknown labels or sides "
                f"({', '.join(sorted(unknown)) or 'side'}); refit it with "
                "`ecgscan train classifier --model ensemble`"
            )
        self.trees: BeatTrees | None = None
        #: head → label → (a, c, b) of the beat-tree stacking (``trees.stack`` for the
        #: Challenge labels, ``trees.superclass_stack`` for the superclasses)
        self.tree_stacks: dict[str, dict[str, list[float]]] = {}
        if trees and "trees" in self.config:
            spec = self.config["trees"]
            try:
                self.tree_stacks = {
                    head: {str(k): [float(v) for v in c] for k, c in spec[key].items()}
                    for head, key in _TREE_STACK_KEYS.items()
                    if key in spec or head == "challenge"
                }
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InputFileError(
                    f"{str(self.path)!r}: its 'trees' entry has no readable 'stack' ({exc!r}); "
                    "refit it with `ecgscan train classifier --model ensemble --fit-trees`"
                ) from None
            self.trees = BeatTrees(self.path.parent / str(spec.get("file", "beat_trees.npz")))
            unknown = {
                tree_label(head, name)
                for head, stack in self.tree_stacks.items()
                for name in stack
                if name not in self.heads.get(head, ())
                or tree_label(head, name) not in self.trees.labels
            }
            malformed = any(len(c) != 3 for st in self.tree_stacks.values() for c in st.values())
            if unknown or malformed:
                raise InputFileError(
                    f"{str(self.path)!r}: its beat-tree stacking names labels the ensemble or "
                    f"its trees lack, or has malformed coefficients "
                    f"({', '.join(sorted(unknown)) or 'coefficients'}); refit it with "
                    "`ecgscan train classifier --model ensemble --fit-trees`"
                )
        self.members: list[SignalClassifier | ImageClassifier] = []
        self.weights: list[float] = []
        self.head_weights: list[dict[str, float]] = []
        self.calibration: list[dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]] = []
        for entry in entries:
            self.members.append(self._load_member(entry))
            self.weights.append(float(entry.get("weight", 1.0)))
            self.head_weights.append(
                {str(h): float(w) for h, w in entry.get("head_weights", {}).items()}
            )
            self.calibration.append({
                head: (np.asarray(c["a"], dtype=np.float64), np.asarray(c["b"], dtype=np.float64))
                for head, c in entry.get("calibration", {}).items()
            })  # fmt: skip
        # what predict() reads: a member of weight 0 is never run, so its input is not gathered
        self.inputs = frozenset(
            m.input for m, w in zip(self.members, self.weights, strict=True) if w > 0
        )

    @property
    def tree_stack(self) -> dict[str, list[float]]:
        """The Challenge labels' beat-tree stacking (label → (a, c, b))."""
        return self.tree_stacks.get("challenge", {})

    def _load_member(self, entry: Mapping[str, Any]) -> SignalClassifier | ImageClassifier:
        from ._predict import _load_file

        name = str(entry["name"])
        local = self.path.parent / str(entry.get("file") or f"{name}.onnx")
        ref = str(local) if local.is_file() else name
        clf = _load_file(local, name=name) if local.is_file() else load_classifier(name)
        if not isinstance(clf, SignalClassifier | ImageClassifier):
            raise InputFileError(f"ensemble member {ref!r} must be a signal or image model")
        if clf.heads != self.heads:
            raise InputFileError(
                f"ensemble member {ref!r} has other output heads than the ensemble"
            )
        return clf

    def __repr__(self) -> str:
        names = ", ".join(
            f"{m.name}×{w:g}" for m, w in zip(self.members, self.weights, strict=True)
        )
        return f"EnsembleClassifier({self.name!r}, members=[{names}])"

    @property
    def labels(self) -> tuple[str, ...]:
        """The Challenge labels of the first head, in output order."""
        return tuple(self.heads["challenge"])

    def head_weight(self, member: int, head: str) -> float:
        """Weight of member ``member`` (index) in the average of ``head``."""
        return self.head_weights[member].get(head, self.weights[member])

    def subset_key(self, used: Sequence[int]) -> str:
        """Threshold-set key of the members ``used``: ``'signal'``, ``'signal+image'``, ..."""
        kinds = sorted({self.members[i].input for i in used}, key=("signal", "image").index)
        return "+".join(kinds)

    def combine_member_probabilities(
        self,
        member_probs: Mapping[int, Mapping[str, ArrayLike]],
        heart_rate: ArrayLike | None = None,
        features: ArrayLike | None = None,
    ) -> tuple[dict[str, NDArray[np.float64]], str]:
        """Calibrate and average raw member probabilities (member index → head → (n, k)),
        then apply the rate rule and the beat-tree stacking.

        When a signal member is among ``member_probs``, the records' measurements are
        required, since the thresholds were chosen after these steps: ``features``
        (:func:`~ecgscan.data.beats.beat_features` of the 100-Hz records, one row per input)
        if the ensemble has beat trees, else at least ``heart_rate`` (bpm per input, NaN where
        unknown; :func:`heart_rates`) if it has a rate rule. The rate is taken from
        ``features`` when not given.

        Returns the ensemble probabilities per head and the threshold-set key of the members
        given. Used by :meth:`predict` and by benchmarks that cache member outputs.
        """
        if not member_probs:
            raise EcgscanError("no ensemble member applies to this input")
        used = sorted(member_probs)
        out: dict[str, NDArray[np.float64]] = {}
        for head in self.heads:
            cal = []
            for i in used:
                p = np.asarray(member_probs[i][head], dtype=np.float64)
                a, b = self.calibration[i].get(head, (np.ones(p.shape[-1]), np.zeros(p.shape[-1])))
                cal.append(apply_platt(p, a, b))
            out[head] = combine(cal, [self.head_weight(i, head) for i in used])
        if not any(isinstance(self.members[i], SignalClassifier) for i in used):
            return out, self.subset_key(used)
        if self.trees is not None and features is None:
            raise EcgscanError(
                f"ensemble {self.name!r} needs the records' beat features (beat_features()) "
                "to apply its beat trees"
            )
        if heart_rate is None and features is not None:
            heart_rate = np.asarray(features)[:, BEAT_FEATURES.index("heart_rate")]
        if self.rate:
            if heart_rate is None:
                raise EcgscanError(
                    f"ensemble {self.name!r} needs the records' heart rates (heart_rates()) "
                    "to apply its rate rule"
                )
            out["challenge"] = apply_rate_rule(
                out["challenge"], heart_rate, self.rate, self.heads["challenge"]
            )
        if self.trees is not None:
            g = self.trees.predict_proba(np.asarray(features))
            for head, stack in self.tree_stacks.items():
                names = self.heads[head]
                cols = [self.trees.labels.index(tree_label(head, n)) for n in stack]
                out[head] = apply_tree_stack(out[head], g[:, cols], stack, names, list(stack))
        return out, self.subset_key(used)

    def predict(
        self,
        record: Record | None = None,
        *,
        image: Any = None,
        thresholds: float | Mapping[str, float] | None = None,
        name: str = "",
    ) -> Prediction:
        """Classify a record, a page image, or both (the page and its digitized record).

        Members that need what is not given are left out; at least one must apply. With a
        record only, ``predict(record)`` is a drop-in for :meth:`SignalClassifier.predict`.
        """
        member_probs: dict[int, Mapping[str, ArrayLike]] = {}
        for i, member in enumerate(self.members):
            if self.weights[i] <= 0:
                continue
            if isinstance(member, SignalClassifier) and record is not None:
                member_probs[i] = member.predict_proba([record])
            elif isinstance(member, ImageClassifier) and image is not None:
                member_probs[i] = member.predict_proba([image])
        if not member_probs:
            have = (
                "a record" if record is not None else "an image" if image is not None else "nothing"
            )
            raise EcgscanError(
                f"ensemble {self.name!r} has no member for {have} (members read: "
                f"{', '.join(sorted(self.inputs))})"
            )
        extra: dict[str, Any] = {}
        rate = features = None
        first = next((m for m in self.members if isinstance(m, SignalClassifier)), None)
        if record is not None and first is not None:
            prepared = prepare_record(record, fs=first.fs)
            if self.trees is not None:
                features = beat_features(prepared.signal[None], fs=prepared.fs)
                rate = features[:, BEAT_FEATURES.index("heart_rate")]
            else:
                rate = heart_rates(prepared.signal[None], fs=prepared.fs)
            bpm = None if np.isnan(rate[0]) else round(float(rate[0]), 1)
            extra = {"missing_leads": prepared.missing_leads,
                     "resampled_from": prepared.resampled_from, "heart_rate": bpm}  # fmt: skip
        probs, key = self.combine_member_probabilities(member_probs, rate, features)
        if key not in self.thresholds:
            raise EcgscanError(f"ensemble {self.name!r} has no thresholds for members {key!r}")
        thr = with_threshold_override(self.thresholds[key], self.heads["challenge"], thresholds)
        return make_prediction(
            self.name,
            self.heads,
            {k: v[0] for k, v in probs.items()},
            thr,
            exclusive=self.exclusive,
            exclusive_by=self.exclusive_by,
            record=name or (record.name if record is not None else "image"),
            members=tuple(self.members[i].name for i in sorted(member_probs)),
            **extra,
        )
