"""Stage 7: extraction — the trace's ink per column, then millivolts at the samples' columns.

For each row, every column's candidate ink runs (probability > 0.5) inside the row's band are
linked by dynamic programming (the path with the smallest total vertical jump, weakly pulled to
the row's baseline), so a trace is followed through crossings with neighbouring rows
(:func:`trace_runs`). Each chosen run gives a curve point (its probability-weighted centroid;
steep runs their entry, exit and tip: :func:`runs_to_points`) for the overlay and the layout
checks, and its sub-pixel upper and lower edges (:func:`run_edges`).

The samples come from a model of the drawing (:func:`sample_trace`): plotters draw a record
as the polyline through its samples with a round pen, so the samples are fitted as the knots
of a polyline, at their exact sub-pixel columns, whose thick drawing reproduces the ink's edges
(:func:`fit_polyline`). Steep strokes then sit on their centre lines and the tips of R waves,
which are vertices, keep their height (the pen's rim, half a line beyond the vertex, is the
ink's outer edge). Where the samples are at least 3/4 px apart the drawing bends at each of
them, which fixes the time origin to a fraction of a sample (:func:`sample_phase`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "best_phase",
    "fit_polyline",
    "line_thickness",
    "pen_radius",
    "phase_costs",
    "run_edges",
    "sample_phase",
    "sample_trace",
    "trace_runs",
    "trace_to_samples",
    "track_row",
]


def _column_runs(
    ink: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """All vertical runs of True in a 2-D mask: (column, first row, last row), column-major."""
    h, w = ink.shape
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = ink.T
    d = np.diff(padded, axis=1)
    cs, rs = np.nonzero(d == 1)
    _, re_ = np.nonzero(d == -1)
    return cs, rs, re_ - 1


def line_thickness(prob: NDArray[np.float32], rows: list[tuple[int, int]]) -> float:
    """Typical vertical thickness (px) of the traces: a low percentile of vertical run lengths."""
    lengths = []
    for y0, y1 in rows:
        _, a, b = _column_runs(prob[y0:y1, ::7] > 0.5)
        lengths.append(b - a + 1)
    arr = np.concatenate(lengths) if lengths else np.empty(0)
    if arr.size == 0:
        return 2.0
    return float(max(1.0, np.percentile(arr, 30)))


def _runs(col: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    padded = np.concatenate(([False], col, [False]))
    d = np.diff(padded.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1


def _bridge_dashes(
    cs: NDArray[np.int64],
    rs: NDArray[np.int64],
    re_: NDArray[np.int64],
    *,
    gap: float,
    least: float,
    dash: float,
    pieces: int = 3,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Join the dashes of a faint steep stroke into one run per column.

    A stroke just lighter than the darkness threshold (a QRS drawn thin on a blurred photo)
    stays above it only where it crosses the grid's lines: in its column it is a chain of
    short runs about a grid line apart. Chains of runs of one column separated by gaps of
    at most ``gap`` px, spanning at least ``least`` px and holding at least ``pieces`` dashes
    (runs at most ``dash`` px tall) and a solid piece (a run at least ``gap`` px tall, the
    stroke's confident part) become one run. Isolated specks beside a flat trace make chains
    of two, the strokes of a label's letters are thicker than dashes and a dotted grid has
    no solid piece: all are left alone. ``cs, rs, re_`` are column-major runs
    (:func:`_column_runs`).
    """
    if cs.size < pieces:
        return cs, rs, re_
    link = (cs[1:] == cs[:-1]) & (rs[1:] - re_[:-1] - 1 <= gap)
    starts = np.flatnonzero(np.r_[True, ~link])
    ends = np.r_[starts[1:], cs.size] - 1
    dashes = np.cumsum(np.r_[0, re_ - rs + 1 <= dash])
    solid = np.cumsum(np.r_[0, re_ - rs + 1 >= gap])
    join = (dashes[ends + 1] - dashes[starts] >= pieces) & (solid[ends + 1] > solid[starts])
    join &= re_[ends] - rs[starts] + 1 >= least
    if not join.any():
        return cs, rs, re_
    return _merge_linked(cs, rs, re_, link & np.repeat(join, ends - starts + 1)[:-1])


