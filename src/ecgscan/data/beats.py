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
    "BEAT_FEATURES",
    "RHYTHM_FEATURES",
    "MedianBeats",
    "beat_features",
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


_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Pairs of contiguous leads (inferior, lateral, precordial neighbours) whose ST elevations
#: are read together, as ST-elevation criteria do.
_CONTIGUOUS = (
    ("II", "III"), ("II", "aVF"), ("III", "aVF"), ("I", "aVL"), ("I", "V6"),
    ("V1", "V2"), ("V2", "V3"), ("V3", "V4"), ("V4", "V5"), ("V5", "V6"),
)  # fmt: skip
_ST_MS = (0, 20, 40, 60, 80)  # after the J point
_LEVEL_MS = (30, 50, 70, 90, 110, 130)  # after the beat's peak
_PRE_MS = (-250, -220, -190, -160, -130, -100)
_POST_MS = tuple(range(140, 441, 30))
_QRS_MS = 80  # the QRS extremes are read within this many ms of the peak
_J_SEARCH_MS = (10, 140)  # the J point is looked for this far after the peak
_SHAPE_MS = (-60, 80)  # the window whose shape each beat is compared by, around its peak
_PREMATURE = 0.85  # an RR interval this much shorter than the median is premature
#: Rhythm and ectopy: how irregular the RR intervals are, how early the earliest beat comes
#: and how long the pause after it lasts (premature atrial and ventricular beats), and how
#: much a beat's QRS differs from the median beat (ventricular beats are wide and unlike it).
_ECTOPY_FEATURES = (
    "rr_cv",  # standard deviation / mean of the RR intervals
    "rr_successive",  # median |successive RR difference| / mean RR
    "rr_min_ratio",  # shortest RR / median RR
    "rr_max_ratio",  # longest RR / median RR
    "premature_fraction",  # share of the RR intervals shorter than 0.85 x the median
    "pause_after_premature",  # RR after the earliest beat / median RR
    "shape_diff_max",  # largest QRS shape difference of a beat from the median beat
    "shape_diff_premature",  # the earliest beat's QRS shape difference
    "shape_diff_median",  # the typical beat's (how well the beats agree at all)
)

#: Names of :func:`beat_features`' columns, in order.
BEAT_FEATURES: tuple[str, ...] = (
    tuple(f"st_j{ms}_{lead}" for ms in _ST_MS for lead in _LEADS)
    + tuple(f"level_{ms}_{lead}" for ms in _LEVEL_MS for lead in _LEADS)
    + tuple(f"st_pair_{k}_j{ms}" for ms in _ST_MS[:3] for k in ("max", "second"))
    + ("j_ms",)
    + tuple(f"qrs_{k}_{lead}" for k in ("max", "min") for lead in _LEADS)
    + tuple(f"level_{ms}_{lead}" for lead in _LEADS for ms in _PRE_MS)
    + tuple(f"level_{ms}_{lead}" for lead in _LEADS for ms in _POST_MS)
    + ("heart_rate",)
    + _ECTOPY_FEATURES
    + ("qrs_ms", "sokolow_lyon", "cornell", "qrs_voltage_sum")
)


def _ectopy(x: NDArray[np.float64], mb: MedianBeats, fs: float, w0: int) -> NDArray[np.float64]:
    """The :data:`_ECTOPY_FEATURES` of one record ``x`` (leads, samples) whose median beats
    (peak at sample ``w0``) are ``mb``; NaN where fewer than three beats were found."""
    out = np.full(len(_ECTOPY_FEATURES), np.nan)
    peaks = mb.peaks
    if peaks.size < 3:
        return out
    rate, cv, successive = rhythm_features(peaks, fs=fs)[:3]
    ratio = np.diff(peaks) / (60.0 * fs / rate)  # RR / median RR
    first = int(np.argmin(ratio))  # the earliest beat is peaks[first + 1]
    out[:6] = (
        cv,
        successive,
        ratio[first],
        ratio.max(),
        np.mean(ratio < _PREMATURE),
        ratio[first + 1] if first + 1 < ratio.size else np.nan,
    )
    # each beat's QRS shape against the median beat's, over the leads known in both (each
    # window less its own mean, so that neither the baseline nor the PR level counts)
    lo, hi = (int(round(ms * fs / 1000)) for ms in _SHAPE_MS)
    offsets = np.arange(lo, hi + 1)
    inside = (peaks + offsets[0] >= 0) & (peaks + offsets[-1] < x.shape[1])
    if not (inside.any() and mb.known.any()):
        return out
    windows = x[mb.known][:, peaks[inside, None] + offsets]  # (leads, beats, samples)
    ref = mb.beats[mb.known][:, w0 + offsets].astype(np.float64)
    ref = (ref - ref.mean(axis=1, keepdims=True))[:, None, :]
    windows = windows - windows.mean(axis=2, keepdims=True)  # NaN for a partial window
    whole = np.isfinite(windows).all(axis=2)  # (leads, beats)
    num = np.where(whole, ((np.nan_to_num(windows) - ref) ** 2).sum(axis=2), 0.0).sum(axis=0)
    den = np.where(whole, (ref**2).sum(axis=2), 0.0).sum(axis=0)
    diff = np.full(peaks.size, np.nan)
    diff[inside] = np.sqrt(num / np.where(den > 0, den, np.nan))
    if np.isfinite(diff).any():
        out[6:] = np.nanmax(diff), diff[first + 1], np.nanmedian(diff)
    return out


