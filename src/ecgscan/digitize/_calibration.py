"""Stage 4: calibration — paper speed (mm/s) and gain (mm/mV) from the calibration pulse.

The standard pulse is a 1-mV step held for 0.2 s: at 10 mm/mV it is 10 mm tall, at 25 mm/s it is
5 mm wide. Its measured height and width (in grid millimetres) give the gain and speed; without
a pulse the settings printed on the page ("25 mm/s 20 mm/mV", :mod:`._text`) do, else the
defaults (25 mm/s, 10 mm/mV) apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ._layout import _longest_run, _runs
from ._result import _CHEST_LEADS, Calibration
from ._text import PrintedCalibration

__all__ = [
    "Pulse",
    "calibrate",
    "find_end_pulse",
    "find_ladder",
    "find_pulse",
    "refine_fall",
    "settle_gains",
    "zero_line",
]

_GAINS = (2.5, 5.0, 10.0, 20.0, 40.0)
_SPEEDS = (12.5, 25.0, 50.0)


@dataclass(frozen=True)
class Pulse:
    """A calibration pulse found at the start of a row (all in image pixels).

    ``partial`` marks a pulse cut by the page's (or the scan's) left edge: only its top and
    falling edge are printed, and ``x_rise`` is where its top begins, not its rising edge
    (its width says nothing about the paper speed). ``shape`` is ``'square'`` (up, 0.2 s at
    1 mV, down) or ``'step'`` (up and held: older printers draw the rise and the top only,
    then lift the pen; ``x_fall`` is then where the top ends, and the trace starts after a
    blank gap). ``y_chest`` is set on a stepped pulse (split-gain pages: 1 mV at the limb
    leads' gain, ``y_top``, for the first half of its width, then 1 mV at the chest leads'
    gain, ``y_chest``, for the second half); None otherwise.
    """

    x_rise: float
    x_fall: float
    y_top: float
    y_base: float
    partial: bool = False
    shape: str = "square"
    y_chest: float | None = None


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


def refine_fall(image: NDArray[np.uint8], pulse: Pulse, *, thickness: float) -> Pulse:
    """``pulse`` with its falling edge's x measured on the image's grey levels.

    The darkness map saturates a crisp stroke's core and drops its anti-aliased edges (their
    ink is fainter than the grid lines), so on a clean page the stroke's centroid there is
    the centre of its solid columns, up to a quarter of a pixel off (ECG-Image-Kit, 200 DPI:
    118.0 where it is drawn at 118.21; at 500 Hz a sample is 0.39 px, and a 0.2-sample
    error costs a few dB). Here each row of the stroke's middle half gives the centroid of
    its grey darkness (relative to that row's paper) over its own contiguous run of ink; the
    median over the rows leaves out rows where the trace touches the stroke. The pulse is
    kept as it is when fewer than three rows give a centroid (a stroke lost in noise or
    merged with its neighbours) or the centroid moves by more than a pixel. Only square
    pulses' falling edges are measured (a step's ``x_fall`` is where its top ends).
    """
    if pulse.shape != "square":
        return pulse
    h = pulse.y_base - pulse.y_top
    r0 = max(0, int(np.ceil(pulse.y_top + h / 4)))
    r1 = min(image.shape[0], int(np.floor(pulse.y_base - h / 4)) + 1)
    half = int(np.ceil(1.5 * thickness)) + 1
    c = int(round(pulse.x_fall))
    c0, c1 = max(0, c - half), min(image.shape[1], c + half + 1)
    if r1 - r0 < 3 or c1 - c0 < 3:
        return pulse
    win = image[r0:r1, c0:c1].astype(np.float64)
    grey = win.max(axis=2) if win.ndim == 3 else win  # the value channel, as the map's
    paper = np.percentile(grey, 95, axis=1, keepdims=True)
    dark = np.clip(1.0 - grey / np.maximum(paper, 1.0), 0.0, 1.0)
    centres = []
    for d in dark - np.minimum(dark[:, :1], dark[:, -1:]):
        peak = int(np.argmax(d))
        if d[peak] < 0.3:
            continue  # no stroke on this row
        lo = hi = peak
        while lo > 0 and d[lo - 1] > 0.02:
            lo -= 1
        while hi < d.size - 1 and d[hi + 1] > 0.02:
            hi += 1
        if lo == 0 or hi == d.size - 1:
            continue  # the ink runs out of the window: not the stroke alone
        run = d[lo : hi + 1]
        centres.append(lo + float(np.dot(run, np.arange(run.size)) / run.sum()))
    if len(centres) < 3:
        return pulse
    x = c0 + float(np.median(centres))
    return replace(pulse, x_fall=x) if abs(x - pulse.x_fall) <= 1.0 else pulse


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
    Failing that, a pulse cut by the page's left edge (its flat top and falling edge, see
    :func:`_cut_top`) is returned with ``partial=True``, or a step pulse (a rise and a held
    top, no falling edge, see :func:`_step_top`) with ``shape='step'``.
    """
    return _pulse_in(prob, x_first - 12 * px_per_mm, x_first + 15 * px_per_mm,
                     baseline=baseline, px_per_mm=px_per_mm, thickness=thickness,
                     y_min=y_min, cut=True)  # fmt: skip


