"""Stage 4: calibration — paper speed (mm/s) and gain (mm/mV) from the calibration pulse.

The standard pulse is a 1-mV step held for 0.2 s: at 10 mm/mV it is 10 mm tall, at 25 mm/s it is
5 mm wide. Its measured height and width (in grid millimetres) give the gain and speed; without
a pulse the defaults (25 mm/s, 10 mm/mV) apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._result import Calibration

__all__ = ["Pulse", "calibrate", "find_pulse"]

_GAINS = (2.5, 5.0, 10.0, 20.0, 40.0)
_SPEEDS = (12.5, 25.0, 50.0)


@dataclass(frozen=True)
class Pulse:
    """A calibration pulse found at the start of a row (all in image pixels)."""

    x_rise: float
    x_fall: float
    y_top: float
    y_base: float


def _first_run_centroid(profile: NDArray[np.float64]) -> float | None:
    """Centroid (index units) of a stroke's profile over its own contiguous run: from the
    first value above 0.1 to the first gap after it. None when the profile holds no ink."""
    above = profile > 0.1
    if above.any():
        first = int(np.argmax(above))
        gaps = np.flatnonzero(~above[first:])
        if gaps.size:
            profile = profile.copy()
            profile[first + int(gaps[0]) :] = 0.0
    total = float(profile.sum())
    if total <= 0.0:
        return None
    return float(np.dot(profile, np.arange(profile.size))) / total


def _top_centre(
    prob: NDArray[np.float32], xa: float, xb: float, top: float, thickness: float
) -> float:
    """Sub-pixel y of the pulse's horizontal top stroke, whose ink starts at row ``top``.

    The probability-weighted centroid down the stroke over the middle half of its length;
    the top row plus half a line when that span is empty.
    """
    fallback = top + thickness / 2.0
    q = (xb - xa) / 4.0
    c0, c1 = int(np.ceil(xa + q)), int(np.floor(xb - q)) + 1
    r0 = max(0, int(top) - 1)
    r1 = min(prob.shape[0], int(top) + int(np.ceil(thickness)) + 2)
    if c1 - c0 < 2 or r1 <= r0:
        return fallback
    centre = _first_run_centroid(prob[r0:r1, c0:c1].astype(np.float64).mean(axis=1))
    return fallback if centre is None else r0 + centre


def _stroke_centre(
    prob: NDArray[np.float32], left: int, top: float, bottom: float, thickness: float
) -> float:
    """Sub-pixel x of a vertical stroke whose ink starts at column ``left``.

    The probability-weighted centroid across the stroke over the middle half of its height,
    over the stroke's own contiguous columns (at most a line and a half wide); its left
    column plus half a line when that is empty.
    """
    fallback = left + (thickness - 1.0) / 2.0
    q = (bottom - top) / 4.0
    r0, r1 = int(np.ceil(top + q)), int(np.floor(bottom - q)) + 1
    c0 = max(0, left - 1)
    c1 = min(prob.shape[1], left + int(np.ceil(1.5 * thickness)) + 1)
    if r1 - r0 < 2 or c1 <= c0:
        return fallback
    centre = _first_run_centroid(prob[r0:r1, c0:c1].astype(np.float64).mean(axis=0))
    return fallback if centre is None else c0 + centre


def find_pulse(
    prob: NDArray[np.float32],
    *,
    baseline: float,
    x_first: int,
    px_per_mm: float,
    thickness: float,
    y_min: int = 0,
) -> Pulse | None:
    """Look for a rectangular pulse at the left end of a row.

    Searches the first 15 mm after ``x_first`` for two tall vertical strokes 2–12 mm apart that
    rise above the row's ``baseline`` (at least 2.5 mm) and share the same bottom and top.
    """
    h, w = prob.shape
    x0 = max(0, int(x_first - 12 * px_per_mm))
    x1 = min(w, int(x_first + 15 * px_per_mm))
    y0 = max(y_min, int(baseline - 45 * px_per_mm))
    y1 = min(h, int(baseline + 4 * px_per_mm))
    win = prob[y0:y1, x0:x1] > 0.5
    if win.size == 0:
        return None
    tall = win.sum(axis=0)
    min_h = 2.5 * px_per_mm
    cols = np.flatnonzero(tall >= min_h)
    if cols.size < 2:
        return None
    # group adjacent columns into strokes
    groups = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
    strokes = []
    for g in groups:
        # a stroke is the left part of the group (the trace may start right after a falling
        # edge and merge with it)
        g = g[: int(2 * thickness) + 2]
        filled = win[:, g].any(axis=1)
        idx = np.flatnonzero(filled)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        run = max(runs, key=len)
        top, bottom = float(run[0]) + y0, float(run[-1]) + y0
        if bottom - top < min_h or abs(bottom - baseline) > 6 * px_per_mm:
            continue
        # the stroke's centre: ink right of a falling edge may belong to the trace that
        # starts there, so it is measured on the stroke's middle rows only
        x_c = _stroke_centre(prob, int(g[0]) + x0, top, bottom, thickness)
        strokes.append((x_c, top, bottom))
    for i in range(len(strokes)):
        for j in range(i + 1, len(strokes)):
            (xa, ta, ba), (xb, tb, bb) = strokes[i], strokes[j]
            dx = (xb - xa) / px_per_mm
            if not 2.0 <= dx <= 12.0:
                continue
            if (
                abs(ta - tb) > 1.0 * px_per_mm + thickness
                or abs(ba - bb) > 1.0 * px_per_mm + thickness
            ):
                continue
            # the top must be joined by ink between the two strokes
            top = int(round((ta + tb) / 2)) - y0
            band = win[
                max(0, top - int(thickness) - 2) : top + int(thickness) + 3,
                int(xa) - x0 : int(xb) - x0,
            ]
            if band.size == 0 or band.any(axis=0).mean() < 0.8:
                continue
            half = thickness / 2.0
            y_top = _top_centre(prob, xa, xb, (ta + tb) / 2, thickness)
            return Pulse(x_rise=xa, x_fall=xb, y_top=y_top, y_base=(ba + bb) / 2 - half)
    return None


def calibrate(
    pulses: list[Pulse],
    *,
    px_per_mm_x: float,
    px_per_mm_y: float,
    paper_speed: float | None = None,
    gain: float | None = None,
) -> Calibration:
    """Paper speed and gain from the pulses found (nearest standard values), or the defaults.

    Values given by the caller win over what is measured.
    """
    measured_gain = measured_speed = None
    if pulses:
        heights = np.array([(p.y_base - p.y_top) / px_per_mm_y for p in pulses])
        widths = np.array([(p.x_fall - p.x_rise) / px_per_mm_x for p in pulses])
        h_mm = float(np.median(heights))
        measured_gain = min(_GAINS, key=lambda g: abs(np.log(g / max(h_mm, 1e-3))))
        # pulse widths vary between vendors (0.1-0.2 s), so the width does not fix the speed;
        # it only confirms the default when it is 5 mm
        w_mm = float(np.median(widths))
        measured_speed = 25.0 if 2.0 <= w_mm <= 12.0 else None
    source = "pulse" if pulses else "default"
    if paper_speed is not None or gain is not None:
        source = "given" if not pulses else "given+pulse"
    return Calibration(
        paper_speed=float(paper_speed if paper_speed is not None else (measured_speed or 25.0)),
        gain=float(gain if gain is not None else (measured_gain or 10.0)),
        source=source,
        pulse_found=bool(pulses),
    )
