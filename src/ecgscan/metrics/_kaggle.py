"""The SNR of the Kaggle 2025 competition "PhysioNet - Digitization of ECG Images".

Facts from the competition's public metric notebook (``physionet-ecg-signal-extraction-metric``):

* per lead, the prediction is aligned to the label: both are mean-removed, fully
  cross-correlated (``scipy.signal.correlate``), and the lag with the largest correlation within
  ``±int(0.2 * fs)`` samples is taken (ties: the smallest ``|lag|``, then the earliest); the
  prediction is shifted by that lag with NaN padding, and a vertical offset minimising the squared
  error on the overlap is subtracted;
* powers are sums: ``p_signal = Σ label²`` over the whole label, ``p_noise = Σ (label − pred)²``
  with non-finite prediction samples counted as 0 (so samples lost to the shift count as noise);
* per page (image), signal and noise powers are summed over the 12 leads and their ratio is
  capped at 384 (≈ 25.84 dB); zero noise gives 384, zero signal gives 0;
* the score is ``10·log10`` of the mean of the per-page ratios over pages, floored at −384 dB.

Adaptation to Challenge-format records (documented assumptions): the Kaggle label of a lead is
the printed segment, so here it is the reference lead from its first to its last finite sample
(NaN inside that span count as 0, as Kaggle labels have none); the prediction is the estimate over
the same sample span (NaN → 0 before alignment, as Kaggle predictions cannot be NaN). A missing
estimate or lead is a prediction of zeros. The least-squares offset is computed in closed form
(the mean difference on the overlap) instead of Kaggle's numerical Brent search, which converges
to the same value up to its tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._snr import _matched_estimate

if TYPE_CHECKING:
    from ..data.record import Record

__all__ = ["KAGGLE_MAX_RATIO", "kaggle_align", "kaggle_page_ratio", "kaggle_snr"]

#: Cap of the per-page signal-to-noise power ratio (Kaggle's ``PERFECT_SCORE``; 25.84 dB).
KAGGLE_MAX_RATIO = 384.0
#: Largest lag searched, in seconds.
KAGGLE_MAX_SHIFT_S = 0.2


def kaggle_align(
    label: NDArray[np.float64], prediction: NDArray[np.float64], *, max_shift: int
) -> NDArray[np.float64]:
    """Align one predicted lead to its label as the Kaggle 2025 metric does.

    Parameters
    ----------
    label, prediction : ndarray, 1-D
        Finite samples (mV); lengths may differ.
    max_shift : int
        Largest lag in samples (Kaggle: ``int(fs * 0.2)``).

    Returns
    -------
    ndarray
        The prediction shifted (NaN-padded) to the label's length, minus its least-squares
        vertical offset.
    """
    from scipy.signal import correlate, correlation_lags

    label = np.asarray(label, dtype=np.float64)
    pred = np.asarray(prediction, dtype=np.float64)
    corr = correlate(label - label.mean(), pred - pred.mean(), mode="full")
    lags = correlation_lags(label.size, pred.size, mode="full")
    valid = np.abs(lags) <= max_shift
    best = np.nanmax(corr[valid])
    candidates = np.flatnonzero(valid & (corr == best))
    lag = int(lags[candidates[np.argmin(np.abs(lags[candidates]))]])
    n_label, n_pred = label.size, pred.size
    start_pad = max(lag, 0)
    start = max(-lag, 0)
    stop = min(n_label - lag, n_pred)
    end_pad = max(n_label - n_pred - lag, 0)
    aligned = np.concatenate(
        (np.full(start_pad, np.nan), pred[start:stop], np.full(end_pad, np.nan))
    )
    both = np.isfinite(aligned) & np.isfinite(label)
    if both.any():
        aligned = aligned - float(np.mean(aligned[both] - label[both]))
    return aligned


def _lead_powers(
    x_ref: NDArray[np.float64], x_est: NDArray[np.float64] | None, fs: float
) -> tuple[float, float]:
    finite = np.flatnonzero(np.isfinite(x_ref))
    if finite.size == 0:
        return 0.0, 0.0
    a, b = int(finite[0]), int(finite[-1]) + 1
    label = np.nan_to_num(x_ref[a:b], nan=0.0)
    if x_est is None:
        pred = np.zeros(b - a)
    else:
        pred = np.zeros(b - a)
        seg = x_est[a:b]
        pred[: seg.size] = np.nan_to_num(seg, nan=0.0)
    aligned = kaggle_align(label, pred, max_shift=int(fs * KAGGLE_MAX_SHIFT_S))
    aligned = np.where(np.isfinite(aligned), aligned, 0.0)
    return float(np.sum(label**2)), float(np.sum((label - aligned) ** 2))


def kaggle_page_ratio(reference: Record, estimate: Record | None) -> float:
    """Kaggle 2025 per-page (per-record) signal-to-noise power ratio (linear, capped at 384).

    Signal and noise powers are summed over the reference's leads before the ratio is taken.
    ``estimate=None`` (missing) is scored as a prediction of zeros (ratio 1 at best).
    """
    matched = None if estimate is None else _matched_estimate(reference, estimate)
    signal = noise = 0.0
    for j in range(reference.n_leads):
        x_est = None if matched is None else matched[:, j]
        p_s, p_n = _lead_powers(reference.signal[:, j], x_est, reference.fs)
        signal += p_s
        noise += p_n
    if noise == 0:
        return KAGGLE_MAX_RATIO
    if signal == 0:
        return 0.0
    return min(signal / noise, KAGGLE_MAX_RATIO)


def kaggle_snr(pairs: Iterable[tuple[Record, Record | None]]) -> float:
    """Kaggle 2025 SNR (dB) over pages: ``10·log10`` of the mean per-page power ratio.

    Parameters
    ----------
    pairs : iterable of (reference, estimate or None)
        One pair per page.

    Returns
    -------
    float
        The score in dB, floored at −384 (Kaggle's floor); NaN for no pairs.

    Examples
    --------
    >>> from ecgscan.data.synthetic import synthetic_ecg
    >>> ref = synthetic_ecg(fs=100, duration=2.5, seed=1)
    >>> round(kaggle_snr([(ref, ref)]), 2)
    25.84
    """
    ratios = [kaggle_page_ratio(ref, est) for ref, est in pairs]
    return kaggle_snr_from_ratios(ratios)


def kaggle_snr_from_ratios(ratios: Iterable[float]) -> float:
    """``10·log10(mean(ratios))`` floored at −384 dB; NaN when there are no ratios."""
    arr = np.asarray(list(ratios), dtype=np.float64)
    if arr.size == 0:
        return math.nan
    mean = float(arr.mean())
    if mean <= 0:
        return -KAGGLE_MAX_RATIO
    return max(10.0 * math.log10(mean), -KAGGLE_MAX_RATIO)
