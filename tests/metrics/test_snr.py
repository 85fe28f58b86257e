"""The Challenge 2024 SNR: alignment, shifts both ways, coverage, missing estimates, lead names."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from _shared import shared_path
from ecgscan.data import Record, read_record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.errors import RecordError
from ecgscan.metrics import challenge_alignment, challenge_lead_snr, challenge_snr, mean_snr

FS = 250.0


@pytest.fixture(scope="module")
def reference() -> Record:
    return synthetic_ecg(fs=FS, duration=3.0, seed=11, noise_mv=0.0, name="ref")


@pytest.fixture(scope="module")
def few_leads(reference: Record) -> Record:
    return reference.with_leads(["I", "aVR", "V2", "V5"])


def _expected(ref: np.ndarray, est: np.ndarray) -> float:
    """Hand-written SNR on the common finite samples times the reference coverage."""
    n = max(ref.size, est.size)
    r = np.pad(ref, (0, n - ref.size), constant_values=np.nan)
    e = np.pad(est, (0, n - est.size), constant_values=np.nan)
    both = np.isfinite(r) & np.isfinite(e)
    snr = 10 * np.log10(np.mean(r[both] ** 2) / np.mean((r[both] - e[both]) ** 2))
    return float(snr * both.sum() / np.isfinite(r).sum())


def _delayed(x: np.ndarray, k: int) -> np.ndarray:
    """x delayed by k samples (k > 0: late, k < 0: early); vacated samples are NaN."""
    out = np.full_like(x, np.nan)
    if k >= 0:
        out[k:] = x[: x.size - k]
    else:
        out[:k] = x[-k:]
    return out


def test_identical_estimate_is_perfect_and_dropped(few_leads: Record) -> None:
    reference = few_leads
    scores = challenge_snr(reference, reference)
    assert list(scores) == list(reference.leads)
    assert all(math.isnan(v) for v in scores.values())  # zero noise: NaN, as the Challenge
    assert math.isnan(mean_snr(scores))
    a = challenge_alignment(reference.lead("V2"), reference.lead("V2"), fs=FS)
    assert (a.lag, a.offset_mv, a.applied) == (0, 0.0, True)


def test_noisy_estimate_scores_its_noise_level(few_leads: Record) -> None:
    reference = few_leads
    rng = np.random.default_rng(0)
    sigma = 0.02
    noise = sigma * rng.standard_normal(reference.signal.shape)
    est = reference.with_signal(reference.signal + noise)
    official = challenge_snr(reference, est)
    corrected = challenge_snr(reference, est, corrected=True)
    n_zero_lag = 0
    for j, lead in enumerate(reference.leads):
        x = reference.signal[:, j]
        a = challenge_alignment(x, est.signal[:, j], fs=FS)
        assert abs(a.lag) <= 1 and abs(a.offset_mv) < 0.02
        if a.lag == 0:
            n_zero_lag += 1
            shifted = est.signal[:, j] - a.offset_mv
            assert official[lead] == pytest.approx(_expected(x, shifted), abs=1e-9)
            assert corrected[lead] == official[lead]
            # the known noise level, up to the offset's quantisation error (one of 255 levels)
            known = 10 * np.log10(np.mean(x**2) / sigma**2)
            assert known - 1.5 < corrected[lead] < known + 0.5
    assert n_zero_lag >= 3


@pytest.mark.parametrize("k", [9, 40, 125])
def test_late_estimate_is_advanced(reference: Record, k: int) -> None:
    x = reference.lead("II")
    est = _delayed(x, k) + 0.01 * np.random.default_rng(k).standard_normal(x.size) + 0.3
    a = challenge_alignment(x, est, fs=FS)
    assert a.lag == k and a.applied
    assert a.offset_mv == pytest.approx(0.3, abs=(np.nanmax(est) - np.nanmin(x)) / 255 + 1e-9)
    expected = _expected(x, np.concatenate((est[k:], np.full(k, np.nan))) - a.offset_mv)
    for corrected in (False, True):
        got = challenge_lead_snr(x, est, fs=FS, corrected=corrected)
        assert got == pytest.approx(expected, abs=1e-9)
    assert expected > 20 * (x.size - k) / x.size  # coverage factor (n - k) / n


@pytest.mark.parametrize("k", [9, 40, 125])
def test_early_estimate_official_quirk_and_correction(reference: Record, k: int) -> None:
    x = reference.lead("II")
    est = _delayed(x, -k) + 0.01 * np.random.default_rng(k).standard_normal(x.size)
    a = challenge_alignment(x, est, fs=FS)
    assert a.lag == -k and a.applied
    fixed = challenge_lead_snr(x, est, fs=FS, corrected=True)
    official = challenge_lead_snr(x, est, fs=FS)
    delayed = np.concatenate((np.full(k, np.nan), est)) - a.offset_mv
    assert fixed == pytest.approx(_expected(x, delayed), abs=1e-9)
    assert fixed > 20
    # official scoring keeps only the first |lag| estimate samples: coverage k / n, so an early
    # estimate scores near 0 dB however good it is
    quirk = np.concatenate((np.full(k, np.nan), est[:k])) - a.offset_mv
    assert official == pytest.approx(_expected(x, quirk), abs=1e-9)
    assert 0 <= official < 1.5 * fixed * k / x.size


def test_shift_beyond_the_window_is_not_applied(reference: Record) -> None:
    x = reference.lead("V2")
    k = int(round(0.5 * FS)) + 60
    for lag in (k, -k):
        est = _delayed(x, lag) + 0.01 * np.random.default_rng(1).standard_normal(x.size)
        a = challenge_alignment(x, est, fs=FS)
        assert abs(a.lag) == k and not a.applied
        got = challenge_lead_snr(x, est, fs=FS)
        assert got == pytest.approx(_expected(x, est), abs=1e-9)
        assert got == challenge_lead_snr(x, est, fs=FS, corrected=True)


def test_vertical_offset_beyond_1_mv_is_not_applied(reference: Record) -> None:
    x = reference.lead("II")
    est = x + 1.6
    a = challenge_alignment(x, est, fs=FS)
    assert a.lag == 0 and a.offset_mv == pytest.approx(1.6, abs=0.02) and not a.applied
    assert challenge_lead_snr(x, est, fs=FS) == pytest.approx(_expected(x, est), abs=1e-9)


def test_partly_nan_estimate_is_scaled_by_coverage(reference: Record) -> None:
    rng = np.random.default_rng(5)
    x = reference.lead("V4")
    est = x + 0.02 * rng.standard_normal(x.size)
    est[: x.size // 4] = np.nan
    a = challenge_alignment(x, est, fs=FS)
    assert a.lag == 0
    q = x.size // 4
    full = _expected(x[q:], est[q:] - a.offset_mv)
    got = challenge_lead_snr(x, est, fs=FS)
    assert got == pytest.approx(full * (x.size - q) / x.size, abs=1e-9)


def test_reference_nan_samples_are_not_scored(reference: Record) -> None:
    # Challenge references are NaN where the page does not print a lead
    x = reference.lead("V1").copy()
    x[: x.size // 2] = np.nan
    est = reference.lead("V1") + 0.02 * np.random.default_rng(2).standard_normal(x.size)
    got = challenge_lead_snr(x, est, fs=FS, corrected=True)
    a = challenge_alignment(x, est, fs=FS)
    assert a.lag == 0
    assert got == pytest.approx(_expected(x, est - a.offset_mv), abs=1e-9)


def test_missing_estimate_scores_zero_and_empty_overlap_is_nan(reference: Record) -> None:
    assert challenge_snr(reference, None) == dict.fromkeys(reference.leads, 0.0)
    empty = reference.with_signal(np.full(reference.signal.shape, np.nan))
    assert all(math.isnan(v) for v in challenge_snr(reference, empty).values())


def test_lead_names_match_case_insensitively_and_absent_leads_are_zeros(
    reference: Record, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    noisy = reference.signal + 0.02 * rng.standard_normal(reference.signal.shape)
    order = [5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10]  # V6 (index 11) left out, columns shuffled
    leads = [reference.leads[i] for i in order]
    Record(noisy[:, order], fs=FS, leads=leads).to_wfdb(tmp_path / "est")
    # spell the names in the header as other tools do: 'AVF', 'i', 'v1', ...
    hea = tmp_path / "est.hea"
    lines = hea.read_text().splitlines()
    for i, lead in enumerate(leads, start=1):
        spelled = lead.lower() if i % 2 else lead.upper()
        lines[i] = lines[i].rsplit(" ", 1)[0] + " " + spelled
    hea.write_text("\n".join(lines) + "\n")
    assert " avf\n" in hea.read_text() and " AVL\n" in hea.read_text()
    est = read_record(tmp_path / "est")
    assert "aVR" in est.leads and "V6" not in est.leads
    got = challenge_snr(reference, est)
    same = challenge_snr(reference, reference.with_signal(np.round(noisy, 3)))
    for lead in reference.leads[:11]:
        assert got[lead] == pytest.approx(same[lead], abs=1e-9)
    # an absent lead is scored as a flat zero estimate: finite and near 0 dB, not NaN
    assert math.isfinite(got["V6"]) and abs(got["V6"]) < 3


def test_sampling_frequency_mismatch_is_an_error(reference: Record) -> None:
    with pytest.raises(RecordError, match=r"sampled at 500 Hz.*250 Hz"):
        challenge_snr(reference, reference.resample(500))


def test_matches_on_a_real_challenge_reference(shared_eik: Path) -> None:
    ref = read_record(shared_eik / "A_clean" / "00017_hr")
    assert np.isnan(ref.signal).any()  # unprinted samples are NaN
    lead = ref.lead("II")
    est = _delayed(lead, -15) + 0.03 * np.random.default_rng(7).standard_normal(lead.size)
    a = challenge_alignment(lead, est, fs=ref.fs)
    assert a.lag == -15 and a.applied
    assert challenge_lead_snr(lead, est, fs=ref.fs, corrected=True) > 10
    assert challenge_lead_snr(lead, est, fs=ref.fs) < 1


@pytest.fixture
def shared_eik() -> Path:
    return shared_path("images", "eik-dev")
