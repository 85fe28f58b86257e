"""Stage 2: geometry — sheet outline and perspective of photos, tilt up to ±45°, a smooth
grid-driven dewarp (residual perspective, lens distortion, curl; refined once when strong),
even lighting (shadows, wrinkle shading), and quarter turns (sideways and upside-down
pages)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._result import Geometry

__all__ = [
    "GridWarp",
    "estimate_rotation",
    "estimate_warp",
    "find_paper",
    "flatten_lighting",
    "straighten",
    "upside_down",
]


def _shrink(image: NDArray[Any], size: tuple[int, int]) -> NDArray[Any]:
    """``cv2.resize(image, size, interpolation=cv2.INTER_AREA)`` (a reduction to ``size`` =
    (W, H)), made cheaper for strong reductions.

    OpenCV averages whole-number blocks (2×2, 3×3 ...) several times faster than fractional
    footprints, so the image is first reduced by the largest whole factor that keeps it at
    least ``size``, and only the small remainder is fractional. Both steps average areas on
    the same pixel grid; the two-step result is only a little smoother in fine detail (noise,
    1-px lines), which the estimates that use these previews do not resolve anyway.
    """
    import cv2

    h, w = image.shape[:2]
    f = min(w // max(size[0], 1), h // max(size[1], 1))
    if f >= 2:
        image = cv2.resize(image, None, fx=1.0 / f, fy=1.0 / f, interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _reduced(image: NDArray[Any], side: float) -> NDArray[Any]:
    """``image`` shrunk (:func:`_shrink`) to at most ``side`` px on its longer side."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale >= 1:
        return image
    return _shrink(image, (max(1, round(w * scale)), max(1, round(h * scale))))


