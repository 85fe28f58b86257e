"""The whole digitizer: page image → :class:`DigitizationResult`."""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..data.record import LEADS, Record, normalize_lead_name
from ..errors import DigitizationError
from ._calibration import (
    Pulse,
    calibrate,
    find_end_pulse,
    find_ladder,
    find_pulse,
    refine_fall,
    settle_gains,
    zero_line,
)
from ._extract import (
    best_phase,
    line_thickness,
    pen_radius,
    phase_costs,
    run_edges,
    runs_to_points,
    sample_trace,
    trace_runs,
)
from ._geometry import straighten
from ._grid import estimate_grid
from ._layout import (
    LeadLabel,
    RowGeometry,
    assign_leads,
    columns_from_labels,
    erase_labels,
    erase_text,
    find_labels,
    find_rows,
    reassign_rhythm_strips,
    row_traces,
    separator_columns,
)
from ._load import load_image
from ._quality import lead_quality, trace_continuity
from ._result import DigitizationResult, Grid, Layout, LeadQuality, Row
from ._segment import segment_traces, trace_maps
from ._text import read_calibration_text

__all__ = ["digitize"]

#: Width of a landscape Letter/A4 page in mm, the prior scale when no grid is printed.
_PAGE_WIDTH_MM = 279.4
#: Length in mm of a full printed row (10 s at 25 mm/s, or 5 s at 50 mm/s), the prior scale
#: that tells a pulse's gain when no grid is printed.
_ROW_MM = 250.0
_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (128, 128, 0), (0, 0, 128), (170, 110, 40),
            (0, 128, 128), (128, 0, 0), (255, 165, 0)]  # fmt: skip


class _TracedRow(NamedTuple):
    """One row as the first pass traced it: what the second pass (the page's sample phase,
    the column shifts, the samples) reads of it."""

    row: RowGeometry
    t0: float  # the row's time origin (px)
    dur: float  # its printed duration (s)
    leads: list[str]
    xs: NDArray[np.float64]  # trace points
    ys: NDArray[np.float64]
    run_xf: NDArray[np.float64]  # the ink runs' columns, top and bottom edges
    upper: NDArray[np.float64]
    lower: NDArray[np.float64]
    radius: float  # the pen's radius (px)
    zero_y: float  # the 0-mV line (px)
    costs: NDArray[np.float64] | None  # phase costs (:func:`phase_costs`)
    hidden: list[tuple[int, int]]  # column spans under separator bars: unseen


def _pulse_gain(height: float, rows_ppm: float) -> float:
    """The gain (mm/mV) of a page without grid from its pulses' height (px) and the scale its
    longest row gives (px/mm, taken as :data:`_ROW_MM` long).

    10 mm/mV unless the pulses are clearly half or twice as tall as 10 mm at the rows' scale
    (5 or 20 mm/mV pages: a row's length is known to about 10 %, a factor of 2 is not noise).
    """
    if rows_ppm <= 0:
        return 10.0
    octaves = float(np.log2(height / 10.0 / rows_ppm))
    if abs(octaves) < 0.7:
        return 10.0
    return 20.0 if octaves > 0 else 5.0


def _snap_duration(
    seconds: float, *, page: NDArray[np.float64] | None = None, cut: bool = False
) -> float:
    """Round a measured row duration to the nearest 2.5 s when it is within what the
    measurement can be off by, else keep it.

    Printers show 2.5, 5 or 10 s per row. A row's measured length is off by its trace's
    origin (a pulse's foot or gap, up to about 4 mm = 0.15 s) and by the scale (2.5 % on a
    photo): within that, it is the nearest multiple of 2.5 s; a row 0.5 s shorter (a page
    that shows 9.5 s) is not. The rows of a page are printed together: with ``page``, the
    measured durations of all its rows, a row whose own end is misread (a mark after the
    trace, a faded end) takes the page's printed duration when the median row is within
    that tolerance of it and the row itself within 8 %. A row that runs off the image
    (``cut``: a scan or photo that cut the page's edge) is longer than measured: it takes
    the next multiple of 2.5 s when that is within 8 %.
    """

    def snap(s: float) -> float | None:
        snapped = max(2.5, round(s / 2.5) * 2.5)
        return snapped if abs(snapped - s) <= 0.15 + 0.025 * snapped else None

    own = snap(seconds)
    if own is not None:
        return own
    if cut:
        longer = 2.5 * np.ceil(seconds / 2.5)
        if longer - seconds <= 0.08 * longer:
            return float(longer)
    if page is not None and page.size:
        common = snap(float(np.median(page)))
        if common is not None and abs(common - seconds) <= 0.08 * common:
            return common
    return seconds


def _count_columns(
    prob: NDArray[np.float32], t0: float, length_px: float, baseline: float, ppm: float
) -> int:
    """1, 2, 4 or 5 columns, from separator strokes at 1/4, 1/2 and 3/4 of the row, or at
    three of its fifths (a 15-lead page's)."""
    bars = {f: separator_columns(prob, x=t0 + f * length_px, baseline=baseline, px_per_mm=ppm)
            is not None for f in (0.25, 0.5, 0.75)}  # fmt: skip
    if (bars[0.25] and bars[0.75]) or ((bars[0.25] or bars[0.75]) and bars[0.5]):
        return 4
    if bars[0.5]:
        return 2
    fifths = sum(separator_columns(prob, x=t0 + f * length_px, baseline=baseline, px_per_mm=ppm)
                 is not None for f in (0.2, 0.4, 0.6, 0.8))  # fmt: skip
    return 5 if fifths >= 3 else 1


#: Samples by which a trace that leaves from a pulse's falling edge began before the edge's
#: centre. A plotter that draws the pulse from samples at the record's rate (ECG-Image-Kit:
#: two samples at 0, 0.2 s at 1 mV, two at 0) draws its falling edge between the last high
#: sample and the next, 1.5 samples after the trace's first one (the pulse's 0.2 s and the
#: trace start together). Where that first stretch of trace shows inside the pulse
#: (:func:`_trace_before_fall`, 100 Hz pages at 200 DPI) it lies 1.50 samples before the
#: edge's centre on every ECG-Image-Kit page; on photos, 100-DPI and 500-Hz pages it hides
#: under the edge, which put those rows 1.5 samples early. On 500-Hz pages, whose samples'
#: columns the drawing's bends cannot pin, that cost the Challenge's whole-sample alignment
#: up to 4 dB (D_augment 00127: 20.9 -> 24.8 dB; clean pages 0.3-0.4 dB, with the edge
#: measured on the grey levels, :func:`~._calibration.refine_fall`).
_FALL_LAG = 1.5

#: Least depth of the pooled misfit cycle (:func:`best_phase`'s ``min_modulation``) at which
#: the rows on the page's time axis take the phase of the drawing's bends. Pooled over a
#: page's rows, a cycle's minimum scatters less than one row's, so it is believed from a
#: shallower cycle than a row's own (0.04): on blurred 100-Hz photos the pooled depth is
#: 0.035-0.05 while the rows agree on the phase within 0.15 sample (G_photo 00814: 0.037,
#: rows 0.18-0.34, the phase 0.31; falling back to the pulse's edge put it 0.25 sample off,
#: 18.7 -> 16.4 dB).
_POOLED_MODULATION = 0.03

#: Sample spacing (px) from which :func:`phase_costs` places the samples by the drawing's
#: bends. From there the lag is not applied: where the bends pin the samples it would only
#: change which whole sample comes first, and exactly timed, the first samples of columns
#: 2-4 on 100-DPI ECG-Image-Kit pages touch the previous lead's last stroke (aVR, aVL, aVF
#: of C_res100 01364 fell from 21.7, 13.9, 21.0 to 7-8 dB); where they are too blurred to
#: pin (photos) the lag was a toss-up per page (G_photo +1.8 to -1.6 dB), and on our own
#: renders at 100 Hz, whose printers draw a foot after the pulse that was not always seen,
#: it cost up to 3 dB.
_MIN_PINNED_STEP = 0.75


