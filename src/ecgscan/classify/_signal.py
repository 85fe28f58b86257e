"""From a :class:`~ecgscan.data.Record` to the tensor a signal classifier reads.

Every signal model reads ``2 × 12`` channels at a fixed ``fs``: the 12 standard leads in mV,
standardised per lead with the training set's mean and standard deviation, with unknown samples
(NaN: missing leads, gaps, samples not printed on a 3×4 page) set to 0, followed by 12 mask
channels that are 1 where the sample is known and 0 where it is not. Training and inference use
the same two functions here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.record import LEADS, Record
from ..errors import RecordError

__all__ = ["PreparedSignal", "encode_signals", "prepare_record"]

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
    x = np.asarray(signals, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != len(LEADS):
        raise RecordError(f"signals must have shape (batch, 12, n_samples), got {x.shape}")
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1)
    known = np.isfinite(x)
    z = np.where(known, (x - m) / s, np.float32(0.0))
    # clip wild values (digitizer glitches) to a range the network saw in training
    np.clip(z, -20.0, 20.0, out=z)
    return np.concatenate([z, known.astype(np.float32)], axis=1)