def _line_points(image: NDArray[Any], max_points: int = 50_000) -> NDArray[np.float64]:
    """Coordinates (x, y) of pixels on grid lines and traces (dark or coloured), subsampled."""
    import cv2

    # all in uint8 (max >= min, dilated >= gray) but the final sum, which can pass 255
    r, g, b = cv2.split(image)
    spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    bg = cv2.dilate(gray, np.ones((5, 5), np.uint8))
    strength = np.asarray(cv2.add(cv2.subtract(bg, gray), spread // 2, dtype=cv2.CV_16S), np.int16)
    thr = max(20, int(_int_percentile(strength, 90.0)))
    ys, xs = np.nonzero(strength >= thr)
    if ys.size > max_points:
        rng = np.random.default_rng(0)
        keep = rng.choice(ys.size, max_points, replace=False)
        ys, xs = ys[keep], xs[keep]
    return np.stack([xs, ys], axis=1).astype(np.float64)


def _int_percentile(values: NDArray[np.integer[Any]], q: float) -> float:
    """``np.percentile(values, q)`` (linear) of an integer array of small range, from its
    histogram instead of a partial sort (the same order statistics and interpolation)."""
    flat = values.ravel()
    n = flat.size
    low = int(flat.min())
    cum = np.cumsum(np.bincount(flat - low))
    virtual = (n - 1) * (q / 100.0)
    prev = int(np.floor(virtual))
    if virtual >= n - 1:
        return float(low + int(np.searchsorted(cum, n - 1, side="right")))
    a, b = (low + int(np.searchsorted(cum, k, side="right")) for k in (prev, prev + 1))
    gamma = virtual - prev
    diff = b - a
    return float(b - diff * (1.0 - gamma)) if gamma >= 0.5 else float(a + diff * gamma)


def _sharpness(points: NDArray[np.float64], angles_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sum of squared histogram counts of the points projected on both axes after rotation.

    Straight lines at the right angle pile into few bins, which maximises the sum.
    """
    out = np.empty(angles_deg.size)
    x, y = points[:, 0], points[:, 1]
    for i, a in enumerate(np.deg2rad(angles_deg)):
        total = 0.0
        for proj in (y * np.cos(a) - x * np.sin(a), x * np.cos(a) + y * np.sin(a)):
            counts = np.bincount(np.round(proj - proj.min()).astype(np.int64)).astype(np.float64)
            total += float(np.dot(counts, counts))
        out[i] = total
    return out


def estimate_rotation(
    image: NDArray[np.uint8], *, max_angle: float = 45.0, method: str = "projection"
) -> float:
    """Angle (degrees, counter-clockwise) by which the page's lines are tilted.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    max_angle : float
        Largest tilt searched (at most 45°; larger turns are quarter turns).
    method : {'projection'}
        ``'projection'``: the angle that makes the projections of line pixels (grid lines and
        trace baselines) sharpest along both axes; coarse 0.5° search, then 0.05° refinement.
    """
    if method != "projection":
        raise ValueError(f"unknown rotation method {method!r}; expected one of: 'projection'")

    # straighten's previews reach 1300 px a side (whole-number reductions, see _preview_scale)
    small = _reduced(image, 1300.0)
    pts = _line_points(small)
    if pts.shape[0] < 100:
        return 0.0
    coarse = np.arange(-min(max_angle, 45.0), min(max_angle, 45.0) + 1e-9, 1.0)
    # the 1-degree search needs only a sample of the points (a quarter: lines stay lines);
    # the finer steps use them all
    s = _sharpness(pts[:: 4 if pts.shape[0] >= 4000 else 1], coarse)
    a0 = float(coarse[int(np.argmax(s))])
    # scans and photos are mostly nearly level: a large tilt must beat the best small one
    # clearly (folds and creases are long straight lines too)
    small = np.abs(coarse) <= 6.0
    if abs(a0) > 6.0 and small.any() and s.max() < 1.25 * s[small].max():
        a0 = float(coarse[small][int(np.argmax(s[small]))])
    mid = np.arange(a0 - 1.0, a0 + 1.0 + 1e-9, 0.25)
    a1 = float(mid[int(np.argmax(_sharpness(pts, mid)))])
    fine = np.arange(a1 - 0.25, a1 + 0.25 + 1e-9, 0.05)
    return float(fine[int(np.argmax(_sharpness(pts, fine)))])


def _paper_contrast(small: NDArray[np.uint8]) -> tuple[NDArray[np.float32], float, float]:
    """Paper score (bright and weakly saturated) of a reduced page, blurred, and its medians
    along the image border and over the central half."""
    import cv2

    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    v = hsv[:, :, 2].astype(np.float32)
    s = hsv[:, :, 1].astype(np.float32)
    score = np.asarray(cv2.GaussianBlur(v - 0.8 * s, (0, 0), 3), np.float32)
    border = np.concatenate(
        [score[:5].ravel(), score[-5:].ravel(), score[:, :5].ravel(), score[:, -5:].ravel()]
    )
    inner = score[
        small.shape[0] // 4 : -small.shape[0] // 4, small.shape[1] // 4 : -small.shape[1] // 4
    ]
    return score, float(np.median(border)), float(np.median(inner))


def _fit_side(points: NDArray[np.float64], tol: float) -> tuple[NDArray[np.float64], int]:
    """The straight line through most of ``points`` (N×2): a consensus of point pairs (the
    line within ``tol`` px of the most points), refitted to its inliers by total least
    squares. Returns the line (a, b, c with a x + b y + c = 0, a² + b² = 1) and its
    inlier count."""
    n = points.shape[0]
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, n, size=(200, 2))
    p, q = points[pairs[:, 0]], points[pairs[:, 1]]
    d = q - p
    norm = np.hypot(d[:, 0], d[:, 1])
    ok = norm > 10 * tol  # pairs far enough apart to fix a direction
    if not ok.any():
        return np.zeros(3), 0
    p, d, norm = p[ok], d[ok], norm[ok]
    a, b = -d[:, 1] / norm, d[:, 0] / norm
    c = -(a * p[:, 0] + b * p[:, 1])
    dist = np.abs(points[:, 0:1] * a + points[:, 1:2] * b + c)  # N × pairs
    best = int(np.argmax((dist <= tol).sum(axis=0)))
    inl = points[dist[:, best] <= tol]
    for _ in range(2):  # total least squares on the inliers, then its own inliers
        centre = inl.mean(axis=0)
        _, _, vt = np.linalg.svd(inl - centre, full_matrices=False)
        normal = vt[-1]
        line = np.array([normal[0], normal[1], -float(normal @ centre)])
        inl = points[np.abs(points @ line[:2] + line[2]) <= tol]
        if inl.shape[0] < 2:
            return line, 0
    return line, int(inl.shape[0])


def _paper_sides(
    contour: NDArray[np.float64], shape: tuple[int, int]
) -> NDArray[np.float64] | None:
    """Corners (4×2, clockwise from top-left) where the four straight sides of a sheet's
    outline ``contour`` (its boundary points on the reduced image of ``shape``) meet.

    The boundary's points are split by the direction of the outline there (along x: top or
    bottom side, along y: left or right) and by which side of the sheet's centre they lie
    on; points on the image frame are left out (where the sheet leaves the picture, the
    frame is not its edge). Each side is the line through most of its points (bright
    patches of the background that merge with the sheet, a shadow, a finger bite into the
    outline but are not on it). The sides must be real edges: each line's inliers cover a
    quarter of its length inside the frame at least, and 60 % over the four sides (a
    rounded patch of light or shade is not straight for long). The corners may lie outside
    the frame (a sheet whose corner was not photographed).
    """
    h, w = shape
    n = contour.shape[0]
    k = 4
    tangent = np.roll(contour, -k, axis=0) - np.roll(contour, k, axis=0)
    along_x = np.abs(tangent[:, 0]) >= np.abs(tangent[:, 1])
    on_frame = (
        (contour[:, 0] <= 1) | (contour[:, 1] <= 1)
        | (contour[:, 0] >= w - 2) | (contour[:, 1] >= h - 2)
    )  # fmt: skip
    cx, cy = contour.mean(axis=0)
    groups = [
        along_x & (contour[:, 1] < cy),  # top
        ~along_x & (contour[:, 0] > cx),  # right
        along_x & (contour[:, 1] >= cy),  # bottom
        ~along_x & (contour[:, 0] <= cx),  # left
    ]
    tol = max(1.5, 0.004 * max(h, w))
    lines, counts = [], []
    for g in groups:
        pts = contour[g & ~on_frame]
        if pts.shape[0] < max(20, n // 40):
            return None
        line, count = _fit_side(pts, tol)
        lines.append(line)
        counts.append(count)
    corners = []
    for i in range(4):  # top-left = left ∩ top, top-right = top ∩ right, ...
        l1, l2 = lines[i - 1], lines[i]
        den = l1[0] * l2[1] - l2[0] * l1[1]
        if abs(den) < 0.2:  # adjacent sides must cross at a clear angle (~> 12°)
            return None
        x = (l1[1] * l2[2] - l2[1] * l1[2]) / den
        y = (l2[0] * l1[2] - l1[0] * l2[2]) / den
        corners.append((x, y))
    quad = np.array(corners, np.float64)
    reach = 0.1 * max(h, w)
    if (quad[:, 0] < -reach).any() or (quad[:, 0] > w - 1 + reach).any():
        return None
    if (quad[:, 1] < -reach).any() or (quad[:, 1] > h - 1 + reach).any():
        return None
    # corners [TL, TR, BR, BL]; side i runs from corner i to corner i + 1 (top: TL -> TR)
    lengths = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        seg = a + np.linspace(0.0, 1.0, 200)[:, None] * (b - a)
        inside = (seg[:, 0] >= 0) & (seg[:, 0] <= w - 1) & (seg[:, 1] >= 0) & (seg[:, 1] <= h - 1)
        # contour points come one per pixel step along the side's main direction
        lengths.append(float(np.abs(b - a).max()) * float(inside.mean()))
    support = np.array(counts, np.float64) / np.maximum(lengths, 1.0)
    if support.min() < 0.25 or sum(counts) < 0.6 * sum(lengths):
        return None
    # a convex quadrilateral (the corners in clockwise order on the image, y down)
    edges = np.roll(quad, -1, axis=0) - quad
    cross = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if not (cross > 0).all():
        return None
    return quad


def find_paper(image: NDArray[np.uint8]) -> NDArray[np.float64] | None:
    """Corners (4×2, x/y, clockwise from top-left) of a sheet photographed on a background.

    The sheet is the largest bright, weakly coloured region; its corners are where the
    straight lines along its four sides meet (:func:`_paper_sides`), which holds when a
    bright patch of the background merges with the sheet or a corner of the sheet lies
    just outside the picture. Returns None when the paper fills the image (a scan: its
    outline has no edges of its own) or no clear quadrilateral is found.
    """
    import cv2

    h, w = image.shape[:2]
    f = round(max(h, w) / 800.0)
    if f >= 2:
        # a quick look on a whole-number reduction (several times cheaper than the 800-px
        # one): a page whose border is not clearly darker than its middle is a scan
        quick = cv2.resize(image, None, fx=1.0 / f, fy=1.0 / f, interpolation=cv2.INTER_AREA)
        _, b, c = _paper_contrast(np.asarray(quick, np.uint8))
        if c - b < 15:
            return None
    scale = 800.0 / max(h, w)
    small = np.asarray(
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
    )
    score, b, c = _paper_contrast(small)
    if c - b < 25:
        return None
    mask: NDArray[Any] = (score > (b + c) / 2).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(cnt)
    if area < 0.2 * mask.size or area > 0.97 * mask.size:
        return None
    quad = _paper_sides(cnt[:, 0, :].astype(np.float64), mask.shape[:2])
    if quad is None:
        return None
    # the score is blurred (sigma 3 px): its half-way level is the sheet's edge, a pixel
    # centre of the reduced image maps to ((x + 0.5) / scale - 0.5) in the original
    return (quad + 0.5) / scale - 0.5


@dataclass(frozen=True)
class GridWarp:
    """A smooth displacement field that makes the paper grid straight and evenly spaced.

    An image point ``(x, y)`` belongs at ``(x + u(x, y), y + v(x, y))``; ``u`` and ``v`` are
    sampled on a lattice of nodes ``step`` px apart (node ``(i, j)`` at
    ``((j + 0.5) * step - 0.5, (i + 0.5) * step - 0.5)``) in the coordinates of the image the
    warp was estimated on. Translation and uniform scale are removed (they move nothing on the
    paper); ``magnitude`` is the largest remaining displacement in px over the gridded area.
    """

    u: NDArray[np.float64]
    v: NDArray[np.float64]
    step: int
    magnitude: float
    coverage: float


def _line_strength(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Bright on printed lines (coloured grids through channel spread, grey ones through
    darkness), high-passed; the darkest marks (traces, text) are zeroed so they cannot pull
    the grid's phase."""
    import cv2

    r, g, b = cv2.split(image)
    spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    s = spread.astype(np.float32) + (255.0 - gray.astype(np.float32))
    # traces and text are much darker than grid lines: a dark-pixel threshold well beyond the
    # bulk of the page (paper and grid), from a subsample
    sample = gray[::4, ::4].ravel()
    paper = float(np.percentile(sample, 60))
    ink = float(np.percentile(sample, 0.5))
    dark = gray < ink + 0.35 * (paper - ink)
    if dark.mean() < 0.15:
        dark = cv2.dilate(dark.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        s[dark] = np.nan
    return s


def _dominant_period(profile: NDArray[np.float64], p_min: float, p_max: float) -> float | None:
    """Period (px) of the strongest spectral peak of a 1-D profile within [p_min, p_max]."""
    x = profile - np.convolve(profile, np.ones(31) / 31, mode="same")
    x = x[15:-15]
    if x.size < 64 or p_max <= p_min:
        return None
    nfft = 1 << int(np.ceil(np.log2(x.size * 4)))
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), nfft)) ** 2
    f = np.fft.rfftfreq(nfft)
    band = np.flatnonzero((f >= 1.0 / p_max) & (f <= 1.0 / p_min))
    if band.size < 3:
        return None
    j = int(band[np.argmax(spec[band])])
    if spec[j] < 20.0 * float(np.median(spec[band])):
        return None  # no clear periodic pattern: no grid to go by
    a, b, c = np.log(spec[j - 1 : j + 2] + 1e-12)
    den = a - 2 * b + c
    off = 0.5 * (a - c) / den if den != 0 else 0.0
    return float(nfft / (j + off))


