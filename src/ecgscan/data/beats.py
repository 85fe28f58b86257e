"""Heart beats of a 12-lead record: R peaks, rhythm measures and median beats.

What the ``signal-beats`` classifier reads, and what a user may want on its own (heart rate,
RR irregularity, one representative beat per lead). Every function takes the signal as
``(leads, samples)`` in mV with NaN where a sample is unknown — missing leads, gaps, the 7.5 s
a 3×4 page does not print of a lead — and ``fs`` (required: a wrong rate gives wrong rates).

The R-peak detector is deliberately plain: each known lead is band-passed (8–30 Hz, the QRS
band), squared and scaled by its own 99th percentile, the leads present at each instant are
averaged (so a 3×4 page, with three or four leads known at a time, gives as clean an envelope
as a full record), smoothed over 40 ms, and the peaks above a quarter of the envelope's 99th
percentile that lie at least 240 ms apart (up to 250 bpm) are the beats. The peak is the
envelope's maximum, which sits on the QRS's steepest energy, not on a lead's R wave: the median
beats are aligned on it, and that is all they need.

Examples
--------
>>> from ecgscan.data.synthetic import synthetic_ecg
>>> rec = synthetic_ecg(fs=100, duration=10, heart_rate=75, seed=1)
>>> peaks = detect_r_peaks(rec.signal.T, fs=rec.fs)
>>> len(peaks)
13
>>> bpm = rhythm_features(peaks, fs=rec.fs)[0]  # 100 Hz: RR known to 10 ms
>>> bool(abs(bpm - 75) < 2)
True
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from scipy import signal as sps

__all__ = [
    "RHYTHM_FEATURES",
    "MedianBeats",
    "detect_r_peaks",
    "detect_r_peaks_batch",
    "heart_rates",
    "median_beats",
    "rhythm_features",
]

#: Names of :func:`rhythm_features`' values, in order.
RHYTHM_FEATURES = (
    "heart_rate",  # bpm, from the median RR interval
    "rr_cv",  # standard deviation / mean of the RR intervals
    "rr_successive",  # median |successive RR difference| / mean RR
    "beats_per_second",
    "rr_min",  # s
    "rr_max",  # s
)

_MIN_DISTANCE = 0.24  # s between two beats (250 bpm)


def _as_leads(signal: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"signal must have shape (leads, samples), got shape {x.shape}")
    return x


def _check_fs(fs: float) -> float:
    if not np.isfinite(fs) or fs < 50:
        raise ValueError(f"fs must be a sampling rate of at least 50 Hz, got {fs!r}")
    return float(fs)


def _envelopes(x: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    """QRS envelopes of ``x`` (..., leads, samples): the mean over the leads known at each
    instant of their scaled band-passed energy, smoothed; 0 where no lead is known."""
    b, a = sps.butter(2, [8.0 / (fs / 2), min(30.0, 0.45 * fs) / (fs / 2)], btype="band")
    known = np.isfinite(x)
    # leads with less than a second known are left out
    usable = known & (known.sum(axis=-1, keepdims=True) >= fs)
    n = x.shape[-1]
    if n <= 3 * max(len(a), len(b)) or not usable.any():
        return np.zeros((*x.shape[:-2], n))
    with warnings.catch_warnings():  # leads with nothing known: their median is NaN, unused
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(usable, x, np.nan), axis=-1, keepdims=True)
    filtered = sps.filtfilt(b, a, np.where(usable, x - np.nan_to_num(med), 0.0), axis=-1)
    # the filter rings where a lead starts or stops within the record (a 3x4 page's columns):
    # the 100 ms next to such an edge do not count
    edge = max(1, int(round(0.1 * fs)))
    inner = ndi.binary_erosion(
        usable, structure=np.ones((1,) * (x.ndim - 1) + (2 * edge + 1,), bool), border_value=1
    )
    energy = np.where(inner, filtered**2, np.nan)
    usable = inner
    # each lead's 99th percentile over its known samples (NaN sorts last)
    count = usable.sum(axis=-1, keepdims=True)
    rank = np.maximum(np.floor(0.99 * (count - 1)).astype(np.int64), 0)
    scale = np.take_along_axis(np.sort(energy, axis=-1), rank, axis=-1)
    scaled = np.where(usable & (scale > 0), energy / np.where(scale > 0, scale, 1.0), 0.0)
    leads = (usable & (scale > 0)).sum(axis=-2)
    env = scaled.sum(axis=-2) / np.maximum(leads, 1)
    k = max(1, int(round(0.04 * fs)))
    kernel = np.ones(k) / k
    return np.apply_along_axis(np.convolve, -1, env, kernel, mode="same") * (leads > 0)


def _peaks(env: NDArray[np.float64], fs: float) -> NDArray[np.int64]:
    present = env > 0
    if not present.any():
        return np.zeros(0, dtype=np.int64)
    height = 0.25 * np.percentile(env[present], 99)
    peaks, _ = sps.find_peaks(env, height=height, distance=max(1, int(_MIN_DISTANCE * fs)))
    return peaks.astype(np.int64)


def detect_r_peaks(signal: ArrayLike, *, fs: float) -> NDArray[np.int64]:
    """Sample indices of the beats (QRS complexes) of a multi-lead signal.

    Parameters
    ----------
    signal : array_like, shape (leads, samples) or (samples,)
        mV, NaN where unknown. Leads with less than one second known are ignored.
    fs : float
        Sampling rate in Hz (at least 50).

    Returns
    -------
    ndarray of int64
        Increasing sample indices; empty when no lead has a second of signal.
    """
    x = _as_leads(signal)
    fs = _check_fs(fs)
    return _peaks(_envelopes(x, fs), fs)


def detect_r_peaks_batch(signals: ArrayLike, *, fs: float) -> list[NDArray[np.int64]]:
    """:func:`detect_r_peaks` of each signal of a batch ``(batch, leads, samples)``, faster."""
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"signals must have shape (batch, leads, samples), got shape {x.shape}")
    fs = _check_fs(fs)
    return [_peaks(env, fs) for env in _envelopes(x, fs)]


def rhythm_features(
    peaks: ArrayLike, *, fs: float, duration: float | None = None
) -> NDArray[np.float64]:
    """Rate and regularity of the beats at ``peaks`` (see :data:`RHYTHM_FEATURES`).

    Parameters
    ----------
    peaks : array_like of int
        Beat positions in samples (:func:`detect_r_peaks`).
    fs : float
        Sampling rate in Hz.
    duration : float, optional
        Length of the record in seconds, for ``beats_per_second`` (default: 10 s).

    Returns
    -------
    ndarray of float64, shape (6,)
        All zeros but ``beats_per_second`` with fewer than 3 beats (no rate can be told).
    """
    p = np.asarray(peaks, dtype=np.float64)
    fs = _check_fs(fs)
    per_second = p.size / (duration if duration else 10.0)
    if p.size < 3:
        return np.array([0.0, 0.0, 0.0, per_second, 0.0, 0.0])
    rr = np.diff(p) / fs
    mean = float(rr.mean())
    return np.array(
        [
            60.0 / float(np.median(rr)),
            float(rr.std()) / mean,
            float(np.median(np.abs(np.diff(rr)))) / mean,
            per_second,
            float(rr.min()),
            float(rr.max()),
        ]
    )


def heart_rates(signals: ArrayLike, *, fs: float) -> NDArray[np.float64]:
    """Heart rate (bpm, from the median RR interval) of each record of a batch.

    Parameters
    ----------
    signals : array_like, shape (n, leads, samples)
        mV, NaN where unknown (a 3×4 page's unprinted samples, missing leads).
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray of float64, shape (n,)
        NaN where fewer than three beats are found (no rate can be told).
    """
    x = np.asarray(signals, dtype=np.float64)
    rates = [rhythm_features(p, fs=fs)[0] for p in detect_r_peaks_batch(x, fs=fs)]
    return np.where(np.asarray(rates) > 0, rates, np.nan)


class MedianBeats(NamedTuple):
    """One representative beat per lead (:func:`median_beats`)."""

    #: (leads, samples) mV, the PR level subtracted; 0 for a lead with no whole beat known
    beats: NDArray[np.float32]
    #: (leads,) True where the lead had at least one whole beat
    known: NDArray[np.bool_]
    #: the beats used (sample indices of the record)
    peaks: NDArray[np.int64]


def median_beats(
    signal: ArrayLike,
    *,
    fs: float,
    peaks: ArrayLike | None = None,
    before: float = 0.25,
    after: float = 0.45,
) -> MedianBeats:
    """The median, sample by sample, of every whole beat of each lead.

    Parameters
    ----------
    signal : array_like, shape (leads, samples)
        mV, NaN where unknown.
    fs : float
        Sampling rate in Hz.
    peaks : array_like of int, optional
        Beat positions (default: :func:`detect_r_peaks`).
    before, after : float
        Seconds kept before and after each peak; the beat has
        ``round(before * fs) + round(after * fs)`` samples, the peak at ``round(before * fs)``.

    Notes
    -----
    A beat counts for a lead only when all its samples are known, so a lead printed for 2.5 s
    gives the median of the two or three beats of its window. Each median beat is shifted so
    that its PR segment (60–120 ms before the peak) is at 0 mV.
    """
    x = _as_leads(signal)
    fs = _check_fs(fs)
    pk = detect_r_peaks(x, fs=fs) if peaks is None else np.asarray(peaks, dtype=np.int64)
    w0, w1 = int(round(before * fs)), int(round(after * fs))
    if w0 < int(round(0.12 * fs)) or w1 < 1:
        raise ValueError(
            f"before must be at least 0.12 s (the PR level is measured there) and after > 0; "
            f"got before={before}, after={after}"
        )
    beats = np.zeros((x.shape[0], w0 + w1), dtype=np.float32)
    known: NDArray[np.bool_] = np.zeros(x.shape[0], dtype=bool)
    pk_in = pk[(pk >= w0) & (pk + w1 <= x.shape[1])]
    if pk_in.size:
        windows = x[:, pk_in[:, None] + np.arange(-w0, w1)[None, :]]  # (leads, beats, samples)
        whole = np.asarray(np.isfinite(windows).all(axis=2), dtype=bool)
        known = np.asarray(whole.any(axis=1), dtype=bool)
        if known.any():
            pr = slice(w0 - int(round(0.12 * fs)), w0 - int(round(0.06 * fs)))
            # one median over the whole beats of every lead (partial beats NaN)
            w = np.where(whole[known][:, :, None], windows[known], np.nan)
            m = np.median(w, axis=1) if whole[known].all() else np.nanmedian(w, axis=1)
            beats[known] = m - np.median(m[:, pr], axis=1, keepdims=True)
    return MedianBeats(beats, known, pk)
