"""A synthetic 12-lead ECG for examples, demos and tests that must not depend on downloads.

The heart's electrical activity is modelled as a moving dipole whose three components are sums
of Gaussian waves (P, Q, R, S, T) per beat, in the spirit of McSharry et al. (2003) and the
dipole models of Sameni et al. (2007). The 12 leads are projections of that dipole, so the limb
leads obey Einthoven's and Goldberger's relations exactly (II = I + III, aVR = -(I + II)/2, ...).
It is not a physiological simulator; it gives realistic-looking, internally consistent records.
"""

from __future__ import annotations

import numpy as np

from .record import LEADS, Record

__all__ = ["synthetic_ecg"]

# wave: (time relative to the R peak in s, width in s, dipole amplitude (x, y, z) in mV)
# x points to the patient's left, y downwards (inferior), z forwards (anterior).
_WAVES: dict[str, tuple[float, float, tuple[float, float, float]]] = {
    "P": (-0.17, 0.022, (0.08, 0.12, 0.03)),
    "Q": (-0.028, 0.009, (-0.06, -0.03, 0.18)),
    "R": (0.0, 0.011, (0.95, 0.75, -0.55)),
    "S": (0.03, 0.011, (-0.25, -0.15, -0.45)),
    "T": (0.27, 0.05, (0.28, 0.22, -0.12)),
}
# horizontal-plane angles of the chest electrodes (0° = left, 90° = anterior)
_CHEST_ANGLES = np.deg2rad([115.0, 95.0, 75.0, 55.0, 25.0, 0.0])


_NOISE_BAND_HZ = 40.0


def _band_limited_noise(rng: np.random.Generator, n: int, fs: float, std: float) -> np.ndarray:
    """Gaussian noise on the dipole's 3 axes, low-passed to `_NOISE_BAND_HZ`, with `std` mV."""
    if std <= 0:
        return np.zeros((n, 3))
    white = rng.standard_normal((n, 3))
    from scipy.signal import butter, sosfiltfilt

    cutoff = min(_NOISE_BAND_HZ, 0.4 * fs)
    if n > 27:  # sosfiltfilt's default padding of a 4th-order filter
        white = sosfiltfilt(butter(4, cutoff, fs=fs, output="sos"), white, axis=0)
    return std * white / max(float(white.std()), 1e-12)


def synthetic_ecg(
    *,
    fs: float = 500.0,
    duration: float = 10.0,
    heart_rate: float = 72.0,
    noise_mv: float = 0.01,
    seed: int = 0,
    name: str = "synthetic",
) -> Record:
    """Make a synthetic 12-lead record.

    Parameters
    ----------
    fs : float
        Sampling frequency in Hz.
    duration : float
        Length in seconds.
    heart_rate : float
        Mean heart rate in beats per minute (RR varies by a few percent).
    noise_mv : float
        Standard deviation of additive noise in mV (plus slow baseline wander). The noise is
        band-limited to 40 Hz (or 0.4 × `fs` if lower), like the muscle and electrode noise
        of a filtered clinical recording, so a printed page can draw it.
    seed : int
        Seed of the random generator; the same seed gives the same record.
    name : str
        Record name.

    Examples
    --------
    >>> rec = synthetic_ecg(fs=100, duration=2.5, seed=1)
    >>> rec.signal.shape, rec.leads[:2]
    ((250, 12), ('I', 'II'))
    """
    if fs <= 0 or duration <= 0 or not 20 <= heart_rate <= 250:
        raise ValueError(
            "synthetic_ecg needs fs > 0, duration > 0 and 20 <= heart_rate <= 250 bpm; "
            f"got fs={fs}, duration={duration}, heart_rate={heart_rate}"
        )
    rng = np.random.default_rng(seed)
    n = int(round(fs * duration))
    t = np.arange(n) / fs
    rr_mean = 60.0 / heart_rate
    # R-peak times with slight respiratory variability, starting before 0 to fill the edges.
    peaks = []
    tp = -rr_mean * rng.uniform(0.3, 0.9)
    while tp < duration + rr_mean:
        peaks.append(tp)
        tp += rr_mean * (1 + 0.03 * np.sin(2 * np.pi * tp / 4.0) + 0.01 * rng.standard_normal())
    dipole = np.zeros((n, 3))
    qt_scale = np.sqrt(rr_mean)  # Bazett-like stretching of the T wave position
    for peak in peaks:
        for wave, (offset, width, amp) in _WAVES.items():
            centre = peak + (offset * qt_scale if wave == "T" else offset)
            lo, hi = np.searchsorted(t, [centre - 5 * width, centre + 5 * width])
            if hi <= lo:
                continue
            g = np.exp(-0.5 * ((t[lo:hi] - centre) / width) ** 2)
            dipole[lo:hi] += g[:, None] * np.asarray(amp)
    x, y, z = dipole.T
    lead_i = x
    lead_ii = 0.5 * x + np.sqrt(3) / 2 * y
    lead_iii = lead_ii - lead_i
    avr = -(lead_i + lead_ii) / 2
    avl = lead_i - lead_ii / 2
    avf = lead_ii - lead_i / 2
    chest = [np.cos(a) * x + np.sin(a) * z for a in _CHEST_ANGLES]
    signal = np.stack([lead_i, lead_ii, lead_iii, avr, avl, avf, *chest], axis=1)
    # Electrode-level noise and wander, projected the same way so the limb relations still hold.
    wander = 0.05 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 2 * np.pi))
    noise = _band_limited_noise(rng, n, fs, noise_mv)
    nx, ny, nz = (noise + wander[:, None] * np.array([0.3, 0.5, 0.2])).T
    n_ii = 0.5 * nx + np.sqrt(3) / 2 * ny
    noise12 = np.stack(
        [nx, n_ii, n_ii - nx, -(nx + n_ii) / 2, nx - n_ii / 2, n_ii - nx / 2,
         *[np.cos(a) * nx + np.sin(a) * nz for a in _CHEST_ANGLES]],
        axis=1,
    )  # fmt: skip
    return Record(
        signal + noise12,
        fs=fs,
        leads=LEADS,
        name=name,
        metadata={"source": "ecgscan synthetic dipole model", "heart_rate": heart_rate},
    )
