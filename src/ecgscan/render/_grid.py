"""ECG paper backgrounds: tinted paper with minor/major grid lines or dots, cached.

Lines are drawn with exact box-filter coverage (anti-aliased, sub-pixel positions), computed
as 1-D profiles along each axis and combined, so a full 600-DPI page costs a few tens of
milliseconds and is then served from an LRU cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["GRID_COLORS", "GridSpec", "draw_grid"]

#: Named grid colours: (minor, major) RGB, as printed on commercial ECG paper.
GRID_COLORS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((250, 196, 196), (232, 60, 60)),
    "pink": ((250, 215, 225), (238, 130, 160)),
    "orange": ((252, 214, 180), (240, 140, 60)),
    "green": ((196, 232, 200), (60, 160, 80)),
    "blue": ((200, 215, 245), (70, 110, 200)),
    "grey": ((215, 215, 215), (150, 150, 150)),
    "black": ((190, 190, 190), (60, 60, 60)),
}

GRID_STYLES = ("lines", "dots", "none")


@dataclass(frozen=True)
class GridSpec:
    """How the paper looks (all lengths in millimetres, colours RGB 0–255).

    Attributes
    ----------
    style : {'lines', 'dots', 'none'}
        Lines every millimetre (minor) and 5 mm (major), dots at the minor intersections
        (major lines still drawn), or blank paper.
    minor_color, major_color : tuple of int
        Colours of the minor and major lines.
    background : tuple of int
        Paper tint.
    minor : bool
        Draw the 1 mm lines (some printers only print the 5 mm lines).
    minor_width, major_width : float
        Line widths in millimetres (drawn at least 0.6 px wide so that they never vanish).
    origin : tuple of float
        Page position (x, y) in mm of a major grid intersection.
    extent : tuple of float
        Rectangle (x0, y0, x1, y1) in mm covered by the grid.
    """

    style: str = "lines"
    minor_color: tuple[int, int, int] = GRID_COLORS["red"][0]
    major_color: tuple[int, int, int] = GRID_COLORS["red"][1]
    background: tuple[int, int, int] = (255, 255, 255)
    minor: bool = True
    minor_width: float = 0.1
    major_width: float = 0.2
    origin: tuple[float, float] = (0.0, 0.0)
    extent: tuple[float, float, float, float] = (0.0, 0.0, 279.4, 215.9)


def _profile(n: int, centers: NDArray[np.float64], width: float) -> NDArray[np.float32]:
    """Coverage in [0, 1] of each of ``n`` pixels by lines of ``width`` px at ``centers``."""
    out = np.zeros(n, np.float32)
    half = width / 2.0
    reach = int(np.ceil(half + 1))
    offsets = np.arange(-reach, reach + 1)
    for c in centers:
        idx = int(np.floor(c)) + offsets
        ok = (idx >= 0) & (idx < n)
        idx = idx[ok]
        cover = np.minimum(idx + 0.5, c + half) - np.maximum(idx - 0.5, c - half)
        np.maximum.at(out, idx, np.clip(cover, 0.0, 1.0).astype(np.float32))
    return out


def _centers(lo_mm: float, hi_mm: float, origin_mm: float, step_mm: float, ppmm: float) -> Any:
    k0 = int(np.ceil((lo_mm - origin_mm) / step_mm - 1e-9))
    k1 = int(np.floor((hi_mm - origin_mm) / step_mm + 1e-9))
    mm = origin_mm + step_mm * np.arange(k0, k1 + 1)
    return mm * ppmm - 0.5, np.arange(k0, k1 + 1)


def draw_grid(
    size: tuple[int, int], px_per_mm: tuple[float, float], spec: GridSpec
) -> NDArray[np.uint8]:
    """Render the paper background (H×W×3 uint8, read-only; cached).

    Parameters
    ----------
    size : (width, height)
        Page size in pixels.
    px_per_mm : (x, y)
        Scale of the page.
    spec : GridSpec
        The paper.
    """
    return _draw_grid_cached(size, px_per_mm, spec)


@lru_cache(maxsize=6)
def _draw_grid_cached(
    size: tuple[int, int], px_per_mm: tuple[float, float], spec: GridSpec
) -> NDArray[np.uint8]:
    import cv2

    width, height = size
    sx, sy = px_per_mm
    bg = np.asarray(spec.background, np.float64)
    if spec.style == "none":
        img = np.empty((height, width, 3), np.uint8)
        img[:] = np.rint(bg).astype(np.uint8)
        img.flags.writeable = False
        return img
    # Coverage of the minor and major layers, quantised to 16 levels each, combined into one
    # uint8 index per pixel, coloured through a 256-entry lookup table (fast and exact enough:
    # 1/15 steps of anti-aliasing).
    x0, y0, x1, y1 = spec.extent
    levels = 15
    index = np.zeros((height, width), np.uint8)
    for shift, step, lw, wanted in (
        (4, 1.0, spec.minor_width, spec.minor),
        (0, 5.0, spec.major_width, True),
    ):
        if not wanted:
            continue
        cx, kx = _centers(x0, x1, spec.origin[0], step, sx)
        cy, ky = _centers(y0, y1, spec.origin[1], step, sy)
        if step == 1.0:  # minor lines under the major ones: skip every 5th
            cx, cy = cx[kx % 5 != 0], cy[ky % 5 != 0]
        if spec.style == "dots" and step == 1.0:
            ax = _profile(width, cx, max(lw * 2.0 * sx, 1.0))
            ay = _profile(height, cy, max(lw * 2.0 * sy, 1.0))
            layer = np.rint(np.outer(ay, ax) * levels).astype(np.uint8)
        else:
            qx = np.rint(_profile(width, cx, max(lw * sx, 0.6)) * levels).astype(np.uint8)
            qy = np.rint(_profile(height, cy, max(lw * sy, 0.6)) * levels).astype(np.uint8)
            layer = np.maximum.outer(qy, qx)
        index |= layer << shift if shift else layer
    # outside the grid's extent: plain paper
    c0, c1 = int(np.ceil(x0 * sx - 0.5)), int(np.floor(x1 * sx - 0.5)) + 1
    r0, r1 = int(np.ceil(y0 * sy - 0.5)), int(np.floor(y1 * sy - 0.5)) + 1
    index[:, : max(c0, 0)] = 0
    index[:, max(c1, 0) :] = 0
    index[: max(r0, 0)] = 0
    index[max(r1, 0) :] = 0
    a_minor = (np.arange(256) >> 4) / levels
    a_major = (np.arange(256) & 15) / levels
    minor_c = np.asarray(spec.minor_color, np.float64)
    major_c = np.asarray(spec.major_color, np.float64)
    under = bg[None, :] * (1 - a_minor[:, None]) + minor_c[None, :] * a_minor[:, None]
    table = under * (1 - a_major[:, None]) + major_c[None, :] * a_major[:, None]
    lut = np.clip(np.rint(table), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    out: NDArray[np.uint8] = np.asarray(cv2.LUT(cv2.merge([index, index, index]), lut))
    out.flags.writeable = False
    return out


def _profile_box(n: int, lo: float, hi: float) -> NDArray[np.float32]:
    idx = np.arange(n, dtype=np.float64)
    cover = np.minimum(idx + 0.5, hi) - np.maximum(idx - 0.5, lo)
    return np.clip(cover, 0.0, 1.0).astype(np.float32)
