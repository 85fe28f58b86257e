"""From a :class:`~ecgscan.data.Record` to the tensor a signal classifier reads.

Every signal model reads ``2 × 12`` channels at a fixed ``fs``: the 12 standard leads in mV,
standardised per lead with the training set's mean and standard deviation, with unknown samples
(NaN: missing leads, gaps, samples not printed on a 3×4 page) set to 0, followed by 12 mask
channels that are 1 where the sample is known and 0 where it is not (:func:`encode_signals`).
A *beat* model (``encoding: beats`` in its configuration) reads instead the median beat of each
lead and the rhythm's rate and regularity (:func:`encode_beats`). Training and inference use
the same functions here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.beats import detect_r_peaks_batch, median_beats, rhythm_features
from ..data.record import LEADS, Record
from ..errors import RecordError

__all__ = [
    "ENCODINGS",
    "PreparedSignal",
    "beat_samples",
    "encode_beats",
    "encode_signals",
    "encoder",
    "prepare_record",
]

#: What a signal model's configuration may name as its ``encoding``.
ENCODINGS = ("signals", "beats")

#: Shortest input (seconds) a signal model is given; shorter records are NaN-padded.
MIN_DURATION = 2.5


@dataclass(frozen=True)
class PreparedSignal:
    """A record resampled to the model's ``fs`` in the 12 standard leads.

    Attributes
    ----------
    signal : ndarray of float32, shape (12, n_samples)
        mV, NaN where unknown.
    fs : float
    missing_leads : tuple of str
        Standard leads that were absent or entirely NaN in the input.
    resampled_from : float or None
        The input's ``fs`` when it differed from the model's, else None.
    """

    signal: NDArray[np.float32]
    fs: float
    missing_leads: tuple[str, ...]
    resampled_from: float | None


def prepare_record(record: Record, *, fs: float, duration: float | None = None) -> PreparedSignal:
    """Bring ``record`` to the 12 standard leads at ``fs`` Hz.

    Parameters
    ----------
    record : Record
        Any leads (absent standard leads become NaN), any ``fs``, NaN allowed.
    fs : float
        The model's sampling frequency; the record is resampled (NaN-aware) when it differs.
    duration : float, optional
        Crop or NaN-pad to this many seconds. By default the whole record is kept, padded to
        at least :data:`MIN_DURATION` seconds.

    Raises
    ------
    RecordError
        If no sample of any standard lead is known.
    """
    if not isinstance(record, Record):
        raise TypeError(f"record must be an ecgscan Record, got {type(record).__name__}")
    std = record.standard()
    missing = std.missing_leads
    if len(missing) == len(LEADS):
        raise RecordError(
            f"record {record.name!r} has no usable standard lead (leads: "
            f"{', '.join(record.leads)}; all missing or all NaN); cannot classify it"
        )
    resampled_from = None
    if std.fs != fs:
        resampled_from = std.fs
        std = std.resample(fs)
    n = std.n_samples
    if duration is not None:
        n = int(round(duration * fs))
    n = max(n, int(round(MIN_DURATION * fs)))
    sig = np.full((len(LEADS), n), np.nan, dtype=np.float32)
    k = min(n, std.n_samples)
    sig[:, :k] = std.signal[:k].T
    return PreparedSignal(sig, float(fs), missing, resampled_from)


def encode_signals(
    signals: ArrayLike, *, mean: Sequence[float], std: Sequence[float]
) -> NDArray[np.float32]:
    """Standardise and mask a batch of signals: ``(batch, 12, n)`` → ``(batch, 24, n)``.

    Parameters
    ----------
    signals : array_like, shape (batch, 12, n) or (12, n)
        mV, NaN where unknown.
    mean, std : sequence of 12 floats
        Per-lead standardisation (from the model's configuration).
    """
    x = _check_batch(np.asarray(signals, dtype=np.float32))
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1)
    known = np.isfinite(x)
    z = np.where(known, (x - m) / s, np.float32(0.0))
    # clip wild values (digitizer glitches) to a range the network saw in training
    np.clip(z, -20.0, 20.0, out=z)
    return np.concatenate([z, known.astype(np.float32)], axis=1)


#: How :func:`encode_beats` scales :data:`~ecgscan.data.beats.RHYTHM_FEATURES` (then clipped
#: to [0, 5]): heart rate in hundreds of bpm, the rest as they are.
_RHYTHM_SCALE = (0.01, 1.0, 1.0, 1.0, 1.0, 1.0)


def beat_samples(fs: float, *, before: float = 0.25, after: float = 0.45) -> int:
    """Length in samples of the median beats :func:`encode_beats` gives at ``fs``."""
    return int(round(before * fs)) + int(round(after * fs))


def _check_batch(x: NDArray[np.float32]) -> NDArray[np.float32]:
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != len(LEADS):
        raise RecordError(f"signals must have shape (batch, 12, n_samples), got {x.shape}")
    return x


def encode_beats(
    signals: ArrayLike,
    *,
    fs: float,
    std: Sequence[float],
    before: float = 0.25,
    after: float = 0.45,
) -> NDArray[np.float32]:
    """Median beats and rhythm of a batch: ``(batch, 12, n)`` → ``(batch, 25, w)``.

    Channels 0–11: each lead's median beat (:func:`~ecgscan.data.beats.median_beats`, PR level
    at 0) divided by the lead's ``std``, 0 where the lead has no whole beat; 12–23: 1 where the
    lead has one, else 0 (constant along the beat); 24: the six
    :data:`~ecgscan.data.beats.RHYTHM_FEATURES` (scaled, clipped to [0, 5]) in its first six
    samples, zeros after. ``w`` is :func:`beat_samples` ``(fs, before=, after=)``.

    Parameters
    ----------
    signals : array_like, shape (batch, 12, n) or (12, n)
        mV, NaN where unknown.
    fs : float
        Sampling rate in Hz.
    std : sequence of 12 floats
        Per-lead scale (from the model's configuration).
    before, after : float
        Seconds of each beat before and after its peak.
    """
    x = _check_batch(np.asarray(signals, dtype=np.float32))
    w = beat_samples(fs, before=before, after=after)
    if w < len(_RHYTHM_SCALE):
        raise RecordError(f"median beats of {w} samples are too short; raise before/after or fs")
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1)
    out = np.zeros((x.shape[0], 2 * len(LEADS) + 1, w), dtype=np.float32)
    for k, (sig, peaks) in enumerate(zip(x, detect_r_peaks_batch(x, fs=fs), strict=True)):
        mb = median_beats(sig, fs=fs, peaks=peaks, before=before, after=after)
        out[k, : len(LEADS)] = np.clip(mb.beats / s, -20.0, 20.0)
        out[k, len(LEADS) : 2 * len(LEADS)] = mb.known[:, None]
        rhythm = rhythm_features(mb.peaks, fs=fs, duration=sig.shape[-1] / fs)
        out[k, -1, : len(_RHYTHM_SCALE)] = np.clip(rhythm * _RHYTHM_SCALE, 0.0, 5.0)
    return out


def encoder(config: Mapping[str, Any]) -> Callable[[ArrayLike], NDArray[np.float32]]:
    """The input encoding a signal model's configuration names.

    ``config['encoding']`` is ``'signals'`` (the default: :func:`encode_signals` with
    ``mean`` and ``std``) or ``'beats'`` (:func:`encode_beats` with ``fs``, ``std`` and the
    optional ``beat`` = ``{'before': s, 'after': s}``). The result maps a batch
    ``(batch, 12, n)`` to the model's input.
    """
    kind = config.get("encoding", "signals")
    if kind == "signals":
        return partial(encode_signals, mean=config["mean"], std=config["std"])
    if kind == "beats":
        window = dict(config.get("beat", {}))
        return partial(encode_beats, fs=float(config["fs"]), std=config["std"], **window)
    raise RecordError(
        f"unknown signal encoding {kind!r} in the model's configuration; expected one of "
        f"{', '.join(ENCODINGS)} (is the model from a newer ecgscan?)"
    )
