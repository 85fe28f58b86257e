"""R peaks, rhythm measures and median beats (ecgscan.data.beats) on real and synthetic ECGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscan.classify._signal import beat_samples, encode_beats
from ecgscan.data.beats import (
    BEAT_FEATURES,
    RHYTHM_FEATURES,
    beat_features,
    detect_r_peaks,
    detect_r_peaks_batch,
    median_beats,
    rhythm_features,
)
from ecgscan.data.ptbxl import PTBXL
from ecgscan.data.synthetic import synthetic_ecg


@pytest.mark.parametrize("fs", [100.0, 500.0])
@pytest.mark.parametrize("bpm", [45.0, 75.0, 150.0])
def test_heart_rate_of_synthetic_records(fs: float, bpm: float) -> None:
    rec = synthetic_ecg(fs=fs, duration=10, heart_rate=bpm, seed=2)
    peaks = detect_r_peaks(rec.signal.T, fs=fs)
    feats = dict(zip(RHYTHM_FEATURES, rhythm_features(peaks, fs=fs), strict=True))
    assert abs(feats["heart_rate"] - bpm) < 0.04 * bpm
    assert feats["rr_cv"] < 0.1  # a regular rhythm
    assert abs(len(peaks) - bpm / 6) <= 1.5  # the beats of 10 s


def _three_by_four(signal: np.ndarray, fs: float) -> np.ndarray:
    """Only what a 3x4 page prints: each lead in its 2.5-s column, lead II whole."""
    out = np.full_like(signal, np.nan)
    quarter = int(2.5 * fs)
    for i in range(12):
        col = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}.get(i, 2 if i < 9 else 3)
        out[i, col * quarter : (col + 1) * quarter] = signal[i, col * quarter : (col + 1) * quarter]
    out[1] = signal[1]
    return out


def test_real_record_beats_and_a_3x4_page_agree(ptbxl_dir: Path) -> None:
    db = PTBXL(ptbxl_dir)
    rec = db.record(db.ecg_ids(folds=[9], fs=100)[0], fs=100).standard()
    x = rec.signal.T
    full = median_beats(x, fs=100)
    assert full.known.all() and full.beats.shape == (12, beat_samples(100))
    # the QRS (largest deflection over the leads) lies around the peak, not at the ends
    qrs = int(np.argmax(np.abs(full.beats).sum(axis=0)))
    assert abs(qrs - round(0.25 * 100)) <= 8
    # a 3x4 page: the same beats (within 20 ms), each lead's median from its column
    page = _three_by_four(x, 100.0)
    p_page = detect_r_peaks(page, fs=100)
    assert len(p_page) == len(full.peaks)
    assert np.abs(p_page - full.peaks).max() <= 2  # the envelope of other leads
    part = median_beats(page, fs=100)
    assert part.known.all()
    # a median of the 2-3 beats of one column: within about a tenth of a millivolt
    rms = np.sqrt(np.mean((full.beats - part.beats) ** 2, axis=1))
    assert rms.max() < 0.15 and np.median(rms) < 0.07


def test_batch_detection_equals_one_by_one(example_record) -> None:  # type: ignore[no-untyped-def]
    x = example_record.resample(100).signal.T
    batch = np.stack([x, _three_by_four(x, 100.0), np.full_like(x, np.nan)])
    got = detect_r_peaks_batch(batch, fs=100)
    for sig, peaks in zip(batch, got, strict=True):
        np.testing.assert_array_equal(peaks, detect_r_peaks(sig, fs=100))
    assert got[2].size == 0


def test_nothing_known_gives_no_beats() -> None:
    x = np.full((12, 1000), np.nan)
    x[3, :50] = 0.1  # half a second: too short to count
    assert detect_r_peaks(x, fs=100).size == 0
    mb = median_beats(x, fs=100)
    assert not mb.known.any() and not mb.beats.any()
    np.testing.assert_array_equal(rhythm_features(mb.peaks, fs=100), np.zeros(6))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="fs must be"):
        detect_r_peaks(np.zeros((12, 1000)), fs=10)
    with pytest.raises(ValueError, match=r"shape \(leads, samples\)"):
        detect_r_peaks(np.zeros((2, 12, 1000)), fs=100)
    with pytest.raises(ValueError, match="before must be"):
        median_beats(np.zeros((12, 1000)), fs=100, before=0.05)


def test_encode_beats_layout(example_record) -> None:  # type: ignore[no-untyped-def]
    x = example_record.resample(100).signal.T.copy()
    x[7] = np.nan  # V2 missing
    enc = encode_beats(np.stack([x, x]), fs=100, std=[0.5] * 12)
    assert enc.shape == (2, 25, beat_samples(100))
    np.testing.assert_array_equal(enc[0, 12:24, 0], [1] * 7 + [0] + [1] * 4)
    assert not enc[0, 7].any()  # the missing lead's beat is 0
    mb = median_beats(x, fs=100)
    np.testing.assert_allclose(enc[0, :12], np.clip(mb.beats / 0.5, -20, 20), atol=1e-6)
    rhythm = enc[0, 24]
    assert 0.5 < rhythm[0] < 1.0  # 72 bpm in hundreds
    assert not rhythm[6:].any()


def test_beat_features_measure_an_st_elevation_at_the_j_point(ptbxl_dir: Path) -> None:
    rec = PTBXL(ptbxl_dir).record(PTBXL(ptbxl_dir).ecg_ids(folds=[9])[0], fs=100)
    x = rec.standard().signal[:1000].T.astype(np.float64)
    base = beat_features(x[None], fs=100.0)[0]
    names = {n: i for i, n in enumerate(BEAT_FEATURES)}
    assert base.shape == (len(BEAT_FEATURES),)
    assert 40 < base[names["heart_rate"]] < 120
    assert 10 <= base[names["j_ms"]] <= 140
    # raise the ST segment of V2 and V3 by 0.3 mV: from the J point to the T wave's end
    peaks = detect_r_peaks(x, fs=100.0)
    lifted = x.copy()
    j = int(round(base[names["j_ms"]] / 10))
    for p in peaks:
        lifted[[7, 8], p + j : p + j + 25] += 0.3
    got = beat_features(lifted[None], fs=100.0)[0]
    for lead in ("V2", "V3"):
        for ms in (0, 20, 40, 60):
            k = names[f"st_j{ms}_{lead}"]
            assert got[k] - base[k] == pytest.approx(0.3, abs=0.05), (lead, ms)
    for lead in ("I", "II", "V5"):  # the other leads unchanged
        k = names[f"st_j20_{lead}"]
        assert got[k] == pytest.approx(base[k], abs=1e-6)
    # the contiguous-lead score: the V2-V3 pair now stands out
    assert got[names["st_pair_max_j20"]] >= min(got[names["st_j20_V2"]],
                                                got[names["st_j20_V3"]]) - 1e-9  # fmt: skip
    assert got[names["st_pair_max_j20"]] > base[names["st_pair_max_j20"]] + 0.1


def test_beat_features_of_unknown_leads_are_nan() -> None:
    rec = synthetic_ecg(fs=100, duration=10, heart_rate=70, seed=3)
    x = rec.signal.T.astype(np.float64).copy()
    x[6:] = np.nan  # no chest leads
    f = beat_features(np.stack([x, np.full_like(x, np.nan)]), fs=100.0)
    names = {n: i for i, n in enumerate(BEAT_FEATURES)}
    assert np.isnan(f[0, names["st_j0_V1"]]) and np.isnan(f[0, names["qrs_max_V6"]])
    assert np.isfinite(f[0, names["st_j0_II"]]) and np.isfinite(f[0, names["heart_rate"]])
    assert np.isnan(f[1, names["heart_rate"]])  # nothing known: no beats, no rate
    with pytest.raises(ValueError, match="shape"):
        beat_features(x, fs=100.0)


def _tiled(beat: np.ndarray, times: list[float], fs: float, w0: int) -> np.ndarray:
    """A 10-s record of ``beat`` (leads, samples; peak at ``w0``) placed at ``times`` (s)."""
    x = np.zeros((beat.shape[0], int(10 * fs)))
    for t in times:
        start = int(round(t * fs)) - w0
        x[:, start : start + beat.shape[1]] += beat
    return x


@pytest.mark.parametrize("kind", ["regular", "atrial", "ventricular"])
def test_beat_features_tell_premature_beats_and_their_shape(kind: str) -> None:
    fs = 100.0
    src = synthetic_ecg(fs=fs, duration=10, heart_rate=60, noise_mv=0.0, seed=5)
    beat = median_beats(src.signal.T, fs=fs).beats.astype(np.float64)  # peak at 25
    times = [0.6 + k for k in range(9)]  # the last beat whole within the 10 s
    if kind != "regular":  # the sixth beat 350 ms early, then the pause that makes up for it
        times[5] -= 0.35
    x = _tiled(beat, times[:5] + times[6:], fs, 25)
    early = beat.copy()
    if kind == "ventricular":  # wide, inverted and large, no P wave: unlike the others
        wide = np.linspace(-25, 44, beat.shape[1])
        early = -2.0 * np.interp(wide / 2.5, np.arange(-25, 45), beat[1])[None] * np.ones((12, 1))
    x += _tiled(early, [times[5]], fs, 25)
    f = dict(zip(BEAT_FEATURES, beat_features(x[None], fs=fs)[0], strict=True))
    assert f["heart_rate"] == pytest.approx(60, rel=0.05)
    if kind == "regular":
        assert f["rr_min_ratio"] > 0.95 and f["rr_max_ratio"] < 1.05
        assert f["premature_fraction"] == 0 and f["rr_cv"] < 0.02
        assert f["shape_diff_max"] < 0.1
        return
    assert f["rr_min_ratio"] == pytest.approx(0.65, abs=0.05)
    assert f["pause_after_premature"] == pytest.approx(1.35, abs=0.05)
    assert f["premature_fraction"] == pytest.approx(1 / 8)
    assert f["shape_diff_median"] < 0.1  # the other beats are alike
    if kind == "atrial":  # an early beat of the usual shape (on the previous T wave)
        assert f["shape_diff_premature"] < 0.5
    else:
        assert f["shape_diff_premature"] > 1.0
        assert f["shape_diff_max"] == f["shape_diff_premature"]


def test_beat_features_measure_qrs_width_and_voltage() -> None:
    fs = 100.0
    src = synthetic_ecg(fs=fs, duration=10, heart_rate=60, noise_mv=0.0, seed=5)
    base = beat_features(src.signal.T[None].astype(np.float64), fs=fs)[0]
    f = dict(zip(BEAT_FEATURES, base, strict=True))
    assert 40 <= f["qrs_ms"] <= 140
    big = beat_features(2 * src.signal.T[None].astype(np.float64), fs=fs)[0]
    g = dict(zip(BEAT_FEATURES, big, strict=True))
    for name in ("sokolow_lyon", "cornell", "qrs_voltage_sum"):  # voltages double
        assert g[name] == pytest.approx(2 * f[name], rel=0.02), name
    assert g["qrs_ms"] == f["qrs_ms"]
