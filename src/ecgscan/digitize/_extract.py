"""Stage 7: extraction — a sub-pixel trace centre per column, then millivolts at true times.

For each row, every column's candidate ink runs (probability > 0.5) inside the row's band are
linked by dynamic programming (the path with the smallest total vertical jump, weakly pulled to
the row's baseline), so a trace is followed through crossings with neighbouring rows. The value
per column is the probability-weighted centroid of the chosen run; where a run is much taller
than the line is thick (a QRS spike inside one column) the extreme end is kept instead, so
peaks are not halved.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["line_thickness", "trace_to_samples", "track_row"]


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
    free_ends: float = 8.0,
    idle_cost: float = 0.5,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Follow one row's trace from column ``x0`` to ``x1`` (inclusive).

    ``free_ends`` (mm) lets the path begin up to that far after the first column and end up
    to that far before the last one (at ``idle_cost`` times a skipped column's cost per
    column with ink left out), so ink that is not continuous with the trace (the
    neighbouring row's trace, a label's remnant) is not taken for its first or last samples;
    0 makes the path take the first and last columns' ink.

    Returns
    -------
    x, y : ndarray
        Column positions and sub-pixel trace centres (image rows); columns without ink are
        absent.
    """
    band = prob[y_lo:y_hi, x0 : x1 + 1]
    ink = band > 0.5
    n_cols = band.shape[1]
    cs, rs, re_ = _column_runs(ink)
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
    skip = max(3.0, 0.8 * px_per_mm)  # cost per skipped column (like a 0.8-mm jump)
    idle = skip * idle_cost  # cost per column before the trace starts / after it ends
    # the path starts within the first ``free_ends`` mm and ends within the last ones: stray
    # ink is short, and a faint or ragged trace must not be given up for long stretches
    window = free_ends * px_per_mm
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
                for i in range(m):
                    pa, pb = p_lo[i], p_hi[i]
                    g = a - pb if a > pb else (pa - b if pa > b else 0)
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
    if not cols:
        return np.empty(0), np.empty(0)
    last = states[-1][2]
    k = min(range(len(last)), key=last.__getitem__)
    chosen: list[tuple[int, int, int]] = []
    for i in range(len(cols) - 1, -1, -1):
        if k < len(lo_cols[cols[i]]):  # a real run, not the skip/pre/post states
            chosen.append((cols[i], lo_cols[cols[i]][k], hi_cols[cols[i]][k]))
        k = states[i][3][k]
    if not chosen:
        return np.empty(0), np.empty(0)
    chosen.reverse()
    xs = np.array([c for c, _, _ in chosen], dtype=np.int64)
    ys_lo = np.array([a for _, a, _ in chosen], dtype=np.float64)
    ys_hi = np.array([b for _, _, b in chosen], dtype=np.float64)
    # probability-weighted centroid of each chosen run
    centres = np.empty(xs.size)
    for i, (c, lo_i, hi_i) in enumerate(zip(xs, ys_lo.astype(int), ys_hi.astype(int), strict=True)):
        w = band[lo_i : hi_i + 1, c].astype(np.float64)
        centres[i] = lo_i + float(np.dot(w, np.arange(w.size))) / max(float(w.sum()), 1e-9)
    px, py = _column_points(
        xs.astype(np.float64) + x0, ys_lo + y_lo, ys_hi + y_lo, centres + y_lo, thickness
    )
    return _restore_tips(xs.astype(np.float64) + x0, ys_lo + y_lo, ys_hi + y_lo, px, py, thickness)


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
