"""Stage 2: geometry — quarter turns, rotation up to ±45° and perspective of photographed pages."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._result import Geometry

__all__ = ["estimate_rotation", "find_paper", "straighten"]


def _line_points(image: NDArray[Any], max_points: int = 50_000) -> NDArray[np.float64]:
    """Coordinates (x, y) of pixels on grid lines and traces (dark or coloured), subsampled."""
    import cv2

    small = image
    chans = [small[:, :, k].astype(np.int16) for k in range(3)]
    spread = np.maximum(np.maximum(*chans[:2]), chans[2]) - np.minimum(
        np.minimum(*chans[:2]), chans[2]
    )
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
    bg = cv2.dilate(gray.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.int16)
    strength = (bg - gray) + spread // 2
    thr = max(20, int(np.percentile(strength, 90)))
    ys, xs = np.nonzero(strength >= thr)
    if ys.size > max_points:
        rng = np.random.default_rng(0)
        keep = rng.choice(ys.size, max_points, replace=False)
        ys, xs = ys[keep], xs[keep]
    return np.stack([xs, ys], axis=1).astype(np.float64)


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
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, 1200.0 / max(h, w))
    small = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else image
    )
    pts = _line_points(small)
    if pts.shape[0] < 100:
        return 0.0
    coarse = np.arange(-min(max_angle, 45.0), min(max_angle, 45.0) + 1e-9, 1.0)
    s = _sharpness(pts, coarse)
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


def find_paper(image: NDArray[np.uint8]) -> NDArray[np.float64] | None:
    """Corners (4×2, x/y, clockwise from top-left) of a sheet photographed on a background.

    Returns None when the paper fills the image (a scan) or no clear quadrilateral is found.
    """
    import cv2

    h, w = image.shape[:2]
    scale = 800.0 / max(h, w)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    # paper: bright and weakly saturated compared with the border of the photo
    v = hsv[:, :, 2].astype(np.float32)
    s = hsv[:, :, 1].astype(np.float32)
    score = v - 0.8 * s
    score = cv2.GaussianBlur(score, (0, 0), 3)
    border = np.concatenate(
        [score[:5].ravel(), score[-5:].ravel(), score[:, :5].ravel(), score[:, -5:].ravel()]
    )
    inner = score[
        small.shape[0] // 4 : -small.shape[0] // 4, small.shape[1] // 4 : -small.shape[1] // 4
    ]
    b, c = float(np.median(border)), float(np.median(inner))
    if c - b < 25:
        return None
    mask: NDArray[Any] = (score > (b + c) / 2).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(cnt)
    if area < 0.2 * mask.size or area > 0.97 * mask.size:
        return None
    hull = cv2.convexHull(cnt)
    peri = cv2.arcLength(hull, True)
    quad = None
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            quad = approx[:, 0, :].astype(np.float64)
            break
    if quad is None:
        return None
    # order: top-left, top-right, bottom-right, bottom-left
    ssum, diff = quad.sum(axis=1), quad[:, 0] - quad[:, 1]
    # a sheet photographed on a background lies inside the frame: corners on the image edge
    # mean the "paper" is a lighting or crease artefact of a scan
    sh, sw = mask.shape
    margin = 0.01 * max(sh, sw)
    if (
        (quad[:, 0] < margin).any()
        or (quad[:, 1] < margin).any()
        or (quad[:, 0] > sw - 1 - margin).any()
        or (quad[:, 1] > sh - 1 - margin).any()
    ):
        return None
    ordered = np.array(
        [quad[np.argmin(ssum)], quad[np.argmax(diff)], quad[np.argmax(ssum)], quad[np.argmin(diff)]]
    )
    return ordered / scale


def straighten(
    image: NDArray[np.uint8],
    *,
    max_angle: float = 45.0,
    perspective: bool = True,
) -> tuple[NDArray[np.uint8], Geometry]:
    """Flatten a photographed sheet, turn the page to landscape and remove its tilt.

    Returns the straightened image and the :class:`Geometry` applied.
    """
    import cv2

    homography = None
    img: NDArray[Any] = image
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
            img = cv2.warpPerspective(
                image, m, (w_out, h_out), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255)
            )
            homography = m.tolist()
    angle = estimate_rotation(img, max_angle=max_angle)
    turns = 0
    if abs(angle) > 0.02:
        h, w = img.shape[:2]
        rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
        nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
        rot[0, 2] += nw / 2.0 - w / 2.0
        rot[1, 2] += nh / 2.0 - h / 2.0
        img = cv2.warpAffine(
            img, rot, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255)
        )
    if img.shape[0] > img.shape[1] * 1.05:
        img = np.ascontiguousarray(np.rot90(img, 1))
        turns = 1
    return img, Geometry(quarter_turns=turns, rotation=angle, perspective=homography)
