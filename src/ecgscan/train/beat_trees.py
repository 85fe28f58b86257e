"""Fit the ensemble's beat trees and their stacking (``ecgscan train classifier --model ensemble
--fit-trees ENSEMBLE.json``).

1. **Trees.** A bag of scikit-learn ``HistGradientBoostingClassifier`` models (one per
   random state of :data:`TREE_SEEDS`, scored by their mean) per Challenge label on
   :func:`~ecgscan.data.beats.beat_features` of the training folds' records, each record
   clean and once distorted the way digitizing does (:func:`augment_batch`), so that the
   trees know a 3×4 page's 2.5-s windows and a digitizer's noise. Stored as arrays
   (:func:`~ecgscan.classify._trees.pack_trees`), checked against scikit-learn's own scores.
2. **Stacking.** On the validation folds (clean and once distorted, the ensemble's own
   validation recipe), per label ``sigmoid(a · logit(p) + c · logit(g) + b)`` of the
   ensemble's probability ``p`` and the trees' ``g`` (:func:`fit_tree_stack`). A label is
   stacked only when that lowers its log-loss under 5-fold cross-fitting on the validation
   records; its threshold is then chosen again (F1-optimal, clean and distorted). The rate
   labels (BRADY, TACHY) have no trees: they keep the rate rule, fitted on fold 8. Stacking
   trees onto them lowered their log-loss but not their F1 (fold 9, cross-fitted with every
   threshold: BRADY 0.691 -> 0.677, TACHY 0.784 -> 0.783, macro F 0.7263 without them
   against 0.7249 with them).
3. **Honest figure.** The same procedure, cross-fitted (fitted on four fifths of the
   validation records, applied to the fifth), gives the validation macro F the stacking can be
   expected to reach on new records; it is written into the model card next to the shipped
   ensemble's figure on the same records.

The ensemble's members, calibration, weights and rate rule are kept. The stacking must be
fitted on records the members never saw: the shipped members were trained on folds 1–8, so
``--val-folds 9``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..classify._thresholds import choose_thresholds, per_class_auroc
from ..data.beats import beat_features
from ..data.labels import CHALLENGE_LABELS
from ..errors import EcgscanError

#: scikit-learn settings of every label's trees.
TREE_PARAMS: dict[str, Any] = {
    "max_iter": 300,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "l2_regularization": 1.0,
}
#: Each label's trees are a bag of models fitted with these random states, scored by their
#: mean. scikit-learn's early stopping holds out a random tenth of the rows, so one model's
#: iteration count, and a rare label's trees (Acute MI: about 300 positive rows), vary with the
#: random state; the bag's mean varies less.
TREE_SEEDS: tuple[int, ...] = (0, 1, 2)
_CROSS_FOLDS = 5


def _log_loss(y: NDArray[Any], q: NDArray[np.float64]) -> float:
    q = np.clip(q, 1e-6, 1 - 1e-6)
    return float(-np.sum(y * np.log(q) + (1 - y) * np.log1p(-q)))


def select_and_fit_stack(
    y: NDArray[Any],
    p: NDArray[np.float64],
    g: NDArray[np.float64],
    groups: NDArray[np.int64],
    labels: Sequence[str],
    *,
    seed: int = 0,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """The stacking of the labels it helps, fitted on all rows, and the cross-fitted report.

    ``groups`` gives each row's record, so that a record's clean and distorted copies fall in
    the same cross-fitting part. Returns the stack (label → ``[a, c, b]``) and a report: per
    label the cross-fitted log-loss without (Platt scaling alone) and with the trees, and the
    parts.
    """
    from ..classify._ensemble import apply_platt, apply_tree_stack, fit_platt, fit_tree_stack

    rng = np.random.default_rng(seed)
    records = np.unique(groups)
    part_of = dict(zip(rng.permutation(records), np.arange(len(records)) % _CROSS_FOLDS,
                       strict=True))  # fmt: skip
    part = np.array([part_of[r] for r in groups])
    q_base = np.zeros_like(p)
    q_tree = np.zeros_like(p)
    for k in range(_CROSS_FOLDS):
        fit, held = part != k, part == k
        q_base[held] = apply_platt(p[held], *fit_platt(y[fit], p[fit]))
        stack = fit_tree_stack(y[fit], p[fit], g[fit], labels)
        q_tree[held] = apply_tree_stack(p[held], g[held], stack, labels)
    loss = {
        name: (_log_loss(y[:, c], q_base[:, c]), _log_loss(y[:, c], q_tree[:, c]))
        for c, name in enumerate(labels)
    }
    full = fit_tree_stack(y, p, g, labels)
    stack = {name: full[name] for name, (lb, lt) in loss.items() if lt < lb and name in full}
    return stack, {"log_loss": loss, "part": part}


def _superclass_stack(
    y: NDArray[Any],
    p: NDArray[np.float64],
    g: NDArray[np.float64],
    groups: NDArray[np.int64],
    clean: NDArray[np.bool_],
    fitted: Sequence[str],
    superclasses: Sequence[str],
    *,
    seed: int,
    log: Callable[[str], None],
) -> tuple[dict[str, list[float]], dict[str, Any], NDArray[np.float64]]:
    """The superclass head's stacking (:func:`select_and_fit_stack`) on the validation rows
    that have a superclass, its cross-fitted macro AUROC next to the ensemble's before, and
    the thresholds re-chosen on the stacked probabilities (every superclass; only the stacked
    ones are used). ``g`` holds the trees of ``fitted`` (superclass names), ``y`` and ``p``
    every superclass."""
    from ..classify._ensemble import apply_tree_stack

    has = y.sum(axis=1) > 0
    cols = [list(superclasses).index(n) for n in fitted]
    if not fitted or not has.any():
        return {}, {}, np.zeros(len(superclasses))
    stack, report = select_and_fit_stack(y[has][:, cols], p[has][:, cols], g[has],
                                         groups[has], fitted, seed=seed)  # fmt: skip
    log(f"  stacked superclasses (cross-fitted log-loss lower): {', '.join(stack) or 'none'}")
    q = p.copy()  # cross-fitted: each part stacked by the stacking of the other parts
    part = np.full(len(y), -1)
    part[has] = report["part"]
    for k in range(_CROSS_FOLDS):
        fit = has & (part != k)
        sub, _ = select_and_fit_stack(y[fit][:, cols], p[fit][:, cols], g[fit], groups[fit],
                                      fitted, seed=seed)  # fmt: skip
        held = part == k
        q[held] = apply_tree_stack(p[held], g[held], sub, superclasses, fitted)
    figures: dict[str, Any] = {}
    for variant, rows in (("clean", clean & has), ("distorted", ~clean & has)):
        before, after = per_class_auroc(y[rows], p[rows]), per_class_auroc(y[rows], q[rows])
        figures[variant] = {
            "macro_auroc_before": round(float(np.nanmean(before)), 4),
            "macro_auroc_cross_fitted": round(float(np.nanmean(after)), 4),
            "auroc_before": [round(float(v), 4) for v in before],
            "auroc_cross_fitted": [round(float(v), 4) for v in after],
        }
        log(f"  validation superclass macro AUROC, {variant}: {np.nanmean(before):.4f} (ensemble "
            f"before) -> {np.nanmean(after):.4f} (with the trees, cross-fitted)")  # fmt: skip
    thr = choose_thresholds(y[has], apply_tree_stack(p[has], g[has], stack, superclasses, fitted))
    return stack, figures, thr


def fit_ensemble_trees(config: Any, *, log: Callable[[str], None] = print) -> Any:
    """Fit beat trees on ``config.train_folds`` and their stacking onto the ensemble
    ``config.fit_trees`` on ``config.val_folds``; write ``ensemble.json``,
    ``beat_trees.npz`` and the model card into ``config.output`` (module docstring)."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError:
        raise EcgscanError(
            "fitting beat trees needs scikit-learn: pip install 'ecgscan[train]'"
        ) from None
    from ..classify._ensemble import (
        RATE_LABELS,
        EnsembleClassifier,
        apply_tree_stack,
        thresholds_of,
        tree_label,
    )
    from ..classify._predict import SignalClassifier
    from ..classify._trees import BeatTrees, pack_trees
    from ._common import AugmentConfig, augment_batch
    from .classifier import (
        TrainResult,
        _f1_per_class,
        _git_commit,
        _run_signal_member,
        load_ptbxl_splits,
        write_ensemble_card,
    )

    start = time.monotonic()
    ens = EnsembleClassifier(config.fit_trees, trees=False)
    if "trees" in ens.config:  # refitting: start from the thresholds before the stacking
        try:
            before = ens.config["trees"]["thresholds_before"]
            ens.config["thresholds"] = copy.deepcopy(before)
            ens.thresholds = thresholds_of(before)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise EcgscanError(
                f"{str(config.fit_trees)!r} has beat trees but not the thresholds from before "
                "their stacking ('thresholds_before'), which refitting them starts from; fit the "
                "trees onto the ensemble file without its 'trees' entry"
            ) from None
    out_dir = Path(config.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = list(ens.heads["challenge"])
    if labels != list(CHALLENGE_LABELS):
        raise EcgscanError(f"{config.fit_trees!r} does not predict the Challenge labels in order")
    log(f"loading PTB-XL folds {list(config.train_folds)} (trees) and "
        f"{list(config.val_folds)} (stacking)")  # fmt: skip
    splits = load_ptbxl_splits(
        config.ptbxl,
        folds={"train": config.train_folds, "val": config.val_folds},
        fs=100.0,
        n_samples=config.n_samples,
        ptbxl_plus=config.ptbxl_plus,
        cache_dir=config.cache_dir,
        limit=config.limit,
    )
    train, val = splits["train"], splits["val"]
    train_aug = augment_batch(train.signals, np.random.default_rng(config.seed + 7), fs=100.0,
                              config=AugmentConfig(p=1.0))  # fmt: skip
    x_train = np.concatenate([beat_features(train.signals, fs=100.0),
                              beat_features(train_aug, fs=100.0)])  # fmt: skip
    y_train = np.concatenate([train.challenge, train.challenge])
    s_train = np.concatenate([train.superclass, train.superclass])
    has_train = s_train.sum(axis=1) > 0  # records with a diagnostic statement
    superclasses = list(ens.heads["superclass"])
    log(f"  beat features of {len(x_train)} training signals ({len(train.signals)} records, "
        f"clean and distorted): {(time.monotonic() - start) / 60:.1f} min")  # fmt: skip

    def fit_bag(x: NDArray[np.float64], yc: NDArray[Any], name: str) -> None:
        if not 0 < yc.sum() < len(yc):  # (a small --limit run)
            log(f"  no trees for {name}: no positive or no negative training record")
            return
        models[name] = [
            HistGradientBoostingClassifier(**TREE_PARAMS, random_state=seed).fit(x, yc)
            for seed in TREE_SEEDS
        ]
        iterations = ", ".join(str(m.n_iter_) for m in models[name])
        log(f"  trees of {name}: {iterations} iterations")

    models: dict[str, list[Any]] = {}
    for name in labels:
        if name not in RATE_LABELS:  # the rate rule's: stacking trees cost them F1 (docstring)
            fit_bag(x_train, y_train[:, labels.index(name)], name)
    fitted = list(models)
    for j, name in enumerate(superclasses):  # on the records that have a superclass
        fit_bag(x_train[has_train], s_train[has_train, j], tree_label("superclass", name))
    sup_fitted = [n for n in superclasses if tree_label("superclass", n) in models]
    cols = [labels.index(n) for n in fitted]
    trees_path = out_dir / "beat_trees.npz"
    tmp = trees_path.with_name(trees_path.name + ".part.npz")
    arrays: dict[str, Any] = pack_trees(models, list(models))
    np.savez_compressed(tmp, **arrays)
    tmp.replace(trees_path)
    trees = BeatTrees(trees_path)
    check = x_train[:: max(1, len(x_train) // 2000)]
    ours = trees.decision_function(check)
    theirs = np.stack(
        [np.mean([m.decision_function(check) for m in bag], axis=0) for bag in models.values()],
        axis=1,
    )
    if not np.allclose(ours, theirs, atol=1e-6):
        raise EcgscanError("the packed beat trees disagree with scikit-learn's scores")

    # the stacking, on the validation records clean + distorted (the ensemble's recipe)
    val_aug = augment_batch(val.signals, np.random.default_rng(12345), fs=100.0,
                            config=AugmentConfig())  # fmt: skip
    used = [i for i, m in enumerate(ens.members)
            if isinstance(m, SignalClassifier) and ens.weights[i] > 0]  # fmt: skip
    p_parts, ps_parts, g_parts = [], [], []
    for sig in (val.signals, val_aug):
        feats = beat_features(sig, fs=100.0)
        raw = {i: _run_signal_member(ens.members[i], sig) for i in used}
        out = ens.combine_member_probabilities(raw, features=feats)[0]
        p_parts.append(out["challenge"])
        ps_parts.append(out["superclass"])
        g_parts.append(trees.predict_proba(feats))
    y = np.concatenate([val.challenge, val.challenge])
    p, g_all = np.concatenate(p_parts), np.concatenate(g_parts)
    g, g_sup = g_all[:, : len(fitted)], g_all[:, len(fitted) :]
    groups = np.concatenate([np.arange(len(val.challenge))] * 2)
    clean = np.arange(len(y)) < len(val.challenge)
    stack, report = select_and_fit_stack(y[:, cols], p[:, cols], g, groups, fitted,
                                         seed=config.seed)  # fmt: skip
    log(f"  stacked labels (cross-fitted log-loss lower): {', '.join(stack) or 'none'}")
    sup_stack, sup_figures, sup_thr = _superclass_stack(
        np.concatenate([val.superclass, val.superclass]), np.concatenate(ps_parts), g_sup,
        groups, clean, sup_fitted, superclasses, seed=config.seed, log=log,
    )  # fmt: skip

    # thresholds of the stacked labels, chosen again on the stacked probabilities
    ens_config = copy.deepcopy(ens.config)
    thr = choose_thresholds(y, apply_tree_stack(p, g, stack, labels, fitted))
    for key, heads in ens_config["thresholds"].items():
        if "signal" in key.split("+"):
            for name in stack:
                heads["challenge"][labels.index(name)] = round(float(thr[labels.index(name)]), 6)
            for name in sup_stack:
                j = superclasses.index(name)
                heads["superclass"][j] = round(float(sup_thr[j]), 6)

    # the honest figure: the whole procedure cross-fitted on the validation records
    shipped = np.asarray(ens.thresholds["signal"]["challenge"])
    pred_ship = p >= shipped
    pred_cross = np.zeros_like(pred_ship)
    part = report["part"]
    for k in range(_CROSS_FOLDS):
        fit, held = part != k, part == k
        sub, _ = select_and_fit_stack(y[fit][:, cols], p[fit][:, cols], g[fit], groups[fit],
                                      fitted, seed=config.seed)  # fmt: skip
        q = apply_tree_stack(p, g, sub, labels, fitted)
        t = shipped.copy()
        t_fit = choose_thresholds(y[fit], q[fit])
        for name in sub:
            t[labels.index(name)] = t_fit[labels.index(name)]
        pred_cross[held] = q[held] >= t
    figures: dict[str, Any] = {}
    for variant, rows in (("clean", clean), ("distorted", ~clean)):
        # the Challenge's macro F: classes with no positive and no prediction left out (NaN)
        per_ship = _f1_per_class(y[rows], pred_ship[rows])
        per_cross = _f1_per_class(y[rows], pred_cross[rows])
        f_ship, f_cross = float(np.nanmean(per_ship)), float(np.nanmean(per_cross))
        figures[variant] = {
            "macro_f_before": round(f_ship, 4),
            "macro_f_cross_fitted": round(f_cross, 4),
            "f1_before": [round(float(v), 3) for v in per_ship],
            "f1_cross_fitted": [round(float(v), 3) for v in per_cross],
        }
        log(f"  validation macro F, {variant}: {f_ship:.4f} (ensemble before) -> "
            f"{f_cross:.4f} (with the trees, cross-fitted)")  # fmt: skip
    ens_config["trees"] = {
        "file": trees_path.name,
        "stack": stack,
        "superclass_stack": sup_stack,
        "thresholds_before": ens.config["thresholds"],
    }
    ens_config["validation"]["trees"] = {
        "log_loss_cross_fitted": {
            n: [round(a, 2), round(b, 2)] for n, (a, b) in report["log_loss"].items()
        },
        **figures,
        "superclass": sup_figures,
    }
    ens_config["training"]["trees"] = {
        "train_folds": list(config.train_folds),
        "val_folds": list(config.val_folds),
        "params": TREE_PARAMS,
        "random_states": list(TREE_SEEDS),
        "commit": _git_commit(),
        "minutes": round((time.monotonic() - start) / 60, 1),
    }
    json_path = out_dir / "ensemble.json"
    json_path.write_text(json.dumps(ens_config, indent=1))
    card = write_ensemble_card(out_dir / "MODEL_CARD_ensemble.md", ens_config)
    minutes = (time.monotonic() - start) / 60
    log(f"wrote {json_path}, {trees_path} and {card} ({minutes:.1f} min)")
    return TrainResult(json_path, card, ens_config, ens_config["validation"]["trees"], minutes)
