from __future__ import annotations

import numpy as np
import pytest

from ecgscan.classify import choose_thresholds, macro_auroc, per_class_auroc
from ecgscan.errors import EcgscanError


def test_f1_threshold_separates_a_separable_class() -> None:
    y = np.array([[1], [1], [1], [0], [0], [0]])
    p = np.array([[0.9], [0.8], [0.35], [0.3], [0.2], [0.1]])
    (t,) = choose_thresholds(y, p)
    assert 0.3 < t < 0.35


def test_f1_prefers_recall_when_it_pays() -> None:
    # all four positive: F1 = 2*2/(2+4) = 0.67; cut at 0.75: F1 = 2*1/(1+2) = 0.67;
    # cut between 0.6 and 0.4: both positives and one false positive, F1 = 0.8
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.9], [0.7], [0.6], [0.4]])
    (t,) = choose_thresholds(y, p)
    assert 0.4 < t < 0.6


def test_youden_and_constant_classes() -> None:
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    p = np.array([[0.6, 0.9], [0.55, 0.1], [0.5, 0.2], [0.1, 0.3]])
    t = choose_thresholds(y, p, method="youden")
    assert 0.5 < t[0] < 0.55
    assert t[1] == 0.5  # no positive: default


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(EcgscanError, match="f1, youden"):
        choose_thresholds([[1]], [[0.5]], method="best")


def test_auroc_matches_the_pair_count() -> None:
    rng = np.random.default_rng(0)
    y = rng.random((200, 3)) < 0.3
    p = rng.random((200, 3)) + 0.3 * y
    auc = per_class_auroc(y, p)
    for c in range(3):
        pos, neg = p[y[:, c], c], p[~y[:, c], c]
        pairs = (pos[:, None] > neg[None, :]).mean()
        assert auc[c] == pytest.approx(pairs)
    assert macro_auroc(y, p) == pytest.approx(auc.mean())
    assert np.isnan(per_class_auroc(np.zeros((4, 1)), np.ones((4, 1)))[0])


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(EcgscanError, match="shape"):
        choose_thresholds(np.zeros((3, 2)), np.zeros((3, 3)))