def _trace_before_fall(
    prob: NDArray[np.float32], pulse: Pulse, *, thickness: float, ppm: float
) -> float | None:
    """Where the trace starts when it starts inside the pulse, just before its falling edge.

    Some plotters (ECG-Image-Kit at low sampling rates) begin the trace a few samples before
    the pulse falls. Inside the pulse's outline the paper is blank, so ink there that touches
    the falling stroke and runs at most 3 mm to the left is the trace's beginning (the top
    stroke's rows are left out); its left end (plus half a line) is the time origin.
    """
    t = int(np.ceil(thickness))
    x_hi = int(np.floor(pulse.x_fall - thickness / 2.0)) - 1  # last column left of the stroke
    x_lo = max(int(np.ceil(pulse.x_rise + thickness)) + 1, int(pulse.x_fall - 3 * ppm))
    y0 = max(0, int(pulse.y_base - 12 * ppm))
    y1 = min(prob.shape[0], int(pulse.y_base + 8 * ppm))
    if x_hi - x_lo < 2 or y1 <= y0:
        return None
    ink: NDArray[np.bool_] = np.asarray(prob[y0:y1, x_lo : x_hi + 1] > 0.5)
    top = int(round(pulse.y_top)) - y0
    ink[max(0, top - t - 1) : max(0, top + t + 2)] = False  # the pulse's top stroke
    cols: NDArray[np.bool_] = np.asarray(ink.any(axis=0))
    if not cols[-1]:
        return None  # nothing touches the falling stroke: the trace starts at the fall
    empty = np.flatnonzero(~cols)
    first = int(empty[-1]) + 1 if empty.size else 0
    if empty.size == 0 or cols.size - first < 2:
        return None  # ink all the way across (not a trace start), or a speck
    return float(x_lo + first) + (thickness - 1) / 2.0


def _trace_under_step(
    prob: NDArray[np.float32], pulse: Pulse, *, thickness: float, ppm: float
) -> float | None:
    """Where the trace starts when it starts under a step pulse's top, before the top ends.

    A step pulse (rise and held top, no falling edge) leaves the paper below its top open,
    and a printer short of left margin draws it over the row's first samples: the trace
    then begins between the rise and the top's end (rendered pages whose pulse is pushed
    right against the trace, PTB-XL 10534: 2.4 mm, 9 samples, before the top's end). Ink
    below the top (its stroke's rows left out, and character-sized marks such as the row's
    printed name, :func:`_without_characters`) that runs unbroken from there past the top's
    end for 2 mm is the trace; its left end (plus half a line) is the time origin. None when
    the trace does not reach under the top.
    """
    t = int(np.ceil(thickness))
    x_lo = int(np.ceil(pulse.x_rise + thickness)) + 1  # right of the rising stroke
    x_end = int(np.ceil(pulse.x_fall + thickness))  # the top's end, its cap included
    x1 = min(prob.shape[1], int(pulse.x_fall + 15 * ppm))
    y0 = max(0, int(pulse.y_base - 12 * ppm))
    y1 = min(prob.shape[0], int(pulse.y_base + 8 * ppm))
    if x_end - x_lo < 2 or x1 - x_end < 2 * ppm or y1 <= y0:
        return None
    ink: NDArray[np.bool_] = np.asarray(prob[y0:y1, x_lo:x1] > 0.5)
    top = int(round(pulse.y_top)) - y0
    ink[max(0, top - t - 1) : max(0, top + t + 2), : x_end - x_lo + 1] = False
    # the top strokes of the rows' other step pulses (stacked close, 12x1) begin at their
    # rise too: a stroke from the window's first column on is one, not the trace (which
    # may dip onto it and would join it to the window's start); such a stroke crosses the
    # first column in a line's width, where a trace that starts against the rise crosses
    # it in a taller run (PTB-XL 9515: 3 mm, its first wave)
    edges = np.diff(np.concatenate(([False], ink[:, 0], [False])).astype(np.int8))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if b - a > 2 * t + 1:
            continue  # not a horizontal stroke's cross-section
        for y in range(a, b):
            gap = np.flatnonzero(~ink[y, : x_end - x_lo + 1])
            ink[y, : int(gap[0]) if gap.size else x_end - x_lo + 1] = False
    cols = np.asarray(_without_characters(ink, baseline=pulse.y_base - y0, ppm=ppm))
    end = x_end - x_lo
    if not cols[end : end + int(2 * ppm)].all():
        return None  # no trace running on from under the top's end
    empty = np.flatnonzero(~cols[:end])
    if empty.size == 0:
        # the trace's ink touches the rising stroke: it starts under that stroke or just
        # after it (PTB-XL 9515: 4 px after the rise's centre, 3.5 px before the first
        # column clear of the stroke). The rise is the earliest it can start; an origin
        # taken late puts every sample early, which the Challenge's scoring does not
        # realign (about 0 dB), while it realigns an estimate that runs late
        return float(pulse.x_rise)
    first = int(empty[-1]) + 1
    if end - first < 2:
        return None  # the trace starts at or after the top's end
    return float(x_lo + first) + (thickness - 1) / 2.0


def _without_characters(
    ink: NDArray[np.bool_], *, baseline: float, ppm: float
) -> NDArray[np.bool_]:
    """Columns of ``ink`` (a window after a row's pulse) that hold ink other than separate
    character-sized marks (1.7-6 mm tall, at most 8 mm wide) that keep 1 mm off the row's
    ``baseline`` (window rows) and clear of the window's right edge (the trace's pieces
    cross the baseline or reach on)."""
    import cv2

    _, lab, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    x, w = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH]
    y, h = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT]
    glyph = (h >= 1.7 * ppm) & (h <= 6 * ppm) & (w <= 8 * ppm) & (x + w < ink.shape[1])
    glyph &= (y > baseline + ppm) | (y + h - 1 < baseline - ppm)
    keep = ~glyph
    keep[0] = False
    return np.asarray(keep[lab].any(axis=0))


def _trace_origin(
    prob: NDArray[np.float32], pulse: Pulse, *, thickness: float, ppm: float
) -> float:
    """Time origin (px) of a row with a calibration pulse: where its trace starts.

    Some printers (and ECG-Image-Kit) start the trace at the pulse's falling edge; others
    draw a short foot after the pulse and leave a gap before the trace. When a gap of 1-6 mm
    begins within 4 mm of the pulse and an unbroken trace follows it, the origin is the first
    column of ink after it (plus half a line); otherwise it is the falling edge (faded or
    wrinkled ink must not move the origin). The row's printed name often sits in that gap,
    below or above the baseline: such marks are not the trace (:func:`_without_characters`).
    A step pulse (no falling edge, :class:`Pulse`) leaves the paper below its top open: its
    trace starts under the top when the printer had no room for the pulse before it
    (:func:`_trace_under_step`), else at the first ink after the top's end, faded or not.
    """
    step = pulse.shape == "step"
    if step:
        early = _trace_under_step(prob, pulse, thickness=thickness, ppm=ppm)
    else:
        early = _trace_before_fall(prob, pulse, thickness=thickness, ppm=ppm)
    if early is not None:
        return early
    x0 = int(np.ceil(pulse.x_fall + thickness + 1))
    x1 = min(prob.shape[1], int(pulse.x_fall + 15 * ppm))
    y0 = max(0, int(pulse.y_base - 12 * ppm))
    y1 = min(prob.shape[0], int(pulse.y_base + 8 * ppm))
    if x1 - x0 < 2 or y1 <= y0:
        return pulse.x_fall
    ink: NDArray[np.bool_] = np.asarray(
        _without_characters(prob[y0:y1, x0:x1] > 0.5, baseline=pulse.y_base - y0, ppm=ppm)
    )
    empty = np.concatenate(([False], ~ink, [False])).astype(np.int8)
    edges = np.diff(empty)
    gap_lo, gap_hi = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for a, b in zip(gap_lo, gap_hi, strict=True):
        if a > 4 * ppm:
            break
        # a gap of 1-6 mm, then a trace that goes on unbroken for 3 mm (not faded ink)
        after = ink[b : b + int(3 * ppm)]
        if ppm <= b - a <= 6 * ppm and after.size >= int(3 * ppm) and after.mean() > 0.95:
            return float(x0 + b) + (thickness - 1) / 2.0
    if step:  # the pen was lifted: the first ink after the top's end, else 2 mm on
        inked = np.flatnonzero(ink[: int(8 * ppm)])
        if inked.size:
            return float(x0 + int(inked[0])) + (thickness - 1) / 2.0
        return pulse.x_fall + 2.0 * ppm
    return pulse.x_fall