def _highpass(strength: NDArray[np.float32], period: float) -> NDArray[np.float32]:
    """Line strength less its local mean over two periods (NaN marks count as 0), clipped so
    that no single mark dominates."""
    import cv2

    valid = np.isfinite(strength)
    s = np.where(valid, strength, np.float32(0.0))
    wv = valid.astype(np.float32)
    k = int(2 * period) | 1
    local = cv2.blur(s, (k, k)) / np.maximum(cv2.blur(wv, (k, k)), 1e-3)
    hp = cv2.multiply(cv2.subtract(s, local), wv)
    hi = float(np.percentile(np.abs(hp[::3, ::3]), 97)) + 1e-6
    return np.asarray(np.clip(hp, -hi, hi, out=hp), np.float32)


def _pool(a: NDArray[np.float32], step: int, axis: int, sigma: float | None) -> NDArray[np.float64]:
    """Mean of ``a`` over the lattice cells (``step`` × ``step`` px), lightly smoothed; with
    ``sigma`` the values are first band-limited along ``axis`` (1: x, 0: y) by a Gaussian.

    The image is averaged across ``axis`` first (a whole-number reduction), so the Gaussian
    runs on ``step`` times fewer lines: averaging along one axis and filtering along the
    other commute, so this equals filtering the full image and then averaging the cells."""
    import cv2

    h, w = a.shape
    ny, nx = h // step, w // step
    small: NDArray[Any]
    if sigma is not None:
        # the filter sees the whole length of the axis (its border as before); only the
        # other axis is cut to whole cells
        ksize = 2 * int(3 * sigma) + 1
        if axis == 1:
            lines = cv2.resize(a[: ny * step], (w, ny), interpolation=cv2.INTER_AREA)
            lines = cv2.GaussianBlur(lines, (ksize, 1), sigmaX=sigma, sigmaY=sigma)[:, : nx * step]
        else:
            lines = cv2.resize(a[:, : nx * step], (nx, h), interpolation=cv2.INTER_AREA)
            lines = cv2.GaussianBlur(lines, (1, ksize), sigmaX=sigma, sigmaY=sigma)[: ny * step]
        small = cv2.resize(lines, (nx, ny), interpolation=cv2.INTER_AREA)
    else:
        small = cv2.resize(a[: ny * step, : nx * step], (nx, ny), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small, (0, 0), 1.0), np.float64)


