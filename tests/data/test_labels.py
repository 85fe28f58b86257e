from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecgscan.data.labels import (
    CHALLENGE_LABELS,
    LabelError,
    labels_to_matrix,
    labels_to_vector,
    normalize_labels,
    vector_to_labels,
)
from ecgscan.errors import EcgscanError


def test_label_order_is_the_challenges() -> None:
    assert CHALLENGE_LABELS == (
        "NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY",
        "BRADY",
    )  # fmt: skip


def test_vector_positions_and_dtype() -> None:
    vec = labels_to_vector(["BRADY", "Acute MI"])
    assert vec.dtype == np.float32 and vec.shape == (11,)
    assert np.flatnonzero(vec).tolist() == [1, 10]
    assert labels_to_vector([]).sum() == 0
    assert labels_to_vector("").sum() == 0


def test_strings_are_split_and_matched_case_insensitively() -> None:
    assert normalize_labels("STTC, norm") == ("NORM", "STTC")
    assert normalize_labels("afib/afl| Old MI |") == ("Old MI", "AFIB/AFL")
    assert normalize_labels(["HYP", "hyp", "NORM"]) == ("NORM", "HYP")
    assert (
        labels_to_vector("Acute MI|BRADY").tolist()
        == labels_to_vector(["acute mi", "brady"]).tolist()
    )


def test_unknown_label_lists_the_valid_ones() -> None:
    with pytest.raises(LabelError, match=r"unknown label 'MI'; expected one of NORM, Acute MI"):
        labels_to_vector(["NORM", "MI"])
    with pytest.raises(EcgscanError, match="AFIB/AFL"):
        normalize_labels("AFIB")
    with pytest.raises(LabelError, match="must be strings"):
        labels_to_vector([1])  # type: ignore[list-item]


def test_vector_to_labels_threshold_and_errors() -> None:
    scores = np.array([0.2, 0.5, 0.49, 0, 0, 0, 0, 0, 0, 0, 1.0])
    assert vector_to_labels(scores) == ("Acute MI", "BRADY")
    assert vector_to_labels(scores, threshold=0.1) == ("NORM", "Acute MI", "Old MI", "BRADY")
    with pytest.raises(LabelError, match=r"shape \(11,\).*got shape \(10,\)"):
        vector_to_labels(np.ones(10))
    with pytest.raises(LabelError, match="NaN"):
        vector_to_labels(np.full(11, np.nan))
    with pytest.raises(LabelError, match="numeric"):
        vector_to_labels(["a"] * 11)


def test_matrix() -> None:
    mat = labels_to_matrix([("NORM",), (), "CD|PVC"])
    assert mat.shape == (3, 11) and mat.dtype == np.float32
    assert mat.sum(axis=1).tolist() == [1, 0, 2]
    assert labels_to_matrix([]).shape == (0, 11)


@given(st.sets(st.sampled_from(CHALLENGE_LABELS)))
def test_round_trip(labels: set[str]) -> None:
    expected = tuple(name for name in CHALLENGE_LABELS if name in labels)
    assert vector_to_labels(labels_to_vector(labels)) == expected
    assert normalize_labels("|".join(labels)) == expected