def _foot_origin(
    prob: NDArray[np.float32],
    pulse: Pulse,
    *,
    x_last: float,
    px_per_s: float,
    thickness: float,
    ppm: float,
) -> float | None:
    """The origin of a row whose trace is joined to the pulse's foot, from the row's right end.

    Printers draw a short flat foot after the pulse; when no gap separates it from the trace,
    the falling edge is 1-3.5 mm early. The row's right end less its printed duration (rows
    end on a multiple of 2.5 s) tells: when it lies that far right of the fall and the ink in
    between stays flat at the pulse's base (a foot, not a trace), it is the origin.
    """
    end = x_last + 1.0 - thickness / 2.0  # the last sample (its ink reaches half a line on)
    dur = _snap_duration((end - pulse.x_fall) / px_per_s)
    if dur % 2.5:
        return None  # not a standard printed duration: the right end says nothing
    x0 = end - dur * px_per_s
    excess = x0 - pulse.x_fall
    if not 1.0 * ppm <= excess <= 3.5 * ppm:
        return None
    c0, c1 = int(np.ceil(pulse.x_fall + thickness + 1)), int(np.floor(x0 - thickness))
    if c1 - c0 < 2:
        return None
    y0 = max(0, int(pulse.y_base - 3 * ppm))
    y1 = min(prob.shape[0], int(pulse.y_base + 3 * ppm))
    ink = np.asarray(prob[y0:y1, c0:c1] > 0.5)
    if not ink.any(axis=0).all():
        return None
    ys = np.flatnonzero(ink.any(axis=1))
    if ys.max() - ys.min() > thickness + 0.4 * ppm:
        return None  # the ink moves: a trace, not a foot
    return float(x0)


