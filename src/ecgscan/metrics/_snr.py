"""The PhysioNet Challenge 2024 digitization SNR, computed as its evaluation code computes it.

The Challenge's ``evaluate_model.py`` (physionetchallenges/evaluation-2024) and the helper functions
it imports (``helper_code.py``: ``reorder_signal``, ``convert_signal``, ``fft_correlate``,
``align_signals``, ``compute_snr``) score a digitized record against its reference lead by lead:

1. The estimate's channels are matched to the reference's by name, case-insensitively
   (``reorder_signal``); a reference channel the estimate lacks becomes a column of zeros. The
   estimate is *not* trimmed or padded to the reference length at this stage.
2. Per lead, both signals are quantised to 256 levels over their joint finite range and drawn as
   binary (levels × samples) images, smoothed by a Gaussian of σ = 0.5 pixel, and 2-D
   cross-correlated; the peak gives a horizontal lag (samples) and a vertical offset (mV)
   (``align_signals``). The shifted estimate is used only if ``|lag| <= round(0.5 * fs)`` and
   ``|offset| <= 1 mV``; otherwise the unshifted estimate is scored.
3. The shorter of the two signals is padded with NaN, the SNR is computed on the samples finite in
   both (mean powers), and multiplied by the fraction of the finite reference samples that the
   estimate covers (``compute_snr`` with ``keep_nans=True``).
4. The Challenge score is the NaN-ignoring mean over every (record, lead) pair.

Conventions where the published revisions differ or are silent, fixed by the project's issue:

* a record whose estimate is missing scores **0** on every lead (the published code reads a
  missing estimate as all-NaN, which evaluates to NaN and drops the record from the mean);
* a lead whose (present) estimate has no finite sample where the reference has one evaluates to
  NaN exactly as in the published code (``mean([]) * 0``) and is dropped from the mean;
* a perfect reconstruction (zero noise power) scores NaN, as the later revision of
  ``compute_snr`` does (an earlier one returned +inf), and is therefore dropped from the mean.

The negative-lag behaviour: ``corrected=False`` (the default) keeps only the first ``|lag|``
samples of an estimate that runs early (negative lag) after prepending ``|lag|`` NaNs, which is how
the project's issue describes the official scoring of early estimates (they score about 0 dB, or
NaN when nothing overlaps); ``corrected=True`` keeps the whole estimate, i.e. delays it by
``|lag|`` samples as the alignment intends. Note: the revisions of ``align_signals`` we could read
(python-example-2024 ``helper_code.py``, July 2024, and later copies) prepend the NaNs and keep the
whole estimate, i.e. behave like ``corrected=True``; both variants share one alignment search.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import RecordError

if TYPE_CHECKING:
    from ..data.record import Record

__all__ = [
    "ChallengeAlignment",
    "challenge_alignment",
    "challenge_lead_snr",
    "challenge_snr",
    "mean_snr",
]

#: Number of amplitude levels of the binary images used for alignment (Challenge: ``2**8``).
NUM_QUANT_LEVELS = 256
#: Standard deviation in pixels of the Gaussian smoothing of the alignment images.
SMOOTHING_SIGMA = 0.5
#: Largest vertical offset (mV) for which the alignment is applied.
MAX_VERTICAL_SHIFT_MV = 1.0
#: Largest lag, as a fraction of ``fs`` (s), for which the alignment is applied.
MAX_HORIZONTAL_SHIFT_S = 0.5


@dataclass(frozen=True)
class ChallengeAlignment:
    """Result of the Challenge's alignment search for one lead.

    Attributes
    ----------
    lag : int
        Horizontal offset in samples, the Challenge's ``offset_hz``: positive when the estimate
        runs late (it is advanced by ``lag`` samples), negative when it runs early.
    offset_mv : float
        Vertical offset in mV, the Challenge's ``offset_vt``; it is subtracted from the estimate.
    applied : bool
        Whether the shift is within the Challenge's limits (``|lag| <= round(0.5 fs)`` and
        ``|offset_mv| <= 1``) and is therefore applied before scoring.
    """

    lag: int
    offset_mv: float
    applied: bool


def _quantised_image(
    x: NDArray[np.float64], lo: float, hi: float, width: int, levels: int
) -> NDArray[np.float64]:
    """Binary (levels × width) image of ``x`` (mirrors the Challenge's ``convert_signal``)."""
    image = np.zeros((levels, width))
    finite = np.isfinite(x)
    t = np.flatnonzero(finite)
    if hi > lo:
        rows = np.round((levels - 1) * (x[finite] - lo) / (hi - lo) + 1).astype(np.int64)
    else:
        # Constant signals: the Challenge divides 0 by 0, and the NaN cast to int is clipped to
        # the lowest level; every finite sample lands on level 1.
        rows = np.ones(t.size, dtype=np.int64)
    rows = np.clip(rows, 1, levels)
    image[rows - 1, t] = 1.0
    return image


def challenge_alignment(
    reference: NDArray[np.float64] | list[float],
    estimate: NDArray[np.float64] | list[float],
    *,
    fs: float,
) -> ChallengeAlignment:
    """Find the Challenge's horizontal and vertical offset of one estimated lead.

    Mirrors ``align_signals`` of the Challenge 2024 helper code (Sameni, Koscova and Reyna, July
    2024) and the limits applied in ``evaluate_model.py``: both signals are quantised to 256
    levels over their joint finite range, drawn as binary images, smoothed by a Gaussian of
    σ = 0.5 (``scipy.ndimage.gaussian_filter`` defaults), and cross-correlated in 2-D
    (``scipy.signal.fftconvolve`` with the flipped estimate, mode ``'full'``). The lag and offset
    are the distance of the cross-correlation peak from the auto-correlation peak of the
    reference image, which is always the zero-lag centre (Cauchy–Schwarz), so it is not searched.

    Parameters
    ----------
    reference, estimate : array_like, 1-D
        One lead in mV; NaN marks unknown samples. Lengths may differ.
    fs : float
        Sampling frequency in Hz (sets the largest applied lag, ``round(0.5 * fs)`` samples).

    Returns
    -------
    ChallengeAlignment
        ``lag`` (samples), ``offset_mv`` and whether the shift is ``applied``. With no finite
        sample on either side there is nothing to align: ``lag=0``, ``offset_mv=0``,
        ``applied=False``.
    """
    from scipy.ndimage import gaussian_filter
    from scipy.signal import fftconvolve

    x_ref = np.asarray(reference, dtype=np.float64)
    x_est = np.asarray(estimate, dtype=np.float64)
    if x_ref.ndim != 1 or x_est.ndim != 1:
        raise ValueError("challenge_alignment expects two 1-D signals (one lead each)")
    fin_ref, fin_est = np.isfinite(x_ref), np.isfinite(x_est)
    if not fin_ref.any() or not fin_est.any():
        return ChallengeAlignment(0, 0.0, False)
    lo = float(min(x_ref[fin_ref].min(), x_est[fin_est].min()))
    hi = float(max(x_ref[fin_ref].max(), x_est[fin_est].max()))
    width = max(x_ref.size, x_est.size)
    levels = NUM_QUANT_LEVELS
    a_ref = gaussian_filter(_quantised_image(x_ref, lo, hi, width, levels), SMOOTHING_SIGMA)
    a_est = gaussian_filter(_quantised_image(x_est, lo, hi, width, levels), SMOOTHING_SIGMA)
    cross = fftconvolve(a_ref, np.flip(np.flip(a_est, axis=0), axis=1), mode="full")
    peak_row, peak_col = np.unravel_index(int(np.argmax(cross)), cross.shape)
    # The auto-correlation of the reference image peaks at zero lag: (levels - 1, width - 1).
    lag = int((width - 1) - peak_col)
    offset = float(((levels - 1) - int(peak_row)) / (levels - 1) * (hi - lo))
    max_lag = float(np.round(MAX_HORIZONTAL_SHIFT_S * fs))
    applied = abs(lag) <= max_lag and abs(offset) <= MAX_VERTICAL_SHIFT_MV
    return ChallengeAlignment(lag, offset, applied)


def _shift(
    x_est: NDArray[np.float64], alignment: ChallengeAlignment, *, corrected: bool
) -> NDArray[np.float64]:
    """Apply an alignment to an estimated lead (the shifting part of ``align_signals``)."""
    lag = alignment.lag
    if lag < 0:
        kept = x_est if corrected else x_est[:-lag]
        shifted = np.concatenate((np.full(-lag, np.nan), kept))
    else:
        shifted = np.concatenate((x_est[lag:], np.full(lag, np.nan)))
    return shifted - alignment.offset_mv


def _coverage_snr(x_ref: NDArray[np.float64], x_est: NDArray[np.float64]) -> float:
    """SNR (dB) on samples finite in both, times the covered fraction (``compute_snr``)."""
    n = max(x_ref.size, x_est.size)
    ref = np.full(n, np.nan)
    est = np.full(n, np.nan)
    ref[: x_ref.size] = x_ref
    est[: x_est.size] = x_est
    fin_ref = np.isfinite(ref)
    both = fin_ref & np.isfinite(est)
    n_ref = int(fin_ref.sum())
    if n_ref == 0:
        return math.nan
    n_both = int(both.sum())
    if n_both == 0:
        # The Challenge's mean of an empty selection is NaN, and NaN times a coverage of 0 stays
        # NaN: such a lead is dropped from the mean (only a *missing* estimate scores 0).
        return math.nan
    r = ref[both]
    p_signal = float(np.mean(r**2))
    p_noise = float(np.mean((r - est[both]) ** 2))
    if p_signal > 0 and p_noise > 0:
        snr = 10.0 * math.log10(p_signal / p_noise)
    else:
        return math.nan
    return snr * (n_both / n_ref)


def challenge_lead_snr(
    reference: NDArray[np.float64] | list[float],
    estimate: NDArray[np.float64] | list[float] | None,
    *,
    fs: float,
    corrected: bool = False,
) -> float:
    """Challenge 2024 SNR (dB) of one lead.

    Alignment (:func:`challenge_alignment`), shift when within limits, then the SNR on samples
    finite in both signals times the fraction of finite reference samples covered.

    Returns
    -------
    float
        NaN when the reference lead has no finite sample, the estimate has none where the
        reference has one, or the reconstruction is perfect; 0 when ``estimate`` is None.
    """
    x_ref = np.asarray(reference, dtype=np.float64)
    if not np.isfinite(x_ref).any():
        return math.nan
    if estimate is None:
        return 0.0
    x_est = np.asarray(estimate, dtype=np.float64)
    alignment = challenge_alignment(x_ref, x_est, fs=fs)
    if alignment.applied:
        x_est = _shift(x_est, alignment, corrected=corrected)
    return _coverage_snr(x_ref, x_est)


def _matched_estimate(reference: Record, estimate: Record) -> NDArray[np.float64]:
    """The estimate's columns in the reference's lead order (``reorder_signal``): absent → 0."""
    if estimate.fs != reference.fs:
        raise RecordError(
            f"estimate {estimate.name!r} is sampled at {estimate.fs:g} Hz but its reference "
            f"{reference.name!r} at {reference.fs:g} Hz; the Challenge scores only equal "
            "sampling frequencies: write the estimate at the reference's fs"
        )
    out = np.zeros((estimate.n_samples, reference.n_leads))
    for j, name in enumerate(reference.leads):
        if name in estimate.leads:
            out[:, j] = estimate.signal[:, estimate.leads.index(name)]
    return out


def _scores(
    reference: Record, estimate: Record | None
) -> tuple[dict[str, float], dict[str, float], dict[str, ChallengeAlignment | None]]:
    """Official and corrected per-lead SNR from one alignment per lead."""
    official: dict[str, float] = {}
    corrected: dict[str, float] = {}
    alignments: dict[str, ChallengeAlignment | None] = {}
    matched = None if estimate is None else _matched_estimate(reference, estimate)
    for j, name in enumerate(reference.leads):
        x_ref = reference.signal[:, j]
        if not np.isfinite(x_ref).any():
            official[name] = corrected[name] = math.nan
            alignments[name] = None
            continue
        if matched is None:
            official[name] = corrected[name] = 0.0
            alignments[name] = None
            continue
        x_est = matched[:, j]
        alignment = challenge_alignment(x_ref, x_est, fs=reference.fs)
        alignments[name] = alignment
        if alignment.applied:
            official[name] = _coverage_snr(x_ref, _shift(x_est, alignment, corrected=False))
            corrected[name] = _coverage_snr(x_ref, _shift(x_est, alignment, corrected=True))
        else:
            official[name] = corrected[name] = _coverage_snr(x_ref, x_est)
    return official, corrected, alignments


def challenge_snr(
    reference: Record, estimate: Record | None, *, corrected: bool = False
) -> dict[str, float]:
    """Per-lead PhysioNet Challenge 2024 SNR (dB) of a digitized record.

    Mirrors the digitization part of ``evaluate_model`` of physionetchallenges/evaluation-2024
    for one record: channels matched by name case-insensitively (``reorder_signal``; a lead the
    estimate lacks is scored as zeros), per-lead alignment (:func:`challenge_alignment`),
    applied when ``|lag| <= round(0.5 fs)`` and ``|offset| <= 1 mV``, and ``compute_snr``.

    Parameters
    ----------
    reference : Record
        The reference signal (NaN where unknown).
    estimate : Record or None
        The digitized record; ``None`` when it is missing, which scores 0 on every lead.
    corrected : bool
        ``False`` (default) reproduces the official scoring of early estimates (negative lag):
        only the first ``|lag|`` samples are kept after the shift, scoring about 0 dB.
        ``True`` keeps the whole estimate, which is what the alignment intends.

    Returns
    -------
    dict
        ``{lead: SNR in dB}`` for every lead of the reference, in its order. NaN for a perfect
        reconstruction or a reference lead without finite samples (dropped from means, as the
        Challenge's ``nanmean``); 0 for a missing estimate.

    Raises
    ------
    RecordError
        If the two records have different sampling frequencies.

    Examples
    --------
    >>> from ecgscan.data.synthetic import synthetic_ecg
    >>> ref = synthetic_ecg(fs=100, duration=2.5, seed=1)
    >>> challenge_snr(ref, None)["II"]
    0.0
    """
    official, fixed, _ = _scores(reference, estimate)
    return fixed if corrected else official


def mean_snr(values: Mapping[str, float] | Iterable[float] | NDArray[np.float64]) -> float:
    """NaN-ignoring mean of SNR values, NaN when all are NaN (the Challenge's aggregate)."""
    seq = list(values.values()) if isinstance(values, Mapping) else list(values)
    arr = np.asarray(seq, dtype=np.float64)
    finite = arr[~np.isnan(arr)]
    return float(finite.mean()) if finite.size else math.nan
