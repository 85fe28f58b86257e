"""Beat trees: scikit-learn's boosted trees stored as arrays and walked with NumPy, and their
stacking onto the ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscan.classify._ensemble import apply_tree_stack, fit_tree_stack
from ecgscan.classify._trees import BeatTrees, pack_trees
from ecgscan.data.beats import BEAT_FEATURES
from ecgscan.errors import InputFileError


def _fitted(tmp_path: Path) -> tuple[BeatTrees, dict, np.ndarray]:  # type: ignore[type-arg]
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(0)
    n, d = 3000, len(BEAT_FEATURES)
    x = rng.normal(size=(n, d))
    x[rng.random((n, d)) < 0.1] = np.nan  # unknown leads
    models = {}
    for k, name in enumerate(("A", "B")):
        logit = 2.0 * np.nan_to_num(x[:, k]) - 1.5 * (np.nan_to_num(x[:, 5 + k]) > 0.5)
        y = rng.random(n) < 1 / (1 + np.exp(-logit))
        gb = ensemble.HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=7, random_state=0)
        models[name] = gb.fit(x, y)
    path = tmp_path / "trees.npz"
    np.savez(path, **pack_trees(models, ["A", "B"]))
    return BeatTrees(path), models, x


def test_packed_trees_score_exactly_as_scikit_learn(tmp_path: Path) -> None:
    trees, models, x = _fitted(tmp_path)
    assert trees.labels == ("A", "B")
    probe = x[:500]
    ours = trees.predict_proba(probe)
    for k, name in enumerate(("A", "B")):
        np.testing.assert_allclose(ours[:, k], models[name].predict_proba(probe)[:, 1], atol=1e-9)
    # every value of a column missing: scikit-learn's learnt direction for missing values
    blind = probe.copy()
    blind[:, :3] = np.nan
    np.testing.assert_allclose(trees.predict_proba(blind)[:, 0],
                               models["A"].predict_proba(blind)[:, 1], atol=1e-9)  # fmt: skip
    with pytest.raises(ValueError, match="shape"):
        trees.predict_proba(probe[:, :10])


def test_a_bag_of_models_scores_their_mean(tmp_path: Path) -> None:
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(2)
    n, d = 2000, len(BEAT_FEATURES)
    x = rng.normal(size=(n, d))
    x[rng.random((n, d)) < 0.1] = np.nan
    y = rng.random(n) < 1 / (1 + np.exp(-2.0 * np.nan_to_num(x[:, 3])))
    # early stopping on a random tenth: the random state changes the trees and their number
    bag = [
        ensemble.HistGradientBoostingClassifier(
            max_iter=60, max_leaf_nodes=7, early_stopping=True, n_iter_no_change=3, random_state=s
        ).fit(x, y)
        for s in (0, 1, 2)
    ]
    path = tmp_path / "bag.npz"
    np.savez(path, **pack_trees({"A": bag, "B": bag[0]}, ["A", "B"]))
    trees = BeatTrees(path)
    assert len(trees.roots) == sum(m.n_iter_ for m in bag) + bag[0].n_iter_
    probe = x[:300]
    mean = np.mean([m.decision_function(probe) for m in bag], axis=0)
    np.testing.assert_allclose(trees.decision_function(probe)[:, 0], mean, atol=1e-9)
    np.testing.assert_allclose(trees.decision_function(probe)[:, 1],
                               bag[0].decision_function(probe), atol=1e-9)  # fmt: skip
    assert not np.allclose(mean, bag[0].decision_function(probe), atol=1e-3)


def test_a_broken_or_foreign_trees_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputFileError, match="not an ecgscan beat-trees file"):
        BeatTrees(bad)
    _, models, _ = _fitted(tmp_path)
    arrays = pack_trees(models, ["A", "B"])
    arrays["features"] = arrays["features"][::-1]  # fitted on other features
    other = tmp_path / "other.npz"
    np.savez(other, **arrays)
    with pytest.raises(InputFileError, match="other beat features"):
        BeatTrees(other)
    with pytest.raises(FileNotFoundError):
        BeatTrees(tmp_path / "missing.npz")


def test_the_stacking_learns_what_the_trees_add() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    y = (rng.random(n) < 0.1).astype(float)
    # the ensemble sees the label weakly, the trees see it well: the stack leans on the trees
    p = 1 / (1 + np.exp(-(-2.2 + 0.8 * y + rng.normal(0, 1, n))))
    g = 1 / (1 + np.exp(-(-2.2 + 3.0 * y + rng.normal(0, 1, n))))
    stack = fit_tree_stack(y[:, None], p[:, None], g[:, None], ["X"])
    a, c, _ = stack["X"]
    assert c > a > 0
    q = apply_tree_stack(p[:, None], g[:, None], stack, ["X"])[:, 0]
    loss = lambda v: -np.mean(y * np.log(v) + (1 - y) * np.log(1 - v))  # noqa: E731
    assert loss(q) < min(loss(p), loss(g))
    # trees without information get no weight
    noise = rng.random(n)
    assert abs(fit_tree_stack(y[:, None], p[:, None], noise[:, None], ["X"])["X"][1]) < 0.1


def test_an_ensemble_file_with_a_broken_stacking_is_reported(tmp_path: Path) -> None:
    import json
    import shutil

    from ecgscan.classify import EnsembleClassifier, load_classifier

    shipped = load_classifier("ensemble")
    assert isinstance(shipped, EnsembleClassifier) and shipped.trees is not None
    config = dict(shipped.config)
    shutil.copy2(shipped.trees.path, tmp_path / shipped.trees.path.name)
    broken = ({"file": shipped.trees.path.name}, {**config["trees"], "stack": {"NOPE": [1, 0, 0]}})
    for trees in broken:
        (tmp_path / "ensemble.json").write_text(json.dumps({**config, "trees": trees}))
        with pytest.raises(InputFileError, match="stack|names labels"):
            EnsembleClassifier(tmp_path / "ensemble.json")
