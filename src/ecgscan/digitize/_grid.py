"""Stage 3: the paper grid's period in pixels per millimetre along x and y."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._result import Grid

__all__ = ["estimate_grid", "grid_strength"]

# plausible scales: 60 DPI (2.4 px/mm) to 800 DPI (31.5 px/mm)
_MIN_PX_PER_MM = 2.2
_MAX_PX_PER_MM = 32.0
# plausible extent of the page's long side (mm): a 12-lead printout shows at least 2 x 2.5 s of
# trace at 25 mm/s plus margins (a cropped photo of half a sheet included), at most an A3 sheet;
# this keeps a coarse photo's 5-mm squares from being read as the 1-mm grid
_MIN_PAGE_MM = 90.0
_MAX_PAGE_MM = 500.0
# ...and a grid found at a scale that makes the page shorter than this is no ECG grid but a
# periodic pattern of another kind (a page printed without grid, whose heartbeats, rows of
# traces or a scan's moiré repeat; real scans, photos and renders measure 233-330 mm)
_MIN_GRID_PAGE_MM = 150.0


def grid_strength(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """An image that is bright on grid lines and dark elsewhere.

    Coloured grids show in the spread between the largest and smallest channel; grey grids in
    the darkness of the mean. Their sum works for both without knowing which one is printed.
    """
    import cv2

    if image.dtype != np.uint8:
        rf, gf, bf = (image[:, :, k].astype(np.float32) for k in range(3))
        hi = np.maximum(np.maximum(rf, gf), bf)
        lo = np.minimum(np.minimum(rf, gf), bf)
        return np.asarray((hi - lo) + (255.0 - (rf + gf + bf) / 3.0), np.float32)
    r, g, b = (np.asarray(c, np.uint8) for c in cv2.split(np.ascontiguousarray(image[:, :, :3])))
    spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    total = r.astype(np.uint16)
    total += g
    total += b
    out = _DARKNESS[total]  # 255 - mean, in float32, by table
    out += spread
    return out


#: ``255 - s / 3`` in float32 for every channel sum ``s`` of an 8-bit RGB pixel.
_DARKNESS = np.float32(255.0) - np.arange(766, dtype=np.float32) / np.float32(3.0)


def _profile_period(
    profile: NDArray[np.float64],
    lo: float = _MIN_PX_PER_MM,
    hi: float = _MAX_PX_PER_MM,
) -> tuple[float, float]:
    """Period (px) of the 1-mm grid in a 1-D profile and a confidence (peak prominence).

    The minor (1 mm) and major (5 mm) lines give a harmonic comb with fundamental 1/(5 p).
    Every candidate minor period ``p`` is scored by the spectral power at the harmonics of the
    5-mm period; the comb of the true period collects all of them. Candidates range over
    ``lo``..``hi`` px/mm.
    """
    x = profile - np.convolve(profile, np.ones(31) / 31, mode="same")
    x = x[15:-15] if x.size > 60 else x
    n = x.size
    nfft = 1 << int(np.ceil(np.log2(max(n, 64) * 4)))
    win = np.hanning(n)
    spec = np.abs(np.fft.rfft(x * win, nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft)
    noise = float(np.median(spec[(freqs > 0.01)])) + 1e-9
    logspec = np.log(spec / noise + 1.0)
    # the 12 harmonics of the 5-mm period for every candidate minor period (fine log grid)
    cands = np.exp(np.linspace(np.log(lo), np.log(hi), 1200))
    ks = np.arange(1, 13)
    f = ks[None, :] / (5.0 * cands[:, None])
    idx = np.round(f * nfft).astype(np.int64)
    valid = f < 0.5
    idx = np.clip(idx, 1, spec.size - 2)
    vals = np.maximum(logspec[idx], np.maximum(logspec[idx - 1], logspec[idx + 1]))
    vals = np.where(valid, vals, np.nan)
    mean = np.nanmean(vals, axis=1)
    minor = vals[:, 4]
    scores = np.where(np.isfinite(minor), minor + mean, -np.inf)
    i_best = int(np.argmax(scores))
    best, best_score = float(cands[i_best]), float(scores[i_best])
    # a grid whose fine lines are faint can look like a comb at half the period: if the odd
    # sub-harmonics of the found comb stand out of the spectrum too, the true period is twice
    # as long. "Stand out" is measured against the spectrum's own level between the comb's
    # teeth: a detailed high-resolution page has broadband power everywhere (traces, text),
    # which must not count as sub-harmonics
    for _ in range(2):
        p2 = 2.0 * best
        if p2 > hi:
            break
        f_odd = np.arange(1, 24, 2) / (10.0 * best)
        f_odd = f_odd[f_odd < 0.5]
        f_even = np.arange(2, 25, 2) / (10.0 * best)
        f_even = f_even[f_even < 0.5]
        if f_odd.size == 0:
            break
        half = max(2, int(nfft / (20.0 * best)))  # half the spacing of the sub-harmonics, bins

        def prominence(fr: NDArray[np.float64], half: int = half) -> NDArray[np.float64]:
            j = np.clip(np.round(fr * nfft).astype(np.int64), 1, spec.size - 2)
            tops = np.maximum(logspec[j], np.maximum(logspec[j - 1], logspec[j + 1]))
            floors = np.array([np.median(logspec[max(0, k - half) : k + half + 1]) for k in j])
            return np.asarray(np.maximum(tops - floors, 0.0), np.float64)

        if float(np.mean(prominence(f_odd))) > 0.5 * float(np.mean(prominence(f_even))):
            best = p2
        else:
            break
    # refine: peak of the spectrum near the minor fundamental
    f_minor = 1.0 / best
    band = (freqs > f_minor * 0.9) & (freqs < f_minor * 1.1)
    if band.any():
        j = np.flatnonzero(band)[np.argmax(spec[band])]
        if 0 < j < spec.size - 1:
            a, b, c = (
                np.log(spec[j - 1] + 1e-12),
                np.log(spec[j] + 1e-12),
                np.log(spec[j + 1] + 1e-12),
            )
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den != 0 else 0.0
            f_ref = (j + off) / nfft
            if f_ref > 0:
                best = 1.0 / f_ref
    return best, best_score / 2.0


def estimate_grid(
    image: NDArray[np.uint8], *, method: str = "fft", min_confidence: float = 2.0
) -> Grid | None:
    """Estimate the grid period along x and y.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        The straightened page.
    method : {'fft'}
        ``'fft'``: a harmonic-comb fit to the spectra of the column and row profiles of
        :func:`grid_strength` (minor 1-mm and major 5-mm lines together).
    min_confidence : float
        Below this score (log signal-to-noise of the comb) the grid counts as not found.

    Returns
    -------
    Grid or None
        None when no grid is visible, or when the comb found would make the page's long side
        shorter than 150 mm (a pattern that is not the grid: a page printed without one);
        the pipeline then falls back on the pulse or page size.
    """
    if method != "fft":
        raise ValueError(f"unknown grid method {method!r}; expected one of: 'fft'")
    h, w = image.shape[:2]
    # central part of the page (margins often hold text or background)
    cy0, cy1, cx0, cx1 = h // 8, h - h // 8, w // 8, w - w // 8
    core = grid_strength(image[cy0:cy1, cx0:cx1])
    long_side = float(max(h, w))
    hi = min(_MAX_PX_PER_MM, long_side / _MIN_PAGE_MM)
    lo = max(_MIN_PX_PER_MM, min(long_side / _MAX_PAGE_MM, hi / 2.0))
    cols, rows = core.mean(axis=0, dtype=np.float64), core.mean(axis=1, dtype=np.float64)
    px, cx = _profile_period(cols, lo, hi)
    py, cy = _profile_period(rows, lo, hi)
    # the grid is square: when the axes disagree (one took the 5-mm squares, or a harmonic),
    # score each axis's answer on both profiles and keep the one they support together
    if abs(px - py) / max(px, py) > 0.08:
        fits = []
        for c in (px, py):
            fx, sx = _profile_period(cols, max(lo, 0.94 * c), min(hi, 1.06 * c))
            fy, sy = _profile_period(rows, max(lo, 0.94 * c), min(hi, 1.06 * c))
            fits.append((sx + sy, fx, fy, min(sx, sy)))
        _, px, py, conf = max(fits)
        cx = cy = conf
    if min(cx, cy) < min_confidence or long_side / max(px, py) < _MIN_GRID_PAGE_MM:
        return None
    return Grid(
        px_per_mm_x=px, px_per_mm_y=py, found=True, source=f"grid (score {min(cx, cy):.1f})"
    )
