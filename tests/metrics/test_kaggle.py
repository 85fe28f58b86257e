"""The Kaggle 2025 SNR on cases with known answers (the competition notebook's own examples)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgscan.data import LEADS, Record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.metrics import KAGGLE_MAX_RATIO, kaggle_align, kaggle_page_ratio, kaggle_snr

# The metric notebook's example page: fs = 1 Hz, lead II 12 samples, other leads 3 samples.
_SHORT = {
    "I": [0.1, 0.3, 0.4], "III": [0.6, 0.6, 0.4], "aVR": [0.2, 0.3, 0.4],
    "aVL": [0.5, 0.2, 0.7], "aVF": [0.2, 0.3, 0.4], "V1": [0.8, 0.6, 0.7],
    "V2": [0.2, 0.3, -0.1], "V3": [0.5, 0.6, 0.7], "V4": [0.2, 0.9, 0.4],
    "V5": [0.5, 0.6, 0.7], "V6": [0.1, 0.3, 0.4],
}  # fmt: skip
_II = [0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7, 0.2, 0.3, 0.4]


def _page(changes: dict[tuple[str, int], float] | None = None) -> Record:
    signal = np.full((12, 12), np.nan)
    for j, lead in enumerate(LEADS):
        values = _II if lead == "II" else _SHORT[lead]
        signal[: len(values), j] = values
    for (lead, i), value in (changes or {}).items():
        signal[i, LEADS.index(lead)] = value
    return Record(signal, fs=1, leads=LEADS, name="343")


def test_notebook_examples() -> None:
    ref = _page()
    assert kaggle_snr([(ref, ref)]) == pytest.approx(10 * math.log10(384), abs=1e-9)
    assert round(kaggle_snr([(ref, _page({("I", 0): 0.9}))]), 4) == 13.6291
    both = _page({("I", 0): 0.9, ("III", 1): 0.3})
    assert round(kaggle_snr([(ref, both)]), 4) == 13.0576
    zeros = ref.with_signal(np.where(np.isnan(ref.signal), np.nan, 0.0))
    assert kaggle_snr([(zeros, both)]) == -384  # no signal power: ratio 0, floored
    assert kaggle_snr([(zeros, zeros)]) == pytest.approx(25.8433, abs=1e-4)


def test_alignment_examples() -> None:
    same = kaggle_align(np.array([0, 1, 2, 1, 0.0]), np.array([0, 1, 2, 1, 0.0]), max_shift=10)
    np.testing.assert_allclose(same, [0, 1, 2, 1, 0])
    dc = kaggle_align(np.array([0, 1, 2, 1, 0.0]), np.array([10, 11, 12, 11, 10.0]), max_shift=10)
    np.testing.assert_allclose(dc, [0, 1, 2, 1, 0], atol=1e-12)
    label = np.array([0, 0, 1, 2, 1, 0, 0.0])
    pred = np.array([1, 2, 1, 0, 0, 0, 0.0])
    shifted = kaggle_align(label, pred, max_shift=10)
    np.testing.assert_allclose(shifted, [np.nan, np.nan, 1, 2, 1, 0, 0], atol=1e-12)
    # beyond max_shift the lag cannot be corrected
    limited = kaggle_align(label, pred, max_shift=1)
    assert np.isnan(limited[0]) and not np.allclose(limited[1:], label[1:])


def test_scaled_estimate_has_the_hand_computed_ratio() -> None:
    ref = synthetic_ecg(fs=100, duration=2.0, seed=4, noise_mv=0.0)
    half = ref.with_signal(0.5 * ref.signal)
    signal = noise = 0.0
    for j in range(ref.n_leads):
        x = ref.signal[:, j]
        signal += np.sum(x**2)
        noise += np.sum((0.5 * (x - x.mean())) ** 2)  # LS offset removes half the mean
    assert kaggle_page_ratio(ref, half) == pytest.approx(signal / noise, rel=1e-9)
    assert kaggle_snr([(ref, half), (ref, ref)]) == pytest.approx(
        10 * math.log10((signal / noise + KAGGLE_MAX_RATIO) / 2), rel=1e-9
    )


def test_time_shift_within_window_is_corrected_and_missing_scores_zeros() -> None:
    ref = synthetic_ecg(fs=100, duration=2.0, seed=4, noise_mv=0.0).with_leads(["II", "V3"])
    late = np.vstack([np.zeros((10, 2)), ref.signal[:-10]])  # 0.1 s late
    ratio = kaggle_page_ratio(ref, ref.with_signal(late))
    # advanced by 10 samples, the prediction has nothing for the last 10: they count as noise
    lost = float(np.sum(ref.signal[-10:] ** 2))
    assert ratio == pytest.approx(np.sum(ref.signal**2) / lost, rel=0.05)
    # a missing estimate is a flat prediction; the least-squares offset makes it the mean
    centred = ref.signal - ref.signal.mean(axis=0)
    expected = np.sum(ref.signal**2) / np.sum(centred**2)
    assert kaggle_page_ratio(ref, None) == pytest.approx(expected, rel=1e-9)
