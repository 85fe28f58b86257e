"""Challenge macro F-measure and AUROC on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgscan.metrics import auroc, challenge_f_measure


def test_f_measure_hand_computed() -> None:
    truth = [["NORM"], ["MI", "STTC"], ["STTC"], ["CD"]]
    pred = [["NORM", "MI"], ["MI"], ["STTC", "HYP"], []]
    macro, per_class = challenge_f_measure(truth, pred)
    # CD: tp0 fn1 -> 0; MI: tp1 fp1 -> 2/3; NORM: tp1 -> 1; STTC: tp1 fn1 -> 2/3. HYP ignored.
    assert list(per_class) == ["CD", "MI", "NORM", "STTC"]
    assert per_class == pytest.approx({"CD": 0.0, "MI": 2 / 3, "NORM": 1.0, "STTC": 2 / 3})
    assert macro == pytest.approx((0 + 2 / 3 + 1 + 2 / 3) / 4)


def test_f_measure_edge_cases() -> None:
    assert challenge_f_measure([["A"]], [["A"]]) == (1.0, {"A": 1.0})
    macro, per_class = challenge_f_measure([[], []], [["A"], []])
    assert math.isnan(macro) and per_class == {}
    with pytest.raises(ValueError, match="one label list per record"):
        challenge_f_measure([["A"]], [])


def test_auroc_hand_computed_and_ties() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert auroc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    both = auroc(
        np.array([[1, 0], [0, 0], [1, 1]]),
        np.array([[0.9, 0.2], [0.1, 0.3], [0.6, 0.7]]),
        classes=["AF", "MI"],
    )
    assert both == pytest.approx({"AF": 1.0, "MI": 1.0})
    single = auroc(np.array([[1], [1]]), np.array([[0.2], [0.4]]))
    assert isinstance(single, dict) and math.isnan(single["0"])
    with pytest.raises(ValueError, match="same shape"):
        auroc([0, 1], [0.5])
