"""Stage 5: layout — rows, columns, rhythm strips and lead names.

Rows are the peaks of the trace-probability profile that span a large part of the page width.
Columns are found from the lead separators (short vertical bars at 1/4, 1/2, 3/4 of a row),
rhythm strips are rows without separators; lead names follow the layout templates below
(standard order, or Cabrera order on request).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LAYOUTS",
    "RowGeometry",
    "assign_leads",
    "find_rows",
    "separator_columns",
    "separator_score",
]

#: Lead grids of the known layouts: rows × columns of lead names (rhythm strips excluded).
#: ``column_origin`` says where a column's time axis starts: ``'synchronous'`` (column c shows
#: c·T/ncol … (c+1)·T/ncol of the recording, as ECG machines print) or ``'zero'`` (every column
#: starts at 0 s, as ECG-Image-Kit prints its 6×2 pages).
LAYOUTS: dict[str, dict[str, object]] = {
    "3x4": {
        "grid": (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")),
        "column_origin": "synchronous",
    },
    "3x4-cabrera": {
        "grid": (("aVL", "-aVR", "V1", "V4"), ("I", "II", "V2", "V5"), ("aVF", "III", "V3", "V6")),
        "column_origin": "synchronous",
    },
    "6x2": {
        "grid": (
            ("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6"),
        ),
        "column_origin": "synchronous",
    },
    "6x2-eik": {
        "grid": (
            ("V1", "V4"), ("I", "aVR"), ("V2", "V5"), ("II", "aVL"), ("V3", "V6"), ("III", "aVF"),
        ),
        "column_origin": "zero",
    },
    "12x1": {
        "grid": tuple((name,) for name in
                      ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")),
        "column_origin": "synchronous",
    },
}  # fmt: skip


@dataclass
class RowGeometry:
    """A printed row as found on the page (pixels)."""

    center: float
    y_lo: int
    y_hi: int
    x_first: int
    x_last: int
    coverage: float


def _smooth(x: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """Gaussian smoothing of a 1-D profile (edges reflected)."""
    radius = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(x, radius, mode="reflect")
    return np.convolve(padded, k / k.sum(), mode="valid")


def _peaks(x: NDArray[np.float64], *, distance: int, height: float) -> NDArray[np.int64]:
    """Local maxima above ``height``, strongest first kept, at least ``distance`` apart."""
    inner = (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:]) & (x[1:-1] >= height)
    cand = np.flatnonzero(inner) + 1
    kept: list[int] = []
    for i in cand[np.argsort(-x[cand])]:
        if all(abs(int(i) - k) >= distance for k in kept):
            kept.append(int(i))
    return np.array(sorted(kept), dtype=np.int64)


def find_rows(
    prob: NDArray[np.float32], *, px_per_mm: float, min_coverage: float = 0.3
) -> list[RowGeometry]:
    """Rows of traces: peaks of the horizontal ink profile spanning ≥ ``min_coverage`` of the
    widest row (text lines and stray marks are short and are dropped)."""
    h, w = prob.shape
    ink = prob > 0.5
    profile = _smooth(ink.sum(axis=1).astype(np.float64), max(1.0, 1.2 * px_per_mm))
    if profile.max() <= 0:
        return []
    peaks = _peaks(profile, distance=max(2, int(10 * px_per_mm)), height=0.12 * profile.max())
    # a row of traces keeps ink near its baseline over most of its length; text lines,
    # logos and stray marks do not
    narrow = max(2, int(3 * px_per_mm))
    fill = np.array([ink[max(0, p - narrow) : p + narrow + 1].any(axis=0).mean() for p in peaks])
    if fill.size:
        peaks = peaks[fill >= 0.45 * fill.max()]
    # ...and it is not a ruled line (page frame, table border): an ECG wanders off its row
    wander = []
    for p in peaks:
        near = ink[max(0, p - int(px_per_mm)) : p + int(px_per_mm) + 1].sum()
        far = ink[max(0, p - 8 * int(px_per_mm)) : p + 8 * int(px_per_mm) + 1].sum()
        m = int(1.5 * px_per_mm)
        around = ink[max(0, p - 8 * int(px_per_mm)) : p + 8 * int(px_per_mm) + 1]
        centre = min(p, 8 * int(px_per_mm))
        off = np.concatenate([around[: max(0, centre - m)], around[centre + m + 1 :]]).any(axis=0)
        extent = max(1, int(ink[max(0, p - 3) : p + 4].any(axis=0).sum()))
        widest_line = int(ink[max(0, p - 3) : p + 4].sum(axis=1).max())
        straight = off.sum() < 0.005 * extent or widest_line >= 0.95 * extent
        wander.append(0.0 if straight else (far - near) / max(far, 1))
    peaks = peaks[np.asarray(wander, dtype=np.float64) >= 0.05] if len(peaks) else peaks
    rows: list[RowGeometry] = []
    peaks = np.asarray(peaks)
    for i, p in enumerate(peaks):
        # the row's extent is measured between the midpoints to its neighbours
        up = (p - peaks[i - 1]) // 2 if i > 0 else int(6 * px_per_mm)
        down = (peaks[i + 1] - p) // 2 if i + 1 < peaks.size else int(6 * px_per_mm)
        lo, hi = (
            max(0, p - min(up, int(12 * px_per_mm))),
            min(h, p + min(down, int(12 * px_per_mm)) + 1),
        )
        cols: NDArray[np.bool_] = np.asarray(ink[lo:hi].any(axis=0))
        idx = np.flatnonzero(cols)
        if idx.size == 0:
            continue
        # close gaps shorter than 4 mm, take the longest run
        splits = np.flatnonzero(np.diff(idx) > 4 * px_per_mm) + 1
        runs = np.split(idx, splits)
        run = max(runs, key=lambda r: r[-1] - r[0])
        x_first, x_last = int(run[0]), int(run[-1])
        coverage = float(np.mean(cols[x_first : x_last + 1])) * (x_last - x_first) / w
        rows.append(RowGeometry(float(p), lo, hi, x_first, x_last, coverage))
    if not rows:
        return []
    widest = max(r.x_last - r.x_first for r in rows)
    rows = [r for r in rows if (r.x_last - r.x_first) >= min_coverage * widest]
    rows = [r for r in rows if (r.x_last - r.x_first) >= 40 * px_per_mm]
    # bands reach halfway to the neighbouring rows (traces may cross them; extraction tracks)
    for i, r in enumerate(rows):
        r.y_lo = int(rows[i - 1].center) if i > 0 else max(0, int(r.center - 25 * px_per_mm))
        r.y_hi = (
            int(rows[i + 1].center) if i + 1 < len(rows) else min(h, int(r.center + 25 * px_per_mm))
        )
    return rows


def separator_score(
    prob: NDArray[np.float32], *, x: float, baseline: float, px_per_mm: float
) -> float:
    """Length (mm) of the longest vertical ink stroke within ±0.6 mm of column ``x``, near the
    row's baseline (the separators ECG printers draw between leads)."""
    h, w = prob.shape
    x0, x1 = int(max(0, x - 0.6 * px_per_mm)), int(min(w, x + 0.6 * px_per_mm + 1))
    y0, y1 = int(max(0, baseline - 6 * px_per_mm)), int(min(h, baseline + 6 * px_per_mm))
    if x1 <= x0 or y1 <= y0:
        return 0.0
    win = prob[y0:y1, x0:x1] > 0.5
    best = 0
    for col in win.T:
        idx = np.flatnonzero(col)
        if idx.size == 0:
            continue
        splits = np.flatnonzero(np.diff(idx) > 1) + 1
        best = max(best, max(len(r) for r in np.split(idx, splits)))
    return best / px_per_mm