def beat_features(signals: ArrayLike, *, fs: float) -> NDArray[np.float64]:
    """Measurements of each record's median beats: ST levels at the J point, QRS extremes,
    levels along the beat, contiguous-lead ST elevation and heart rate (:data:`BEAT_FEATURES`).

    What the ensemble's beat trees read (:mod:`ecgscan.classify`). Labels such as the
    Challenge's Acute MI come from an algorithm's ST-elevation statements (GE 12SL): a step in
    a few measurements at the J point, which networks averaging over the whole beat blur.

    Parameters
    ----------
    signals : array_like, shape (n, 12, samples)
        mV in the standard lead order I, II, III, aVR, aVL, aVF, V1–V6, NaN where unknown.
    fs : float
        Sampling rate in Hz (the shipped trees were fitted at 100 Hz).

    Returns
    -------
    ndarray of float64, shape (n, len(BEAT_FEATURES))
        mV (levels, relative to the PR segment), ms (``j_ms``) and bpm; NaN for a lead with
        no whole beat and for a rate that cannot be measured (fewer than three beats).

    Notes
    -----
    The beats are aligned on the QRS energy peak of :func:`detect_r_peaks`. The J point is
    the first sample 10–140 ms after the peak where the beats' summed slope over all known
    leads falls below a fifth of its largest value around the QRS (70 ms after the peak when
    it never does).
    """
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != len(_LEADS):
        raise ValueError(f"signals must have shape (n, 12, samples), got shape {x.shape}")
    fs = _check_fs(fs)
    before, after = 0.25, 0.45
    w0 = int(round(before * fs))
    n_beat = w0 + int(round(after * fs))
    beats = np.full((len(x), len(_LEADS), n_beat), np.nan)
    rate = np.full(len(x), np.nan)
    ectopy = np.full((len(x), len(_ECTOPY_FEATURES)), np.nan)
    for k, (sig, peaks) in enumerate(zip(x, detect_r_peaks_batch(x, fs=fs), strict=True)):
        mb = median_beats(sig, fs=fs, peaks=peaks, before=before, after=after)
        beats[k, mb.known] = mb.beats[mb.known]
        bpm = rhythm_features(peaks, fs=fs)[0]
        rate[k] = bpm if bpm > 0 else np.nan
        ectopy[k] = _ectopy(sig, mb, fs, w0)

    def at(ms: float | NDArray[np.float64]) -> NDArray[np.int64]:
        return np.clip(w0 + np.round(np.asarray(ms) * fs / 1000).astype(np.int64), 0, n_beat - 1)

    slope = np.nansum(np.abs(np.diff(beats, axis=2)), axis=1)  # (n, n_beat - 1)
    qrs = slice(int(at(-_QRS_MS)), int(at(_QRS_MS)) + 1)
    top = slope[:, qrs].max(axis=1, keepdims=True)
    lo, hi = (int(v) for v in at(np.asarray(_J_SEARCH_MS)))
    flat = slope[:, lo:hi] < 0.2 * top
    j = np.where(flat.any(axis=1), lo + flat.argmax(axis=1), at(70))
    # the QRS onset: the last such flat sample 10-140 ms before the peak (70 ms when none)
    lo, hi = (int(v) for v in at(-np.asarray(_J_SEARCH_MS[::-1])))
    flat = slope[:, lo:hi][:, ::-1] < 0.2 * top
    onset = np.where(flat.any(axis=1), hi - flat.argmax(axis=1), at(-70))
    rows = np.arange(len(x))
    st = np.stack([beats[rows, :, np.clip(j + at(ms) - w0, 0, n_beat - 1)] for ms in _ST_MS], 1)
    pair_idx = np.array([[_LEADS.index(a), _LEADS.index(b)] for a, b in _CONTIGUOUS])
    pairs = []
    for m in range(3):  # J, J + 20 ms, J + 40 ms
        both = np.fmin(st[:, m, pair_idx[:, 0]], st[:, m, pair_idx[:, 1]])
        both = np.sort(np.where(np.isnan(both), -np.inf, both), axis=1)
        pairs += [both[:, -1], both[:, -2]]
    pair = np.stack(pairs, 1)
    pair[~np.isfinite(pair)] = np.nan
    window = beats[:, :, qrs]
    known = np.isfinite(window).all(axis=2)
    qrs_max = np.where(known, np.max(np.nan_to_num(window), axis=2), np.nan)
    qrs_min = np.where(known, np.min(np.nan_to_num(window), axis=2), np.nan)
    lead = {name: i for i, name in enumerate(_LEADS)}
    voltage = np.stack(
        [
            (j - onset) * 1000.0 / fs,
            # the voltage criteria of ventricular hypertrophy: S in V1 or V2 plus R in V5 or
            # V6 (Sokolow-Lyon), R in aVL plus S in V3 (Cornell), and all leads' QRS swings
            np.fmax(-qrs_min[:, lead["V1"]], -qrs_min[:, lead["V2"]])
            + np.fmax(qrs_max[:, lead["V5"]], qrs_max[:, lead["V6"]]),
            qrs_max[:, lead["aVL"]] - qrs_min[:, lead["V3"]],
            (qrs_max - qrs_min).sum(axis=1),
        ],
        axis=1,
    )
    out = np.concatenate(
        [
            st.reshape(len(x), -1),
            beats[:, :, at(np.asarray(_LEVEL_MS))].transpose(0, 2, 1).reshape(len(x), -1),
            pair,
            ((j - w0) * 1000.0 / fs)[:, None],
            qrs_max,
            qrs_min,
            beats[:, :, at(np.asarray(_PRE_MS))].reshape(len(x), -1),
            beats[:, :, at(np.asarray(_POST_MS))].reshape(len(x), -1),
            rate[:, None],
            ectopy,
            voltage,
        ],
        axis=1,
    )
    return out