def find_ladder(
    prob: NDArray[np.float32],
    baselines: Sequence[float],
    x_first: Sequence[float],
    *,
    px_per_mm: float,
    thickness: float,
) -> list[Pulse | None] | None:
    """The rows' pulses when they are stacked into one "ladder" (rows closer than a pulse is
    tall), or None.

    On a 12x1 page whose rows are closer together than a 1-mV pulse is tall (20 mm/mV with
    rows 11.8 mm apart, or 10 mm/mV with rows 10 mm apart) each row's pulse rises through
    the rows above: the rises (and the falling edges of square pulses) merge into one
    vertical line down the page, with the pulses' tops as rungs between (square) or right of
    (step) the verticals, and their lead-ins as stubs to the left at the rows' baselines.
    No single stroke stands on one row's baseline, so :func:`find_pulse` finds none, or a
    wrong one (a ladder read as a pulse 7.7 mm tall, PTB-XL 9908). Here the vertical must
    run down past three rows' ``baselines`` at least (the page's rows, top to bottom;
    ``x_first`` their first columns of ink); the pulse height is the offset between the rows'
    baselines and the rungs that most rows share (the k-th rung above the k-th baseline),
    and a row's baseline is the lead-in stub beside it when there is one. Returns a pulse
    per row (None for rows the ladder does not reach or no rung matches), or None when no
    ladder stands there or fewer than three rows (and half of those it spans) match.
    """
    n = len(baselines)
    if n < 3:
        return None
    h, w = prob.shape
    b = np.asarray(baselines, dtype=np.float64)
    spacing = float(np.median(np.diff(np.sort(b))))
    x0 = max(0, int(min(x_first) - 12 * px_per_mm))
    x1 = min(w, int(np.median(x_first) + 15 * px_per_mm))
    y0 = max(0, int(b.min() - 45 * px_per_mm))
    y1 = min(h, int(b.max() + 4 * px_per_mm))
    if x1 - x0 < 3 or y1 - y0 < 3 or spacing <= 0:
        return None
    ink = prob[y0:y1, x0:x1] > 0.5
    t = int(np.ceil(thickness))
    tol = max(1.0 * px_per_mm, thickness)
    # columns holding a vertical run that reaches down past three baselines, ending in the
    # window (a grid line the map kept runs through it)
    long_cols: dict[int, tuple[int, int]] = {}
    for c in np.flatnonzero(ink.sum(axis=0) >= spacing).tolist():  # (with that much ink)
        run = _longest_run(ink[:, c], px_per_mm=1.0, gap_mm=2.0)
        if run is None:
            continue
        top, bottom = run[0] + y0, run[1] + y0
        if top <= y0 + 1 or bottom >= y1 - 2:
            continue
        crossed = int(np.sum((b > top + tol) & (b <= bottom + tol)))
        if crossed >= 3 and bottom - top >= 2.5 * spacing:
            long_cols[c] = (top, bottom)
    if not long_cols:
        return None
    cols = np.array(sorted(long_cols))
    groups = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
    strokes = []
    for g in groups:
        if g.size > 2 * t + 2:
            continue  # a band of ink, not a stroke
        top = int(np.median([long_cols[c][0] for c in g]))
        bottom = int(np.median([long_cols[c][1] for c in g]))
        x_c = _stroke_centre(prob, int(g[0]) + x0, top, bottom, thickness)
        strokes.append((x_c, int(g[0]) + x0, int(g[-1]) + x0, top, bottom))
    if not strokes:
        return None
    xa, la, ra, top, bottom = strokes[0]
    fall = None
    for xb, lb, rb, tb, bb in strokes[1:]:
        if 2.0 <= (xb - xa) / px_per_mm <= 12.0 and min(bottom, bb) - max(top, tb) > 2 * spacing:
            fall = (xb, lb, rb, tb, bb)
            break
    # square pulses (a falling vertical beside the rising one), else steps
    for edge in [fall, None] if fall is not None else [None]:
        pulses = _ladder_pulses(prob, b, xa=xa, la=la, ra=ra, top=top, bottom=bottom,
                                fall=edge, px_per_mm=px_per_mm, thickness=thickness)  # fmt: skip
        if pulses is not None:
            return pulses
    return None