def separator_columns(
    prob: NDArray[np.float32], *, x: float, baseline: float, px_per_mm: float
) -> tuple[int, int, int, int] | None:
    """Columns and rows ``(x_first, x_last, y_top, y_bottom)`` of a lead separator near ``x``.

    A separator is a block of adjacent columns, within 1.2 mm of ``x``, each holding a
    vertical ink stroke of at least 2 mm near the row's baseline.
    """
    h, w = prob.shape
    x0, x1 = int(max(0, x - 1.2 * px_per_mm)), int(min(w, x + 1.2 * px_per_mm + 1))
    y0, y1 = int(max(0, baseline - 6 * px_per_mm)), int(min(h, baseline + 6 * px_per_mm))
    if x1 <= x0 or y1 <= y0:
        return None
    win = prob[y0:y1, x0:x1] > 0.5
    tall = []
    spans = {}
    for j, col in enumerate(win.T):
        idx = np.flatnonzero(col)
        if idx.size:
            run = max(np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1), key=len)
            if len(run) >= 2.0 * px_per_mm:
                tall.append(j)
                spans[j] = (int(run[0]), int(run[-1]))
    if len(tall) < 2:  # a single tall column is a QRS stroke, not a bar
        return None
    blocks = np.split(np.array(tall), np.flatnonzero(np.diff(tall) > 1) + 1)
    centre = x - x0
    block = min(blocks, key=lambda b: abs((b[0] + b[-1]) / 2 - centre))
    if block.size < 2:
        return None
    # the bar's own height: the span most of its columns share
    top = int(np.median([spans[j][0] for j in block])) + y0
    bottom = int(np.median([spans[j][1] for j in block])) + y0
    # a bar is thicker than the trace and taller than most strokes near the baseline
    if block.size < max(2, 0.45 * px_per_mm) or bottom - top < 4.0 * px_per_mm:
        return None
    return int(block[0]) + x0, int(block[-1]) + x0, top, bottom