def _phase_field(
    hp: NDArray[np.float32],
    period: float,
    axis: int,
    step: int,
    energy: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Local phase of the grid's periodic pattern along ``axis`` (1: x, 0: y) on the lattice,
    and its coherence (amplitude relative to the local line energy, 0-1), from the
    high-passed line strength ``hp``; ``energy`` is ``_pool(|hp|)``."""
    h, w = hp.shape
    n = w if axis == 1 else h
    ang = 2.0 * np.pi * np.arange(n) / period
    c, sn = np.cos(ang).astype(np.float32), -np.sin(ang).astype(np.float32)
    c, sn = (c[None, :], sn[None, :]) if axis == 1 else (c[:, None], sn[:, None])
    # band-limit along the axis before pooling: the demodulated product has a component at
    # twice the grid frequency there
    sigma = 0.6 * period
    re, im = _pool(hp * c, step, axis, sigma), _pool(hp * sn, step, axis, sigma)
    return np.arctan2(im, re), np.hypot(re, im) / (energy + 1e-6)


def _smooth_fit(
    field: NDArray[np.float64], weight: NDArray[np.float64], *, degree: int = 3, sigma: float = 2.5
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """A smooth version of ``field`` from its nodes with ``weight > 0``: a robust polynomial
    (the page's overall bend: perspective, lens, curl) plus a locally smoothed residual (bumps
    and wrinkles), extrapolated flat outside the nodes. Also returns the inlier nodes."""
    import cv2

    ny, nx = field.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    xn, yn = xx / max(nx - 1, 1) * 2 - 1, yy / max(ny - 1, 1) * 2 - 1
    terms = [xn**i * yn**j for i in range(degree + 1) for j in range(degree + 1 - i)]
    a = np.stack(terms, axis=-1).reshape(-1, len(terms))
    f, w0 = field.ravel(), weight.ravel()
    w = w0.copy()
    coef = np.zeros(a.shape[1])
    for _ in range(3):
        aw = a * w[:, None]
        coef = np.linalg.solve(aw.T @ a + 1e-9 * np.eye(a.shape[1]), aw.T @ f)
        r = f - a @ coef
        mad = float(np.median(np.abs(r[w > 0]))) if (w > 0).any() else 0.0
        w = w0 * (np.abs(r) < max(4.0 * 1.4826 * mad, 0.5))
    poly = (a @ coef).reshape(ny, nx)
    inl = (w > 0).reshape(ny, nx)
    wf = inl.astype(np.float32)
    num = cv2.GaussianBlur(((field - poly) * inl).astype(np.float32), (0, 0), sigma)
    den = cv2.GaussianBlur(wf, (0, 0), sigma)
    resid = np.where(den > 0.05, num / np.maximum(den, 1e-6), 0.0)
    return poly + resid * np.clip(den / 0.3, 0.0, 1.0), inl


def estimate_warp(
    image: NDArray[np.uint8],
    *,
    min_coherence: float = 0.06,
    max_coherence: float = 0.2,
    min_coverage: float = 0.25,
) -> GridWarp | None:
    """Displacement field that makes the paper grid's lines straight and evenly spaced.

    The grid is the page's own ruler: along each axis the phase of its strongest periodic
    component (the 1-mm or 5-mm lines) is measured locally by complex demodulation, unwrapped
    over the page, and turned into a displacement (phase × period / 2π). A robust cubic
    polynomial plus a smoothed residual gives a dense field that undoes residual perspective,
    lens distortion, curl and gentle wrinkles alike.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        A roughly levelled page (tilt below ~2°) whose grid lines are at least 3 px apart
        (:func:`straighten` passes a preview of about 1000-1300 px a side).
    min_coherence, max_coherence : float
        Lattice nodes whose grid pattern is weak (coherence, 0-1) are ignored (traces, text,
        blank margins, background). The threshold is half the coherence of the page's
        better-gridded quarter of nodes, kept between ``min_coherence`` (about three times
        what sensor noise alone gives) and ``max_coherence``: printed line grids reach
        0.3-0.5, while dotted grids and blurred photos of any grid reach only about 0.1.
    min_coverage : float
        Least share of the lattice where both axes' fields hold (their nodes that fit the
        smooth field). A paper grid covers most of a page (scans and photos: 0.45-1); a
        periodic texture on a page without a grid (a row of beats, lines of text) holds on
        a few patches only, and a field fitted there would be extrapolated over the rest.

    Returns
    -------
    GridWarp or None
        None when no periodic grid covers enough of the page.
    """
    import cv2
    from skimage.restoration import unwrap_phase

    strength = _line_strength(image)
    h, w = strength.shape
    core = strength[h // 6 : h - h // 6, w // 6 : w - w // 6]
    fields = []
    for axis in (1, 0):
        fin = np.isfinite(core)
        tot = np.where(fin, core, 0.0).sum(axis=0 if axis == 1 else 1, dtype=np.float64)
        cnt = fin.sum(axis=0 if axis == 1 else 1)
        if not cnt.any():
            return None
        prof = np.where(cnt > 0, tot / np.maximum(cnt, 1), tot.sum() / cnt.sum())
        period = _dominant_period(prof, 3.0, min(80.0, prof.size / 12.0))
        if period is None:
            return None
        fields.append(period)
    # one lattice for both axes, nodes about every 8 px and at least a period apart
    step = max(8, int(round(max(fields))))
    hp = _highpass(strength, float(np.mean(fields)))
    energy = _pool(np.abs(hp), step, 1, None)
    out = []
    for axis, period in zip((1, 0), fields, strict=True):
        phase, coh = _phase_field(hp, period, axis, step, energy)
        thr = float(np.clip(0.5 * np.percentile(coh, 75), min_coherence, max_coherence))
        good = coh > thr
        n_lab, lab = cv2.connectedComponents(good.astype(np.uint8), connectivity=4)
        if n_lab < 2:
            return None
        big = int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
        good = lab == big
        if good.mean() < 0.15:
            return None
        unwrapped = unwrap_phase(np.ma.masked_array(phase, mask=~good))
        disp = np.asarray(np.ma.filled(unwrapped, 0.0), np.float64) * period / (2.0 * np.pi)
        out.append(_smooth_fit(disp, good.astype(np.float64)))
    (u, in_u), (v, in_v) = out
    ny, nx = u.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    xc, yc = (xx + 0.5) * step - 0.5, (yy + 0.5) * step - 0.5
    m = in_u & in_v
    if m.sum() < 20 or m.mean() < min_coverage:
        return None
    # translation and uniform scale move nothing on the paper: remove them (shear and
    # anisotropic scale are perspective and stay)
    a = np.stack([np.ones(int(m.sum())), xc[m], yc[m]], axis=1)
    cu = np.linalg.lstsq(a, u[m], rcond=None)[0]
    cv_ = np.linalg.lstsq(a, v[m], rcond=None)[0]
    scale = 0.5 * (cu[1] + cv_[2])
    u = u - cu[0] - scale * xc
    v = v - cv_[0] - scale * yc
    mag = float(max(np.abs(u[m]).max(), np.abs(v[m]).max()))
    return GridWarp(u=u, v=v, step=step, magnitude=mag, coverage=float(m.mean()))


def _warp_maps(
    warps: Sequence[GridWarp],
    matrix: NDArray[np.float64],
    size: tuple[int, int],
    scale: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Full-resolution remap tables for an output canvas of ``size`` = (W, H): each output
    pixel undoes ``warps`` (estimated one after the other at ``scale`` × the canvas
    resolution, each on the page the previous ones straightened: the last is undone first),
    then ``matrix`` (source → canvas) backwards, so the source is resampled once."""
    import cv2

    wo, ho = size
    coarse = 8
    gx = np.arange(0, wo + coarse, coarse, dtype=np.float64)
    gy = np.arange(0, ho + coarse, coarse, dtype=np.float64)
    xo, yo = np.meshgrid(gx, gy)
    xf, yf = xo, yo
    if warps:
        x, y = (xo * scale).astype(np.float32), (yo * scale).astype(np.float32)
        for warp in reversed(warps):
            u32, v32 = warp.u.astype(np.float32), warp.v.astype(np.float32)
            xw, yw = x, y
            for _ in range(6):  # x + u(x) = X, by fixed-point iteration
                lx = (x + 0.5) / warp.step - 0.5
                ly = (y + 0.5) / warp.step - 0.5
                du = cv2.remap(u32, lx, ly, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                dv = cv2.remap(v32, lx, ly, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                x, y = xw - du, yw - dv
        xf, yf = x.astype(np.float64) / scale, y.astype(np.float64) / scale
    inv = np.linalg.inv(matrix)
    den = inv[2, 0] * xf + inv[2, 1] * yf + inv[2, 2]
    xs = (inv[0, 0] * xf + inv[0, 1] * yf + inv[0, 2]) / den
    ys = (inv[1, 0] * xf + inv[1, 1] * yf + inv[1, 2]) / den
    # bilinear upsampling of the coarse tables (the mapping is smooth at 8 px)
    tx = (np.arange(wo, dtype=np.float32) / coarse)[None, :].repeat(ho, 0)
    ty = (np.arange(ho, dtype=np.float32) / coarse)[:, None].repeat(wo, 1)
    mx = cv2.remap(xs.astype(np.float32), tx, ty, cv2.INTER_LINEAR)
    my = cv2.remap(ys.astype(np.float32), tx, ty, cv2.INTER_LINEAR)
    return np.asarray(mx, np.float32), np.asarray(my, np.float32)


#: Lead names that do not read the same turned 180° (``I``, ``II``, ``III`` do, and a
#: single stroke of a trace reads as ``I``).
_ASYMMETRIC_NAMES = ("aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _standing(pulse: Any, baseline: float, px_per_mm: float) -> bool:
    """Whether a pulse found by :func:`find_pulse` stands on its row's ``baseline``: whole
    (not cut by the page's edge), its foot within 1.5 mm of the baseline and its top at least
    2 mm above it. The shape tests alone also take the pulse hanging from the row above on a
    page turned the wrong way (its foot 3 mm above this row's baseline, cut off by the
    search window's edge) for one."""
    return (
        not pulse.partial
        and abs(pulse.y_base - baseline) <= 1.5 * px_per_mm
        and baseline - pulse.y_top >= 2.0 * px_per_mm
    )


def _pulse_evidence(prob: NDArray[np.float32], px_per_mm: float) -> tuple[int, list[Any]]:
    """Rows of the ink map ``prob`` with a calibration pulse standing on the row's baseline
    (:func:`_standing`) at either end (at the row's start, or after its trace); and the rows
    (:func:`find_rows`)."""
    from ._calibration import find_end_pulse, find_pulse
    from ._extract import line_thickness
    from ._layout import find_rows

    rows = find_rows(prob, px_per_mm=px_per_mm)
    if not rows:
        return 0, rows
    thick = line_thickness(prob, [(r.y_lo, r.y_hi) for r in rows])
    standing = 0
    for r in rows:
        found = [
            find_pulse(prob, baseline=r.center, x_first=r.x_first, px_per_mm=px_per_mm,
                       thickness=thick, y_min=r.y_lo),
            find_end_pulse(prob, baseline=r.center, x_last=r.x_last, px_per_mm=px_per_mm,
                           thickness=thick, y_min=r.y_lo),
        ]  # fmt: skip
        standing += any(f is not None and _standing(f, r.center, px_per_mm) for f in found)
    return standing, rows


def _label_evidence(
    prob: NDArray[np.float32], px_per_mm: float, rows: Sequence[Any]
) -> tuple[int, int]:
    """Words near the ``rows`` that read as a lead name (one of :data:`_ASYMMETRIC_NAMES`,
    similarity at least 0.7) the right way up, and turned 180°, better than the other way;
    the count stops at the first word that reads well the right way up.

    Printed text reads well only the right way up; the names ``I``, ``II`` and ``III`` read
    the same both ways and are left out, and so are words narrower than 0.8 × their height
    (the other names are two or three letters wide; a narrow word is a stroke). Words more
    than 14 mm above the first of two rows or more or below the last (the header's lines)
    are not read.
    """
    from ._layout import _read_names, _words

    lab, _, words = _words(prob > 0.5, px_per_mm=px_per_mm)
    # (with two rows or more found; a page whose rows were missed is read whole)
    top, bottom = 0.0, float(prob.shape[0])
    if len(rows) >= 2:
        top = min(r.center for r in rows) - 14 * px_per_mm
        bottom = max(r.center for r in rows) + 14 * px_per_mm
    upright = turned = 0
    for ks, (x0, y0, x1, y1) in words:
        if not top <= (y0 + y1) / 2 <= bottom or x1 - x0 + 1 < 0.8 * (y1 - y0 + 1):
            continue
        sub = np.isin(lab[y0 : y1 + 1, x0 : x1 + 1], ks)
        a = max(_read_names(sub)[0][n] for n in _ASYMMETRIC_NAMES)
        b = max(_read_names(np.ascontiguousarray(sub[::-1, ::-1]))[0][n]
                for n in _ASYMMETRIC_NAMES)  # fmt: skip
        upright += a >= 0.7 and a > b + 0.05
        turned += b >= 0.7 and b > a + 0.05
        if upright:
            break
    return upright, turned


@dataclass(frozen=True)
class _Orientation:
    """Evidence about a page's orientation (see :func:`upside_down`)."""

    standing: int  # rows with a pulse standing on the baseline at either end, page as given
    labels: int = 0  # lead names reading well as given (counted up to the first)
    turned_labels: int = 0  # ... and turned 180°
    turned_pulses: int = 0  # rows with a standing pulse at either end, page turned 180°


def _orientation(image: NDArray[np.uint8], side: float, *, full: bool) -> _Orientation:
    """:class:`_Orientation` of a page read reduced to at most ``side`` px a side; the
    reading stops at the first evidence that the page is the right way up (a standing
    pulse, a name), and at the page's own pulses unless ``full``."""
    from ._grid import estimate_grid
    from ._segment import segment_traces

    small = _reduced(image, side)
    grid = estimate_grid(small)
    ppm = grid.px_per_mm_x if grid is not None else small.shape[1] / 279.4
    prob, _ = segment_traces(small, px_per_mm=ppm, method="darkness")
    standing, rows = _pulse_evidence(prob, ppm)
    if standing or not full:
        return _Orientation(standing)
    up, down = _label_evidence(prob, ppm, rows)
    if up:
        return _Orientation(standing, up, down)
    turned, _ = _pulse_evidence(np.ascontiguousarray(prob[::-1, ::-1]), ppm)
    return _Orientation(standing, up, down, turned)


#: Side (px) of the quick first look of :func:`upside_down`.
_QUICK_SIDE = 800.0


def upside_down(image: NDArray[np.uint8]) -> bool:
    """Whether a landscape page is upside down (turned 180°).

    Turning a page that is the right way up is catastrophic, so a page is turned only on
    clear evidence. Calibration pulses stand up from the baseline, at the left end of the
    rows or (some machines) at the right end; on a page turned 180° they hang down from it.
    Printed lead names read well only the right way up (:func:`_label_evidence`). The page
    counts as upside down when, as given, no row has a pulse standing on its baseline at
    either end and no name reads well, and turned, at least two rows have a standing pulse
    or at least two names read well. (A pulse found at a row's end is not enough: the
    shape tests also take the pulse hanging from the row above for one, see
    :func:`_standing`.) The rows are read on the page reduced to 1100 px a side; a large
    page first gets a quick look at 800 px, and two rows with a standing pulse there settle
    it (upright) at half the cost.
    """
    quick = max(image.shape[:2]) > 1.25 * _QUICK_SIDE
    if quick and _orientation(image, _QUICK_SIDE, full=False).standing >= 2:
        return False
    o = _orientation(image, 1100.0, full=True)
    if o.standing or o.labels:
        return False
    return o.turned_pulses >= 2 or o.turned_labels >= 2


def flatten_lighting(
    image: NDArray[np.uint8], *, min_shade: float = 0.8, max_gain: float = 4.0
) -> NDArray[np.uint8]:
    """Even out the paper's brightness: shadows, vignetting, wrinkle and fold shading.

    The paper's brightness is the closing (largest value, then smallest, about 2.5 mm across
    on a letter or A4 sheet) of the brightest channel, smoothed; each pixel is divided by it.
    Ink, grid lines and text keep their contrast to the paper around them, and dark patches of
    shading no longer look like ink or like the edge of the sheet to the later stages.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    min_shade : float
        Pages whose paper is at least this bright (relative to the brightest paper) over
        98 % of the page (scans, evenly lit photos) are returned as they are.
    max_gain : float
        Largest brightening: darker places (a scanner bed, the fill around a rotated scan) are
        brightened by this factor at most.

    Returns
    -------
    ndarray
        The evened page, or ``image`` itself when its lighting is already even.
    """
    import cv2

    h, w = image.shape[:2]
    f = 4  # the paper's brightness is smooth: estimate it on a quarter-size copy
    r, g, b = cv2.split(image)
    value = cv2.max(cv2.max(r, g), b)
    small = cv2.resize(value, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    k = max(3, int(round(max(h, w) / 110.0 / f)) | 1)  # ~2.5 mm on a whole sheet
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel).astype(np.float32)
    paper = np.asarray(cv2.GaussianBlur(closed, (0, 0), k / 2.0), np.float32)
    white = float(np.percentile(paper, 95))
    if white <= 0 or float(np.percentile(paper, 2)) >= min_shade * white:
        return image
    gain_small = np.clip(white / np.maximum(paper, 1.0), 1.0, max_gain).astype(np.float32)
    gain = np.asarray(cv2.resize(gain_small, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    # each channel times the gain in float32, rounded and saturated to 0-255
    chans = [cv2.multiply(c, gain, dtype=cv2.CV_8U) for c in cv2.split(image)]
    return np.asarray(cv2.merge(chans), np.uint8)


#: Largest side (px) of the preview the grid warp is estimated on.
_WARP_SIDE = 1200
#: A warp larger than this (preview px) is refined by a second estimate on the dewarped preview.
_REFINE_PX = 4.0


def _preview_scale(side: int, *, whole: bool = True) -> float:
    """Scale of the preview the tilt and the grid warp are estimated on, for a page whose
    longer side is ``side`` px: about ``_WARP_SIDE`` px a side; with ``whole``, a whole-number
    reduction (1/2, 1/3 ...) when that gives 1000-1300 px (several times cheaper to make than
    a fractional one; a 200-DPI letter page becomes 1100 px, a 300-DPI one 1100 px). A sheet's
    outline is resampled by a homography anyway (``whole=False``)."""
    if side <= _WARP_SIDE:
        return 1.0
    f = round(side / _WARP_SIDE)
    if whole and f >= 2 and 1000 <= side / f <= 1300:
        return 1.0 / f
    return _WARP_SIDE / side


def straighten(
    image: NDArray[np.uint8],
    *,
    max_angle: float = 45.0,
    perspective: bool = True,
    dewarp: bool = True,
    orient: bool = True,
    flatten: bool = True,
) -> tuple[NDArray[np.uint8], Geometry]:
    """Flatten a photographed sheet, turn the page to landscape and remove its tilt.

    Steps: the sheet's outline (photos on a background) gives a homography; the tilt of the
    lines gives a rotation; the paper grid then gives a smooth residual warp (see
    :func:`estimate_warp`: leftover perspective, lens distortion, curl). All of them are
    composed and the page is resampled once; a page with nothing to fix is returned as is.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    max_angle : float
        Largest tilt corrected, in degrees.
    perspective : bool
        Look for a photographed sheet on a background and flatten it.
    dewarp : bool
        Straighten the grid lines with a smooth warp when they bend by more than 1.5 px
        (2.5 px on a page that needs no other correction: below that, the estimate's own
        noise on flat pages, about 1 px, would only blur the traces). A strong bend (over
        4 px on the preview: a sheet photographed at an angle without its outline, a curl)
        is read again on the dewarped preview and the remainder is undone too (a phone photo
        whose grid bends by 40 px is left with about 0.3 px instead of 2-7 px).
    orient : bool
        Turn a page that is upside down (see :func:`upside_down`) the right way up; a
        portrait image is always turned to landscape first.
    flatten : bool
        Even out uneven lighting and shading of the paper (see :func:`flatten_lighting`).

    Returns
    -------
    image : ndarray
        The straightened page.
    geometry : Geometry
        The corrections applied.
    """
    import cv2

    homography = None
    h, w = image.shape[:2]
    matrix = np.eye(3)
    size = (w, h)
    if perspective:
        corners = find_paper(image)
        if corners is not None:
            top = np.linalg.norm(corners[1] - corners[0])
            bottom = np.linalg.norm(corners[2] - corners[3])
            left = np.linalg.norm(corners[3] - corners[0])
            right = np.linalg.norm(corners[2] - corners[1])
            w_out, h_out = int(round(max(top, bottom))), int(round(max(left, right)))
            dst = np.array(
                [[0, 0], [w_out - 1, 0], [w_out - 1, h_out - 1], [0, h_out - 1]], dtype=np.float64
            )
            m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))
            matrix = np.asarray(m, np.float64)
            homography = matrix.tolist()
            size = (w_out, h_out)
    # a preview of the flattened page for the tilt and the grid warp
    scale = _preview_scale(max(size), whole=homography is None)
    s_mat = np.diag([scale, scale, 1.0])
    pw, ph = max(1, int(round(size[0] * scale))), max(1, int(round(size[1] * scale)))
    preview: NDArray[Any]
    if homography is None and scale == 1.0:
        preview = image
    elif homography is None and round(1 / scale) * scale == 1.0:
        # a whole-number reduction: cv2 takes its fast block-averaging path given fx, fy
        preview = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ph, pw = preview.shape[:2]
    elif homography is None:
        preview = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA)
    else:
        src: NDArray[Any] = image
        to_preview = s_mat @ matrix
        if scale < 0.75:  # anti-alias before a strong reduction
            pre = 1.5 * scale
            src = cv2.resize(image, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
            to_preview = to_preview @ np.diag([1 / pre, 1 / pre, 1.0])
        preview = cv2.warpPerspective(
            src, to_preview, (pw, ph), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255)
        )
    preview = np.asarray(preview, np.uint8)
    angle = estimate_rotation(preview, max_angle=max_angle)
    turns = 0
    rotate = abs(angle) > 0.02
    if rotate:
        wr, hr = size
        rot = cv2.getRotationMatrix2D((wr / 2.0, hr / 2.0), angle, 1.0)
        cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
        nw, nh = int(hr * sin + wr * cos), int(hr * cos + wr * sin)
        rot[0, 2] += nw / 2.0 - wr / 2.0
        rot[1, 2] += nh / 2.0 - hr / 2.0
        matrix = np.vstack([rot, [0.0, 0.0, 1.0]]) @ matrix
        size = (nw, nh)
        scale = _preview_scale(max(size), whole=homography is None)
        pw, ph = max(1, int(round(nw * scale))), max(1, int(round(nh * scale)))
        prot = np.diag([scale, scale, 1.0]) @ np.vstack([rot, [0.0, 0.0, 1.0]])
        prot = prot @ np.linalg.inv(s_mat)
        preview = cv2.warpAffine(
            preview, prot[:2], (pw, ph), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255)
        )
    warps: list[GridWarp] = []
    warp = estimate_warp(np.asarray(preview, np.uint8)) if dewarp else None
    resampled = homography is not None or rotate
    if warp is not None and warp.magnitude / scale >= (1.5 if resampled else 2.5):
        warps.append(warp)
        # a strong bend (a photo at an angle, a curled sheet) is not undone in one step: the
        # grid read on the straightened preview gives the rest
        if warp.magnitude > _REFINE_PX:
            pmx, pmy = _warp_maps(warps, np.eye(3), (pw, ph), 1.0)
            flat = cv2.remap(
                preview, pmx, pmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                borderValue=(255, 255, 255),
            )  # fmt: skip
            rest = estimate_warp(np.asarray(flat, np.uint8))
            if rest is not None and 0.5 < rest.magnitude < warp.magnitude:
                warps.append(rest)
    if warps:
        mx, my = _warp_maps(warps, matrix, size, scale)
        img: NDArray[Any] = cv2.remap(
            image, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
            borderValue=(255, 255, 255),
        )  # fmt: skip
    elif homography is not None:
        img = cv2.warpPerspective(
            image, matrix, size, flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255)
        )
    elif rotate:
        img = cv2.warpAffine(
            image, matrix[:2], size, flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255)
        )
    else:
        img = image
    if flatten:
        img = flatten_lighting(img)
    if img.shape[0] > img.shape[1] * 1.05:
        img = np.ascontiguousarray(np.rot90(img, 1))
        turns = 1
    if orient and upside_down(img):
        img = np.ascontiguousarray(img[::-1, ::-1])
        turns += 2
    dewarped = round(float(sum(w.magnitude for w in warps) / scale), 2)
    return img, Geometry(
        quarter_turns=turns, rotation=angle, perspective=homography, dewarp=dewarped
    )