def _row_origins(
    centres: list[float],
    pulses: list[Pulse | None],
    starts: list[float | None],
    x_first: list[float],
    *,
    ppm: float,
) -> tuple[list[float], list[float | None], list[bool]]:
    """The time origin (px) of every row, on the page's one time axis where rows share it.

    The rows of a page are printed simultaneously, so their origins lie on one line across
    the page: vertical on a straight page, slightly tilted when the traces are skewed against
    the grid the page was straightened by (paper fed askew under the print head, a residue
    of the dewarp). The pulses' falling edges, located to a fraction of a pixel, draw that
    line (a least-squares fit; a pulse more than 1 px or 0.15 mm off it is mis-measured and
    left out); the trace begins a fixed distance after the fall on a given printer (0, or a
    gap), the upper median of the rows' own ``starts`` less their falls (a label printed in
    the gap can hide it on some rows). A slope over 1 % is not believed, nor one that moves
    the origin by less than a pixel, or four times the falls' scatter, across the rows that
    take it (a row whose pulse the photo cut off takes it too, and the line moves its
    origin most: on ecg00045, pulses on two of four rows, the tilt moves the rows' origins
    by 1.5 px where their 1.0 px apart missed the threshold, and lead I ran 2.5 samples
    late against II): on such a straight page all rows start at the upper median of their
    own starts. Every row
    takes the line, except a row whose pulse lies more than 8 mm from the others' (a row of
    its own, which keeps its own start). Without pulses, rows start together at the median
    of their first columns.

    Parameters
    ----------
    centres : list of float
        The rows' baselines (px).
    pulses : list of Pulse or None
        Each row's calibration pulse.
    starts : list of float or None
        Where each row with a pulse starts by its own ink (:func:`_trace_origin`).
    x_first : list of float
        Each row's first column of ink.
    ppm : float
        Pixels per mm.

    Returns
    -------
    origins : list of float
        Per row, the x of time 0.
    falls : list of float or None
        Per row, the x of its pulse's falling edge (the line's, where the row's own pulse was
        missed); None without pulses on the page or for a row of its own.
    on_axis : list of bool
        Whether the row is on the page's common time axis.
    """
    n = len(centres)
    have = [i for i in range(n) if pulses[i] is not None]
    if not have:
        common = float(np.median(x_first))
        return [common] * n, [None] * n, [True] * n
    x_fall = {i: pulses[i].x_fall for i in have}  # type: ignore[union-attr]
    mid = float(np.median(list(x_fall.values())))
    core = [i for i in have if abs(x_fall[i] - mid) <= 8 * ppm]
    ys = np.array([centres[i] for i in core])
    xs = np.array([x_fall[i] for i in core])
    keep = np.ones(len(core), dtype=bool)
    slope, icpt = 0.0, float(np.median(xs))
    while keep.sum() >= 2:
        yk, xk = ys[keep], xs[keep]
        if np.ptp(yk) > 0:
            slope, icpt = (float(v) for v in np.polyfit(yk - yk.mean(), xk, 1))
            icpt -= slope * float(yk.mean())
        if abs(slope) > 0.01:  # not a skew but a mis-measured pulse or a row of its own
            slope, icpt = 0.0, float(np.median(xk))
        resid = np.abs(xs - (icpt + slope * ys))
        worst = int(np.argmax(np.where(keep, resid, -1.0)))
        if keep.sum() < 3 or resid[worst] <= max(1.0, 0.15 * ppm):
            break
        keep[worst] = False
    # a tilt is believed when it moves the origin by a pixel or more across the rows that
    # take it (those whose pulse was missed, above or below the pulses, too), well beyond
    # the falls' scatter about it; else the falls' spread is noise (a straight page)
    axis = [centres[i] for i in range(n) if i in core or i not in x_fall]
    change = abs(slope) * float(np.ptp(axis)) if keep.sum() >= 2 else 0.0
    scatter = float(np.std(xs[keep] - (icpt + slope * ys[keep]))) if keep.sum() >= 3 else 0.0
    tilted = change >= max(1.0, 4.0 * scatter)
    kept = [i for i, k in zip(core, keep, strict=True) if k]
    # (upper medians: a label that fills the gap hides it, a gap is rarely seen falsely)
    delays = sorted(starts[i] - x_fall[i] for i in kept if starts[i] is not None)  # type: ignore[operator]
    delay = delays[len(delays) // 2] if delays else 0.0
    shared: float | None = None
    if not tilted:  # one start for all: the rows' own starts agree to the pixel as a rule
        slope, icpt = 0.0, float(np.median(xs[keep]))
        mine = sorted(s for i in kept if (s := starts[i]) is not None)
        shared = float(mine[len(mine) // 2]) if mine else icpt + delay
    origins: list[float] = []
    falls: list[float | None] = []
    on_axis: list[bool] = []
    for i in range(n):
        line = icpt + slope * centres[i]
        if i in x_fall and i not in core:
            own = starts[i]
            origins.append(own if own is not None else x_fall[i])
            falls.append(x_fall[i])
            on_axis.append(False)
        else:
            origins.append(line + delay if shared is None else shared)
            falls.append(x_fall.get(i, line))
            on_axis.append(True)
    return origins, falls, on_axis


def _time_mark(
    image: NDArray[np.uint8],
    prob: NDArray[np.float32],
    *,
    x: float,
    baseline: float,
    ppm: float,
    reach: float = 1.2,
) -> float | None:
    """Sub-pixel x of a printed time mark crossing a row near ``x``: a column separator (a
    short bar, or a dotted or solid line down the page) printed at a segment boundary.

    Marks are often fainter than the traces (a dotted grey line), so they are looked for on
    the page ``image`` (RGB; its brightest channel, in which coloured grid lines are pale),
    in a window ``reach`` mm either side of ``x`` and 5 mm either side of the ``baseline``, less
    the lines the trace runs along (ink of ``prob`` across half the window). The mark is the
    column whose darkness (0 on the window's paper, 1 at its darkest ink) sums to at least
    15 % of those lines (a dotted line is half ink), with no other column coming within 60 %
    of it (a QRS stroke beside it, a word, a dark grid line: no clear mark) and dark both
    well above and well below the baseline (a mark crosses the row; a stroke beside a
    boundary goes one way as a rule). A column as dark 5 mm to its left and to its right
    (over the same lines, to a pixel) is a grid line, not a mark: grid lines repeat every
    5 mm, a separator does not (one printed on a grid line is darker than its neighbours).
    Its x is the median over those lines of the mark's centroid (its columns, those within
    half its peak, and one either side); None without such a mark.
    """
    h, w = prob.shape
    x0, x1 = int(max(0, x - reach * ppm)), int(min(w, x + reach * ppm + 1))
    y0, y1 = int(max(0, baseline - 5 * ppm)), int(min(h, baseline + 5 * ppm))
    if x1 - x0 < 5 or y1 - y0 < 4 * ppm:
        return None
    bright = image[y0:y1, x0:x1].max(axis=2).astype(np.float64)
    free = np.mean(prob[y0:y1, x0:x1] > 0.5, axis=1) <= 0.5  # lines without the trace
    if free.sum() < 3 * ppm:
        return None
    paper, ink = float(np.median(bright[free])), float(bright.min())
    if paper - ink < 30.0:
        return None  # no ink in the window
    dark = np.clip((paper - bright[free]) / (paper - ink), 0.0, 1.0)
    count = dark.sum(axis=0)
    excess = count - float(np.median(count))
    m = int(np.argmax(excess))
    lo = hi = m  # the mark's columns: those within half its peak (a bar is a few wide)
    while lo > 0 and excess[lo - 1] >= 0.5 * excess[m]:
        lo -= 1
    while hi < excess.size - 1 and excess[hi + 1] >= 0.5 * excess[m]:
        hi += 1
    if lo == 0 or hi == excess.size - 1:
        return None  # at the window's edge: not centred on a mark
    rest = excess.copy()
    rest[max(0, lo - 2) : hi + 3] = 0.0
    strength = float(np.clip(excess[lo - 1 : hi + 2], 0.0, None).sum())
    if strength < 0.15 * dark.shape[0] or float(rest.max()) > 0.6 * float(excess[m]):
        return None
    ys = np.arange(y0, y1)[free]
    part = dark[:, lo - 1 : hi + 2]
    stroke = part.max(axis=1) > 0.3
    gap = 1.5 * ppm
    above, below = stroke[ys < baseline - gap].sum(), stroke[ys > baseline + gap].sum()
    if min(above, below) < 0.05 * dark.shape[0]:
        return None
    if _grid_line(image, free, y0=y0, x=x0 + m, period=5.0 * ppm, paper=paper, ink=ink,
                  peak=float(count[m]), floor=float(np.median(count))):  # fmt: skip
        return None
    # the mark's centre on each line it crosses, then their median: a trace stroke that
    # touches the mark on a few lines does not pull it
    wts = np.clip(part[stroke] - np.median(dark[stroke], axis=1, keepdims=True), 0.0, None)
    mass = wts.sum(axis=1)
    good = mass > 0
    if not good.any():
        return None
    centres = (wts[good] @ np.arange(part.shape[1], dtype=np.float64)) / mass[good]
    return float(x0 + lo - 1) + float(np.median(centres))


def _grid_line(
    image: NDArray[np.uint8],
    free: NDArray[np.bool_],
    *,
    y0: int,
    x: int,
    period: float,
    paper: float,
    ink: float,
    peak: float,
    floor: float,
) -> bool:
    """Whether the column ``x`` of ``image`` (its lines ``y0 + where(free)``) is a grid line:
    the columns ``period`` px either side (the best within a pixel) are dark over those lines
    (with the window's ``paper`` and ``ink`` levels) by 60 % or more of the column's own
    darkness ``peak`` above the window's ``floor``, on both sides where both lie on the page
    (a QRS stroke may darken one of them)."""
    w = image.shape[1]
    ys = y0 + np.flatnonzero(free)
    sides = []
    for x_side in (x - period, x + period):
        c0, c1 = int(round(x_side)) - 1, int(round(x_side)) + 2
        if c0 < 0 or c1 > w:
            continue
        bright = image[ys, c0:c1].max(axis=2).astype(np.float64)
        dark = np.clip((paper - bright) / (paper - ink), 0.0, 1.0)
        sides.append(float(dark.sum(axis=0).max()) - floor)
    return bool(sides) and min(sides) >= 0.6 * (peak - floor)


def _column_shifts(
    image: NDArray[np.uint8],
    prob: NDArray[np.float32],
    origins: list[float],
    baselines: list[float],
    row_leads: list[tuple[str, ...]],
    *,
    px_per_s: float,
    seg_s: list[float],
    ppm: float,
) -> tuple[list[list[float]], list[bool]]:
    """Per row and column, how far (px) the row's trace sits right of where its origin puts it.

    The rows of a page are printed at once, so a column separator printed across them marks
    one instant on every row; on photographed pages it is not at the same x on every row
    once the grid is straightened (the trace and the grid are not one: paper skew under the
    print head, the paper's stretch), and neither are the rows' traces (the straightened
    grid itself is even to a few hundredths of a pixel across the rows). The separators
    (:func:`_time_mark`, on the page ``image`` with the ink map ``prob``) at each boundary
    between segments are located to a fraction of a pixel on the multi-lead rows; each
    row's offset at a boundary is its mark's distance from its own expected boundary less
    the rows' mean (the page's time axis stays where the pulses put it). Offsets over
    0.35 mm are not believed (a stroke or a word taken for the mark); a boundary needs
    marks on at least two rows and half of them. A row's offset is a constant (the rows
    are offset as wholes on the photographed pages seen): the median of its offsets at
    the boundaries, when it has two or more (a QRS stroke that lies on a mark moves it;
    the pulses' own scatter is not used, it is noise at this scale) and it exceeds twice
    their median deviation from it (else the marks disagree, or the offset drifts along
    the row). Zero where nothing is known.

    The marks are looked for 1.2 mm either side of the boundary the grid expects; where no
    boundary's marks are found there, 1.2 mm either side of where the page's own marks put
    it: on a page whose columns are longer or shorter than its grid says (by 0.8 % on
    ecg00045, whose trace also starts 3 px after its pulse) the marks move further off the
    expected boundary at each boundary (extrapolated from the last two boundaries found; in
    proportion from one). Until one boundary's marks are found, a boundary without marks
    is searched 2.5 mm either side, where a mark is needed on every row and all within
    0.15 mm (strokes and words pass for marks more often in a wide window). A row is
    placed (its time measured, moved or not) when its offset is believed or when its marks
    agree to 0.025 mm (median deviation) on an offset too small to move it: on ecg00045 the
    rows' marks agree to 0.02 mm that the rows are in line, while the rhythm strip runs
    early against its grid segment by itself (the skew of :func:`_row_skew` would move
    them by 0.27 px; without it the page scores 15.6 dB instead of 14.3).

    Returns
    -------
    shifts : list of list of float
        Per row and column, the offset (px).
    placed : list of bool
        Per row, whether separators at two or more boundaries put it on the time axis,
        moved or in place.
    """
    n = len(origins)
    shifts = [[0.0] * len(leads) for leads in row_leads]
    placed = [False] * n
    grid_rows = [i for i in range(n) if len(row_leads[i]) >= 2]
    if len(grid_rows) < 2:
        return shifts, placed
    ncol = max(len(row_leads[i]) for i in grid_rows)
    offsets: dict[tuple[int, int], float] = {}
    page: list[tuple[int, float]] = []  # (boundary, the marks' mean distance past it)
    for b in range(1, ncol):
        # where this page's marks lie: past the expected boundary by what the last ones were,
        # growing as they grew (a printer whose columns are a little longer than the grid
        # says, a trace that starts a little after its pulse)
        ahead = 0.0
        if len(page) >= 2:
            (b1, d1), (b2, d2) = page[-2:]
            ahead = d2 + (d2 - d1) * (b - b2) / (b2 - b1)
        elif page:  # (in proportion: the trace's start is measured, its scale is not)
            ahead = page[-1][1] * b / page[-1][0]
        ahead = float(np.clip(ahead, -3.0 * ppm, 3.0 * ppm))
        # the grid's boundary first (the marks found there stand as before); where no mark is
        # there, the page's own: where the last boundaries' marks put it, or until one
        # boundary's are found, 2.5 mm either side of the grid's boundary, where more strokes
        # may pass for marks: there every row must show one, all within 0.15 mm
        tries = [(0.0, 1.2), (ahead, 1.2) if page else (0.0, 2.5)]
        rows_b = [i for i in grid_rows if len(row_leads[i]) == ncol]
        for off, reach in tries:
            found: dict[int, float] = {}
            for i in rows_b:
                expect = origins[i] + b * seg_s[i] * px_per_s
                mark = _time_mark(image, prob, x=expect + off, baseline=baselines[i],
                                  ppm=ppm, reach=reach)  # fmt: skip
                if mark is not None:
                    found[i] = mark - expect
            wide = reach > 1.2
            need = len(rows_b) if wide else max(2, (len(grid_rows) + 1) // 2)
            while len(found) >= max(2, need):
                mean = float(np.mean(list(found.values())))
                worst = max(found, key=lambda k: abs(found[k] - mean))
                if abs(found[worst] - mean) <= (0.15 if wide else 0.35) * ppm:
                    offsets.update({(i, b): d - mean for i, d in found.items()})
                    page.append((b, mean))
                    break
                del found[worst]
            if page and page[-1][0] == b:
                break
    for i in grid_rows:
        mine = [offsets[i, b] for b in range(1, ncol) if (i, b) in offsets]
        # (one mark alone may be a stroke that lies on it; an offset within twice its marks'
        # median deviation is their noise or a drift along the row, which a constant cannot
        # follow)
        if len(mine) >= 2:
            mid = float(np.median(mine))
            spread = float(np.median(np.abs(np.subtract(mine, mid))))
            if abs(mid) > 2.0 * spread:
                shifts[i] = [mid] * len(row_leads[i])
            # (its time is measured when its marks agree to 0.025 mm, in place or not)
            placed[i] = bool(abs(mid) > 2.0 * spread or spread <= 0.025 * ppm)
    return shifts, placed


_Part = tuple[NDArray[np.float64], NDArray[np.float64], float]


def _strip_lag(
    strip: _Part, part: _Part, *, fs: float, max_lag: int
) -> tuple[float, float, float] | None:
    """How many samples ``strip`` runs early against ``part`` (the same lead's grid segment)
    over their common samples, to a fraction of a sample: the peak of their correlation
    coefficient over integer lags up to ``max_lag``, refined by a parabola through the peak
    and its neighbours. Returns (lag, correlation at the peak, correlation at lag 0), or None
    when they share less than half a second of finite samples."""
    ks, kp = np.round(strip[0] * fs).astype(np.int64), np.round(part[0] * fs).astype(np.int64)
    lo, hi = int(kp.min()), int(kp.max())
    if hi - lo < 0.5 * fs:
        return None
    # both on one dense sample axis over the segment's span (and max_lag either side)
    base = lo - max_lag
    n = hi - lo + 1 + 2 * max_lag
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    on = (ks >= base) & (ks < base + n)
    a[ks[on] - base] = strip[1][on]
    b[kp - base] = part[1]
    grid = b[max_lag : n - max_lag]
    corr = np.full(2 * max_lag + 1, -1.0)
    for j, lag in enumerate(range(-max_lag, max_lag + 1)):
        # the strip's sample k shows the grid's sample k + lag (lag > 0: the strip is early)
        s = a[max_lag - lag : n - max_lag - lag]
        ok = np.isfinite(s) & np.isfinite(grid)
        if ok.sum() < 0.5 * fs:
            continue
        x, y = s[ok] - s[ok].mean(), grid[ok] - grid[ok].mean()
        den = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
        corr[j] = float(np.sum(x * y)) / den if den > 0 else -1.0
    m = int(np.argmax(corr))
    if corr[m] <= -1.0:
        return None
    off = 0.0
    if 0 < m < corr.size - 1:
        c0, c1, c2 = corr[m - 1 : m + 2]
        den = c0 - 2.0 * c1 + c2
        off = float(np.clip(0.5 * (c0 - c2) / den, -0.5, 0.5)) if den < 0 else 0.0
    return m - max_lag + off, float(corr[m]), float(corr[max_lag])


def _peak_drop(strip: _Part, part: _Part, *, fs: float, lag: float) -> float:
    """How much the correlation of ``strip`` with ``part`` falls from ``lag`` (samples, as
    :func:`_strip_lag` measures it) to 10 ms either side: the lesser fall of the two. A
    clear peak (a QRS complex in common) falls by a tenth or more; a flat one (a trace with
    no sharp wave, or noise) has no lag to speak of."""
    step = max(1, int(round(0.01 * fs)))
    fits = [_strip_lag(_moved(strip, lag + d, fs), part, fs=fs, max_lag=1) for d in (-step, step)]
    here = _strip_lag(_moved(strip, lag, fs), part, fs=fs, max_lag=1)
    if here is None or any(f is None for f in fits):
        return 0.0
    return min(here[2] - f[2] for f in fits if f is not None)


def _moved(part: _Part, shift: float, fs: float) -> _Part:
    """``part`` resampled ``shift`` samples later on its own times (its value at ``t`` is the
    one it drew at ``t - shift / fs``): a trace that ran early by ``shift`` samples put back on
    time. Its unknown stretches stay unknown; times it did not draw become unknown."""
    ts, mv, w = part
    ok = np.isfinite(mv)
    if ok.sum() < 2 or shift == 0.0:
        return part
    t_src = ts - shift / fs
    inside = (t_src >= ts[ok][0]) & (t_src <= ts[ok][-1])
    out = np.where(inside, np.interp(t_src, ts[ok], mv[ok]), np.nan)
    gaps = ~ok
    if gaps.any():  # keep its unknown stretches unknown
        near = np.interp(t_src, ts, gaps.astype(np.float64)) > 0
        out[near] = np.nan
    return ts, out, w


def _row_skew(
    segments: dict[str, list[_Part]],
    row_of: dict[int, int],
    centres: list[float],
    row_leads: list[tuple[str, ...]],
    on_axis: list[bool],
    *,
    fs: float,
    px_per_sample: float,
    placed: list[bool] | None = None,
    max_shift: float = 0.04,
    min_corr: float = 0.8,
    min_drop: float = 0.02,
    max_slope: float = 0.01,
    min_move: float = 0.5,
) -> list[float]:
    """Per row, how many samples its trace runs early: the traces' skew against the grid,
    linear in the row's height, that a rhythm strip shows against its lead's grid segment.

    The rows of a page are printed at once, and a rhythm strip repeats one lead of the grid
    at the same times: the strip and that lead's grid segment are one signal, printed on two
    rows. On photographed thermal printouts the traces are sheared against the grid the page
    was straightened by (the straightened grid is even across the rows to a few hundredths of
    a pixel, the traces' time zero is not): the lower a row, the further left its trace
    starts, by 0.1 to 1 % of the height between the rows (13 phone photos of 3x4+II pages:
    the strip runs early against its II segment on every one, by 0.06 to 5 samples, and the
    lags of I and III that fit Einthoven's law best agree with the line it draws).

    The strip's lag against its grid segment (:func:`_strip_lag`, parabola-refined to a
    fraction of a sample) measures that shear between their two rows; the skew is a line in
    the rows' baselines (``centres``) through those lags (least squares through zero over
    the pairs of strip and segment of each strip whose lead a grid row prints, ``row_of``
    telling each part's row), and every row on the page's time axis (``on_axis``) runs early
    by the line's value at its baseline less its mean over the multi-lead rows: the grid
    rows' mean time stays where the pulses put it, only the rows' differences are measured.

    A pair is believed when the two correlate by ``min_corr``, at a lag inside ``max_shift``
    s whose peak stands out (it falls by ``min_drop`` 10 ms either side: a flat curve has no
    lag to speak of). A skew over ``max_slope`` (pixels per pixel of height, with
    ``px_per_sample``) is not a shear but a mistraced stretch or a row of its own; one that
    moves no grid row by ``min_move`` samples is within the lags' noise (a few tenths of a
    sample on straight renders) and the interpolation's blur would cost more than it gains.
    Where the column separators ``placed`` two or more grid rows (:func:`_column_shifts`:
    moved them, or found them in place) their times are measured already (on photos they
    draw the same shear across the grid rows) and the strip alone is off: that is
    :func:`_align_strips`' part. All zeros then, or without a strip whose lead the grid
    prints.
    """
    n = len(centres)
    zero = [0.0] * n
    grid_rows = [i for i in range(n) if len(row_leads[i]) >= 2 and on_axis[i]]
    if not grid_rows:
        return zero
    if placed is not None and sum(placed[i] for i in grid_rows) >= 2:
        return zero
    max_lag = max(1, int(round(max_shift * fs)))
    parts_of: dict[int, list[tuple[str, _Part]]] = {}
    for lead, parts in segments.items():
        for part in parts:
            if id(part) in row_of:
                parts_of.setdefault(row_of[id(part)], []).append((lead, part))
    num = den = 0.0
    for r in range(n):
        if len(row_leads[r]) != 1 or not on_axis[r] or len(parts_of.get(r, [])) != 1:
            continue
        lead, strip = parts_of[r][0]
        for g in grid_rows:
            for name, part in parts_of.get(g, []):
                if name != lead or not part[0].size:
                    continue
                fit = _strip_lag(strip, part, fs=fs, max_lag=max_lag)
                if fit is None or fit[1] < min_corr or abs(fit[0]) >= max_lag - 1:
                    continue
                if min_drop > 0 and _peak_drop(strip, part, fs=fs, lag=fit[0]) < min_drop:
                    continue
                dy = centres[r] - centres[g]
                num += fit[0] * dy
                den += dy * dy
    if den <= 0:
        return zero
    slope = num / den  # samples early per pixel of height
    if abs(slope) * px_per_sample > max_slope:
        return zero
    ref = float(np.mean([centres[i] for i in grid_rows]))
    early = [slope * (centres[i] - ref) if on_axis[i] else 0.0 for i in range(n)]
    if max(abs(early[i]) for i in grid_rows) < min_move:
        return zero
    return early


def _align_strips(
    segments: dict[str, list[_Part]],
    *,
    fs: float,
    max_shift: float = 0.04,
    min_corr: float = 0.8,
) -> dict[str, float]:
    """Put each rhythm strip on the time axis of the same lead's grid segment(s).

    A rhythm strip and the grid segment of its lead are the same signal at the same times,
    printed on different rows; on photographed pages the rows' traces can sit a fraction of a
    millimetre apart in x against the grid they were straightened by, so the two disagree by
    a few samples and their blend blurs every QRS. The strip's lag against each segment is
    measured by correlation to a fraction of a sample (:func:`_strip_lag`); when the fit is
    good (correlation at least ``min_corr`` at a lag within ``max_shift`` s) the strip is
    resampled by the segments' mean lag; when it is not, the two disagree (a mistraced
    stretch or a different signal) and the strip is left out over the segment's times, so
    the segment alone is kept there. Changes ``segments`` in place.

    Returns
    -------
    dict
        Per lead whose strip was moved, the shift applied in samples (positive: the strip was
        early and now starts later).
    """
    spans = [float(ts[-1] - ts[0]) for parts in segments.values() for ts, _, _ in parts if ts.size]
    longest = max(spans, default=0.0)
    max_lag = max(1, int(round(max_shift * fs)))
    moved: dict[str, float] = {}
    for lead, parts in segments.items():
        strips = [p for p in parts if p[0].size and float(p[0][-1] - p[0][0]) > 0.75 * longest]
        grid = [p for p in parts if all(p is not q for q in strips)]
        if not strips or not grid or len(strips) == len(parts):
            continue
        new_parts = list(grid)
        for strip in strips:
            ts, mv, w = strip
            lags, weights = [], []
            drop = np.zeros(ts.size, dtype=bool)
            for part in grid:
                fit = _strip_lag(strip, part, fs=fs, max_lag=max_lag)
                if fit is None:
                    continue
                lag, peak, _ = fit
                if peak >= min_corr and abs(lag) < max_lag - 0.5:
                    lags.append(lag)
                    weights.append(float(part[0].size))
                else:  # the two disagree: the segment alone speaks for its times
                    drop |= (ts >= part[0][0] - 0.5 / fs) & (ts <= part[0][-1] + 0.5 / fs)
            if lags:
                shift = float(np.average(lags, weights=weights))
                if abs(shift) >= 0.25 and np.isfinite(mv).sum() >= 2:
                    # the strip's value at ts is what it drew shift samples earlier
                    mv = _moved(strip, shift, fs)[1]
                    moved[lead] = shift
            if drop.any():
                ts, mv = ts[~drop], mv[~drop]
            new_parts.append((ts, mv, w))
        segments[lead] = new_parts
    return moved


def digitize(
    image: Any,
    *,
    fs: float = 500.0,
    samples: int | None = None,
    layout: str = "auto",
    segmentation: str = "auto",
    paper_speed: float | None = None,
    gain: float | None = None,
    rhythm_leads: tuple[str, ...] | None = None,
    perspective: bool = True,
    name: str = "page",
    pdf_dpi: float = 200.0,
    lead_in: float = 0.02,
) -> DigitizationResult:
    """Digitize one printed 12-lead ECG page.

    Parameters
    ----------
    image : path, PIL image or ndarray
        The page: an image file (PNG, JPEG, TIFF, BMP, WebP), the first page of a PDF, a PIL
        image or an RGB/grey array.
    fs : float
        Sampling frequency of the output record in Hz.
    samples : int, optional
        Length of the output record; default: the printed duration (10 s for standard pages).
    layout : str
        ``'auto'`` (rows, separators and row count decide) or one of
        :data:`~ecgscan.digitize.LAYOUTS` optionally with rhythm strips, e.g. ``'3x4+II'``.
    segmentation : {'auto', 'rows', 'darkness', 'unet'}
        Trace segmentation (see :func:`~ecgscan.digitize.trace_maps`). ``'rows'``: the
        classical darkness map, and where ink crosses between rows the shipped network says
        which row each trace pixel belongs to; ``'darkness'``: the classical map alone;
        ``'unet'``: the darkness map gated by the network's trace probability. ``'auto'`` is
        ``'rows'`` when the network is installed, else ``'darkness'``.
    paper_speed, gain : float, optional
        Override the calibration (mm/s, mm/mV; a given gain applies to every lead); by
        default read from the pulses or the printed settings, else 25 and 10. A split-gain
        page (chest leads at half the limb leads' gain) is read at both
        (``result.calibration.gain_chest``).
    rhythm_leads : tuple of str, optional
        Names of the rhythm strips below the lead grid (default ``('II',)`` for one strip).
    perspective : bool
        Look for a photographed sheet and flatten it.
    name : str
        Name of the output record.
    pdf_dpi : float
        Resolution for rasterising a PDF page.
    lead_in : float
        Seconds by which the record starts before the first printed sample (those samples are
        NaN). The timing from the pulse is exact to a fraction of a pixel, but the PhysioNet
        Challenge's official scoring gives ≈ 0 dB to an estimate that runs even one sample
        early while it corrects late ones; a 20-ms lead-in makes sub-pixel errors harmless.
        Use 0 for a record whose sample 0 is the first printed instant.

    Returns
    -------
    DigitizationResult

    Raises
    ------
    DigitizationError
        If the page cannot be read or holds no ECG traces.
    """
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs must be a positive number of Hz, got {fs!r}")
    if not 0.0 <= lead_in <= 1.0:
        raise ValueError(f"lead_in must be between 0 and 1 s, got {lead_in!r}")
    if samples is not None and (int(samples) != samples or samples <= 0):
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    timings: dict[str, float] = {}
    tic = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal tic
        now = time.perf_counter()
        timings[stage] = now - tic
        tic = now

    img = load_image(image, pdf_dpi=pdf_dpi)
    lap("load")
    img, geometry = straighten(img, perspective=perspective)
    lap("geometry")
    grid = estimate_grid(img)
    lap("grid")
    ppm = grid.px_per_mm_x if grid is not None else img.shape[1] / _PAGE_WIDTH_MM
    # the darkness map finds rows, pulses and separators (printed marks the network is not
    # trained to keep); the chosen method's map is what traces are followed on
    prob, _ = segment_traces(img, px_per_mm=ppm, method="darkness")
    maps = trace_maps(img, prob, px_per_mm=ppm, method=segmentation)
    seg_method, trace_prob = maps.method, maps.prob
    lap("segmentation")
    rows = find_rows(prob, px_per_mm=ppm)
    if not rows:
        raise DigitizationError(
            "no rows of ECG traces found on the page; is it an ECG printout? "
            "(expected long horizontal traces on a light background)"
        )
    thickness = line_thickness(prob, [(r.y_lo, r.y_hi) for r in rows])
    pulses: list[Pulse | None] = [
        find_pulse(prob, baseline=r.center, x_first=r.x_first, px_per_mm=ppm,
                   thickness=thickness, y_min=r.y_lo)
        for r in rows
    ]  # fmt: skip
    # rows closer than a pulse is tall (12x1 at 20 mm/mV): the pulses merge into a ladder
    ladder = find_ladder(prob, [r.center for r in rows], [float(r.x_first) for r in rows],
                         px_per_mm=ppm, thickness=thickness)  # fmt: skip
    if ladder is not None and sum(q is not None for q in ladder) >= sum(
        p is not None for p in pulses
    ):  # (it reads as many rows as the pulses found one by one: their strokes are its)
        pulses = [q if q is not None else p for q, p in zip(ladder, pulses, strict=True)]
    found = [p for p in pulses if p is not None]
    if 2 * len(found) < len(rows):  # few pulses before the traces: some print them after
        ends = [find_end_pulse(prob, baseline=r.center, x_last=r.x_last, px_per_mm=ppm,
                               thickness=thickness, y_min=r.y_lo)
                for r in rows]  # fmt: skip
        after = [p for p in ends if p is not None]
        if 2 * len(after) >= len(rows) and len(after) > len(found):
            # the pulses are after the rows (a few strokes at the rows' starts looked like
            # pulses); the rows end before the pulses' lead-in (2 mm of gap, 2 mm flat)
            found, pulses = after, [None] * len(rows)
            end = float(np.median([p.x_rise for p in found])) - 4.0 * ppm
            rows = [dataclasses.replace(r, x_last=int(min(r.x_last, end))) for r in rows]
    if grid is None:
        if found:  # a 1-mV pulse is 10 mm tall at the standard gain
            h = float(np.median([p.y_base - p.y_top for p in found]))
            rows_ppm = max(r.x_last - r.x_first for r in rows) / _ROW_MM
            ppm = h / (gain if gain is not None else _pulse_gain(h, rows_ppm))
            grid = Grid(ppm, ppm, found=False, source="pulse")
        else:
            grid = Grid(ppm, ppm, found=False, source="page width")
    # the printed settings ("25 mm/s  20 mm/mV") are read only when the pulses leave them open
    calib = calibrate(found, px_per_mm_x=grid.px_per_mm_x, px_per_mm_y=grid.px_per_mm_y,
                      paper_speed=paper_speed, gain=gain,
                      printed=lambda: read_calibration_text(prob, rows, px_per_mm=ppm))  # fmt: skip
    px_per_s = grid.px_per_mm_x * calib.paper_speed
    lap("calibration")

    # time origin and duration of each row: a pulse's falling edge, or the trace's first
    # column when a gap follows the pulse; rows share the page's time axis (_row_origins)
    owns: list[float | None] = [
        _trace_origin(prob, p, thickness=thickness, ppm=grid.px_per_mm_x) if p is not None else None
        for p in pulses
    ]
    # a trace joined to the pulse's foot (no gap) starts where the row's end says
    bare = []  # rows whose trace leaves from the pulse's falling edge itself
    for i, (r, p) in enumerate(zip(rows, pulses, strict=True)):
        if p is not None and p.shape == "square" and owns[i] == p.x_fall:
            alt = _foot_origin(prob, p, x_last=float(r.x_last), px_per_s=px_per_s,
                               thickness=thickness, ppm=grid.px_per_mm_x)  # fmt: skip
            owns[i] = alt if alt is not None else owns[i]
        if p is not None:
            bare.append(owns[i] == p.x_fall)
    # where every row's trace leaves from its pulse's falling edge and the samples are too
    # close for the drawing's bends to place them (:func:`phase_costs`), the trace began
    # _FALL_LAG samples before the edge's centre, measured on the grey levels
    if bare and all(bare) and px_per_s / fs < _MIN_PINNED_STEP:
        pulses = [refine_fall(img, p, thickness=thickness) if p is not None else None
                  for p in pulses]  # fmt: skip
        owns = [None if p is None else p.x_fall - _FALL_LAG * px_per_s / fs for p in pulses]
    origins, row_falls, on_axis = _row_origins(
        [r.center for r in rows], pulses, owns, [float(r.x_first) for r in rows],
        ppm=grid.px_per_mm_x,
    )  # fmt: skip
    common_axis = list(on_axis)  # (on_axis narrows below to the rows that pool phases)
    lengths = [max(float(r.x_last) - t0, 1.0) for r, t0 in zip(rows, origins, strict=True)]
    columns = []
    # a row whose trace reaches the image's right edge was cut off there
    cut = [float(r.x_last) >= prob.shape[1] - 1 - thickness for r in rows]
    measured = np.divide(lengths, px_per_s)
    if not grid.found:  # the scale came from a pulse's height or the page: the rows' printed
        # durations (multiples of 2.5 s) time them more exactly (a pulse's height is off by
        # about a stroke's width, 3-5 %; the page's width by its margins)
        nominal = [max(2.5, round(float(m) / 2.5) * 2.5) for m in measured]
        whole = [n / d for n, d, m, c in zip(lengths, nominal, measured, cut, strict=True)
                 if not c and abs(d - m) < 0.08 * d]  # fmt: skip
        if whole:
            px_per_s = float(np.median(whole))
            grid = dataclasses.replace(grid, px_per_mm_x=px_per_s / calib.paper_speed)
            measured = np.divide(lengths, px_per_s)
    durations = [_snap_duration(float(m), page=measured, cut=c)
                 for m, c in zip(measured, cut, strict=True)]  # fmt: skip
    page_duration = max(durations)
    for r, t0, dur in zip(rows, origins, durations, strict=True):
        columns.append(_count_columns(prob, t0, dur * px_per_s, r.center, grid.px_per_mm_x))

    # the printed lead names at each segment's start choose the layout and name the rhythm
    # strips; their ink, and text lines in the rows' bands, are then erased so that no trace
    # is followed into them
    # at the starts of four columns, or of five (15-lead pages) when the names stand there
    # (looked for unless the separators and the names found already make four columns)
    def labels_at(n: int) -> list[list[LeadLabel | None]]:
        starts = [[t0 + c * dur / n * px_per_s for c in range(n)]
                  for t0, dur in zip(origins, durations, strict=True)]  # fmt: skip
        return find_labels(prob, rows, starts, px_per_mm=grid.px_per_mm_x)

    by_count = {4: labels_at(4)}
    if 5 in columns or columns_from_labels(by_count) is None:
        by_count[5] = labels_at(5)
    n_named = columns_from_labels(by_count)
    if n_named == 5 or (n_named is None and 5 in columns):
        columns = [5 if c != 2 else c for c in columns]
    labels = by_count[5 if 5 in columns else 4]
    # rough traces let the limb leads' laws (Einthoven, Goldberger) settle what labels cannot
    rough = row_traces(prob, rows, origins, [d * px_per_s for d in durations])
    layout_name, row_leads, origin_rule = assign_leads(
        len(rows), columns, layout=layout, rhythm_leads=rhythm_leads, labels=labels,
        traces=rough,
    )  # fmt: skip
    # split gains: rows led by V1-V6 whose pulses stand at another height (12x1 at 10/5)
    calib = settle_gains(calib, pulses, row_leads, px_per_mm_y=grid.px_per_mm_y,
                         given=gain is not None)  # fmt: skip
    trace_prob = erase_labels(trace_prob, labels, row_leads, centers=[r.center for r in rows])
    trace_prob = erase_text(trace_prob, rows, px_per_mm=grid.px_per_mm_x)
    lap("layout")

    n_out = int(samples) if samples is not None else int(round(page_duration * fs))
    segments: dict[str, list[tuple[NDArray[np.float64], NDArray[np.float64], float]]] = {}
    stats: dict[str, tuple[float, float, float]] = {}
    traces: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
    layout_rows = []
    traced: list[_TracedRow] = []
    steps = any(q is not None and q.shape == "step" for q in pulses)
    for r, p, t0, fall, dur, leads in zip(rows, pulses, origins, row_falls, durations, row_leads,
                                          strict=True):  # fmt: skip
        # start right after the pulse's falling edge when the trace begins there (rows share
        # it even where it was missed); at the trace's own first column after a gap
        if fall is None:
            x_start = int(t0)
        elif steps and t0 < fall:  # under a step pulse's top: the paper below it is open
            x_start = int(np.floor(t0 - thickness))
        elif -0.5 < fall - t0 < 3 * grid.px_per_mm_x + 0.5:  # at the fall or just before it
            x_start = int(np.ceil(fall + thickness + 1))
        else:
            x_start = int(np.floor(t0 - thickness))
        x_end = int(min(r.x_last, t0 + dur * px_per_s))
        # erase the lead separators (short thick bars at segment boundaries), so the trace is
        # followed where it leaves the bar (within 6 mm) and interpolated where the bar hides it
        band = maps.band(trace_prob, r.y_lo, r.y_hi, center=r.center,
                         centers=[q.center for q in rows])  # fmt: skip
        reach = int(6 * grid.px_per_mm_y)
        # the segment boundaries, where a thin separator tick the map keeps may stand
        bounds = [t0 + c * (dur / len(leads)) * px_per_s for c in range(1, max(1, len(leads)))]
        hidden: list[tuple[int, int]] = []
        for xb in bounds:
            bar = separator_columns(prob, x=xb, baseline=r.center, px_per_mm=grid.px_per_mm_x)
            if bar is not None:
                if band.base is not None:
                    band = band.copy()
                c0, c1 = bar[0] - 1, bar[1] + 2
                # unseen: the bar's columns and the one erased beside it on each side (at
                # 100 DPI a column is a sample at 100 Hz, and a stroke against the bar
                # lost its ink there: the fit put that sample 0.5 mV off)
                hidden.append((c0, c1))
                top, bottom = bar[2] - r.y_lo, bar[3] - r.y_lo
                band[max(0, top - 1) : bottom + 2, c0:c1] = 0.0
                band[: max(0, top - reach), c0:c1] = 0.0
                band[bottom + reach :, c0:c1] = 0.0
        run_x, run_lo, run_hi = trace_runs(
            band, y_lo=0, y_hi=band.shape[0], x0=x_start, x1=x_end, baseline=r.center - r.y_lo,
            px_per_mm=grid.px_per_mm_y, bars=bounds,
        )  # fmt: skip
        xs, ys = runs_to_points(band, run_x, run_lo, run_hi, thickness=thickness)
        ys = ys + r.y_lo
        upper, lower = run_edges(band, run_x, run_lo, run_hi)
        upper, lower, run_xf = upper + r.y_lo, lower + r.y_lo, run_x.astype(np.float64)
        radius = pen_radius(upper, lower, thickness=thickness)
        # how well the drawing's bends fit samples at fractions of a sample off the origin
        costs = phase_costs(run_xf, upper, lower, x_origin=t0, px_per_s=px_per_s, fs=fs,
                            radius=radius, init=(xs, ys))  # fmt: skip
        traces.append((xs, ys))
        # the zero line is 1 mV below the pulse's top (its thin top stroke is located to a
        # fraction of a pixel, its foot merges with the trace); else the trace's median
        if p is not None:
            zero_y = zero_line(p, calib, leads[0] if leads else "I", px_per_mm_y=grid.px_per_mm_y)
        else:
            zero_y = float(np.median(ys)) if ys.size else r.center
        layout_rows.append(Row(baseline=float(zero_y), x_start=float(t0), x_end=float(x_end),
                               leads=tuple(leads), pulse=p is not None))  # fmt: skip
        traced.append(_TracedRow(r, t0, dur, leads, xs, ys, run_xf, upper, lower, radius,
                                 zero_y, costs, hidden))  # fmt: skip
    # where the column separators put each row's segments against the rows' shared origin
    col_shifts, placed = _column_shifts(
        img, prob, [row.t0 for row in traced], [r.center for r in rows], row_leads,
        px_per_s=px_per_s, seg_s=[row.dur / max(1, len(row.leads)) for row in traced],
        ppm=grid.px_per_mm_x,
    )  # fmt: skip
    # the samples' columns to a fraction of a sample, where the drawing's vertices show:
    # rows on the page's common time axis pool their evidence, other rows use their own
    on_axis = [on and row.costs is not None for row, on in zip(traced, on_axis, strict=True)]
    pooled = [row.costs for row, on in zip(traced, on_axis, strict=True)
              if on and row.costs is not None]  # fmt: skip
    page_phase = (
        best_phase(np.sum(pooled, axis=0), min_modulation=_POOLED_MODULATION) if pooled else 0.0
    )
    row_of: dict[int, int] = {}  # each part's row, by the part's identity
    for i_row, (row, on, row_shift) in enumerate(zip(traced, on_axis, col_shifts, strict=True)):
        r, t0, dur, leads, xs, ys, run_xf, upper, lower, radius, zero_y, costs, hidden = row
        if not leads or xs.size < 2:
            continue
        own = 0.0 if on or costs is None else best_phase(costs)
        phase = (page_phase if on else own) * px_per_s / fs  # samples -> px
        ncol = len(leads)
        seg = dur / ncol
        for c, lead in enumerate(leads):
            if lead.lstrip("-") not in LEADS:  # an extra lead (V4R, V8 …) is not recorded
                continue
            sign = -1.0 if lead.startswith("-") else 1.0
            canonical = normalize_lead_name(lead.lstrip("-"))
            lo_x, hi_x = t0 + c * seg * px_per_s, t0 + (c + 1) * seg * px_per_s
            in_seg = (xs >= lo_x - 0.5) & (xs < hi_x + 0.5)
            # the samples are the knots of the polyline whose drawing matches the ink
            ts, mv = sample_trace(run_xf, upper, lower, x_origin=t0 + phase + row_shift[c],
                                  zero_y=zero_y,
                                  px_per_s=px_per_s, t_start=c * seg,
                                  px_per_mv=grid.px_per_mm_y * calib.gain_for(canonical),
                                  t_end=(c + 1) * seg, fs=fs, radius=radius,
                                  init=(xs[in_seg], ys[in_seg]))  # fmt: skip
            x_s = t0 + phase + row_shift[c] + ts * px_per_s
            if c == 0 and run_xf.size:
                # the samples left of the first column the trace was followed at (a pulse's
                # falling edge, a pen-down blot) were extrapolated, not drawn: unknown
                mv = np.where(x_s < float(run_xf.min()), np.nan, mv)
            # the samples under a separator bar were not seen either (its ink was erased and
            # the fit bridged it from the two leads' ends, 0.5-1 mV off where they jump)
            for h0, h1 in hidden:
                mv = np.where((x_s >= h0 - 0.5) & (x_s < h1 - 0.5), np.nan, mv)
            shift = c * seg if origin_rule == "zero" else 0.0
            cont = trace_continuity(ys[in_seg], thickness=thickness)
            yy = ys[in_seg]
            clipped = float(np.mean((yy <= r.y_lo + 1) | (yy >= r.y_hi - 2))) if yy.size else 0.0
            xi = xs[in_seg].astype(int)
            contrast = (
                float(np.mean(prob[np.clip(np.round(yy).astype(int), 0, prob.shape[0] - 1), xi]))
                if yy.size
                else 0.0
            )
            part = (ts - shift, sign * mv, cont)
            segments.setdefault(canonical, []).append(part)
            row_of[id(part)] = i_row
            old = stats.get(canonical)
            if old is None or cont > old[0]:
                stats[canonical] = (cont, contrast, clipped)
    lap("extraction")
    # a rhythm strip shows the lead whose grid segment its trace matches (its label may be
    # unreadable and the default II wrong): its samples move there
    for i, (was, now) in reassign_rhythm_strips(segments, row_leads, fs=fs, labels=labels).items():
        stats.setdefault(now, stats[was])
        if was not in segments:
            del stats[was]
        row_leads[i] = (now,)
        layout_rows[i] = dataclasses.replace(layout_rows[i], leads=(now,))
        strips = ",".join(lds[0] for lds in row_leads if len(lds) == 1)
        layout_name = layout_name.split("+")[0] + "+" + strips
    # a rhythm strip is its lead's grid segment again at the same times: the lag between the
    # two is the traces' skew between their rows, which every row takes its share of
    early = _row_skew(segments, row_of, [r.center for r in rows],
                      [tuple(x.lstrip("-") for x in lds) for lds in row_leads],
                      common_axis, fs=fs, px_per_sample=px_per_s / fs,
                      placed=placed)  # fmt: skip
    if any(abs(e) >= 0.25 for e in early):
        segments = {lead: [_moved(p, early[row_of[id(p)]], fs) if id(p) in row_of else p
                           for p in parts] for lead, parts in segments.items()}  # fmt: skip
    # and what remains of its lag puts it on its grid segment's time axis
    _align_strips(segments, fs=fs)

    signal = np.full((n_out, len(LEADS)), np.nan)
    quality: dict[str, LeadQuality] = {}
    for j, lead in enumerate(LEADS):
        parts = segments.get(lead)
        if not parts:
            quality[lead] = lead_quality(lead, None, continuity=0, contrast=0, clipped=0)
            continue
        acc = np.zeros(n_out)
        wsum = np.zeros(n_out)
        printed = []
        for ts, mv, cont in parts:
            k = np.round((ts + lead_in) * fs).astype(int)
            ok = (k >= 0) & (k < n_out) & np.isfinite(mv)
            w = max(cont, 1e-3)
            np.add.at(acc, k[ok], w * mv[ok])
            np.add.at(wsum, k[ok], w)
            printed.append(mv)
        col = np.where(wsum > 0, acc / np.maximum(wsum, 1e-12), np.nan)
        signal[:, j] = col
        cont, contrast, clipped = stats[lead]
        quality[lead] = lead_quality(lead, np.concatenate(printed), continuity=cont,
                                     contrast=contrast, clipped=clipped)  # fmt: skip
    if not np.isfinite(signal).any():
        raise DigitizationError("no ECG trace could be followed on the page; is it an ECG?")
    confident = [q.confidence for q in quality.values() if "missing" not in q.flags]
    if float(np.median(confident)) < 0.35:
        raise DigitizationError(
            "the page does not look like an ECG: the dark marks found do not form continuous "
            f"traces (median lead confidence {float(np.median(confident)):.2f}); check the file"
        )
    record = Record(signal, fs=fs, leads=LEADS, name=name)
    lap("assembly")
    rhythm = tuple(lead for leads in row_leads if len(leads) == 1 for lead in leads)
    order = "cabrera" if any("-aVR" in r for r in row_leads) else "standard"
    lay = Layout(name=layout_name, n_rows=len(rows), n_columns=max(map(len, row_leads), default=1),
                 rhythm_leads=rhythm, rows=tuple(layout_rows), lead_order=order)  # fmt: skip
    return DigitizationResult(record=record, layout=lay, calibration=calib, geometry=geometry,
                              grid=grid, quality=quality, timings=timings,
                              draw_overlay=partial(_draw_overlay, img, traces),
                              segmentation=seg_method)  # fmt: skip


def _draw_overlay(
    image: NDArray[np.uint8], traces: list[tuple[NDArray[np.float64], NDArray[np.float64]]]
) -> NDArray[np.uint8]:
    import cv2

    out = (image.astype(np.float32) * 0.6 + 255 * 0.4).astype(np.uint8)
    for i, (xs, ys) in enumerate(traces):
        if xs.size < 2:
            continue
        pts = np.stack([xs, ys], axis=1).round().astype(np.int32)[:, None, :]
        cv2.polylines(out, [pts], False, _COLOURS[i % len(_COLOURS)], 1, cv2.LINE_AA)
    return out