def assign_leads(
    n_rows: int,
    columns: list[int],
    *,
    layout: str = "auto",
    rhythm_leads: tuple[str, ...] | None = None,
) -> tuple[str, list[tuple[str, ...]], str]:
    """Lead names per row from the row count and the columns found in each row.

    Returns the layout name (e.g. ``'3x4+II'``), the leads of each row and the column origin.
    """
    if layout != "auto" and layout.split("+")[0] not in LAYOUTS:
        raise ValueError(
            f"unknown layout {layout!r}; expected 'auto' or one of: "
            + ", ".join(repr(k) for k in LAYOUTS)
            + " (optionally with '+LEAD,...' rhythm strips, e.g. '3x4+II')"
        )
    if layout == "auto":
        multi = [c for c in columns if c > 1]
        ncol = int(np.median(multi)) if multi else 1
        if ncol >= 3:
            base = "3x4"
        elif ncol == 2:
            base = "6x2-eik"
        else:
            base = {3: "3x4", 4: "3x4", 6: "6x2-eik", 7: "6x2-eik"}.get(n_rows, "12x1")
        grid = LAYOUTS[base]["grid"]
        n_main = min(len(grid), n_rows)  # type: ignore[arg-type]
        if base == "12x1":
            n_main = min(12, n_rows)
        n_rhythm = n_rows - n_main
        if rhythm_leads is None:
            default = {1: ("II",), 2: ("II", "V5"), 3: ("II", "V1", "V5")}
            rhythm_leads = default.get(n_rhythm, ("II",) * n_rhythm)
    else:
        base, _, extra = layout.partition("+")
        grid = LAYOUTS[base]["grid"]
        n_main = len(grid)  # type: ignore[arg-type]
        if rhythm_leads is None:
            rhythm_leads = tuple(x for x in extra.split(",") if x)
    grid_rows = [tuple(r) for r in LAYOUTS[base]["grid"]][:n_main]  # type: ignore[attr-defined]
    rhythm = tuple(rhythm_leads)[: max(0, n_rows - n_main)]
    rows = grid_rows + [(name,) for name in rhythm]
    rows += [()] * (n_rows - len(rows))
    name = base.replace("-eik", "") + ("+" + ",".join(rhythm) if rhythm else "")
    origin = str(LAYOUTS[base]["column_origin"])
    return name, rows, origin