def _merge_linked(
    cs: NDArray[np.int64], rs: NDArray[np.int64], re_: NDArray[np.int64], link: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The runs ``cs, rs, re_`` with each run joined to the next where ``link`` says so."""
    starts = np.flatnonzero(np.r_[True, ~link])
    ends = np.r_[starts[1:], cs.size] - 1
    return cs[starts], rs[starts], re_[ends]


def _join_faint_gaps(
    band: NDArray[np.float32],
    cs: NDArray[np.int64],
    rs: NDArray[np.int64],
    re_: NDArray[np.int64],
    *,
    gap: int = 1,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Join runs of one column that only ``gap`` px or fewer of faint ink (probability
    above 0 but not above 0.5) separate: a thin stroke drawn along the column breaks there
    at the threshold (JPEG ringing, a pixel the pen covered less), and the tracker, which
    takes one run per column, would keep only one of its pieces. ``cs, rs, re_`` are
    column-major runs (:func:`_column_runs`)."""
    if cs.size < 2:
        return cs, rs, re_
    between = rs[1:] - re_[:-1] - 1
    link = (cs[1:] == cs[:-1]) & (between <= gap)
    for k in range(gap):  # every pixel of the gap holds some ink
        row = np.minimum(re_[:-1] + 1 + k, band.shape[0] - 1)
        link &= (between <= k) | (band[row, cs[:-1]] > 0.0)
    if not link.any():
        return cs, rs, re_
    return _merge_linked(cs, rs, re_, link)


def _join_across(
    ink: NDArray[np.bool_],
    cs: NDArray[np.int64],
    rs: NDArray[np.int64],
    re_: NDArray[np.int64],
    *,
    gap: int,
    least: int,
    allowed: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Join runs of one column that at most ``gap`` px separate when ink in the column
    before or after covers every row in between: a steep stroke that wiggles across a
    column boundary (a QRS complex near its tip) steps into the next column and back, and
    its pieces in this column, one stroke in 8-connectivity, would otherwise be two runs
    of which the tracker keeps one (cutting the tip). ``cs, rs, re_`` are column-major runs
    (:func:`_column_runs`) of ``ink``; only pieces at least ``least`` px tall (a steep
    stroke's, not a flat trace's beside a speck of noise), in columns where ``allowed``
    holds (a lead name's letters touch the trace the same way), are joined."""
    if cs.size < 2:
        return cs, rs, re_
    between = rs[1:] - re_[:-1] - 1
    length = re_ - rs + 1
    link = (cs[1:] == cs[:-1]) & (between >= 1) & (between <= gap) & allowed[cs[:-1]]
    link &= (length[1:] >= least) & (length[:-1] >= least)  # both pieces of a steep stroke
    if not link.any():
        return cs, rs, re_
    w = ink.shape[1]
    side = np.zeros_like(ink)
    side[:, 1:] |= ink[:, :-1]
    side[:, :-1] |= ink[:, 1:]
    for i in np.flatnonzero(link).tolist():
        c = int(cs[i])
        if not 0 <= c < w or not side[re_[i] + 1 : rs[i + 1], c].all():
            link[i] = False
    if not link.any():
        return cs, rs, re_
    return _merge_linked(cs, rs, re_, link)


def _track_runs(
    band: NDArray[np.float32],
    *,
    y_lo: int,
    baseline: float,
    px_per_mm: float,
    max_candidates: int,
    free_ends: float | None,
    idle_cost: float,
    starts: Sequence[float] = (),
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The run of ink the trace passes through in each column of ``band`` (see
    :func:`track_row`): columns, first and last rows (band coordinates), columns without
    the trace left out. ``starts``: band columns where segments start (besides the band's
    first), where lead names and separators stand."""
    ink = band > 0.5
    n_cols = band.shape[1]
    # (a faint stroke's dashes a grid line apart, over at least 3 mm, make one run; runs a
    # faint pixel apart, one)
    cs, rs, re_ = _bridge_dashes(
        *_column_runs(ink), gap=px_per_mm, least=3.0 * px_per_mm, dash=max(2.0, 0.5 * px_per_mm)
    )
    cs, rs, re_ = _join_faint_gaps(band, cs, rs, re_)
    # lead names and separators stand from 3 mm before a segment's start to 12 mm after it
    named = np.zeros(n_cols + 1, dtype=bool)
    for x in (0.0, *starts):
        named[max(0, int(x - 3 * px_per_mm)) : max(0, int(x + 12 * px_per_mm) + 1)] = True
    cs, rs, re_ = _join_across(ink, cs, rs, re_, gap=max(2, int(round(0.5 * px_per_mm))),
                               least=max(3, int(round(px_per_mm))),
                               allowed=~named[:n_cols])  # fmt: skip
    # a thin steep stroke, anti-aliased across two columns, falls apart at the threshold
    # into runs that do not touch, yet its faint pixels still link them: the rows of a jump
    # that hold ink (any probability) in either of its two columns are not counted as gap.
    # Per column, the rows with such ink in it or in the column before, counted from the top
    faint = band > 0.0
    faint[:, 1:] |= faint[:, :-1]
    covered = np.zeros((n_cols, band.shape[0] + 1), dtype=np.int32)
    np.cumsum(faint.T, axis=1, out=covered[:, 1:])
    bounds = np.searchsorted(cs, np.arange(n_cols + 1))
    cand_lo: list[NDArray[np.int64]] = []
    cand_hi: list[NDArray[np.int64]] = []
    for j in range(n_cols):
        s, e = rs[bounds[j] : bounds[j + 1]], re_[bounds[j] : bounds[j + 1]]
        if s.size > max_candidates:
            keep = np.argsort(np.abs((s + e) / 2 + y_lo - baseline))[:max_candidates]
            keep.sort()
            s, e = s[keep], e[keep]
        cand_lo.append(s)
        cand_hi.append(e)
    # dynamic programming over columns with candidates. Every column has extra states:
    # "skipped": the path leaves the column out (at a cost), keeping the bounds of its last run,
    # so a trace is not dragged through text or a separator that covers a few columns; "not
    # started" and "ended": the path has no run yet / any more (at a smaller cost per column),
    # so it does not have to begin on whatever ink the first column holds (the next row's
    # trace, a label's remnant) nor end on the last column's.
    pull = 0.1 / px_per_mm  # cost per px away from the baseline (0.1 per mm and column)
    jump = 1.0  # cost per px of vertical gap between runs of consecutive columns
    # a faint steep stroke (a QRS complex drawn thin, scanned at low resolution or blurred)
    # breaks into tall fragments in consecutive columns: the gaps between runs at least 1 mm
    # tall cost half, so the trace climbs the stroke to its tip rather than cutting it
    tall = max(2, int(round(px_per_mm)) - 1)  # (last - first row, i.e. 1 mm tall)
    steep_gap = 0.5
    # and so does the gap between a stroke's fragment and the flat trace at its foot (its
    # upstroke too faint to keep), except where lead names (strokes as tall) and separators
    # stand
    foot_ok = (~named).tolist()
    skip = max(3.0, 0.8 * px_per_mm)  # cost per skipped column (like a 0.8-mm jump)
    idle = skip * idle_cost  # cost per column before the trace starts / after it ends
    # the path starts within the first ``free_ends`` mm and ends within the last ones (None:
    # anywhere; ink near the baseline costs less than idling, far ink more)
    window = float("inf") if free_ends is None else free_ends * px_per_mm
    # plain Python: a column has only a few candidates, so numpy's per-call overhead dominates
    lo_cols = [c.tolist() for c in cand_lo]
    hi_cols = [c.tolist() for c in cand_hi]
    inf = float("inf")
    # per column: bounds of the runs and of the skip state, costs of [runs..., skip, pre, post]
    # and back-pointers into the previous column's states
    states: list[tuple[list[int], list[int], list[float], list[int]]] = []
    cols: list[int] = []
    for j in range(n_cols):
        s_list, e_list = lo_cols[j], hi_cols[j]
        if not s_list:
            continue
        n = len(s_list)
        unary = [
            pull * abs((a + b) / 2.0 + y_lo - baseline) for a, b in zip(s_list, e_list, strict=True)
        ]
        if not states:
            cost = [*unary, inf, idle if j < window else inf, inf]
            bp = [0] * (n + 3)
            lo_all, hi_all = [*s_list, 0], [*e_list, 0]
        else:
            p_lo, p_hi, p_cost, _ = states[-1]
            m = len(p_lo)  # the previous column's runs and its skip state (with bounds)
            p_pre = p_cost[m]
            cost, bp = [], []
            for a, b, u in zip(s_list, e_list, unary, strict=True):
                best, arg = p_pre, m  # the trace starts here: no jump
                cover = covered[j]
                for i in range(m):
                    pa, pb = p_lo[i], p_hi[i]
                    g = a - pb if a > pb else (pa - b if pa > b else 0)
                    if g > 1:  # the rows in between that hold faint ink are no gap
                        g -= int(cover[a] - cover[pb + 1] if a > pb else cover[pa] - cover[b + 1])
                    if g and b - a >= tall and pb - pa >= tall:
                        g *= steep_gap  # between two fragments of a steep stroke
                    elif g and foot_ok[j] and (b - a >= tall or pb - pa >= tall):
                        g *= steep_gap  # between a stroke's fragment and its foot
                    c = p_cost[i] + jump * g
                    if c < best:
                        best, arg = c, i
                cost.append(best + u)
                bp.append(arg)
            k = min(range(m), key=p_cost.__getitem__)
            cost.append(p_cost[k] + skip)
            bp.append(k)
            cost.append(p_pre + idle if j < window else inf)
            bp.append(m)
            kk = min(range(m + 2), key=p_cost.__getitem__)  # the trace ends (or had ended)
            cost.append((p_cost[kk] + idle) if j > n_cols - 1 - window else inf)
            bp.append(kk)
            lo_all, hi_all = [*s_list, p_lo[k]], [*e_list, p_hi[k]]
        states.append((lo_all, hi_all, cost, bp))
        cols.append(j)
    empty = np.empty(0, dtype=np.int64)
    if not cols:
        return empty, empty, empty
    last = states[-1][2]
    k = min(range(len(last)), key=last.__getitem__)
    chosen: list[tuple[int, int, int]] = []
    for i in range(len(cols) - 1, -1, -1):
        if k < len(lo_cols[cols[i]]):  # a real run, not the skip/pre/post states
            chosen.append((cols[i], lo_cols[cols[i]][k], hi_cols[cols[i]][k]))
        k = states[i][3][k]
    if not chosen:
        return empty, empty, empty
    chosen.reverse()
    xs = np.array([c for c, _, _ in chosen], dtype=np.int64)
    return xs, np.array([a for _, a, _ in chosen]), np.array([b for _, _, b in chosen])


def track_row(
    prob: NDArray[np.float32],
    *,
    y_lo: int,
    y_hi: int,
    x0: int,
    x1: int,
    baseline: float,
    px_per_mm: float,
    thickness: float,
    max_candidates: int = 8,
    free_ends: float | None = None,
    idle_cost: float = 0.5,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Follow one row's trace from column ``x0`` to ``x1`` (inclusive).

    The path may begin after the first column and end before the last one, at ``idle_cost``
    times a skipped column's cost per column with ink left out, so ink that is not
    continuous with the trace (the neighbouring row's trace, a label's remnant) is not taken
    for its first or last samples. Where the trace itself is cut off (a photo or a turned
    scan that cuts a row's start), the neighbouring row's trace is all there is in the first
    columns: it lies too far from the row's baseline to be worth following (the idle cost
    equals the pull of ink about 16 mm away at 100 DPI, 24 mm at 150 DPI). ``free_ends``
    (mm) limits how far the path may begin or end from the row's ends (None: anywhere); 0
    makes it take the first and last columns' ink.

    Returns
    -------
    x, y : ndarray
        Column positions and sub-pixel trace centres (image rows); columns without ink are
        absent.
    """
    xs, lo, hi = trace_runs(prob, y_lo=y_lo, y_hi=y_hi, x0=x0, x1=x1, baseline=baseline,
                            px_per_mm=px_per_mm, max_candidates=max_candidates,
                            free_ends=free_ends, idle_cost=idle_cost)  # fmt: skip
    return runs_to_points(prob, xs, lo, hi, thickness=thickness)


def trace_runs(
    prob: NDArray[np.float32],
    *,
    y_lo: int,
    y_hi: int,
    x0: int,
    x1: int,
    baseline: float,
    px_per_mm: float,
    max_candidates: int = 8,
    free_ends: float | None = None,
    idle_cost: float = 0.5,
    bars: Sequence[float] = (),
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The ink run the trace passes through in each column (see :func:`track_row`).

    Where the trace crosses a thin vertical bar (a lead separator's tick) the bar's runs are
    replaced by the trace's own course (:func:`_cross_bars`); ``bars`` are the columns
    where separators are expected (the segments' boundaries), where a bar that only touches
    the trace at one end, or spans its jump from one segment to the next, is taken for one
    too.

    Returns
    -------
    x, first, last : ndarray of int
        Columns, and the first and last image rows of the run in each; columns without the
        trace are absent.
    """
    band = prob[y_lo:y_hi, x0 : x1 + 1]
    xs, lo, hi = _track_runs(band, y_lo=y_lo, baseline=baseline, px_per_mm=px_per_mm,
                             max_candidates=max_candidates, free_ends=free_ends,
                             idle_cost=idle_cost, starts=[b - x0 for b in bars])  # fmt: skip
    xs, lo, hi = _fill_skipped(band, xs, lo, hi, px_per_mm=px_per_mm,
                               starts=[b - x0 for b in bars])  # fmt: skip
    lo, hi = _fill_spans(band, xs, lo, hi, px_per_mm=px_per_mm)
    xs, lo, hi = _cross_bars(xs, lo, hi, px_per_mm=px_per_mm,
                             bars=[b - x0 for b in bars])  # fmt: skip
    return xs + x0, lo + y_lo, hi + y_lo


def _column_runs_joined(
    band: NDArray[np.float32], c: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Runs of ink (probability > 0.5) in column ``c`` of ``band``, those a faint pixel
    apart joined, as the tracker sees them (:func:`_join_faint_gaps`)."""
    starts, ends = _runs(band[:, c] > 0.5)
    _, starts, ends = _join_faint_gaps(band, np.full(starts.size, c, np.int64), starts, ends)
    return starts, ends


def _fill_skipped(
    band: NDArray[np.float32],
    xs: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    *,
    px_per_mm: float,
    starts: Sequence[float] = (),
    passes: int = 3,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Give back the columns next to a steep stroke that the tracker skipped.

    At the tip of a narrow spike the stroke's ink falls apart into the tip (far from the
    baseline) and faint fragments of its strokes (nearer it): the tracker, pulled to the
    baseline and charged for the jumps to the tip and back, skips the tip's column and cuts
    the spike. Where the path leaves out the column right before or after a chosen run at
    least 1 mm tall (inside a steep stroke), that column's tallest run of ink at least
    1 mm tall (runs a faint pixel apart joined) within 3/4 mm of the steep run (rows) is
    put back, and so on from the runs put back, at most ``passes`` columns on either side.
    Not where lead names and separators stand (from 3 mm before a segment's start,
    ``starts`` or the band's first column, to 12 mm after it), whose letters are strokes
    as tall. ``xs, lo, hi`` are the chosen runs (band coordinates); the runs with the
    restored columns are returned.
    """
    if xs.size < 2:
        return xs, lo, hi
    n_cols = band.shape[1]
    tall = max(2, int(round(px_per_mm)) - 1)  # (last - first row, i.e. 1 mm tall)
    near = max(1, int(round(0.75 * px_per_mm)))
    named = np.zeros(n_cols + 1, dtype=bool)
    for x in (0.0, *starts):
        named[max(0, int(x - 3 * px_per_mm)) : max(0, int(x + 12 * px_per_mm) + 1)] = True
    chosen = set(xs.tolist())
    add: dict[int, tuple[int, int]] = {}
    # the steep runs, then those put back (a stroke's skipped columns are climbed one by
    # one, at most ``passes`` on either side)
    front = [(int(x), int(a), int(b)) for x, a, b in zip(xs, lo, hi, strict=True) if b - a >= tall]
    for _ in range(passes):
        new: list[tuple[int, int, int]] = []
        for x, a, b in front:
            for c in (x - 1, x + 1):
                if c < 0 or c >= n_cols or c in chosen or c in add or named[c]:
                    continue
                rs, re_ = _column_runs_joined(band, c)
                best = -1
                for s, e in zip(rs.tolist(), re_.tolist(), strict=True):
                    gap = s - b - 1 if s > b else (a - e - 1 if a > e else 0)
                    if e - s >= tall and gap <= near and e - s > best:
                        best = e - s
                        add[c] = (s, e)
                if best >= 0:
                    new.append((c, *add[c]))
        if not new:
            break
        front = new
    if not add:
        return xs, lo, hi
    cols = np.fromiter(add, dtype=np.int64, count=len(add))
    new_lo = np.array([add[c][0] for c in cols.tolist()], dtype=np.int64)
    new_hi = np.array([add[c][1] for c in cols.tolist()], dtype=np.int64)
    ox = np.concatenate((xs, cols))
    order = np.argsort(ox, kind="stable")
    return ox[order], np.concatenate((lo, new_lo))[order], np.concatenate((hi, new_hi))[order]


def _fill_spans(
    band: NDArray[np.float32],
    xs: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    *,
    px_per_mm: float,
    passes: int = 3,
    reach: int = 3,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Give a column inside a steep stroke the stroke's run, not a fragment of it.

    Between the up- and downstroke of a spike the ink of the tip columns falls apart on a
    blurred page into a tall run and specks below it (a grid line's piece between the two
    strokes). The tracker's jumps are gaps between runs, and every run that the neighbours'
    tall runs overlap costs no jump, so the speck nearer the baseline wins and the tip is
    cut. Where a column's two neighbours span at least 1 mm together, its run is replaced by
    the longest run of ink (probability > 0.5) inside that span, taken whole (a tip column's
    run reaches beyond its neighbours', which is the tip), when that one is taller. A spike
    a few columns wide loses several neighbouring columns this way: each pass gives the
    next column inwards the stroke's runs beside it, for at most ``passes`` passes; after
    the first, only columns with a run at least 1 mm tall within ``reach`` columns on both
    sides (between the spike's strokes), so that a bar or a letter beside a flat trace does
    not spread into it column by column (real scans' leads changed where it did). ``xs,
    lo, hi`` are the chosen runs (band coordinates); the new first and last rows are
    returned.
    """
    n = xs.size
    if n < 3:
        return lo, hi
    adjacent = (xs[2:] - xs[1:-1] == 1) & (xs[1:-1] - xs[:-2] == 1)
    for p in range(passes):
        top = np.minimum(lo[:-2], lo[2:])
        bottom = np.maximum(hi[:-2], hi[2:])
        own = hi[1:-1] - lo[1:-1] + 1
        check = adjacent & (bottom - top + 1 >= px_per_mm) & (bottom - top + 1 > 2 * own)
        if p:  # later passes: only between stroke runs, not on along a flat trace
            tall = np.concatenate(([0], np.cumsum(hi - lo + 1 >= px_per_mm)))
            j = np.arange(1, n - 1)  # the interior runs; tall[k]: tall runs before run k
            left = tall[j] - tall[np.maximum(j - reach, 0)]
            right = tall[np.minimum(j + 1 + reach, n)] - tall[j + 1]
            check &= (left > 0) & (right > 0)
        idx = np.flatnonzero(check) + 1
        if idx.size == 0:
            break
        new_lo, new_hi = lo.copy(), hi.copy()
        for i in idx.tolist():
            a, b = int(top[i - 1]), int(bottom[i - 1])
            ink = band[:, xs[i]] > 0.5
            starts, ends = _runs(ink[a : b + 1])
            if starts.size == 0:
                continue
            k = int(np.argmax(ends - starts))
            if ends[k] - starts[k] + 1 <= hi[i] - lo[i] + 1:
                continue
            # the whole run, also where it leaves the span
            s, e = a + int(starts[k]), a + int(ends[k])
            while s > 0 and ink[s - 1]:
                s -= 1
            while e + 1 < ink.size and ink[e + 1]:
                e += 1
            new_lo[i], new_hi[i] = s, e
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    return lo, hi


def _cross_bars(
    xs: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    *,
    px_per_mm: float,
    bars: Sequence[float] = (),
    least: float = 3.0,
    width: float = 0.6,
    margin: float = 0.75,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Cut the trace's runs where it crosses a thin vertical bar (a lead separator's tick).

    A bar drawn across the trace merges with it into one tall run per column, which the
    tracker takes and the fit reads as a steep stroke to the bar's ends. Its signature: a
    block of at most ``width`` mm (and at least 3 columns allowed) of runs at least
    ``least`` mm tall with the same first and last rows (a straight vertical bar), while the
    trace on both sides (the nearest chosen runs within 1 mm) is flat (runs under 1 mm) and
    enters and leaves well inside the bar, ``margin`` mm or more from both of its ends. A
    steep stroke's runs shift from column to column and a spike's neighbours join it at its
    foot, so neither is cut. The block's runs are replaced by the trace's course across
    it, interpolated between the two sides.
    """
    n = xs.size
    if n < 3:
        return xs, lo, hi
    tall = (hi - lo + 1) >= least * px_per_mm
    if not tall.any():
        return xs, lo, hi
    lo, hi = lo.copy(), hi.copy()
    wide = max(3, int(width * px_per_mm))
    reach = max(2.0, px_per_mm)
    slack = max(2, int(round(0.25 * px_per_mm)))
    for a, last in zip(*_runs(tall), strict=True):  # block of tall runs [a, b)
        b = int(last) + 1
        if xs[b - 1] - xs[a] + 1 > wide or xs[b - 1] - xs[a] != b - 1 - a:
            continue
        top, bottom = int(np.median(lo[a:b])), int(np.median(hi[a:b]))
        if np.any(np.abs(lo[a:b] - top) > slack) or np.any(np.abs(hi[a:b] - bottom) > slack):
            continue  # not straight: a steep stroke
        if a == 0 or b == n or xs[a] - xs[a - 1] > reach or xs[b] - xs[b - 1] > reach:
            continue  # the trace does not go on at both sides
        sides = (a - 1, b)
        if any(hi[i] - lo[i] + 1 >= px_per_mm for i in sides):
            continue  # the trace is steep beside it: a stroke of the trace itself
        if any(abs(xs[a] - x) <= wide and abs(xs[b - 1] - x) <= wide for x in bars):
            # a separator: the segment after it starts at it, so the trace there is the
            # one that leaves it to the right
            lo[a:b], hi[a:b] = lo[b], hi[b]
            continue
        inner = margin * px_per_mm
        if all(lo[i] >= top + inner and hi[i] <= bottom - inner for i in sides):
            f = (xs[a:b] - xs[a - 1]) / float(xs[b] - xs[a - 1])
            lo[a:b] = np.round(lo[a - 1] + f * (lo[b] - lo[a - 1])).astype(np.int64)
            hi[a:b] = np.round(hi[a - 1] + f * (hi[b] - hi[a - 1])).astype(np.int64)
    return xs, lo, hi


def _run_pixels(
    prob: NDArray[np.float32], xs: NDArray[np.int64], lo: NDArray[np.int64], hi: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The pixels of the runs ``lo[i]..hi[i]`` in columns ``xs[i]``, run after run: each
    pixel's run, its row and its value in ``prob``."""
    length = np.maximum(hi - lo + 1, 0)
    run = np.repeat(np.arange(xs.size), length)
    rows = np.arange(run.size) - np.repeat(np.cumsum(length) - length, length)
    rows += np.repeat(lo, length)
    return run, rows, prob[rows, np.repeat(xs, length)].astype(np.float64)


def runs_to_points(
    prob: NDArray[np.float32],
    xs: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    *,
    thickness: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Curve points of a traced row from its runs: one centroid per column, steep columns
    split into their entry and exit (and spike tips restored)."""
    if xs.size == 0:
        return np.empty(0), np.empty(0)
    # probability-weighted centroid of each chosen run
    run, rows, w = _run_pixels(prob, xs, lo, hi)
    mass = np.bincount(run, w, xs.size)
    centres = lo + np.bincount(run, w * (rows - lo[run]), xs.size) / np.maximum(mass, 1e-9)
    fx = xs.astype(np.float64)
    flo, fhi = lo.astype(np.float64), hi.astype(np.float64)
    px, py = _column_points(fx, flo, fhi, centres, thickness)
    return _restore_tips(fx, flo, fhi, px, py, thickness)


def _restore_tips(
    xs: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    px: NDArray[np.float64],
    py: NDArray[np.float64],
    thickness: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Give back the tips of spikes that the column points cut short.

    Near a sharp peak the thick line covers several columns up to the tip, so no single
    column looks like a spike and the points pass below it. The tip is where the ink's end
    (less half a line) is extreme over a window as wide as the line (plus a column); where
    the points fall short of it by more than a pixel, a point at the tip is added, in the
    middle of the columns that reach it.
    """
    from scipy.ndimage import minimum_filter1d

    if xs.size < 3:
        return px, py
    half = (thickness - 1.0) / 2.0
    size = 2 * (int(np.ceil(thickness)) + 1) + 1
    add_x: list[float] = []
    add_y: list[float] = []
    for ends, sign in ((lo + half, 1.0), (hi - half, -1.0)):
        v = sign * ends  # tips are minima of v
        local = minimum_filter1d(v, size=size, mode="nearest")
        at_tip = v <= local + 0.25
        # consecutive columns at the tip form one plateau
        edges = np.flatnonzero(np.diff(np.concatenate(([0], at_tip.astype(np.int8), [0]))))
        for i, j in zip(edges[::2], edges[1::2], strict=True):
            tip = float(v[i:j].min())
            reach = slice(i, j)
            xa, xb = float(xs[i]) - 0.5, float(xs[j - 1]) + 0.5
            near = (px >= xa) & (px <= xb)
            if not near.any():
                continue
            if float((sign * py[near]).min()) <= tip + 1.0:
                continue  # the points reach it already (flat trace, rounded peak)
            add_x.append(float(np.mean(xs[reach][v[reach] <= tip + 0.5])))
            add_y.append(sign * tip)
    if not add_x:
        return px, py
    ox = np.concatenate((px, add_x))
    oy = np.concatenate((py, add_y))
    order = np.argsort(ox, kind="stable")
    return ox[order], oy[order]


def _column_points(
    xs: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    centres: NDArray[np.float64],
    thickness: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Turn each column's ink run into one to three curve points.

    A run no taller than the line is one point (its centroid). A taller run is the curve
    passing steeply through the column: it enters at the end nearer the previous column and
    leaves at the end nearer the next one (two points), or, when both neighbours lie on the
    same side, it is a spike whose tip is the far end (three points). This keeps QRS peaks at
    their full height and slopes at their true steepness.
    """
    half = thickness / 2.0
    a = lo + half
    b = hi - half
    tall = (b - a) > max(1.0, 0.75 * thickness)
    if xs.size < 3 or not tall.any():
        return xs, centres
    prev = np.concatenate(([centres[0]], centres[:-1]))
    nxt = np.concatenate((centres[1:], [centres[-1]]))
    entry = np.clip(prev, a, b)
    exit_ = np.clip(nxt, a, b)
    # where the ends of a steep run lie in x. Geometrically, a line of half-width h and slope
    # s (px per column) reaches h (sqrt(1 + s^2) - 1) / s beyond the column's edges once the
    # vertical half-thickness is taken off the run's ends (0.5 + h from the centre when
    # steep); the ink kept by the 0.5 threshold falls short of that, and half of it is what
    # matches ECG-Image-Kit's pages best (+2.3 dB over fixed offsets at 200 DPI)
    slope = np.maximum(b - a, 1e-6)
    reach = 0.5 * np.minimum(0.5 + half * (np.sqrt(1.0 + slope**2) - 1.0) / slope, 0.5 + half)
    out_x: list[float] = []
    out_y: list[float] = []
    for i in range(xs.size):
        x = float(xs[i])
        if not tall[i]:
            out_x.append(x)
            out_y.append(float(centres[i]))
            continue
        e0, e1 = float(entry[i]), float(exit_[i])
        d = float(reach[i])
        mid = (a[i] + b[i]) / 2.0
        if e0 < mid and e1 < mid:  # spike downwards on the page (tip at b)
            out_x += [x - d, x, x + d]
            out_y += [e0, float(b[i]), e1]
        elif e0 > mid and e1 > mid:  # spike upwards (tip at a)
            out_x += [x - d, x, x + d]
            out_y += [e0, float(a[i]), e1]
        else:
            out_x += [x - d, x + d]
            out_y += [e0, e1]
    ox, oy = np.asarray(out_x), np.asarray(out_y)
    # neighbouring steep columns overlap in x: order the points along x
    order = np.argsort(ox, kind="stable")
    return ox[order], oy[order]


def trace_to_samples(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    x_origin: float,
    zero_y: float,
    px_per_s: float,
    px_per_mv: float,
    t_start: float,
    t_end: float,
    fs: float,
    max_gap_s: float = 0.08,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sample a traced curve at ``fs`` between ``t_start`` and ``t_end`` (row time, s).

    Returns the sample times (row time) and values in mV; gaps longer than ``max_gap_s`` and
    times outside the trace are NaN.
    """
    k0 = int(np.ceil(t_start * fs - 1e-9))
    k1 = int(np.ceil(t_end * fs - 1e-9))
    t = np.arange(k0, k1) / fs
    out = np.full(t.size, np.nan)
    if x.size < 2:
        return t, out
    tx = (x - x_origin) / px_per_s
    mv = (zero_y - y) / px_per_mv
    v = np.interp(t, tx, mv)  # holds the end values beyond the first/last column
    # NaN where the nearest traced column is too far away (gaps, unprinted parts)
    idx = np.clip(np.searchsorted(tx, t), 1, tx.size - 1)
    left, right = tx[idx - 1], tx[idx]
    inside = (t >= tx[0]) & (t <= tx[-1])
    span = np.where(inside, right - left, np.minimum(np.abs(t - tx[0]), np.abs(t - tx[-1])))
    v[span > max_gap_s] = np.nan
    out[:] = v
    return t, out


def run_edges(
    prob: NDArray[np.float32], xs: NDArray[np.int64], lo: NDArray[np.int64], hi: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sub-pixel upper and lower edges of each chosen run (band rows).

    The ink in a column is treated as one solid interval: its mass (the probabilities summed
    over the run and one pixel either side) is the interval's length and its centroid the
    interval's middle, so the edges are ``centroid -/+ mass / 2``. Anti-aliased edge pixels
    move the edges by fractions of a pixel.
    """
    if xs.size == 0:
        return np.empty(0), np.empty(0)
    h = prob.shape[0]
    lo_, hi_ = lo.astype(np.int64), hi.astype(np.int64)
    first = max(0, int(np.min(lo_)) - 1)  # rows are counted from here (fewer digits lost)
    run, rows, vals = _run_pixels(prob, xs, lo_, hi_)
    m = np.asarray(np.bincount(run, vals, xs.size), np.float64)  # (weighted: float64)
    c1 = np.asarray(np.bincount(run, vals * (rows - first), xs.size), np.float64)
    # the neighbours count only as the run's anti-aliased fringe
    above = lo_ > 0
    below = hi_ + 1 < h
    f = np.where(above, np.minimum(prob[np.maximum(lo_ - 1, 0), xs], 0.5), 0.0)
    g = np.where(below, np.minimum(prob[np.minimum(hi_ + 1, h - 1), xs], 0.5), 0.0)
    m = m + f + g
    c1 = c1 + f * (lo_ - first - 1) + g * (hi_ - first + 1)
    c = first + c1 / np.maximum(m, 1e-9)
    top = c - m / 2.0
    bot = c + m / 2.0
    return top, bot


def _segments(
    x: NDArray[np.float64], knots_x: NDArray[np.float64], r: float
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """The polyline's segments that can hold the edge of its drawing at each ``x``.

    Returns ``k`` (rows: the ``x``, columns: the segments ``k`` to ``k + 1`` that reach
    within ``r`` of it, clipped to the knots), ``x`` less each segment's left knot, each
    segment's width, and the segment an edge out of every segment's reach is charged to.
    They depend on the knots' columns only, so :func:`fit_polyline` finds them once.
    """
    n = knots_x.size
    d = float(knots_x[1] - knots_x[0])
    reach = int(np.ceil(r / d))  # segments farther than r from x never hold its edge
    base = np.floor((x - knots_x[0]) / d).astype(np.int64)
    k = np.clip(base[:, None] + np.arange(-reach, reach + 1)[None, :], 0, n - 2)
    x1 = knots_x[k]
    spare = np.clip(base - reach - 1, 0, n - 2)
    return k, x[:, None] - x1, knots_x[k + 1] - x1, spare


def _rims(
    x: NDArray[np.float64],
    knots_x: NDArray[np.float64],
    segments: tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
    knots_y: NDArray[np.float64],
    r: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64],
           NDArray[np.int64], NDArray[np.float64]]:  # fmt: skip
    """Upper and lower edges at ``x`` of the polyline through the knots drawn with a round
    pen of radius ``r``, with each edge's segment and weight of its right knot.

    A segment's edge at ``x`` is its nearest point to the pen's rim: the point of the
    segment at ``u = x -/+ s r / sqrt(1 + s^2)`` (slope ``s``), clipped to the segment (its
    round end), less/plus the rim's height there. ``segments`` is :func:`_segments`' table;
    an ``x`` out of every segment's reach gets an infinite edge.
    """
    k, rel, dx, spare = segments
    # each segment's height, slope and lean s r / sqrt(1 + s^2), once per segment (the
    # table repeats segments many times), then looked up
    seg_s = np.diff(knots_y) / np.diff(knots_x)
    seg_lean = seg_s * seg_s
    seg_lean += 1.0
    np.sqrt(seg_lean, out=seg_lean)
    np.divide(seg_s, seg_lean, out=seg_lean)
    seg_lean *= r
    y1 = knots_y[k]
    s = seg_s[k]
    lean = seg_lean[k]
    rows = np.arange(0, k.size, k.shape[1])  # flat index of each row's first entry
    edges = []
    for sign in (-1.0, 1.0):
        v = rel - lean if sign < 0 else rel + lean
        np.maximum(v, 0.0, out=v)
        np.minimum(v, dx, out=v)  # the rim point's offset from the segment's left knot
        du = v - rel  # ... and from x
        far = np.abs(du) > r
        val = s * v
        val += y1
        np.multiply(du, du, out=du)
        np.subtract(r * r, du, out=du)
        np.maximum(du, 0.0, out=du)
        np.sqrt(du, out=du)  # the rim's height
        if sign < 0:
            val -= du
            np.putmask(val, far, np.inf)
            at = rows + np.argmin(val, axis=1)
        else:
            val += du
            np.putmask(val, far, -np.inf)
            at = rows + np.argmax(val, axis=1)
        edge, kk = val.ravel()[at], k.ravel()[at]
        w = v.ravel()[at] / dx.ravel()[at]
        lost = np.flatnonzero(~np.isfinite(edge))
        if lost.size:  # no segment in reach: charged to the spare one (its weight is kept)
            k0 = spare[lost]
            x1, d0 = knots_x[k0], knots_x[k0 + 1] - knots_x[k0]
            s0 = (knots_y[k0 + 1] - knots_y[k0]) / d0
            u0 = np.clip(x[lost] + sign * s0 * r / np.sqrt(1.0 + s0 * s0), x1, x1 + d0)
            kk[lost], w[lost] = k0, (u0 - x1) / d0
        edges.append((edge, kk, w))
    (top, kt, wt), (bot, kb, wb) = edges
    return top, bot, kt, wt, kb, wb


def _envelopes(
    x: NDArray[np.float64], knots_x: NDArray[np.float64], knots_y: NDArray[np.float64], r: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64],
           NDArray[np.int64], NDArray[np.float64]]:  # fmt: skip
    """:func:`_rims` of the polyline through the knots at ``x`` (segments found afresh)."""
    return _rims(x, knots_x, _segments(x, knots_x, r), knots_y, r)


#: Where in each column (px from its centre) the drawn line's edges are evaluated.
_SUB = np.array([-0.375, -0.125, 0.125, 0.375])


def _sub_positions(xs: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The sub-positions of the columns ``xs`` (flat) and the column of each."""
    return (xs[:, None] + _SUB[None, :]).ravel(), np.repeat(np.arange(xs.size), _SUB.size)


def _edge_residuals(
    t: NDArray[np.float64],
    b: NDArray[np.float64],
    col: NDArray[np.int64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The model's upper and lower edges (``t``, ``b`` at the sub-positions of the columns
    ``col``), averaged per column, less the ink's: upper residuals, then lower ones."""
    m = top.size
    per_col = np.bincount(col, minlength=m)
    return np.concatenate((np.bincount(col, t, m) / per_col - top,
                           np.bincount(col, b, m) / per_col - bot))  # fmt: skip


def _second_difference_bands(sizes: Sequence[int], smooth: float) -> dict[int, NDArray[np.float64]]:
    """Diagonals ``k = 0, 1, 2`` of the block-diagonal ``smooth * D2' D2``, one block per
    entry of ``sizes`` (in order; ``D2``: second differences of that many values), entry
    ``j`` of diagonal ``k`` being the matrix's ``(j, j + k)``."""
    total = sum(sizes)
    bands = {0: np.zeros(total), 1: np.zeros(max(total - 1, 0)), 2: np.zeros(max(total - 2, 0))}
    at = 0
    for size in sizes:
        main = bands[0][at : at + size]
        main[: size - 2] += 1.0
        main[1 : size - 1] += 4.0
        main[2:] += 1.0
        first = bands[1][at : at + size - 1]
        first[: size - 2] -= 2.0
        first[1:] -= 2.0
        bands[2][at : at + size - 2] = 1.0
        at += size
    return {k: smooth * band for k, band in bands.items()}


def _banded_product(
    bands: dict[int, NDArray[np.float64]], y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``A @ y`` for the symmetric matrix ``A`` given by its upper diagonals ``bands``."""
    out = bands[0] * y
    for k, band in bands.items():
        if k:
            out[: y.size - k] += band * y[k:]
            out[k:] += band * y[: y.size - k]
    return out


def _normal_bands(
    cols: NDArray[np.int64], vals: NDArray[np.float64], w: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """Upper banded storage (as :func:`scipy.linalg.solveh_banded` takes it) of ``J' W J``
    for the ``n``-column Jacobian whose row ``i`` holds ``vals[i]`` at columns ``cols[i]``
    (repeats add up), with row weights ``w``.

    Each row is first gathered into a dense window from its smallest column on; the band at
    offset ``d`` then sums the products of window entries ``d`` apart.
    """
    start = cols.min(axis=1)
    rel = cols - start[:, None]
    span = rel.max(axis=1)
    u = max(int(span.max()), 2)
    out = np.zeros((u + 1, n))
    # most rows span a few knots: those get a narrow window, the rest (steep strokes) a wide one
    narrow = span < 4
    for group in (narrow, ~narrow):
        if not group.any():
            continue
        first, offs, wg = start[group], rel[group], w[group]
        width = int(offs.max()) + 1
        rows = first.size
        idx = (np.arange(rows)[:, None] * width + offs).ravel()
        dense = np.bincount(idx, vals[group].ravel(), rows * width).reshape(rows, width)
        weighted = dense * wg[:, None]
        # every pair of window entries (j, j + d) at once, into band d at column first + j + d
        pair_j, pair_d = _window_pairs(width)
        right = pair_j + pair_d
        prod = weighted[:, pair_j] * dense[:, right]
        at = (u - pair_d) * (n + width) + right + first[:, None]
        sums = np.bincount(at.ravel(), prod.ravel(), (u + 1) * (n + width))
        out += sums.reshape(u + 1, n + width)[:, :n]
    return out


@functools.lru_cache(maxsize=32)
def _window_pairs(width: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The pairs of entries ``(j, j + d)`` of a window of ``width``, ordered by ``d`` then
    ``j``: their ``j`` and ``d``."""
    d = np.concatenate([np.full(width - k, k) for k in range(width)])
    j = np.concatenate([np.arange(width - k) for k in range(width)])
    return j, d


def fit_polyline(
    xs: NDArray[np.float64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    knots_x: NDArray[np.float64],
    *,
    radius: float,
    init: NDArray[np.float64],
    iterations: int = 6,
    smooth: float = 1e-3,
) -> NDArray[np.float64]:
    """Heights of the polyline through ``knots_x`` whose thick drawing best matches the ink.

    Each column ``xs`` holds the drawn line's upper and lower edges (``top``, ``bot``, image
    rows); the model draws the polyline through the knots with a round pen of ``radius``
    (half the line's width) and predicts both edges averaged across the column's width.
    Gauss-Newton with Huber weights from ``init`` (the knots' starting heights), a weak
    second-difference penalty (``smooth``, per px²) keeping knots without ink in reach
    defined. Near a peak the upper edge (or lower, for a trough) is the pen's rim around the
    knot itself, so tips come out at their full height; on steep strokes both edges are the
    offset lines, so the knots sit on the stroke's centre line.
    """
    y = init.astype(np.float64).copy()
    if knots_x.size < 3 or xs.size == 0:
        return y
    xq, col = _sub_positions(xs)
    segments = _segments(xq, knots_x, radius)
    return _gauss_newton(xq, col, top, bot, knots_x, segments, y, sizes=[knots_x.size],
                         radius=radius, iterations=iterations, smooth=smooth)  # fmt: skip


def _gauss_newton(
    xq: NDArray[np.float64],
    col: NDArray[np.int64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    knots_x: NDArray[np.float64],
    segments: tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
    y: NDArray[np.float64],
    *,
    sizes: Sequence[int],
    radius: float,
    iterations: int,
    smooth: float,
) -> NDArray[np.float64]:
    """:func:`fit_polyline`'s iterations on sub-positions ``xq`` (of columns ``col``) with
    their :func:`_segments`, updating ``y`` in place; the knots may form independent
    polylines of ``sizes`` knots each (solved together, each stopping on its own)."""
    from scipy.linalg import LinAlgError, solve_banded
    from scipy.linalg.lapack import dpbsv

    n = knots_x.size
    m = top.size
    reg_bands = _second_difference_bands(sizes, smooth)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    block = np.repeat(np.arange(len(sizes)), sizes)  # the polyline of each knot
    active = np.ones(len(sizes), dtype=bool)
    scale = 0.5 * max(radius, 0.5)
    for _ in range(iterations):
        t, b, kt, wt, kb, wb = _rims(xq, knots_x, segments, y, radius)
        res = _edge_residuals(t, b, col, top, bot)
        res[~np.isfinite(res)] = 0.0  # a column out of the knots' reach says nothing
        a = np.abs(res)
        w = np.where(a <= scale * 4, 1.0, scale * 4 / np.maximum(a, 1e-12))
        # Jacobian: each residual (a column's edge, averaged over its sub-positions) moves
        # with the two knots of each sub-position's segment; as (residual, entry) tables
        cols = np.concatenate((
            np.stack((kt, kt + 1), axis=-1).reshape(m, -1),
            np.stack((kb, kb + 1), axis=-1).reshape(m, -1),
        ))  # fmt: skip
        vals = np.concatenate((
            np.stack((1 - wt, wt), axis=-1).reshape(m, -1),
            np.stack((1 - wb, wb), axis=-1).reshape(m, -1),
        )) / _SUB.size  # fmt: skip
        # normal equations J'WJ + R in banded storage, solved by banded Cholesky
        upper = _normal_bands(cols, vals, w, n)
        u = upper.shape[0] - 1
        for k, band in reg_bands.items():
            upper[u - k, k:] += band
        rhs: NDArray[np.float64] = -np.bincount(
            cols.ravel(), (w[:, None] * vals * res[:, None]).ravel(), n
        ) - _banded_product(reg_bands, y)
        # banded Cholesky (LAPACK's pbsv, as scipy's solveh_banded calls it, without the
        # wrapper's checks: this runs a few hundred times per page)
        _, step, info = dpbsv(upper, rhs, lower=0)
        if info < 0:
            raise ValueError(f"illegal value in argument {-info} of pbsv")
        if info > 0:  # not positive definite (numerically): LU with pivoting
            ab = np.zeros((2 * u + 1, n))
            ab[: u + 1] = upper
            for k in range(1, u + 1):  # the lower bands mirror the upper ones
                ab[u + k, : n - k] = upper[u - k, k:]
            try:
                step = solve_banded((u, u), ab, rhs, check_finite=False)
            except LinAlgError:
                break
        step[~active[block]] = 0.0
        y += step
        active &= np.maximum.reduceat(np.abs(step), offsets) >= 1e-3
        if not active.any():
            break
    return y


def _fit_many(
    parts: Sequence[tuple[NDArray[np.float64], ...]],
    *,
    radius: float,
    iterations: int,
    smooth: float,
) -> NDArray[np.float64]:
    """:func:`_misfit` of :func:`fit_polyline` for each of several independent problems
    ``(xs, top, bot, knots_x, init)`` (each with at least 3 knots and a column), all solved
    as one block-diagonal system: one call's overhead instead of one per problem."""
    if not parts:
        return np.empty(0)
    tables, xqs, cols, owner = [], [], [], []
    n_at = m_at = 0
    for i, (xs, _, _, knots_x, _) in enumerate(parts):
        xq, col = _sub_positions(xs)
        k, rel, dx, spare = _segments(xq, knots_x, radius)
        tables.append((k + n_at, rel, dx, spare + n_at))
        xqs.append(xq)
        cols.append(col + m_at)
        owner.append(np.full(xs.size, i))
        n_at += knots_x.size
        m_at += xs.size
    width = max(t[0].shape[1] for t in tables)
    # equal widths (repeating a problem's last segment changes none of its edges)
    padded = [
        [a if a.shape[1] == width else np.pad(a, ((0, 0), (0, width - a.shape[1])), mode="edge")
         for a in t[:3]]
        for t in tables
    ]  # fmt: skip
    segments = (
        np.concatenate([t[0] for t in padded]),
        np.concatenate([t[1] for t in padded]),
        np.concatenate([t[2] for t in padded]),
        np.concatenate([t[3] for t in tables]),
    )
    xq, col = np.concatenate(xqs), np.concatenate(cols)
    top, bot = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
    knots_x = np.concatenate([p[3] for p in parts])
    y = np.concatenate([p[4] for p in parts]).astype(np.float64)
    y = _gauss_newton(xq, col, top, bot, knots_x, segments, y, sizes=[p[3].size for p in parts],
                      radius=radius, iterations=iterations, smooth=smooth)  # fmt: skip
    t, b, *_ = _rims(xq, knots_x, segments, y, radius)
    res = _edge_residuals(t, b, col, top, bot)
    who = np.tile(np.concatenate(owner), 2)
    ok = np.isfinite(res)
    total = np.bincount(who[ok], _huber(res[ok], radius), len(parts))
    count = np.bincount(who[ok], minlength=len(parts))
    return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def _misfit(
    xs: NDArray[np.float64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    knots_x: NDArray[np.float64],
    y: NDArray[np.float64],
    radius: float,
) -> float:
    """Mean robust (Huber) misfit per edge of the polyline's drawing to the ink's edges."""
    xq, col = _sub_positions(xs)
    t, b, *_ = _envelopes(xq, knots_x, y, radius)
    res = _edge_residuals(t, b, col, top, bot)
    res = res[np.isfinite(res)]
    if res.size == 0:
        return float("inf")
    return float(np.mean(_huber(res, radius)))


def _huber(res: NDArray[np.float64], radius: float) -> NDArray[np.float64]:
    """Robust (Huber) misfit of each edge residual: quadratic up to a pen's width (twice
    ``radius``, at least 1 px), linear beyond."""
    c = 2.0 * max(radius, 0.5)
    a = np.abs(res)
    return np.where(a <= c, a * a, c * (2 * a - c))


def phase_costs(
    xs: NDArray[np.float64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    *,
    x_origin: float,
    px_per_s: float,
    fs: float,
    radius: float,
    init: tuple[NDArray[np.float64], NDArray[np.float64]],
    windows: int = 6,
    half: int = 10,
    smooth: float = 0.012,
    iterations: int = 2,
) -> NDArray[np.float64] | None:
    """Misfit of the knots' drawing to the ink at the origin shifts ``_SHIFTS`` (sixths of
    a sample, see :func:`sample_phase`); None when the samples are closer than 3/4 px or the
    row has no tall stroke.

    The knots are fitted in ``windows`` windows of ``2 half + 1`` knots spread along the
    row: around the tallest stroke of each of ``windows`` equal stretches of it. The
    samples' columns drift along a row by the error of ``px_per_s`` (a few 1e-5 of it
    shifts a 10 s row's ends by a twentieth of a sample), so windows over the whole row
    measure its mean phase, where windows at its tallest strokes alone land wherever those
    happen to be. Each window's misfit is taken over the same columns at every shift.

    Six windows, not four: on a blurred photo each window's cycle is shallow and its minimum
    scatters by a few tenths of a sample, and the mean over four windows per row (sixteen on
    a 3x4 page) was still 0.3 sample off on G_photo 00776 (official SNR 10.5 dB; 13.9 dB with
    six windows). Two more windows cost about 4 ms on a 100-Hz page.
    """
    step = px_per_s / fs
    if step < 0.75 or xs.size < 4 * half:
        return None
    centres = _stroke_centres(xs, bot - top, tall=4.0 * radius + 2.0 * step,
                              windows=windows, apart=2 * half * step)  # fmt: skip
    if not centres:
        return None
    parts = []
    for c in centres:
        k0 = int(round((c - x_origin) / step)) - half
        # the columns every shift's knots reach (shifts lie within [-1/2, 1/2) sample)
        first, last = x_origin + (k0 + 0.5) * step, x_origin + (k0 + 2 * half - 1.5) * step
        near = (xs >= first) & (xs <= last)
        if near.sum() < half:
            continue
        for delta in _SHIFTS:
            knots = x_origin + (k0 + delta + np.arange(2 * half + 1)) * step
            y0 = np.interp(knots, init[0], init[1])
            parts.append((xs[near], top[near], bot[near], knots, y0))
    if not parts:
        return None
    # all windows and shifts are fitted together: one system of independent polylines
    misfits = _fit_many(parts, radius=radius, iterations=iterations, smooth=smooth / step**3)
    # each window's cycle relative to its mean: windows weigh alike, not by their ink's misfit
    cycles = misfits.reshape(-1, _SHIFTS.size)
    return np.asarray(np.sum(cycles / np.mean(cycles, axis=1, keepdims=True), axis=0))


def _stroke_centres(
    xs: NDArray[np.float64], extent: NDArray[np.float64], *, tall: float, windows: int, apart: float
) -> list[float]:
    """A stroke's column in each of ``windows`` equal stretches of the row: of the strokes
    there at least ``tall`` (ink ``extent``) and half as tall as the stretch's tallest, the
    nearest to the stretch's middle (so the windows' mean column is near the row's middle),
    each more than ``apart`` px from those kept before it."""
    if xs.size == 0 or windows < 1:
        return []
    edges = np.linspace(float(xs[0]), float(xs[-1]), windows + 1)
    stretch = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, windows - 1)
    centres: list[float] = []
    for s in range(windows):
        idx = np.flatnonzero((stretch == s) & (extent >= tall))
        if idx.size == 0:
            continue
        idx = idx[extent[idx] >= 0.5 * extent[idx].max()]
        x = float(xs[idx[np.argmin(np.abs(xs[idx] - (edges[s] + edges[s + 1]) / 2.0))]])
        if all(abs(x - c) > apart for c in centres):
            centres.append(x)
    return centres


#: Origin shifts (samples) at which :func:`phase_costs` compares the fits: one sample's
#: cycle in equal steps.
_SHIFTS = np.arange(6) / 6.0 - 0.5


def best_phase(
    costs: NDArray[np.float64], *, min_modulation: float = 0.04, harmonics: int = 2
) -> float:
    """The origin shift (samples) with the smallest misfit, from the misfit's cycle.

    Shifting the knots by a whole sample gives the same knots, so the misfit is periodic in
    the shift with a period of one sample. The cycle's first ``harmonics`` harmonics, from
    all the ``costs`` at the equally spaced shifts ``_SHIFTS``, locate its minimum to a
    small fraction of a sample: the cycle is V-shaped and lopsided, so its first harmonic
    alone lands up to 0.03 sample off (and a parabola through the lowest costs is biased
    towards the shifts tried). The first harmonic's depth says whether the drawing bends at
    samples at all: below ``min_modulation`` (its amplitude relative to the mean misfit)
    the shift is 0.
    """
    n = costs.size
    if n < 3 or not np.all(np.isfinite(costs)):
        return 0.0
    shifts = np.arange(n) / n - 0.5
    mean = float(np.mean(costs))
    order = np.arange(1, max(1, min(harmonics, (n - 1) // 2)) + 1)
    coef = np.exp(-2j * np.pi * np.outer(order, shifts)) @ costs * (2.0 / n)
    if mean <= 0 or abs(coef[0]) / mean < min_modulation:
        return 0.0  # the misfit hardly depends on the shift: the bends are not at samples
    # the smooth cycle through the costs, its lowest point on a fine grid, then a parabola
    grid = np.arange(_CYCLE) / _CYCLE - 0.5
    cycle = (coef[None, :] * np.exp(2j * np.pi * np.outer(grid, order))).real.sum(axis=1)
    j = int(np.argmin(cycle))
    c_m, c_0, c_p = cycle[j - 1], cycle[j], cycle[(j + 1) % _CYCLE]
    den = c_m - 2.0 * c_0 + c_p
    frac = 0.5 * (c_m - c_p) / den if den > 0 else 0.0
    return float((grid[j] + frac / _CYCLE + 0.5) % 1.0 - 0.5)


#: Points of :func:`best_phase`'s grid over one sample's cycle.
_CYCLE = 256


def sample_phase(
    xs: NDArray[np.float64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    *,
    x_origin: float,
    px_per_s: float,
    fs: float,
    radius: float,
    init: tuple[NDArray[np.float64], NDArray[np.float64]],
    windows: int = 6,
    half: int = 10,
    smooth: float = 0.012,
) -> float:
    """Sub-sample correction (px) of a row's time origin, from the vertices of its drawing.

    When the page was drawn from samples at ``fs`` and they lie at least 3/4 px apart, the
    drawn line bends at every sample: on the tallest strokes (QRS complexes) a polyline
    with knots at the true sample columns fits the ink clearly better than one shifted by
    a fraction of a sample. The knots are fitted around a tall stroke in each of
    ``windows`` stretches of the row (``half`` samples either side) at sixth-sample shifts
    of the origin (:func:`phase_costs`); the shift with the smallest misfit
    (:func:`best_phase`) is returned in pixels, 0 when the samples are too close, no stroke
    is tall, or the misfit hardly depends on the shift (the drawing was not made from
    samples at ``fs``).
    """
    costs = phase_costs(xs, top, bot, x_origin=x_origin, px_per_s=px_per_s, fs=fs,
                        radius=radius, init=init, windows=windows, half=half,
                        smooth=smooth)  # fmt: skip
    return 0.0 if costs is None else best_phase(costs) * px_per_s / fs


def sample_trace(
    xs: NDArray[np.float64],
    top: NDArray[np.float64],
    bot: NDArray[np.float64],
    *,
    x_origin: float,
    zero_y: float,
    px_per_s: float,
    px_per_mv: float,
    t_start: float,
    t_end: float,
    fs: float,
    radius: float,
    init: tuple[NDArray[np.float64], NDArray[np.float64]],
    max_gap_s: float = 0.08,
    smooth: float = 0.012,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sample a traced row at ``fs``: the knots of the polyline whose drawing fits the ink.

    Plotters draw a record as the polyline through its samples, so when ``fs`` is the rate
    the page was drawn from, every sample is a vertex of the drawn line (at 100 Hz and
    200 DPI, one every 2 px: the tips of R waves are vertices). The samples are therefore
    fitted as knots at their exact sub-pixel columns ``x_origin + t * px_per_s`` to the
    edges of the ink (:func:`fit_polyline`) rather than read from column centres and
    interpolated. Where the knots are closer than a pixel the curvature penalty
    ``smooth * integral(y''^2 dx)`` (per px of length) keeps them on a smooth curve.

    Parameters
    ----------
    xs, top, bot : ndarray
        Columns of the row's trace and the upper and lower edges of its ink (image rows,
        :func:`run_edges`).
    x_origin, zero_y, px_per_s, px_per_mv, t_start, t_end, fs, max_gap_s
        As in :func:`trace_to_samples`.
    radius : float
        Half the line's width in pixels (:func:`pen_radius`).
    init : (ndarray, ndarray)
        The row's column points (:func:`runs_to_points`): the fit starts from them and
        they say where the trace has gaps (NaN there, as in :func:`trace_to_samples`).

    Returns
    -------
    t, mv : ndarray
        Sample times (row time, s) and values (mV; NaN in gaps and outside the trace).
    """
    t, v0 = trace_to_samples(init[0], init[1], x_origin=x_origin, zero_y=zero_y,
                             px_per_s=px_per_s, px_per_mv=px_per_mv, t_start=t_start,
                             t_end=t_end, fs=fs, max_gap_s=max_gap_s)  # fmt: skip
    if t.size < 3 or init[0].size < 2 or not np.isfinite(v0).any():
        return t, v0
    knots = x_origin + t * px_per_s
    near = (xs >= knots[0] - radius - 0.5) & (xs <= knots[-1] + radius + 0.5)
    d = float(knots[1] - knots[0])
    y = fit_polyline(xs[near], top[near], bot[near], knots, radius=radius,
                     init=np.interp(knots, init[0], init[1]), smooth=smooth / d**3)  # fmt: skip
    v = (zero_y - y) / px_per_mv
    v[~np.isfinite(v0)] = np.nan
    return t, v


def pen_radius(top: NDArray[np.float64], bot: NDArray[np.float64], *, thickness: float) -> float:
    """Half the drawn line's width (px): the median vertical extent of the ink over flat
    stretches (columns whose centre moves less than a quarter pixel to both neighbours),
    halved; half of ``thickness`` when too few columns are flat."""
    if top.size >= 5:
        mid = (top + bot) / 2.0
        d = np.abs(np.diff(mid))
        flat = np.zeros(mid.size, dtype=bool)
        flat[1:-1] = (d[:-1] < 0.25) & (d[1:] < 0.25)
        if flat.sum() >= 10:
            return float(max(0.25, np.median(bot[flat] - top[flat]) / 2.0))
    return max(0.25, thickness / 2.0)