def _ladder_pulses(
    prob: NDArray[np.float32],
    b: NDArray[np.float64],
    *,
    xa: float,
    la: int,
    ra: int,
    top: int,
    bottom: int,
    fall: tuple[float, int, int, int, int] | None,
    px_per_mm: float,
    thickness: float,
) -> list[Pulse | None] | None:
    """The pulses of :func:`find_ladder` from its rising vertical (centre ``xa``, columns
    ``la``-``ra``, rows ``top``-``bottom``) and its falling one (``fall``: centre, columns,
    rows; None for step pulses), or None when the rungs do not fit the rows' ``b``."""
    h, w = prob.shape
    t = int(np.ceil(thickness))
    tol = max(1.0 * px_per_mm, thickness)
    if fall is not None:
        c0, c1 = ra + 2, fall[1] - 1  # between the verticals
    else:
        c0, c1 = ra + 2, min(w, ra + 2 + int(2.0 * px_per_mm))  # right of the vertical
    if c1 - c0 < 2:
        return None
    r0, r1 = max(0, top - t - 1), min(h, bottom + t + 2)
    band = prob[r0:r1, c0:c1] > 0.5
    rung_rows = band.mean(axis=1) >= 0.8
    rungs = [r0 + (a + z) / 2.0 for a, z in _runs(rung_rows) if z - a <= 2 * t + 2]
    covered = [i for i in range(b.size) if top - tol <= b[i] <= bottom + tol]
    if len(covered) < 3 or not rungs or len(rungs) > len(covered) + 2:
        return None  # a grid's mesh has a rung every 5 mm
    ry = np.asarray(rungs)
    # the pulse height: the offset from baselines to rungs that most rows share
    cands = sorted({round(float(bi - r)) for bi in b[covered] for r in ry
                    if 2.5 * px_per_mm <= bi - r <= 45 * px_per_mm})  # fmt: skip
    best: tuple[int, float, float] | None = None
    for cand in cands:
        err = [float(np.min(np.abs(ry - (b[i] - cand)))) for i in covered]
        hits = sum(e <= tol for e in err)
        score = (hits, -float(np.sum([e for e in err if e <= tol])))
        if best is None or score > (best[0], best[1]):
            best = (hits, score[1], float(cand))
    if best is None or best[0] < max(3, (len(covered) + 1) // 2):
        return None
    g = best[2]
    # the ladder begins at the first pulse's top and ends at the last row's baseline (a
    # frame line beside the traces' starts does neither)
    if abs(float(ry.min()) - top) > tol + t or float(np.min(np.abs(b - bottom))) > tol + t:
        return None

    def stub(y: float, x_from: int, x_to: int) -> float | None:
        """Centre row of a flat stub across columns x_from..x_to near row y."""
        x_from, x_to = max(0, x_from), min(w, x_to)
        a, z = max(0, int(y - tol - t)), min(h, int(y + tol + t) + 1)
        if x_to - x_from < 2 or z <= a:
            return None
        rows = (prob[a:z, x_from:x_to] > 0.5).mean(axis=1) >= 0.8
        runs = [(a + (p + q) / 2.0) for p, q in _runs(rows) if q - p <= 2 * t + 2]
        return min(runs, key=lambda v: abs(v - y)) if runs else None

    stub_w = int(1.5 * px_per_mm)
    out: list[Pulse | None] = [None] * b.size
    for i in covered:
        k = int(np.argmin(np.abs(ry - (b[i] - g))))
        if abs(ry[k] - (b[i] - g)) > tol:
            continue
        base = stub(b[i], la - 1 - stub_w, la - 1)
        if base is None and fall is not None:
            base = stub(b[i], fall[2] + 2, fall[2] + 2 + stub_w)
        base = float(b[i]) if base is None else base
        out[i] = Pulse(x_rise=xa, x_fall=fall[0] if fall is not None else xa, y_top=float(ry[k]),
                       y_base=base, shape="square" if fall is not None else "step")  # fmt: skip
    if fall is None:
        # a step's top ends where its rung does; the rows' tops end together, so a top that
        # the trace runs on from (or that is broken) takes the others' end
        ends: list[float | None] = [None] * b.size
        for i, p in enumerate(out):
            if p is None:
                continue
            yy = int(round(p.y_top))
            inked = np.asarray((prob[max(0, yy - t - 1) : yy + t + 2, :] > 0.2).any(axis=0))
            x_end = _top_run(inked, min(w - 1, ra + 1), +1, max(2, int(round(0.5 * px_per_mm))))
            if 2.0 * px_per_mm <= x_end - la <= 12.0 * px_per_mm:
                ends[i] = float(x_end) - (thickness - 1.0) / 2.0  # its last ink is its cap
        valid = [e for e in ends if e is not None]
        if not valid:
            return None
        common = float(np.median(valid))
        for i, (p, e) in enumerate(zip(out, ends, strict=True)):
            if p is not None:
                own = e is not None and abs(e - common) <= 1.0 * px_per_mm
                out[i] = replace(p, x_fall=e if own and e is not None else common)
    return out


def find_end_pulse(
    prob: NDArray[np.float32],
    *,
    baseline: float,
    x_last: int,
    px_per_mm: float,
    thickness: float,
    y_min: int = 0,
) -> Pulse | None:
    """Look for a calibration pulse printed after a row's trace, at its right end.

    Some machines print the pulse after the traces. The same strict shape tests as for
    :func:`find_pulse` (a square pulse, or a step) over the last 15 mm up to ``x_last``, the
    row's last column of ink; a pulse cut by the page's edge is not looked for there.
    """
    return _pulse_in(prob, x_last - 15 * px_per_mm, x_last + 3 * px_per_mm,
                     baseline=baseline, px_per_mm=px_per_mm, thickness=thickness,
                     y_min=y_min, cut=False)  # fmt: skip


def _pulse_in(
    prob: NDArray[np.float32],
    x_lo: float,
    x_hi: float,
    *,
    baseline: float,
    px_per_mm: float,
    thickness: float,
    y_min: int,
    cut: bool,
) -> Pulse | None:
    """A pulse between columns ``x_lo`` and ``x_hi``, from 45 mm above the row's ``baseline``
    to 4 mm below it (not above ``y_min``); ``cut``: also a pulse cut by the page's left edge.
    """
    h, w = prob.shape
    x0, x1 = max(0, int(x_lo)), min(w, int(x_hi))
    y0 = max(y_min, int(baseline - 45 * px_per_mm))
    y1 = min(h, int(baseline + 4 * px_per_mm))
    window = prob[y0:y1, x0:x1]
    if window.size == 0:
        return None
    # faint printing (thin lines on a JPEG) breaks the strokes at the usual ink level: a
    # second look at weaker ink, across breaks of up to 2 px, with the same strict shape
    # tests; a third lets a stroke step sideways by up to 0.75 mm (a photo's stroke bent by
    # the paper or the dewarp, its lower part a few pixels off its upper part)
    jog = max(1, int(round(0.75 * px_per_mm)))
    for level, bridge, step in ((0.5, 0, 1), (0.25, 2, 1), (0.25, 2, jog)):
        pulse = _search_pulse(prob, window > level, x0=x0, y0=y0, baseline=baseline,
                              px_per_mm=px_per_mm, thickness=thickness, bridge=bridge,
                              cut=cut, jog=step)  # fmt: skip
        if pulse is not None:
            return pulse
    if cut and x0 == 0:
        return _cut_step(prob, window > 0.5, y0=y0, baseline=baseline, px_per_mm=px_per_mm,
                         thickness=thickness)  # fmt: skip
    return None


def _cut_step(
    prob: NDArray[np.float32],
    win: NDArray[np.bool_],
    *,
    y0: int,
    baseline: float,
    px_per_mm: float,
    thickness: float,
) -> Pulse | None:
    """A step pulse cut by the page's left edge, of which only the end of its top is printed.

    A scan or photo that cuts a row's start through a step pulse (rise and held top, no
    falling edge) leaves a short flat stroke that starts at the image's first columns and
    stops, as far above the row's ``baseline`` as a 1-mV pulse at a usual gain is tall
    (within 12 %), with open paper below it (PTB-XL 11202 in the random style: 5 mm of top,
    the trace 1.5 mm after it). Without it the stroke was read as the row's start, 6.6 mm
    (0.26 s) early. ``win`` is the ink of the search window (its first column the image's,
    its first row ``y0``). Returns a partial step pulse whose ``x_rise`` is the image's edge
    and whose ``y_base`` is the row's ``baseline`` (its foot is cut off), or None.
    """
    t = int(np.ceil(thickness))
    gap = max(2, int(round(0.5 * px_per_mm)))
    for a, z in _runs(np.asarray(win[:, : t + 2].any(axis=1))):
        if z - a > 2 * t + 1:
            continue  # not a thin horizontal stroke at the edge (a fill, a letter)
        top = y0 + a
        if not _pulse_tall(top + (z - a) / 2.0, baseline, px_per_mm):
            continue
        band = prob[max(0, top - t - 1) : y0 + z + t + 2, :] > 0.2
        cols: NDArray[np.bool_] = np.asarray(band.any(axis=0))
        x_right = _top_run(cols, 0, +1, gap)
        if not 1.0 * px_per_mm <= x_right <= 12 * px_per_mm:
            continue
        if cols[: x_right + 1].mean() < 0.8 or not _flat(band[:, : x_right + 1], thickness):
            continue
        # open paper below the top, through its end, down to 2 mm above the baseline
        inside = win[z + t + 2 : max(z + t + 2, int(baseline - 2 * px_per_mm) - y0),
                     : x_right + t + 2]  # fmt: skip
        if inside.size == 0 or inside.mean() > 0.02:
            continue
        x_end = float(x_right) - (thickness - 1.0) / 2.0  # the top's last ink is its cap
        y_top = _top_centre(prob, 0.0, x_end, float(top), thickness)
        return Pulse(x_rise=0.0, x_fall=x_end, y_top=y_top, y_base=float(baseline),
                     partial=True, shape="step")  # fmt: skip
    return None


def _search_pulse(
    prob: NDArray[np.float32],
    win: NDArray[np.bool_],
    *,
    x0: int,
    y0: int,
    baseline: float,
    px_per_mm: float,
    thickness: float,
    bridge: int = 0,
    cut: bool = True,
    jog: int = 1,
) -> Pulse | None:
    """:func:`find_pulse` on the ink ``win`` of the search window whose corner is (x0, y0);
    a vertical stroke goes on across breaks of up to ``bridge`` px, and its tall columns may
    be up to ``jog`` px apart; ``cut``: also look for a pulse cut by the page's left edge."""
    tall = win.sum(axis=0)
    min_h = 2.5 * px_per_mm
    y_end = y0 + win.shape[0] - 1 - thickness  # a stroke reaching this row leaves the window
    cols = np.flatnonzero(tall >= min_h)
    if cols.size == 0:
        return None
    # group adjacent columns into strokes
    groups = np.split(cols, np.flatnonzero(np.diff(cols) > jog) + 1)
    # a column inked down the whole window is a grid line the darkness map kept (or the
    # strokes of stacked rows' pulses): beside a stroke, it would make the stroke as tall as
    # the window, so a stroke's rows are those of its other columns when it has some
    full = tall >= 0.95 * win.shape[0]

    def x_centre(left: int, top: float, bottom: float) -> float:  # left: window column
        return _stroke_centre(prob, left + x0, top, bottom, thickness)

    def y_centre(xa: float, xb: float, top: float) -> float:
        return _top_centre(prob, xa, xb, top, thickness)

    strokes = []
    feet: list[float] = []  # each stroke's foot (its bottom, or below a break: _foot)
    for g in groups:
        # a stroke is the left part of the group (the trace may start right after a falling
        # edge and merge with it)
        g = g[: int(2 * thickness) + 2]
        own = g[~full[g]] if full[g].any() and not full[g].all() else g
        # (its rows: every column of g holds ink; gaps of up to `bridge` px closed)
        run = _longest_run(np.asarray(win[:, own].any(axis=1)), px_per_mm=1.0,
                           gap_mm=1.0 + bridge)  # fmt: skip
        if run is None:
            continue
        top, bottom = float(run[0]) + y0, float(run[1]) + y0
        if bottom - top < min_h or abs(bottom - baseline) > 6 * px_per_mm:
            continue
        # the stroke's centre: ink right of a falling edge may belong to the trace that
        # starts there, so it is measured on the stroke's middle rows only
        x_c = x_centre(int(g[0]), top, bottom)
        strokes.append((x_c, top, bottom, int(g[0])))
        # where a faint falling edge's foot stands apart, a little aside (third look only)
        feet.append(bottom if jog == 1 else float(y0 + _foot(
            win, run[1], int(own[0]), int(own[-1]), jog=jog,
            gap=max(bridge + 1, int(round(px_per_mm))),
            min_len=max(3, int(round(1.0 * px_per_mm))))))  # fmt: skip
    for i in range(len(strokes)):
        for j in range(i + 1, len(strokes)):
            (xa, ta, ba, la), (xb, tb, bb, lb) = strokes[i], strokes[j]
            dx = (xb - xa) / px_per_mm
            if not 2.0 <= dx <= 12.0:
                continue
            # a pulse as tall as the row spacing (20 mm/mV, rows 20 mm apart) stands on the
            # next row's: its rise, cut by the window's bottom (the row below's baseline is
            # out of it), ends at its falling edge's foot (a falling edge that runs on down
            # is the trace's first wave, not another pulse)
            if ba - bb > 1.0 * px_per_mm + thickness and ba >= y_end:
                ba = bb
                xa = x_centre(la, ta, ba)
            if abs(ba - bb) > 1.0 * px_per_mm + thickness:
                continue
            if abs(ta - tb) > 1.0 * px_per_mm + thickness:
                stepped = _stepped(win, y_centre, x0=x0, y0=y0, rise=(xa, ta, ba, la),
                                   fall=(xb, tb, bb, lb), thickness=thickness)  # fmt: skip
                if stepped is not None:
                    return stepped
                continue
            # the top must be joined by ink between the two strokes
            top = int(round((ta + tb) / 2)) - y0
            band = win[
                max(0, top - int(thickness) - 2) : top + int(thickness) + 3,
                int(xa) - x0 : int(xb) - x0,
            ]
            if band.size == 0 or band.any(axis=0).mean() < 0.8:
                continue
            # ...without a break longer than half a millimetre: a step pulse's top that ends
            # 1.3 mm short of the trace's first R wave is not a square pulse's top (PTB-XL
            # 11105: the R wave's downstroke was read as the falling edge, 0.13 s late)
            breaks = _runs(np.asarray(~band.any(axis=0)))
            if breaks and max(z - a + 1 for a, z in breaks) > max(3, 0.5 * px_per_mm) + bridge:
                continue
            half = thickness / 2.0
            y_top = y_centre(xa, xb, (ta + tb) / 2)
            return Pulse(x_rise=xa, x_fall=xb, y_top=y_top, y_base=(ba + bb) / 2 - half)
    window = prob[y0 : y0 + win.shape[0], x0 : x0 + win.shape[1]]
    # (the falling edge of a pulse whose rise is lost reaches down to its foot, faint or
    # not; a pair's strokes are matched on their own ink)
    for (x_c, top, _, left), foot in zip(strokes, feet, strict=True) if cut else []:
        if abs(foot - baseline) > 6 * px_per_mm:
            continue
        bottom = foot
        x_left = _cut_top(window, win, left=left, top=int(round(top)) - y0,
                          bottom=int(round(bottom)) - y0, px_per_mm=px_per_mm,
                          thickness=thickness)  # fmt: skip
        if x_left is not None:
            y_top = y_centre(float(x_left + x0), x_c, top)
            return Pulse(x_rise=float(x_left + x0), x_fall=x_c, y_top=y_top,
                         y_base=bottom - thickness / 2.0, partial=True)  # fmt: skip
    for x_c, top, bottom, left in strokes:
        x_right = _step_top(window, win, left=left, top=int(round(top)) - y0,
                            bottom=int(round(bottom)) - y0, px_per_mm=px_per_mm,
                            thickness=thickness)  # fmt: skip
        if x_right is not None:
            x_end = float(x_right + x0) - (thickness - 1.0) / 2.0  # the top's last ink is its cap
            y_top = y_centre(x_c, x_end, top)
            return Pulse(x_rise=x_c, x_fall=x_end, y_top=y_top, y_base=bottom - thickness / 2.0,
                         shape="step")  # fmt: skip
    return None


def _foot(
    win: NDArray[np.bool_], bottom: int, left: int, right: int, *, jog: int, gap: int, min_len: int
) -> int:
    """The last row of a vertical stroke whose ink (``win``) runs unbroken down to row
    ``bottom`` in columns ``left``-``right``, followed on down across breaks.

    A faint falling edge (a scan's thin pulse, ecg00045's row III: 0.8 mm of it missing
    and its foot 3 px aside) fades into pieces: below a break of up to ``gap`` rows the
    stroke goes on as another vertical piece, at least ``min_len`` rows down one column,
    up to ``jog`` columns aside (the lower piece of a bent or dewarped stroke is a few
    pixels off the upper one). The trace that leaves from the foot is not followed: it
    runs aside, not down one column.
    """
    h, w = win.shape
    lo, hi = max(0, left - jog), min(w, right + jog + 1)
    while bottom + min_len < h:
        below = win[bottom + 1 : min(h, bottom + gap + 1 + min_len), lo:hi]
        # per column, whether a vertical run of min_len rows starts within the gap
        runs = np.ones((min(gap + 1, below.shape[0] - min_len + 1), hi - lo), dtype=bool)
        for k in range(min_len):
            runs &= below[k : k + runs.shape[0]]
        starts, cols = np.nonzero(runs)
        if starts.size == 0:
            break
        first = int(starts.min())
        c = int(cols[starts == first][0])
        end = bottom + 1 + first
        while end + 1 < h and win[end + 1, lo + c]:
            end += 1
        bottom = end
    return bottom


def _stepped(
    win: NDArray[np.bool_],
    top_centre: Callable[[float, float, float], float],
    *,
    x0: int,
    y0: int,
    rise: tuple[float, float, float, int],
    fall: tuple[float, float, float, int],
    thickness: float,
) -> Pulse | None:
    """A stepped pulse (split-gain pages) from its rise and its falling edge (``(x centre,
    top, bottom, first column)`` each, image pixels), or None. ``win`` is the search window's
    ink (its corner at ``(x0, y0)``); ``top_centre(x_a, x_b, top)`` the sub-pixel y of a top
    stroke between two columns (see :func:`_top_centre`).

    The falling edge is half as tall as the rise (0.38-0.62 of it: 10 and 5 mm, 20 and 10),
    and the top runs flat at the rise's height from the rise for a quarter to three quarters
    of the way, then at the falling edge's height on to it (80 % of either span inked).
    """
    (xa, ta, ba, _), (xb, tb, bb, _) = rise, fall
    ratio = (bb - tb) / max(ba - ta, 1.0)
    if not 0.38 <= ratio <= 0.62:
        return None
    t = int(np.ceil(thickness))
    h, w = win.shape

    def level(y: float) -> NDArray[np.bool_]:
        r = int(round(y)) - y0
        out: NDArray[np.bool_] = np.asarray(win[max(0, r - t - 1) : min(h, r + t + 2)].any(axis=0))
        return out

    upper, lower = level(ta), level(tb)
    a, b = int(round(xa)) - x0, int(round(xb)) - x0
    if not 0 <= a < b <= w or not upper[min(b - 1, a + t)]:
        return None
    x_mid = _top_run(upper[: b + 1], min(b - 1, a + t), +1, max(1, t))
    if not 0.25 <= (x_mid - a) / (b - a) <= 0.75:
        return None
    if upper[a:x_mid].mean() < 0.8 or lower[x_mid:b].mean() < 0.8:
        return None
    xm = float(x_mid + x0)
    base = (ba + bb) / 2 - thickness / 2.0
    return Pulse(x_rise=xa, x_fall=xb, y_top=top_centre(xa, xm, ta), y_base=base,
                 y_chest=top_centre(xm, xb, tb))  # fmt: skip


def _top_run(cols: NDArray[np.bool_], start: int, step: int, gap: int) -> int:
    """From column ``start`` (ink), the last column of ink reached walking by ``step`` (+1 or
    -1) across breaks of at most ``gap`` columns."""
    x = start
    while True:
        lo, hi = (x + 1, x + gap + 2) if step > 0 else (x - gap - 1, x)
        seg = cols[max(0, lo) : max(0, hi)]
        ink = np.flatnonzero(seg)
        if ink.size == 0:
            return x
        x = max(0, lo) + int(ink[-1] if step > 0 else ink[0])


def _step_top(
    prob: NDArray[np.float32],
    win: NDArray[np.bool_],
    *,
    left: int,
    top: int,
    bottom: int,
    px_per_mm: float,
    thickness: float,
) -> int | None:
    """The last column (window) of a step pulse's top, if the vertical stroke whose first
    column is ``left`` is a step pulse's rise.

    A step (older printers: the pen goes up 1 mV and holds for 0.2 s, no falling edge) is a
    stroke as tall as a 1-mV pulse at a usual gain (within 12 %) whose top runs flat to the
    right for 3-12 mm and stops, with blank paper below it down to the baseline (a trace
    that rises and stays up has ink there or no flat top at that height) and no stroke down
    from its end. ``prob``/``win`` are as for :func:`_cut_top`.
    """
    if not _pulse_tall(top, bottom, px_per_mm):
        return None
    t = int(np.ceil(thickness))
    band = prob[max(0, top - t - 1) : top + t + 2, :] > 0.2
    cols: NDArray[np.bool_] = np.asarray(band.any(axis=0))
    start = min(cols.size - 1, left + t)
    if not cols[start]:
        return None
    gap = max(2, int(round(0.5 * px_per_mm)))
    x_right = _top_run(cols, start, +1, gap)
    if x_right >= cols.size - 1 - gap:
        return None  # runs out of the search window: not a pulse's top
    length = x_right - left
    if not 3.0 * px_per_mm <= length <= 12 * px_per_mm:
        return None
    part = band[:, left + t : x_right + 1]
    if np.mean(part.any(axis=0)) < 0.8 or not _flat(part, thickness):
        return None
    # open paper below the top, right of the rise, through the top's end: a trace that
    # rises, runs flat and falls again has ink there, its falling stroke
    inside = win[top + t + 2 : bottom - t - 1, left + t + 1 : x_right + t + 2]
    if inside.size == 0:
        return None
    if inside.mean() > 0.02:
        # the row's printed name, or the trace's first samples when the printer starts it
        # under the top (no margin left for the pulse; PTB-XL 9515, 9517: 3-12 % of the
        # inside, the rise's stroke wider than a line included), may stand there (up to a
        # quarter of it), but no falling stroke: ink on most rows of the pulse's upper
        # third under the top's end
        y_in = top + t + 2
        below_end = win[y_in : max(y_in, top + (bottom - top) // 3),
                        max(left + 2 * t + 1, x_right - t - 1) : x_right + 2]  # fmt: skip
        if inside.mean() > 0.25 or (below_end.size and below_end.any(axis=1).mean() > 0.25):
            return None
    return x_right


#: Heights (mm) of a 1-mV pulse at the usual gains (5, 10, 20 mm/mV).
_PULSE_HEIGHTS = (5.0, 10.0, 20.0)


def _pulse_tall(top: float, bottom: float, px_per_mm: float) -> bool:
    """Whether a stroke from ``top`` to ``bottom`` is as tall as a 1-mV pulse at a usual gain
    (within 12 %)."""
    h_mm = (bottom - top) / px_per_mm
    return any(abs(h_mm - h) <= 0.12 * h for h in _PULSE_HEIGHTS)


def _flat(part: NDArray[np.bool_], thickness: float) -> bool:
    """Whether the ink of a horizontal stroke (``part``: its rows × columns) keeps its centre
    line within a line's width, over the columns that hold ink."""
    rows = np.arange(part.shape[0], dtype=np.float64)[:, None]
    mass = part.sum(axis=0).astype(np.float64)
    inked = mass > 0
    centre = (part * rows).sum(axis=0)[inked] / mass[inked]
    return bool(np.ptp(centre) <= thickness + 1.0) if centre.size else True


def _cut_top(
    prob: NDArray[np.float32],
    win: NDArray[np.bool_],
    *,
    left: int,
    top: int,
    bottom: int,
    px_per_mm: float,
    thickness: float,
) -> int | None:
    """Where the top of a pulse cut by the page's left edge begins (window columns), if the
    vertical stroke whose first column is ``left`` is such a pulse's falling edge.

    The stroke must be as tall as a 1-mV pulse at a usual gain (within 12 %), and a flat
    horizontal stroke at its top must run from it to the left for 1-12 mm, with blank paper
    below it (the pulse's inside) and no trace to its left (the row starts there): a scan
    or photo that cuts a row's start keeps the pulse's top and falling edge only. ``prob``
    is the search window of the ink probability map and ``win`` its ink; the thin top may
    be faint and broken (JPEG), so weaker ink (above 0.2) counts along it, across breaks of
    up to half a millimetre.
    """
    if not _pulse_tall(top, bottom, px_per_mm):
        return None
    t = int(np.ceil(thickness))
    band = prob[max(0, top - t - 1) : top + t + 2, :left] > 0.2
    cols: NDArray[np.bool_] = np.asarray(band.any(axis=0))
    if cols.size == 0 or not cols[-1]:
        return None
    # the top runs left from the falling edge; breaks of up to half a millimetre are faint ink
    x_left = _top_run(cols, left - 1, -1, max(2, int(round(0.5 * px_per_mm))))
    if cols[x_left:left].mean() < 0.6:
        return None
    length = left - x_left
    if not max(3.0, 1.0 * px_per_mm) <= length <= 12 * px_per_mm:
        return None
    if not _flat(band[:, x_left:left], thickness):  # the top's centre line is straight
        return None
    # blank inside (under the top, right of where it begins, left of the falling edge)
    inside = win[top + t + 2 : bottom - t - 1, x_left + t + 1 : left]
    if inside.size and inside.mean() > 0.02:
        return None
    # nothing at the row's baseline left of the top: the row starts with it
    reach = int(3 * px_per_mm)
    before = win[max(0, bottom - int(2 * px_per_mm)) : bottom + int(2 * px_per_mm) + 1,
                 max(0, x_left - reach) : x_left + t + 1]  # fmt: skip
    if before.size and before.any():
        return None
    # nor between the top's height and the baseline: a trace that runs in from the left a
    # little below a flat stretch, then drops into a deep S wave, has a "top" and a "falling
    # edge" too, but its ink goes on to the left (a cut pulse's top is where the row begins)
    beside = win[top + t + 2 : max(top + t + 2, bottom - int(2 * px_per_mm)),
                 max(0, x_left - reach) : max(0, x_left - 1)]  # fmt: skip
    if beside.size and beside.any():
        return None
    return x_left


def _standard_gain(h_mm: float) -> float | None:
    """The standard gain whose 1-mV height is within 20 % of ``h_mm``, or None."""
    g = min(_GAINS, key=lambda v: abs(np.log(v / max(h_mm, 1e-3))))
    return g if abs(np.log(max(h_mm, 1e-3) / g)) <= np.log(1.2) else None


def calibrate(
    pulses: list[Pulse],
    *,
    px_per_mm_x: float,
    px_per_mm_y: float,
    paper_speed: float | None = None,
    gain: float | None = None,
    printed: PrintedCalibration | Callable[[], PrintedCalibration] | None = None,
) -> Calibration:
    """Paper speed and gain from the pulses found (nearest standard values), the settings
    printed on the page, or the defaults (25 mm/s, 10 mm/mV).

    Values given by the caller win over what is measured. A pulse decides the gain when its
    height is within 20 % of a standard gain's 1-mV height. The printed settings
    (``printed``: what :func:`~ecgscan.digitize.read_calibration_text` read, or a
    function that reads them, called only when needed) decide it when there is no pulse, or
    settle a pulse's height between two standard gains when they name one of the two
    (settings that name neither are not used at all). The printed speed is used when the
    settings are read and the caller gave none. ``Calibration.source`` joins what decided:
    ``'given'``, ``'pulse'``, ``'text'`` (e.g. ``'pulse+text'``), or ``'default'``.

    The chest leads' gain (``Calibration.gain_chest``, split-gain pages) comes from stepped
    pulses (half of the pulses or more; the height of their second level) or, failing
    them, from the printed settings ("Limb: 10 mm/mV  Chest: 5 mm/mV") when their limb gain
    is the gain found; a ``gain`` given by the caller applies to every lead. Rows whose
    pulses stand at the chest gain are told apart once the layout is known
    (:func:`settle_gains`).
    """
    measured_gain = measured_speed = None
    ambiguous: tuple[float, float] | None = None
    chest_pulse: float | None = None
    if pulses:
        heights = np.array([(p.y_base - p.y_top) / px_per_mm_y for p in pulses])
        widths = np.array([(p.x_fall - p.x_rise) / px_per_mm_x for p in pulses if not p.partial])
        h_mm = float(np.median(heights))
        measured_gain = min(_GAINS, key=lambda g: abs(np.log(g / max(h_mm, 1e-3))))
        if abs(np.log(h_mm / measured_gain)) > np.log(1.2):  # between two standard heights
            below = [g for g in _GAINS if g <= h_mm]
            above = [g for g in _GAINS if g >= h_mm]
            if below and above:
                ambiguous = (below[-1], above[0])
        # pulse widths vary between vendors (0.1-0.2 s), so the width does not fix the speed;
        # it only confirms the default when it is 5 mm (a cut pulse's width says nothing)
        w_mm = float(np.median(widths)) if widths.size else float("nan")
        measured_speed = 25.0 if 2.0 <= w_mm <= 12.0 else None
        steps = [(p.y_base - p.y_chest) / px_per_mm_y for p in pulses if p.y_chest is not None]
        if steps and 2 * len(steps) >= len(pulses):
            chest_pulse = _standard_gain(float(np.median(steps)))
    text: PrintedCalibration | None = None
    needed = (gain is None and (not pulses or ambiguous is not None)) or (
        paper_speed is None and not pulses
    )
    # the settings are also read for a chest gain when the pulses show none
    if (needed or (gain is None and chest_pulse is None)) and printed is not None:
        text = printed() if callable(printed) else printed
        if ambiguous and text.gain is not None and text.gain not in ambiguous:
            text = None  # it contradicts the pulse: not the page's settings, or misread
    parts = ["given"] if paper_speed is not None or gain is not None else []
    parts += ["pulse"] if pulses else []
    read_gain = text.gain if gain is None and text is not None else None
    if read_gain is not None and (not pulses or (ambiguous and read_gain in ambiguous)):
        measured_gain = read_gain
        parts.append("text")
    if needed and paper_speed is None and text is not None and text.paper_speed is not None:
        measured_speed = text.paper_speed
        if "text" not in parts:
            parts.append("text")
    final_gain = float(gain if gain is not None else (measured_gain or 10.0))
    gain_chest: float | None = None
    if gain is None and chest_pulse is not None:
        gain_chest = chest_pulse
    elif (
        gain is None
        and text is not None
        and text.gain_chest is not None
        and text.gain == final_gain
    ):
        # the limb gain read is the page's: the chest gain beside it is trusted
        gain_chest = text.gain_chest
        if "text" not in parts:
            parts.append("text")
    return Calibration(
        paper_speed=float(paper_speed if paper_speed is not None else (measured_speed or 25.0)),
        gain=final_gain,
        source="+".join(parts) or "default",
        pulse_found=bool(pulses),
        gain_chest=float(gain_chest) if gain_chest not in (None, final_gain) else None,
    )


def settle_gains(
    calibration: Calibration,
    pulses: Sequence[Pulse | None],
    row_leads: Sequence[Sequence[str]],
    *,
    px_per_mm_y: float,
    given: bool = False,
) -> Calibration:
    """The calibration with the limb and chest gains read from the rows' own pulses, once
    the rows' leads are known.

    Printers that draw each row's pulse at its first lead's gain put 10-mm pulses before the
    limb leads and 5-mm ones before V1-V6 on a 10/5 page (12x1, or rhythm strips of V1).
    A stepped pulse's first level is at the limb gain, whatever row it leads: a 3x4 page
    at 20/10 whose grid rows carry stepped pulses and whose rhythm strips of V1 and V5
    plain 10-mm ones (the median pulse read 10 mm/mV, every limb lead at half its size).
    When every pulsed row led by a limb lead (or by a stepped pulse) shows one standard
    gain and every other pulsed row led by a chest lead another, those are ``gain`` and
    ``gain_chest``; otherwise (one gain, only stepped pulses, a row misread, ``given``:
    the caller fixed the gain) the calibration is returned unchanged. ``pulses`` and
    ``row_leads`` are per row.
    """
    if given:
        return calibration
    groups: dict[bool, set[float | None]] = {False: set(), True: set()}
    for p, leads in zip(pulses, row_leads, strict=True):
        if p is None or not leads:
            continue
        # (a stepped pulse's first level is the limb gain, whatever row it leads)
        led_by_chest = p.y_chest is None and leads[0].lstrip("-").strip().upper() in _CHEST_LEADS
        groups[led_by_chest].add(_standard_gain((p.y_base - p.y_top) / px_per_mm_y))
    (g_limb, *more_limb), (g_chest, *more_chest) = (
        sorted(groups[False], key=str) or [None],
        sorted(groups[True], key=str) or [None],
    )
    if more_limb or more_chest or g_limb is None or g_chest is None or g_limb == g_chest:
        return calibration
    source = calibration.source if "pulse" in calibration.source else calibration.source + "+pulse"
    return replace(calibration, gain=float(g_limb), gain_chest=float(g_chest), source=source)


def zero_line(pulse: Pulse, calibration: Calibration, lead: str, *, px_per_mm_y: float) -> float:
    """Image row of 0 mV in a row whose pulse is ``pulse`` and whose first lead is ``lead``:
    1 mV below the pulse's top, at the limb gain for a stepped pulse (its first level), else
    at the gain of the lead the pulse stands before."""
    g = calibration.gain if pulse.y_chest is not None else calibration.gain_for(lead)
    return pulse.y_top + g * px_per_mm_y
