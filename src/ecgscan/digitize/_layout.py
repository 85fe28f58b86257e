"""Stage 5: layout — rows, columns, rhythm strips and lead names.

Rows are the peaks of the trace-probability profile that span a large part of the page width.
Columns are found from the lead separators (short vertical bars at 1/4, 1/2, 3/4 of a row),
rhythm strips are rows without separators; lead names follow the layout templates below
(standard order, or Cabrera order on request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EXTRA_LABEL_NAMES",
    "LABEL_NAMES",
    "LAYOUTS",
    "LeadLabel",
    "RowGeometry",
    "assign_leads",
    "columns_from_labels",
    "erase_labels",
    "erase_text",
    "find_labels",
    "find_rows",
    "read_label",
    "reassign_rhythm_strips",
    "row_traces",
    "separator_columns",
    "separator_score",
]

#: Lead grids of the known layouts: rows × columns of lead names (rhythm strips excluded).
#: ``column_origin`` says where a column's time axis starts: ``'synchronous'`` (column c shows
#: c·T/ncol … (c+1)·T/ncol of the recording, as ECG machines print) or ``'zero'`` (every column
#: starts at 0 s, as ECG-Image-Kit prints its 6×2 pages). ``'*'`` is a cell of an extra lead
#: (15-lead pages print a fifth column of right-sided or posterior chest leads, V4R, V8, V9
#: …): :func:`assign_leads` names it by its printed label (``'*'`` when unread); it is not
#: one of the 12 leads of the record.
LAYOUTS: dict[str, dict[str, object]] = {
    "3x4": {
        "grid": (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")),
        "column_origin": "synchronous",
    },
    "3x4-cabrera": {
        "grid": (("aVL", "II", "V1", "V4"), ("I", "aVF", "V2", "V5"), ("-aVR", "III", "V3", "V6")),
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
    "3x5": {
        "grid": (("I", "aVR", "V1", "V4", "*"), ("II", "aVL", "V2", "V5", "*"),
                 ("III", "aVF", "V3", "V6", "*")),
        "column_origin": "synchronous",
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


def row_spacing(profile: NDArray[np.float64], *, px_per_mm: float) -> float | None:
    """The distance (px) at which closely printed rows repeat, from the autocorrelation of
    the page's horizontal ink profile with its slow trend (the block of rows, margins)
    removed: the first clear maximum between 6 and 20 mm; None when the rows are farther
    apart or do not repeat."""
    x = profile - _smooth(profile, 6 * px_per_mm)
    n = x.size
    lo, hi = int(6 * px_per_mm), min(n - 2, int(20 * px_per_mm))
    if hi <= lo + 2 or not np.any(x):
        return None
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    ac = ac / ac[0]
    seg = ac[lo - 1 : hi + 2]
    inner = np.flatnonzero((seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:]))
    for i in inner:
        if seg[i + 1] >= 0.3:  # clearly periodic
            return float(lo + i)
    return None


def _beats(off: NDArray[np.bool_], *, px_per_mm: float) -> bool:
    """Whether the columns where ink leaves a line (``off``) come in at least four groups
    spaced like heartbeats (median spacing ≥ 8 mm, and regularly: the quartiles of the
    spacings within a factor of 2) rather than like letters or the ends of a frame."""
    idx = np.flatnonzero(off)
    if idx.size == 0:
        return False
    starts = idx[np.concatenate(([True], np.diff(idx) > 2 * px_per_mm))]
    if starts.size < 4:
        return False
    q1, med, q3 = np.percentile(np.diff(starts), [25, 50, 75])
    return bool(med >= 8 * px_per_mm and q3 <= 2.0 * q1)


def _longest_run(
    cols: NDArray[np.bool_], *, px_per_mm: float, gap_mm: float = 4.0
) -> tuple[int, int] | None:
    """First and last column of the longest run of ``cols`` once gaps shorter than ``gap_mm``
    are closed (None when no column is set)."""
    idx = np.flatnonzero(cols)
    if idx.size == 0:
        return None
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > gap_mm * px_per_mm) + 1)
    run = max(runs, key=lambda r: r[-1] - r[0])
    return int(run[0]), int(run[-1])


def _strokes_through(
    ink: NDArray[np.bool_], centre: float, *, px_per_mm: float
) -> NDArray[np.bool_]:
    """Columns of ``ink`` (a band of the page) covered by connected strokes at least 10 mm
    wide that pass within 2 mm of row ``centre`` and cross each column once, as a trace
    does (not letters, the tip of a neighbouring row's wave, or a mesh of grid lines)."""
    import cv2

    none = np.zeros(ink.shape[1], dtype=bool)
    _, lab, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    a, b = max(0, int(centre - 2 * px_per_mm)), int(centre + 2 * px_per_mm) + 1
    near = np.unique(lab[a:b])
    wide = near[(near > 0) & (stats[near, cv2.CC_STAT_WIDTH] >= 10 * px_per_mm)]
    if wide.size == 0:
        return none
    stroke = np.isin(lab, wide)
    cols = stroke.any(axis=0)
    crossings = (stroke[1:] & ~stroke[:-1]).sum(axis=0) + stroke[0]
    if float(np.mean(crossings[cols] == 1)) < 0.8:
        return none
    return np.asarray(cols)


def _line_ink_share(ink: NDArray[np.bool_], *, px_per_mm: float) -> float:
    """The share of ``ink`` in pieces at least 5 mm wide.

    ECG traces are long lines: even faded, broken or dotted traces keep more than 5 % of their
    ink in such pieces (real scans and photos: 5.5 % and up). Noise, textures and empty pages
    leave only specks (0 % on uniform noise).
    """
    import cv2

    _, _, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8)
    area, width = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_WIDTH]
    total = int(area.sum())
    return float(area[width >= 5 * px_per_mm].sum()) / total if total else 0.0


#: Tilts (rise over run) a ruled line may keep on a straightened page: the paper's edge or a
#: frame photographed or scanned askew of the grid (about ±1.1°).
_LINE_SLOPES = np.linspace(-0.02, 0.02, 41)


def _ruled_line(ink: NDArray[np.bool_], centre: int, *, px_per_mm: float) -> bool:
    """Whether the ink along row ``centre`` is a straight line (a page edge, a frame, a grid
    line a print made dark) rather than a trace.

    Over the longest run of columns that hold ink within 2 mm of ``centre`` (gaps under 4 mm
    closed), some straight line through ``centre``, level or tilted by up to 1.1°, has ink
    within 0.2 mm (at least a pixel) in 88 % or more of the inked columns; and the band's
    ink leaves that line neither in four or more excursions 0.5 mm wide or more (median)
    over 4 % of the columns or more (a trace's waves; grid lines crossing a ruled line are a
    pixel or two wide) nor at beats (:func:`_beats`). An ECG trace stays on any line in 23-82 %
    of its columns on eik-dev pages, real scans and photos; page edges and ruled lines in
    90-100 %, and a trace printed along a ruled line leaves it at every wave.
    """
    import cv2

    h = ink.shape[0]
    reach = int(2 * px_per_mm)
    y0 = max(0, centre - reach)
    band = ink[y0 : min(h, centre + reach + 1)]
    cols: NDArray[np.bool_] = np.asarray(band.any(axis=0))
    span = _longest_run(cols, px_per_mm=px_per_mm)
    if span is None or span[1] - span[0] < 10 * px_per_mm:
        return False
    a, b = span
    tol = max(1, int(round(0.2 * px_per_mm)))
    near = cv2.dilate(band[:, a : b + 1].view(np.uint8), np.ones((2 * tol + 1, 1), np.uint8))
    inked = cols[a : b + 1]
    xs = np.arange(b - a + 1)
    ys = np.rint((centre - y0) + _LINE_SLOPES[:, None] * (xs - xs.mean())).astype(np.intp)
    ok = (ys >= 0) & (ys < band.shape[0])
    hit = np.where(ok, near[np.clip(ys, 0, band.shape[0] - 1), xs], 0).astype(bool)
    share = (hit & inked).sum(axis=1) / max(1, int(inked.sum()))
    k = int(np.argmax(share))
    if share[k] < 0.88:
        return False
    # a trace drawn along a ruled line (or a flat, low trace) leaves it again and again: at
    # its waves (8 % of a flat lead's columns), or at beats; the rest of a broken edge, or
    # grid lines crossing a ruled line, do not
    far = np.abs(np.arange(band.shape[0])[:, None] - ys[k][None, :]) > 2 * tol + 1
    leaves = (band[:, a : b + 1] & far).any(axis=0) & inked
    off = np.flatnonzero(leaves)
    groups = np.split(off, np.flatnonzero(np.diff(off) > 2 * px_per_mm) + 1) if off.size else []
    # (grid lines crossing a ruled line are a pixel or two wide, a wave 1 mm and more)
    wide = float(np.median([g[-1] - g[0] + 1 for g in groups])) if groups else 0.0
    waves = off.size >= 0.04 * inked.sum() and len(groups) >= 4 and wide >= 0.5 * px_per_mm
    return not (waves or _beats(leaves, px_per_mm=px_per_mm))


def _single_stroke_share(ink: NDArray[np.bool_], centre: int, *, px_per_mm: float) -> float:
    """The share of the inked columns within 3 mm of row ``centre`` that hold one vertical
    run of ink.

    A trace crosses each column once, except where a neighbouring row's wave or a label
    reaches into the band: 0.80-1.00 on eik-dev pages, real scans and photos and on our
    renders in every layout, DPI and style. A line of text does not: letters such as
    'e', 'o', 'B' cross a column two or three times, and a header's second line adds more
    (0.53-0.65 on the headers and footers of photographed pages).
    """
    n = max(2, int(3 * px_per_mm))
    band = ink[max(0, centre - n) : centre + n + 1]
    cols = band.any(axis=0)
    if not cols.any():
        return 0.0
    runs = (band[1:] & ~band[:-1]).sum(axis=0) + band[0]
    return float(np.mean(runs[cols] == 1))


def _straight_everywhere(ink: NDArray[np.bool_], centre: int, *, px_per_mm: float) -> bool:
    """Whether the ink within 4 mm of row ``centre`` keeps within 0.5 mm of a straight line
    over nine in ten of its 10-mm stretches (those inked in 30 % of their columns or more).

    A trace's waves leave any line by 1.3 mm and more in one stretch in ten at least (2.6 mm
    and more on eik-dev pages and real scans; its QRS complexes), while the edge of a
    photographed sheet is straight over every short stretch even where it bends, tilts by
    more than a ruled line may (:func:`_ruled_line`) or breaks into dashes (0.1 mm), and so
    is a grid line a print made as dark as the traces. Columns the ink fills from the band's
    top to its bottom are left out: vertical lines crossing (grid lines, the sheet's sides).
    False when fewer than three stretches are inked.
    """
    n = int(4 * px_per_mm)
    band = ink[max(0, centre - n) : centre + n + 1]
    h = band.shape[0]
    # per column: the ink's count, mean height, top and bottom (integer sums and maxima, the
    # fast reductions over a band's rows)
    u = band.view(np.uint8)
    rank = np.arange(1, h + 1, dtype=np.uint8 if h < 255 else np.uint16)[:, None]
    count = u.sum(axis=0, dtype=np.int32)
    # (a vertical line crossing the band, a grid line or the sheet's side, fills a column)
    x = np.flatnonzero((count > 0) & (count < h))
    if x.size == 0:
        return False
    bottom = (u * rank).max(axis=0)[x].astype(np.float64) - 1.0
    top = h - (u * rank[::-1]).max(axis=0)[x].astype(np.float64)
    mean_y = (np.arange(h, dtype=np.float32) @ band.astype(np.float32))[x] / count[x]
    step = max(4, int(10 * px_per_mm))
    win = x // step
    n_win = int(win[-1]) + 1
    # a least-squares line per stretch through the ink's mean height, in closed form
    k = np.bincount(win, minlength=n_win).astype(np.float64)
    xf = (x - win * step).astype(np.float64)  # (columns within the stretch)
    sx, sy = np.bincount(win, xf, n_win), np.bincount(win, mean_y, n_win)
    sxx, sxy = np.bincount(win, xf * xf, n_win), np.bincount(win, xf * mean_y, n_win)
    den = k * sxx - sx * sx
    slope = np.divide(k * sxy - sx * sy, den, out=np.zeros(n_win), where=den > 0)
    offset = np.divide(sy - slope * sx, k, out=np.zeros(n_win), where=k > 0)
    line = slope[win] * xf + offset[win]
    dev = np.maximum(bottom - line, line - top)
    present = k > 0
    worst = np.full(n_win, -np.inf)
    worst[present] = np.maximum.reduceat(dev, np.searchsorted(win, np.flatnonzero(present)))
    excursions = worst[k >= 0.3 * step]
    if excursions.size < 3:
        return False
    return bool(np.percentile(excursions, 90) < 0.5 * px_per_mm)


def _short_pieces(
    ink: NDArray[np.bool_],
    centre: int,
    labels: NDArray[np.int32],
    stats: NDArray[np.int32],
    *,
    px_per_mm: float,
) -> bool:
    """Whether most of the ink within 3 mm of row ``centre`` is in pieces (connected
    components of the page's ink: OpenCV's ``labels`` and ``stats``) narrower than 40 mm.

    The letters and words of a line of text are; a trace is one long piece, or a few, also
    where a ruled line along it makes its columns hold two strokes, as text's do.
    """
    import cv2

    n = max(2, int(3 * px_per_mm))
    a = max(0, centre - n)
    lab = labels[a : centre + n + 1][ink[a : centre + n + 1]]
    if lab.size == 0:
        return True
    wide = stats[lab, cv2.CC_STAT_WIDTH] >= 40 * px_per_mm
    return bool(np.mean(wide) < 0.5)


def _missed_rows(peaks: NDArray[np.int64], *, px_per_mm: float, n: int) -> NDArray[np.int64]:
    """``peaks`` with the rows that a regular stack of close rows lacks put back in.

    On pages whose rows are printed close together (12×1: about 11 mm apart), a trace whose
    baseline wanders by more than half the spacing (or that is clipped flat for seconds)
    spreads its ink over its neighbours' bands: the page's profile shows no peak of its
    own there, or one that merges with a neighbour's. The other rows still repeat at one
    spacing: when at least four gaps between peaks are found, at most 20 mm and half of
    them within 15 % of their median, a gap of k spacings (k = 2 or 3, within 0.35 of a
    spacing) gets k - 1 rows evenly placed in it (a wider gap is a block of text or a
    blank, not wandering traces). They are candidates like the others: a place
    without a long trace is dropped by :func:`find_rows`' checks.
    """
    if peaks.size < 5:
        return peaks
    gaps = np.diff(peaks).astype(np.float64)
    s = float(np.median(gaps))
    if s > 20 * px_per_mm or np.mean(np.abs(gaps - s) <= 0.15 * s) < 0.5:
        return peaks
    extra: list[int] = []
    for a, g in zip(peaks[:-1], gaps, strict=True):
        k = int(round(g / s))
        if 2 <= k <= 3 and abs(g - k * s) <= 0.35 * s:
            extra += [int(round(a + j * g / k)) for j in range(1, k)]
    if not extra:
        return peaks
    return np.unique(np.clip(np.concatenate([peaks, extra]), 0, n - 1)).astype(np.int64)


def find_rows(
    prob: NDArray[np.float32], *, px_per_mm: float, min_coverage: float = 0.3
) -> list[RowGeometry]:
    """Rows of traces: peaks of the horizontal ink profile spanning ≥ ``min_coverage`` of the
    widest row (text lines and stray marks are short and are dropped).

    Peaks are at least 10 mm apart, or 0.6 × the rows' spacing (:func:`row_spacing`) on pages
    whose rows are closer (12×1 pages print rows about 11 mm apart, and a row's ink wanders
    about its baseline). A printed row that looks straight over most of its length (a flat
    lead drawn thick at 100 DPI) is told from a ruled line by its beats. A row whose baseline
    wanders out of the band its extent is measured in keeps its whole length: the long
    strokes that pass through its centre count (:func:`_strokes_through`). A page whose ink
    is nearly all specks (noise, textures: under 2 % of it in pieces 5 mm wide or more, see
    :func:`_line_ink_share`) has no rows. Rows a regular stack of close rows lacks are put
    back (:func:`_missed_rows`); lines straight over every short stretch (a sheet's edge, a
    grid line: :func:`_straight_everywhere`) and, above and below the rows, lines of text
    (:func:`_single_stroke_share`, :func:`_short_pieces`) are not rows.
    """
    h, w = prob.shape
    ink = prob > 0.5
    if _line_ink_share(ink, px_per_mm=px_per_mm) < 0.02:
        return []
    profile = _smooth(ink.sum(axis=1).astype(np.float64), max(1.0, 1.2 * px_per_mm))
    if profile.max() <= 0:
        return []
    spacing = row_spacing(profile, px_per_mm=px_per_mm)
    distance = 10 * px_per_mm if spacing is None else min(10 * px_per_mm, 0.6 * spacing)
    peaks = _peaks(profile, distance=max(2, int(distance)), height=0.12 * profile.max())
    peaks = _missed_rows(peaks, px_per_mm=px_per_mm, n=h)
    # a row of traces keeps ink near its baseline over most of its length; text lines,
    # logos and stray marks do not
    narrow = max(2, int(3 * px_per_mm))
    fill = np.array([ink[max(0, p - narrow) : p + narrow + 1].any(axis=0).mean() for p in peaks])
    if fill.size:
        peaks = peaks[fill >= 0.45 * fill.max()]

    # ...and it has waves: a photographed sheet's edge (tilted, bent, broken into dashes: not
    # a ruled line) or a grid line a print made dark is straight wherever one looks
    peaks = peaks[[not _straight_everywhere(ink, int(p), px_per_mm=px_per_mm) for p in peaks]]
    # ...and it is not a line of text (a header or a footer as wide as a row): the letters
    # cross many columns two or three times and are short pieces of ink. Only the outermost
    # candidates are tested (text is above and below the rows; rows tangled with their
    # neighbours, as limb leads printed at 20 mm/mV 11 mm apart, cross columns as often)
    pieces: list[Any] = []  # the ink's connected pieces, labelled once when needed

    def not_a_row(p: int) -> bool:
        if _single_stroke_share(ink, p, px_per_mm=px_per_mm) >= 0.72:
            return False
        if not pieces:
            import cv2

            pieces.extend(cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8))
        return _short_pieces(ink, p, pieces[1], pieces[2], px_per_mm=px_per_mm)

    while peaks.size and not_a_row(int(peaks[0])):
        peaks = peaks[1:]
    while peaks.size and not_a_row(int(peaks[-1])):
        peaks = peaks[:-1]
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
        # (a straight line, level or tilted, that no beats leave: _ruled_line)
        straight = off.sum() < 0.005 * extent or _ruled_line(ink, int(p), px_per_mm=px_per_mm)
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
        span = _longest_run(cols, px_per_mm=px_per_mm)
        if span is None:
            continue
        x_first, x_last = span
        coverage = float(np.mean(cols[x_first : x_last + 1])) * (x_last - x_first) / w
        rows.append(RowGeometry(float(p), lo, hi, x_first, x_last, coverage))
    if not rows:
        return []
    ref = max(rows, key=lambda r: r.x_last - r.x_first)
    widest = ref.x_last - ref.x_first
    # a trace whose baseline wanders far from its row's centre leaves the band its extent
    # was measured in: the long strokes that pass through the row's centre find the rest;
    # and rows print side by side, so a row still shorter than 3/4 of the widest is not
    # ended by a faded stretch of up to 12 mm within the widest row's span
    centres = [r.center for r in rows]
    beside = np.zeros(w, dtype=bool)
    beside[max(0, int(ref.x_first - 2 * px_per_mm)) : int(ref.x_last + 2 * px_per_mm) + 1] = True
    for i, r in enumerate(rows):
        if r.x_last - r.x_first >= 0.9 * widest:
            continue
        lo = int(centres[i - 1]) if i > 0 else max(0, int(r.center - 25 * px_per_mm))
        hi = int(centres[i + 1]) if i + 1 < len(rows) else min(h, int(r.center + 25 * px_per_mm))
        cols = np.asarray(ink[r.y_lo : r.y_hi].any(axis=0)) | _strokes_through(
            ink[lo:hi], r.center - lo, px_per_mm=px_per_mm
        )
        span = _longest_run(cols, px_per_mm=px_per_mm)
        if span is None or span[1] - span[0] < 0.75 * widest:
            # (in a band halfway to the neighbours, as wide on a free side as on the other)
            gaps = [abs(c - r.center) / 2 for c in centres if c != r.center] or [12 * px_per_mm]
            up = (r.center - centres[i - 1]) / 2 if i > 0 else min(gaps)
            down = (centres[i + 1] - r.center) / 2 if i + 1 < len(rows) else min(gaps)
            a, b = max(0, int(r.center - up)), int(r.center + down) + 1
            cols |= np.asarray(ink[a:b].any(axis=0))
            wide = _longest_run(cols & beside, px_per_mm=px_per_mm, gap_mm=12.0)
            if span is None or (wide is not None and wide[1] - wide[0] > span[1] - span[0]):
                span = wide
        if span is not None and span[1] - span[0] > r.x_last - r.x_first:
            r.x_first, r.x_last = span
            r.coverage = float(np.mean(cols[span[0] : span[1] + 1])) * (span[1] - span[0]) / w
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
    first, last = _longest_vertical_runs(prob[y0:y1, x0:x1] > 0.5)
    return float(np.max(last - first + 1)) / px_per_mm


def _longest_vertical_runs(
    win: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """First and last row of the longest run of ink in every column of ``win`` (the upper
    one of equally long runs; ``(0, -1)``, an empty run, in a column without ink)."""
    h, w = win.shape
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = win.T
    edges = np.diff(padded, axis=1)
    cs, rs = np.nonzero(edges == 1)  # run starts, column by column, top to bottom
    _, re_ = np.nonzero(edges == -1)  # and their ends (one past the last row)
    first = np.zeros(w, dtype=np.int64)
    last = np.full(w, -1, dtype=np.int64)
    if cs.size:
        length = re_ - rs
        # the longest run of each column, the upper one first among equals
        order = np.lexsort((rs, -length, cs))
        keep = order[np.concatenate(([True], np.diff(cs[order]) != 0))]
        first[cs[keep]] = rs[keep]
        last[cs[keep]] = re_[keep] - 1
    return first, last


def separator_columns(
    prob: NDArray[np.float32], *, x: float, baseline: float, px_per_mm: float
) -> tuple[int, int, int, int] | None:
    """Columns and rows ``(x_first, x_last, y_top, y_bottom)`` of a lead separator near ``x``.

    A separator is a block of adjacent columns, within 1.2 mm of ``x``, each holding a
    vertical ink stroke of at least 2 mm near the row's baseline: thicker than the trace
    (0.45 mm) and at least 4 mm tall, or, shorter (3-4 mm), a clean bar: at least 0.6 mm
    thick, its columns' strokes starting and ending together (within 2 px, 0.3 mm) and
    centred on the baseline (within 1.5 mm). ECG-Image-Kit's bars are 7 mm tall on its
    200-DPI pages but only about 3.8 mm (15 px, 3 px thick) on its 100-DPI pages; there a
    narrow QRS's up- and downstroke also pass the plain 2-column, 4-mm test, so the short
    bar must show the bar's own shape: thick, square-ended, and astride the baseline where an
    R wave stands above it.
    """
    h, w = prob.shape
    x0, x1 = int(max(0, x - 1.2 * px_per_mm)), int(min(w, x + 1.2 * px_per_mm + 1))
    y0, y1 = int(max(0, baseline - 6 * px_per_mm)), int(min(h, baseline + 6 * px_per_mm))
    if x1 <= x0 or y1 <= y0:
        return None
    first, last = _longest_vertical_runs(prob[y0:y1, x0:x1] > 0.5)
    long = last - first + 1 >= 2.0 * px_per_mm
    tall = np.flatnonzero(long).tolist()
    spans = {j: (int(first[j]), int(last[j])) for j in tall}
    if len(tall) < 2:  # a single tall column is a QRS stroke, not a bar
        return None
    blocks = np.split(np.array(tall), np.flatnonzero(np.diff(tall) > 1) + 1)
    centre = x - x0
    block = min(blocks, key=lambda b: abs((b[0] + b[-1]) / 2 - centre))
    if block.size < 2:
        return None
    # the bar's own height: the span most of its columns share
    tops = np.array([spans[j][0] for j in block]) + y0
    bottoms = np.array([spans[j][1] for j in block]) + y0
    top, bottom = int(np.median(tops)), int(np.median(bottoms))
    # a bar is thicker than the trace and taller than most strokes near the baseline
    if block.size < max(2, 0.45 * px_per_mm):
        return None
    if bottom - top < 4.0 * px_per_mm:
        # a short bar (a 100-DPI page's): thick, square-ended and astride the baseline
        tol = max(2.0, 0.3 * px_per_mm)
        square = bool(np.all(np.abs(tops - top) <= tol) and np.all(np.abs(bottoms - bottom) <= tol))
        if (bottom - top < 3.0 * px_per_mm or block.size < 0.6 * px_per_mm or not square
                or abs((top + bottom) / 2 - baseline) > 1.5 * px_per_mm):  # fmt: skip
            return None
    return int(block[0]) + x0, int(block[-1]) + x0, top, bottom


#: Limb leads in the (I, II) basis: every limb lead is a fixed mix of any two others
#: (Einthoven's and Goldberger's laws), whatever the patient.
_LIMB_BASIS: dict[str, tuple[float, float]] = {
    "I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0), "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0), "-aVR": (0.5, 0.5),
}  # fmt: skip

#: Points at which :func:`row_traces` samples a row.
_TRACE_POINTS = 480


def row_traces(
    prob: NDArray[np.float32],
    rows: list[RowGeometry],
    origins: list[float],
    lengths: list[float],
) -> list[NDArray[np.float64]]:
    """Rough traces of the rows, for :func:`assign_leads` to check lead names against the
    laws the limb leads obey.

    Parameters
    ----------
    prob : ndarray
        Ink probability map of the page.
    rows : list of RowGeometry
        The rows (:func:`find_rows`).
    origins, lengths : list of float
        Per row, the x (px) of time 0 and the printed length (px).

    Returns
    -------
    list of ndarray
        Per row, the ink centroid's height above the row's centre (px, up positive) at
        480 points evenly spread over the row's length; NaN where the column holds no ink.
    """
    out: list[NDArray[np.float64]] = []
    h, w = prob.shape
    centers = [r.center for r in rows]
    for i, (r, t0, length) in enumerate(zip(rows, origins, lengths, strict=True)):
        xs = np.clip(np.round(t0 + (np.arange(_TRACE_POINTS) + 0.5) / _TRACE_POINTS * length),
                     0, w - 1).astype(np.intp)  # fmt: skip
        # the band halfway to the neighbouring rows (a row's own extent reaches into them)
        lo = int((centers[i - 1] + r.center) / 2) if i > 0 else r.y_lo
        hi = int((centers[i + 1] + r.center) / 2) if i + 1 < len(rows) else r.y_hi
        lo, hi = max(0, lo), min(h, max(hi, lo + 1))
        band = prob[lo:hi, xs].astype(np.float64)
        band = np.where(band > 0.5, band, 0.0)
        mass = band.sum(axis=0)
        ys = np.arange(lo, hi, dtype=np.float64)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid = (band * ys).sum(axis=0) / mass
        out.append(np.where(mass > 0, r.center - centroid, np.nan))
    return out


def _limb_consistency(traces: list[NDArray[np.float64]], base: str, n_rows: int) -> float:
    """How well a layout's limb-lead cells obey the limb-lead laws (dB, NaN when untestable).

    In each column, every limb lead is predicted from two others of the same column (their
    samples are simultaneous): the column scores the median over such predictions of the
    predicted lead's power over the error's, after removing each segment's median (the
    cells' ends, where labels and separators are printed, are left out); the layout scores
    its worst column (3×4 and standard 6×2 share their first column; 3×4's second does not
    hold in a 6×2 page).
    """
    grid: tuple[tuple[str, ...], ...] = LAYOUTS[base]["grid"]  # type: ignore[assignment]
    if n_rows < len(grid):
        return float("nan")
    cells: dict[int, list[tuple[str, NDArray[np.float64]]]] = {}
    for names, trace in zip(grid, traces, strict=False):
        n = len(names)
        for c, name in enumerate(names):
            if name in _LIMB_BASIS:
                lo, hi = c * trace.size // n, (c + 1) * trace.size // n
                # a cell's first tenth holds its label (and the separator), its last
                # twentieth the next separator: left out
                seg = trace[lo + (hi - lo) // 10 : hi - (hi - lo) // 20]
                cells.setdefault(c, []).append((name, seg - np.nanmedian(seg)))
    per_column = []
    for leads in cells.values():
        scores = []
        for k, (name, target) in enumerate(leads):
            others = [lead for j, lead in enumerate(leads) if j != k][:2]
            if len(others) < 2:
                continue
            basis = np.array([_LIMB_BASIS[o[0]] for o in others]).T
            if abs(np.linalg.det(basis)) < 1e-6:
                continue
            a, b = np.linalg.solve(basis, np.asarray(_LIMB_BASIS[name]))
            pred = a * others[0][1] + b * others[1][1]
            m = min(target.size, pred.size)
            ok = np.isfinite(target[:m]) & np.isfinite(pred[:m])
            if ok.sum() < 0.5 * m or m < 20:
                continue
            scores.append(_snr_db(target[:m][ok], pred[:m][ok]))
        if scores:
            per_column.append(float(np.median(scores)))
    return float(min(per_column)) if per_column else float("nan")


def _snr_db(target: NDArray[np.float64], estimate: NDArray[np.float64]) -> float:
    """``target``'s power over that of ``estimate - target`` (dB), both floored at 1e-9."""
    power = float(np.sum(target**2))
    err = float(np.sum((target - estimate) ** 2))
    return float(10 * np.log10(max(power, 1e-9) / max(err, 1e-9)))


def _match_db(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """How alike two rough trace pieces are: their power over their difference's (dB), each
    piece's median removed; NaN when fewer than half their points are both traced."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < max(10, 0.5 * a.size):
        return float("nan")
    return _snr_db(a[ok] - np.median(a[ok]), b[ok] - np.median(b[ok]))


def _strip_evidence(
    traces: list[NDArray[np.float64]], base: str, n_rows: int, *, min_db: float = 5.0,
    contrast: float = 3.0,
) -> float:  # fmt: skip
    """How clearly the rows a layout leaves below its lead grid are rhythm strips (0 … 1).

    A rhythm strip repeats, at the same times, the lead one of the grid's cells prints: over
    that cell's span its rough trace matches the cell's (``min_db`` dB or better) and not the
    neighbouring cells of the same row (``contrast`` dB less alike), which print other leads.
    The rows of a 6×2 page taken as a 3×4 grid with three strips fail the contrast: a
    lead that resembles a 6×2 row's lead over one quarter of the page (aVL and I, V4 and V3)
    resembles it over the next quarter as well, the same two leads printed there. This tells
    3×4 pages with three rhythm strips from 6×2 pages when neither separators nor names can
    be read. Returns the share of the strips that repeat a cell, less a third, times 1.5
    (0 for one strip in three, 1 for all; 0 without strips).
    """
    grid: tuple[tuple[str, ...], ...] = LAYOUTS[base]["grid"]  # type: ignore[assignment]
    n_main = len(grid)
    if n_rows <= n_main or len(traces) != n_rows:
        return 0.0
    size = traces[0].size

    def cell(trace: NDArray[np.float64], c: int, n: int) -> NDArray[np.float64]:
        lo, hi = c * size // n, (c + 1) * size // n
        return trace[lo + (hi - lo) // 10 : hi - (hi - lo) // 20]

    repeats = 0
    for strip in traces[n_main:]:
        best, best_contrast = -np.inf, -np.inf
        for names, row in zip(grid, traces[:n_main], strict=True):
            n = len(names)
            if n < 2:
                continue
            for c in range(n):
                m = _match_db(cell(strip, c, n), cell(row, c, n))
                if not np.isfinite(m) or m <= best:
                    continue
                beside = [_match_db(cell(strip, d, n), cell(row, d, n)) for d in (c - 1, c + 1)
                          if 0 <= d < n]  # fmt: skip
                best = m
                best_contrast = m - max((b for b in beside if np.isfinite(b)), default=m)
        repeats += best >= min_db and best_contrast >= contrast
    share = repeats / (n_rows - n_main)
    return float(max(0.0, share - 1.0 / 3.0) * 1.5)


def _hypotheses(n_rows: int, columns: list[int]) -> list[str]:
    """Base layouts, the one the rows and the separators counted in them suggest first.

    More than 8 rows is a 12×1 page (3×4 and 6×2 pages print at most 3 and 2 rhythm strips):
    apparent separators there are QRS strokes of neighbouring rows, and lead names misread on
    a photo must not turn it into a grid with rhythm strips.
    """
    if n_rows > 8:
        return ["12x1"]
    multi = [c for c in columns if c > 1]
    ncol = int(np.median(multi)) if multi else 1
    if ncol >= 5:
        first = "3x5"
    elif ncol >= 3:
        first = "3x4"
    elif ncol == 2:
        first = "6x2-eik"
    else:
        first = {3: "3x4", 4: "3x4", 6: "6x2-eik", 7: "6x2-eik"}.get(n_rows, "12x1")
    # more columns first: a page's first column reads alike in 3x4, 6x2 and 12x1
    return [first] + [b for b in ("3x4", "6x2", "3x4-cabrera", "6x2-eik", "12x1") if b != first]


def _evidence(labels: list[list[LeadLabel | None]], base: str, n_rows: int) -> float:
    """How well the words read at the rows' starts agree with a layout's lead grid.

    Each cell whose label reads as the expected name adds its similarity above 0.45 (weak
    or unrelated matches add nothing); an extra lead's cell (``'*'``) its best similarity to
    an extra lead's name.
    """
    grid: tuple[tuple[str, ...], ...] = LAYOUTS[base]["grid"]  # type: ignore[assignment]
    total = 0.0
    for names, row in zip(grid[:n_rows], labels, strict=False):
        n = len(names)
        if not row or len(row) % n:
            continue
        for c, name in enumerate(names):
            lbl = row[c * len(row) // n]
            if lbl is not None:
                v = (
                    max(lbl.extra.values(), default=0.0)
                    if name == "*"
                    else lbl.scores.get(name, 0.0)
                )
                total += max(0.0, v - 0.45)
    return total


def _extra_name(label: LeadLabel | None, *, min_score: float = 0.5) -> str:
    """The extra lead's name a fifth column's label reads as, ``'*'`` when unread."""
    if label is None or not label.extra:
        return "*"
    name = max(label.extra, key=label.extra.__getitem__)
    return name if label.extra[name] >= min_score else "*"


def columns_from_labels(
    by_count: dict[int, list[list[LeadLabel | None]]], *, min_score: float = 0.3
) -> int | None:
    """The number of columns whose segment starts hold the printed lead names.

    Parameters
    ----------
    by_count : dict
        Column count → the words read at the starts of that many equal segments of every row
        (:func:`find_labels`).
    min_score : float
        Similarity (to any lead's name, extra leads' included) a word needs to count. Only
        words at least 0.9 times as wide as tall count: every name after a row's first is
        two or more characters (aVR, V1, V4R), while a QRS stroke beside a start can read
        as ``I``.

    Returns
    -------
    int or None
        The count whose starts after the first hold the most names, when they hold at least
        two per row (of at most three), twice as many as any other count's and at least
        three more; None when the names do not decide (too few read, or several counts
        alike).
    """

    def is_name(lbl: LeadLabel | None) -> bool:
        if lbl is None or lbl.any_score < min_score:
            return False
        x0, y0, x1, y1 = lbl.bbox
        return x1 - x0 + 1 >= 0.9 * (y1 - y0 + 1)

    named = {n: sum(is_name(lbl) for row in labels for lbl in row[1:])
             for n, labels in by_count.items()}  # fmt: skip
    if not named:
        return None
    best = max(named, key=named.__getitem__)
    rows = max((len(labels) for labels in by_count.values()), default=0)
    others = max((v for n, v in named.items() if n != best), default=0)
    if named[best] >= max(3, 2 * others, others + 3) and named[best] >= 2 * min(rows, 3):
        return best
    return None


def _same_word(a: LeadLabel, b: LeadLabel) -> float:
    """Similarity in [0, 1] of two printed words (the same name in the same font ≈ 1)."""
    crops = []
    for lbl in (a, b):
        x0, y0, x1, y1 = lbl.bbox
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=bool)
        mask[lbl.pixels[0] - y0, lbl.pixels[1] - x0] = True
        crops.append(_crop(mask))
    ncc = float(np.sum(_normalise_word(crops[0], _GLYPH_W) * _normalise_word(crops[1], _GLYPH_W)))
    ratio = np.log(crops[0].shape[1] / crops[0].shape[0]) - np.log(
        crops[1].shape[1] / crops[1].shape[0]
    )
    return max(0.0, ncc * float(np.exp(-1.5 * abs(ratio))))


#: Readings that a lead name cut by a touching trace can produce, and the names each may be
#: the rest of.
_PARTS_OF = {"I": frozenset({"I", "II", "III", "V1"}), "II": frozenset({"II", "III"})}
_PARTIAL_READINGS = frozenset(_PARTS_OF)


def _rhythm_name(
    label: LeadLabel,
    grid_labels: list[list[LeadLabel | None]],
    grid: tuple[tuple[str, ...], ...],
    default: str,
    min_score: float,
) -> str:
    """A rhythm strip's lead, from its label.

    The page prints every label in one font, so the label is first compared with the grid's
    labels, whose leads the layout gives: the lead of the word it matches (similarity ≥ 0.85)
    wins; when words of several leads match about equally (a partly read "II" looks like
    "I"), the default stays if it is one of them, else nothing is decided. Without a match,
    the templates' reading counts when it is at least ``min_score`` and 0.05 above any other
    name. A word a trace touches (:attr:`LeadLabel.crowded`) that reads ``I`` or ``II`` may
    have lost a letter to the trace and leaves the default.
    """
    sims: dict[str, float] = {}
    for names, row in zip(grid, grid_labels, strict=False):
        if not row or len(row) % len(names):
            continue
        for c, name in enumerate(names):
            other = row[c * len(row) // len(names)]
            if other is not None and other is not label:
                lead = name.lstrip("-")
                sims[lead] = max(sims.get(lead, 0.0), _same_word(label, other))
    name = default
    if sims and max(sims.values()) >= 0.85:
        top = max(sims.values())
        close = {n for n, v in sims.items() if v >= top - 0.05}
        if len(close) == 1:
            name = close.pop()
    else:
        ranked = sorted(label.scores.values(), reverse=True)
        if label.score >= min_score and ranked[0] - ranked[1] >= 0.05:
            name = label.text.lstrip("-")
    # a word the trace touches may have lost a letter to it: "I" may be the rest of "II",
    # "III" or "V1", "II" of "III"; such a reading does not overrule the default
    if label.crowded and name in _PARTIAL_READINGS:
        return default
    return name


def assign_leads(
    n_rows: int,
    columns: list[int],
    *,
    layout: str = "auto",
    rhythm_leads: tuple[str, ...] | None = None,
    labels: list[list[LeadLabel | None]] | None = None,
    traces: list[NDArray[np.float64]] | None = None,
    min_score: float = 0.7,
) -> tuple[str, list[tuple[str, ...]], str]:
    """Lead names per row from the row count, the columns found in each row and the printed
    lead names.

    Parameters
    ----------
    n_rows : int
        Rows of traces on the page.
    columns : list of int
        Segments counted in each row from its separators (1, 2, 4 or 5).
    layout : str
        ``'auto'`` or a name of :data:`LAYOUTS`, optionally with rhythm strips (``'3x4+II'``).
    rhythm_leads : tuple of str, optional
        Leads of the rhythm strips; default: read from their labels, else II (then V1, V5).
    labels : list of list of LeadLabel or None, optional
        Per row, the words read at equally spaced points of the row (its start, and e.g. its
        quarters: :func:`find_labels`); a layout with ``n`` columns looks at the points at
        ``c / n`` of the row. With ``layout='auto'`` the layout whose lead grid the labels
        agree with best is chosen (standard or Cabrera 3×4, the ECG-Image-Kit or the standard
        6×2 order, 12×1); the separators' and row count's layout stays unless another one
        agrees better by at least 0.3, and among layouts that agree about equally well the
        one with more columns wins. A rhythm strip is named by its label when that reads
        as a lead: matching one of the grid's labels (same font), else read with at least
        ``min_score`` (and better than any other name by 0.05).
    traces : list of ndarray, optional
        Rough traces of the rows (:func:`row_traces`). With ``layout='auto'``, each layout
        gains label evidence from how well its limb-lead cells obey Einthoven's and
        Goldberger's laws (each limb lead predicted from two others of its column): 0 up to
        3 dB, rising to 1.0 at 7 dB. It decides when the labels cannot be read (low
        resolution, faint or missing names) but does not overrule labels read well. A
        layout with rhythm strips gains up to 1.0 more when the rows below its grid repeat
        one of the grid's cells each (:func:`_strip_evidence`): six rows without separators
        or names are a 3×4 page with three strips rather than 6×2.
    min_score : float
        Similarity a rhythm strip's label needs to name it.

    Returns
    -------
    name : str
        The layout, e.g. ``'3x4+II'`` (Cabrera pages are named ``'3x4+II'`` too; their rows
        hold ``'-aVR'``).
    rows : list of tuple of str
        The leads of each row; ``'-aVR'`` is printed inverted.
    origin : str
        ``'synchronous'`` or ``'zero'`` (see :data:`LAYOUTS`).
    """
    if layout != "auto" and layout.split("+")[0] not in LAYOUTS:
        raise ValueError(
            f"unknown layout {layout!r}; expected 'auto' or one of: "
            + ", ".join(repr(k) for k in LAYOUTS)
            + " (optionally with '+LEAD,...' rhythm strips, e.g. '3x4+II')"
        )
    if labels is not None and len(labels) != n_rows:
        raise ValueError(f"labels has {len(labels)} rows, expected n_rows={n_rows}")
    if layout == "auto":
        candidates = _hypotheses(n_rows, columns)
        base = candidates[0]
        scores = {c: _evidence(labels, c, n_rows) if labels is not None else 0.0
                  for c in candidates}  # fmt: skip
        if traces is not None and len(traces) == n_rows:
            for c in candidates:
                law = _limb_consistency(traces, c, n_rows)
                if np.isfinite(law):
                    scores[c] += float(np.clip((law - 3.0) / 4.0, 0.0, 1.0))
                # rows below the grid that repeat one of its cells are rhythm strips
                scores[c] += _strip_evidence(traces, c, n_rows)
        if labels is not None or traces is not None:
            top = max(scores.values())
            base = next(c for c in candidates if scores[c] > top - 0.3)
        grid = LAYOUTS[base]["grid"]
        n_main = min(len(grid), n_rows)  # type: ignore[arg-type]
        n_rhythm = n_rows - n_main
        if rhythm_leads is None:
            default = {1: ("II",), 2: ("II", "V5"), 3: ("II", "V1", "V5")}
            chosen = list(default.get(n_rhythm, ("II",) * n_rhythm))
            for k in range(n_rhythm):
                row_labels = labels[n_main + k] if labels is not None else []
                lbl = row_labels[0] if row_labels else None
                if lbl is None or labels is None:
                    continue
                cells: tuple[tuple[str, ...], ...] = LAYOUTS[base]["grid"]  # type: ignore[assignment]
                chosen[k] = _rhythm_name(lbl, labels[:n_main], cells, chosen[k], min_score)
            rhythm_leads = tuple(chosen)
    else:
        base, _, extra = layout.partition("+")
        grid = LAYOUTS[base]["grid"]
        n_main = len(grid)  # type: ignore[arg-type]
        if rhythm_leads is None:
            rhythm_leads = tuple(x for x in extra.split(",") if x)
    grid_rows = [tuple(r) for r in LAYOUTS[base]["grid"]][:n_main]  # type: ignore[attr-defined]
    # an extra lead's cell takes the name its label reads as
    for i, names in enumerate(grid_rows):
        if "*" in names:
            row = labels[i] if labels is not None else []
            n = len(names)
            grid_rows[i] = tuple(
                _extra_name(row[c * len(row) // n] if row and not len(row) % n else None)
                if name == "*" else name
                for c, name in enumerate(names)
            )  # fmt: skip
    rhythm = tuple(rhythm_leads)[: max(0, n_rows - n_main)]
    rows = grid_rows + [(name,) for name in rhythm]
    rows += [()] * (n_rows - len(rows))
    name = base.replace("-eik", "").replace("-cabrera", "")
    name += "+" + ",".join(rhythm) if rhythm else ""
    origin = str(LAYOUTS[base]["column_origin"])
    return name, rows, origin


# --------------------------------------------------------------------------------------------
# Lead labels: the printed names, read by template matching
# --------------------------------------------------------------------------------------------

#: Names a lead label can carry (Cabrera pages print ``-aVR``).
LABEL_NAMES: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "-aVR",
)  # fmt: skip

#: Names of the extra leads 15-lead pages print in a fifth column (right-sided and posterior
#: chest leads); each is also matched in its lower-case spelling (``V4r``).
EXTRA_LABEL_NAMES: tuple[str, ...] = ("V3R", "V4R", "V5R", "V6R", "V7", "V8", "V9")

#: Font files (in matplotlib's font folder, so always installed) the templates are drawn in:
#: the renderer's DejaVu family, plus STIX (a Times-like serif) and Computer Modern for the
#: faces ECG machines print.
_TEMPLATE_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
    "DejaVuSansDisplay.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "cmr10.ttf", "cmss10.ttf",
)  # fmt: skip

#: Size (rows, columns) at which words and templates are compared (both are stretched to it;
#: their aspect ratios are compared apart).
_GLYPH_H, _GLYPH_W = 20, 36


@dataclass(frozen=True)
class LeadLabel:
    """A printed word at a lead's start and how well it reads as each lead name.

    ``bbox`` is ``(x0, y0, x1, y1)`` in page pixels (inclusive); ``scores`` maps every name of
    :data:`LABEL_NAMES` to a similarity in [0, 1]; ``pixels`` are the word's ink pixels
    (rows, columns), which :func:`erase_labels` removes before traces are followed.
    ``crowded`` is True when other ink (a trace) comes within a letter gap of the word's
    sides: a letter that touches it merges into the trace's ink, so the word may be part of
    a longer name (the ``I`` of ``II``, the ``1`` of ``V1``). ``extra`` maps the names of
    :data:`EXTRA_LABEL_NAMES` to their similarities (kept apart: :attr:`text` and
    :attr:`score` are about the 12 leads' names).
    """

    bbox: tuple[int, int, int, int]
    scores: dict[str, float]
    pixels: tuple[NDArray[np.intp], NDArray[np.intp]]
    crowded: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def any_score(self) -> float:
        """Similarity of the best-matching name, extra leads' names included."""
        return max(self.score, max(self.extra.values(), default=0.0))

    @property
    def text(self) -> str:
        """The best-matching lead name."""
        return max(self.scores, key=self.scores.__getitem__)

    @property
    def score(self) -> float:
        """Similarity of the best-matching name."""
        return self.scores[self.text]


def _crop(mask: NDArray[np.bool_]) -> NDArray[np.float32]:
    """A word's ink cropped to its box, at most ``2 * _GLYPH_H`` rows tall."""
    import cv2

    ys, xs = np.nonzero(mask)
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    if crop.shape[0] > 2 * _GLYPH_H:
        w = max(2, int(round(crop.shape[1] * 2 * _GLYPH_H / crop.shape[0])))
        crop = np.asarray(cv2.resize(crop, (w, 2 * _GLYPH_H), interpolation=cv2.INTER_AREA))
    return crop


def _normalise_word(crop: NDArray[np.float32], width: int) -> NDArray[np.float64]:
    """A cropped word resized to ``_GLYPH_H`` × ``width``, framed by a blank margin, blurred,
    zero-mean and unit-norm (a dot product is a normalised correlation)."""
    import cv2

    small = np.asarray(cv2.resize(crop, (width, _GLYPH_H), interpolation=cv2.INTER_AREA))
    img = np.asarray(cv2.GaussianBlur(np.pad(small, 3), (0, 0), 1.2), dtype=np.float64)
    img -= img.mean()
    out: NDArray[np.float64] = img / max(float(np.linalg.norm(img)), 1e-9)
    return out


def _font_files(names: Sequence[str]) -> list[str]:
    """Paths of the fonts ``names`` that matplotlib ships (its ``fonts/ttf`` folder), those
    present."""
    import os

    import matplotlib

    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = [os.path.join(folder, name) for name in names]
    return [p for p in paths if os.path.isfile(p)]  # a trimmed install may lack some


def _drawn(text: str, path: str) -> NDArray[np.float32] | None:
    """``text`` drawn at 48 px in the font at ``path``, cropped to its ink (:func:`_crop`);
    None when the font draws no ink for it."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(path, 48)
    left, top, right, bottom = face.getbbox(text)
    canvas = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=face, fill=255)
    ink = np.asarray(canvas) > 110
    return _crop(ink) if ink.any() else None


def _match(
    crop: NDArray[np.float32],
    width: int,
    log_aspects: NDArray[np.float64],
    images: NDArray[np.floating[Any]],
) -> NDArray[np.float64]:
    """Similarity in [0, 1] of a cropped word to templates (``images``: normalised at
    ``width``, one flattened row each, of log aspect ratios ``log_aspects``): the normalised
    correlation, lowered when the aspect ratios differ (``I`` vs ``III``)."""
    word = _normalise_word(crop, width).ravel().astype(images.dtype)
    ncc = (images @ word).astype(np.float64)
    penalty = np.exp(-1.5 * np.abs(np.log(crop.shape[1] / crop.shape[0]) - log_aspects))
    return np.asarray(np.clip(ncc * penalty, 0.0, 1.0))


@cache
def _templates() -> tuple[tuple[str, ...], NDArray[np.float64], NDArray[np.float64]]:
    """Every lead name drawn in every template font: names, log aspect ratios and normalised
    images (one flattened row each)."""
    names: list[str] = []
    aspects: list[float] = []
    images: list[NDArray[np.float64]] = []
    spellings = [(n, n) for n in LABEL_NAMES + EXTRA_LABEL_NAMES]
    spellings += [(n, n.replace("R", "r")) for n in EXTRA_LABEL_NAMES if "R" in n]
    for path in _font_files(_TEMPLATE_FONTS):
        for name, text in spellings:
            crop = _drawn(text, path)
            if crop is None:  # pragma: no cover - a font without these characters
                continue
            names.append(name)
            aspects.append(float(np.log(crop.shape[1] / crop.shape[0])))
            images.append(_normalise_word(crop, _GLYPH_W).ravel())
    return tuple(names), np.asarray(aspects), np.stack(images)


def read_label(mask: NDArray[np.bool_]) -> dict[str, float]:
    """Similarity in [0, 1] of a word (a binary image of its ink) to every lead name.

    The word is compared with each name drawn in several fonts (sans, serif, mono, bold): both
    are stretched to the same size, blurred and correlated, and the correlation is lowered
    when the word's aspect ratio differs from the name's (``I`` vs ``III``). The best font
    counts.

    Examples
    --------
    >>> import numpy as np
    >>> bar = np.zeros((30, 12), bool); bar[2:28, 4:8] = True   # a thick vertical stroke
    >>> scores = read_label(bar)
    >>> max(scores, key=scores.get)
    'I'
    """
    return _read_names(mask)[0]


def _read_names(mask: NDArray[np.bool_]) -> tuple[dict[str, float], dict[str, float]]:
    """:func:`read_label`'s similarities to the 12 leads' names and to the extra leads'
    names (:data:`EXTRA_LABEL_NAMES`)."""
    scores = dict.fromkeys(LABEL_NAMES + EXTRA_LABEL_NAMES, 0.0)
    if mask.any():
        names, log_aspects, images = _templates()
        sim = _match(_crop(mask), _GLYPH_W, log_aspects, images)
        for name, v in zip(names, sim.tolist(), strict=True):
            scores[name] = max(scores[name], v)
    return ({n: scores[n] for n in LABEL_NAMES}, {n: scores[n] for n in EXTRA_LABEL_NAMES})


def _words(
    ink: NDArray[np.bool_], *, px_per_mm: float
) -> tuple[NDArray[np.int32], NDArray[np.int32], list[tuple[list[int], tuple[int, int, int, int]]]]:
    """Connected components shaped like characters, grouped into words.

    Returns the component label image, the components' ``(x, y, w, h, area)`` rows (as
    OpenCV's ``connectedComponentsWithStats``) and, per word, its component labels and box
    ``(x0, y0, x1, y1)``. A character is 0.8-6 mm tall and at most 8 mm wide (traces are
    long); neighbours that overlap vertically and are closer than half a character's height
    form a word at most 15 mm wide and 1.7-6 mm tall.
    """
    import cv2

    _, lab_any, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    lab: NDArray[np.int32] = np.asarray(lab_any, dtype=np.int32)
    st = np.asarray(stats[1:], dtype=np.int64)
    h_all = st[:, 3]
    keep = (h_all >= 0.8 * px_per_mm) & (h_all <= 6 * px_per_mm)
    keep &= (st[:, 2] <= 8 * px_per_mm) & (st[:, 4] >= 3)
    ks_all = np.flatnonzero(keep)
    glyphs = sorted(
        zip(st[ks_all, 0].tolist(), st[ks_all, 1].tolist(),
            (st[ks_all, 0] + st[ks_all, 2] - 1).tolist(),
            (st[ks_all, 1] + st[ks_all, 3] - 1).tolist(), (ks_all + 1).tolist(), strict=True)
    )  # fmt: skip
    words: list[tuple[list[int], tuple[int, int, int, int]]] = []
    for x0, y0, x1, y1, k in glyphs:
        # words are opened left to right: only the recent ones can still reach this glyph
        for i in range(len(words) - 1, max(-1, len(words) - 41), -1):
            ks, (wx0, wy0, wx1, wy1) = words[i]
            h = max(y1 - y0, wy1 - wy0) + 1
            overlap = min(y1, wy1) - max(y0, wy0) + 1
            gap = x0 - wx1 - 1
            if overlap >= 0.5 * min(y1 - y0 + 1, wy1 - wy0 + 1) and gap <= 0.5 * h + 1:
                box = (min(wx0, x0), min(wy0, y0), max(wx1, x1), max(wy1, y1))
                if box[2] - box[0] <= 15 * px_per_mm and box[3] - box[1] <= 6 * px_per_mm:
                    words[i] = ([*ks, k], box)
                    break
        else:
            words.append(([k], (x0, y0, x1, y1)))
    # a lead name's capitals are at least 1.7 mm tall (smaller marks are dots and specks)
    stats_i: NDArray[np.int32] = np.asarray(stats, dtype=np.int32)
    return lab, stats_i, [w for w in words if w[1][3] - w[1][1] + 1 >= 1.7 * px_per_mm]


def _crowded(lab: NDArray[np.int32], ks: list[int], box: tuple[int, int, int, int]) -> bool:
    """Whether ink of other components lies within a letter gap (0.6 × the word's height)
    left or right of the word, on the word's own lines."""
    x0, y0, x1, y1 = box
    gap = max(2, int(round(0.6 * (y1 - y0 + 1))))
    band = lab[y0 : y1 + 1]
    sides = np.concatenate(
        [band[:, max(0, x0 - gap) : x0].ravel(), band[:, x1 + 1 : x1 + 1 + gap].ravel()]
    )
    other = sides[sides > 0]
    return bool(other.size) and not bool(np.isin(other, ks).all())


def _without_trace_runs(ink: NDArray[np.bool_], *, min_run: int) -> NDArray[np.bool_]:
    """``ink`` without its horizontal runs of at least ``min_run`` pixels (a flat trace; a
    printed letter's serifs and bars are shorter than its word)."""
    from ._extract import _column_runs

    ys, x0s, x1s = _column_runs(ink.T)  # the runs along each image row, last column included
    out = ink.copy()
    for y, a, b in zip(ys.tolist(), x0s.tolist(), x1s.tolist(), strict=True):
        if b - a + 1 >= min_run:
            out[y, a : b + 1] = False
    return out


def _touching_words(
    ink: NDArray[np.bool_], box: tuple[int, int, int, int], *, px_per_mm: float
) -> list[LeadLabel]:
    """The words of two or more letters inside ``box`` (``x0, y0, x1, y1``, exclusive ends)
    once the trace they touch is taken apart from them.

    A name printed on or just above the trace's line joins the trace, or a piece of it, into
    one mark or one word that reads as no name. Here the horizontal runs of ink longer than
    2 mm (the trace's flat stretches; a name's serifs and bars are shorter) are left out, and
    of each word only the glyphs of one line of text are read (a name's capitals start and
    end on one line, its small letters end on it, lower; a piece of trace grouped with them
    does neither, or stands on the line but rises above the capitals): for each glyph, those
    whose feet are within a tenth of their height of its own and whose tops are as high or
    lower. A single stroke is not read: it cannot be told from the stroke of a QRS complex.
    """
    import cv2

    x0, y0, x1, y1 = box
    sub = _without_trace_runs(ink[y0:y1, x0:x1], min_run=max(3, int(round(2.0 * px_per_mm))))
    lab, stats, words = _words(sub, px_per_mm=px_per_mm)
    out = []
    for ks, _ in words:
        tops = stats[ks, 1].astype(np.float64)
        feet = tops + stats[ks, 3] - 1
        tol = np.maximum(1.0, 0.1 * stats[ks, 3])
        tried: set[tuple[int, ...]] = set()
        for i in range(len(ks)):
            on_foot = np.abs(feet - feet[i]) <= tol
            on_line = on_foot & ((np.abs(tops - tops[i]) <= tol) | (tops > tops[i]))
            group = tuple(k for k, on in zip(ks, on_line.tolist(), strict=True) if on)
            if len(group) < 2 or group in tried:
                continue
            tried.add(group)
            word = np.isin(lab, group).astype(np.uint8)
            bx, by, bw, bh = cv2.boundingRect(word)
            crop = word[by : by + bh, bx : bx + bw].astype(bool)
            yy, xx = np.nonzero(crop)
            scores, extra = _read_names(crop)
            out.append(LeadLabel(bbox=(bx + x0, by + y0, bx + bw - 1 + x0, by + bh - 1 + y0),
                                 scores=scores, pixels=(yy + by + y0, xx + bx + x0),
                                 crowded=True, extra=extra))  # fmt: skip
    return out


def _separator_ticks(
    ink: NDArray[np.bool_],
    rows: list[RowGeometry],
    starts: list[list[float]],
    *,
    px_per_mm: float,
) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """The pixels (rows, columns) of the separator ticks at the segments' inner starts.

    Some printers mark a boundary between segments with short ticks clear of the trace,
    one above it and one below (real-scan ecg00012: 5 mm tall, 0.6 mm thick, 0.5 mm off the
    trace), not with a bar across it, so :func:`separator_columns` (a stroke near the
    baseline) does not see them. A lone tick is a plain vertical stroke and reads as the
    letter "I" as well as a sans-serif "I" does, so neither its shape nor its reading tells
    it from the name; where it stands does. A tick is centred on the boundary (within
    0.8 mm), while a printed name starts beside it; and a printer draws its ticks alike
    wherever it draws them: each has a twin centred at the same distance from its boundary
    (within 0.3 mm), across the trace in its own row or at the same column of another row.
    A name stands once in a row's cell, and lead I's name, the only one a tick can pass
    for, is never printed at an inner boundary. A candidate is one connected stroke in a
    window 1.5 mm either side of the boundary (touching neither side: not a letter of a
    wider word, not the trace) and 14 mm above or below the baseline, within the row's
    band: at most 1 mm wide, and at least 2 mm and three widths tall.
    """
    import cv2

    h, w = ink.shape
    half = 1.5 * px_per_mm
    found = []  # (row, column, offset from the boundary, above the baseline, pixels)
    for i, (r, xs) in enumerate(zip(rows, starts, strict=True)):
        for c, x in enumerate(xs[1:], start=1):
            x0, x1 = int(max(0, x - half)), int(min(w, x + half + 1))
            y0 = int(max(0, r.y_lo, r.center - 14 * px_per_mm))
            y1 = int(min(h, r.y_hi + 1, r.center + 14 * px_per_mm + 1))
            if x1 - x0 < 3 or y1 - y0 < 3:
                continue
            n, lab, st, _ = cv2.connectedComponentsWithStats(
                ink[y0:y1, x0:x1].astype(np.uint8), connectivity=8
            )
            for k in range(1, n):
                bx, by, bw, bh, _ = (int(v) for v in st[k])
                if bx == 0 or bx + bw == x1 - x0:
                    continue
                if bw > max(2.0, 1.0 * px_per_mm) or bh < max(2.0 * px_per_mm, 3 * bw):
                    continue
                off = x0 + bx + (bw - 1) / 2 - x
                if abs(off) > 0.8 * px_per_mm:
                    continue
                yy, xx = np.nonzero(lab[by : by + bh, bx : bx + bw] == k)
                above = y0 + by + (bh - 1) / 2 < r.center
                found.append((i, c, off, above, (yy + y0 + by, xx + x0 + bx)))
    ticks = []
    for i, c, off, above, pixels in found:
        # a twin: across the baseline in the same row, or at the same column of another row
        if any(
            c2 == c and abs(off2 - off) <= 0.3 * px_per_mm and (i2 != i or above2 != above)
            for i2, c2, off2, above2, _ in found
        ):
            ticks.append(pixels)
    return ticks


def find_labels(
    prob: NDArray[np.float32],
    rows: list[RowGeometry],
    starts: list[list[float]],
    *,
    px_per_mm: float,
    min_score: float = 0.6,
) -> list[list[LeadLabel | None]]:
    """The printed lead name at the start of every segment of every row, read.

    Parameters
    ----------
    prob : ndarray
        Ink probability map of the page.
    rows : list of RowGeometry
        The rows (:func:`find_rows`).
    starts : list of list of float
        Per row, the x (px) where each of its segments starts.
    px_per_mm : float
        Page scale.

    Returns
    -------
    list of list of LeadLabel or None
        Per row and segment, the word found there (``None`` when none), with its scores for
        every lead name (:func:`read_label`). A word counts when it starts between 6 mm before
        and 10 mm after the segment's start, within the row's band and 14 mm of its baseline;
        the best-reading one is kept. The lead separators at the segments' starts
        (:func:`separator_columns`) are left out of the ink first: a name printed against
        its bar would otherwise join it into one mark too tall for a word; so are the ticks
        some printers mark them with above and below the trace (:func:`_separator_ticks`),
        which read as "I" and outvoted the names.
    """
    ink = prob > 0.5
    for r, xs in zip(rows, starts, strict=True):
        for x in xs[1:]:
            bar = separator_columns(prob, x=x, baseline=r.center, px_per_mm=px_per_mm)
            if bar is not None:
                ink[bar[2] : bar[3] + 1, bar[0] : bar[1] + 1] = False
    for ys, xs_ in _separator_ticks(ink, rows, starts, px_per_mm=px_per_mm):
        ink[ys, xs_] = False
    lab, _, words = _words(ink, px_per_mm=px_per_mm)
    read: dict[int, LeadLabel] = {}
    slots: list[list[list[LeadLabel]]] = []
    for r, xs in zip(rows, starts, strict=True):
        row_slots: list[list[LeadLabel]] = []
        for x in xs:
            cands: list[LeadLabel] = []
            for i, (ks, (x0, y0, x1, y1)) in enumerate(words):
                cy = (y0 + y1) / 2
                if not (x - 6 * px_per_mm <= x0 <= x + 10 * px_per_mm):
                    continue
                if not (r.y_lo <= cy <= r.y_hi and abs(cy - r.center) <= 14 * px_per_mm):
                    continue
                if i not in read:
                    sub = np.isin(lab[y0 : y1 + 1, x0 : x1 + 1], ks)
                    yy, xx = np.nonzero(sub)
                    scores, extra = _read_names(sub)
                    read[i] = LeadLabel(
                        bbox=(x0, y0, x1, y1),
                        scores=scores,
                        pixels=(yy + y0, xx + x0),
                        crowded=_crowded(lab, ks, (x0, y0, x1, y1)),
                        extra=extra,
                    )
                cands.append(read[i])
            # a name the trace runs through (its letters standing on the trace's line) is
            # looked for without the trace's flat runs when no word here reads well
            if max((c.score for c in cands), default=0.0) < min_score:
                reach = 14 * px_per_mm
                window = (int(max(0, x - 6 * px_per_mm)), int(max(r.y_lo, r.center - reach)),
                          int(min(ink.shape[1], x + 16 * px_per_mm)),
                          int(min(r.y_hi + 1, r.center + reach + 1)))  # fmt: skip
                for lbl in _touching_words(ink, window, px_per_mm=px_per_mm):
                    if lbl.score >= min_score and lbl.bbox[0] <= x + 10 * px_per_mm:
                        cands.append(lbl)
            row_slots.append(cands)
        slots.append(row_slots)

    # a page prints its lead names in one font: where several words read well, a mark of
    # another height (a piece of trace that reads as "I") is not a name; and it prints them
    # at one place against their segments' starts and rows' baselines: a word more than
    # 5 mm across or 4 mm up or down from where the others sit is not a name either
    def place(lbl: LeadLabel, r: RowGeometry, x: float) -> tuple[float, float]:
        return lbl.bbox[0] - x, (lbl.bbox[1] + lbl.bbox[3]) / 2 - r.center

    tops = [(max(c, key=lambda lbl: lbl.score), r, x)
            for r, xs, rs in zip(rows, starts, slots, strict=True)
            for x, c in zip(xs, rs, strict=True) if c]  # fmt: skip
    good = [(lbl, r, x) for lbl, r, x in tops if lbl.score >= 0.6]
    size, at = None, None
    if len(good) >= 3:
        size = float(np.median([lbl.bbox[3] - lbl.bbox[1] + 1 for lbl, _, _ in good]))
        at = np.median([place(*g) for g in good], axis=0)
    out: list[list[LeadLabel | None]] = []
    for r, xs, row_slots in zip(rows, starts, slots, strict=True):
        found: list[LeadLabel | None] = []
        for x, cands in zip(xs, row_slots, strict=True):
            if size is not None:
                fits = [c for c in cands if 0.8 <= (c.bbox[3] - c.bbox[1] + 1) / size <= 1.25]
                cands = fits or cands
            if at is not None:
                offsets = [np.subtract(place(c, r, x), at) for c in cands]
                cands = [c for c, (dx, dy) in zip(cands, offsets, strict=True)
                         if abs(dx) <= 5 * px_per_mm and abs(dy) <= 4 * px_per_mm]  # fmt: skip
            found.append(max(cands, key=lambda lbl: lbl.score) if cands else None)
        out.append(found)
    return out


def erase_labels(
    prob: NDArray[np.float32],
    labels: list[list[LeadLabel | None]],
    row_leads: list[tuple[str, ...]],
    *,
    min_score: float = 0.5,
    centers: Sequence[float] | None = None,
) -> NDArray[np.float32]:
    """A copy of ``prob`` without the ink of the printed lead names, so that no trace is
    followed into its label.

    A word is erased when it reads as the lead the layout puts there (``row_leads``, as from
    :func:`assign_leads`) with at least ``min_score``; ``labels`` are as for
    :func:`assign_leads`. Some printers put the names on the trace's line right after the
    pulse, and the trace runs through the letters: the word then reads as part of the name
    (a crowded ``I`` where ``II`` or ``III`` stands, :data:`_PARTS_OF`) or as no name at all
    (``III`` with a piece of trace through it), and the trace was followed up and down the
    letters (0.3 mV strokes over the first 0.2 s on the 1200-px phone photos seen). Such a
    word is erased too: a crowded partial reading (at least ``min_score``; a QRS stroke at
    the row's start reads as a poor ``I``), or any word where two or more other rows
    print this column's name legibly, at their place (its left end within half their
    height, about 1.5 mm) and of their size (0.8 to 1.5 times their height: the trace
    through it adds some). The trace under the letters is then unknown, not invented.
    With the rows' baselines (``centers``), a name of upright letters (``I``, ``II``,
    ``III``) wholly joined to the trace, so that no word was read there, is erased where
    the other rows' names put it (:func:`_erase_joined_name`).
    """
    out = prob.copy()
    # per row and column, the word where the layout's name stands; then which read as it
    slots: dict[tuple[int, int], LeadLabel] = {}
    for i, (row, leads) in enumerate(zip(labels, row_leads, strict=True)):
        n = len(leads)
        if not row or not n or len(row) % n:
            continue
        for c in range(n):
            lbl = row[c * len(row) // n]
            if lbl is not None:
                slots[i, c] = lbl
    good = {
        k for k, lbl in slots.items() if lbl.scores.get(row_leads[k[0]][k[1]], 0.0) >= min_score
    }
    erased: set[tuple[int, int]] = set()
    for (i, c), lbl in slots.items():
        if (i, c) in good:
            out[lbl.pixels] = 0.0
            continue
        # a name the trace runs through reads as part of itself ("I" of "II"), or as
        # another word where the other rows print this column's name legibly at its place
        name = row_leads[i][c]
        partial = lbl.text in _PARTS_OF and name in _PARTS_OF[lbl.text]
        if lbl.crowded and partial and lbl.score >= min_score:
            out[lbl.pixels] = 0.0
            _erase_missing_letters(out, lbl, name)
            erased.add((i, c))
            continue
        peers = [slots[k] for k in good if k[1] == c and k[0] != i]
        if len(peers) < 2:
            continue
        x0 = float(np.median([p.bbox[0] for p in peers]))
        tall = float(np.median([p.bbox[3] - p.bbox[1] + 1 for p in peers]))
        size = (lbl.bbox[3] - lbl.bbox[1] + 1) / tall
        if abs(lbl.bbox[0] - x0) <= 0.5 * tall and 0.8 <= size <= 1.5:
            out[lbl.pixels] = 0.0
            erased.add((i, c))
    if centers is not None:
        named = [(slots[k], centers[k[0]]) for k in good]
        for i, leads in enumerate(row_leads):
            for c, name in enumerate(leads):
                if (i, c) in good or (i, c) in erased:
                    continue
                same = [(slots[k], centers[k[0]]) for k in good if k[1] == c and k[0] != i]
                _erase_joined_name(out, same, named, name, centers[i])
    return out


def _erase_joined_name(
    prob: NDArray[np.float32],
    peers: list[tuple[LeadLabel, float]],
    names: list[tuple[LeadLabel, float]],
    name: str,
    center: float,
    *,
    cover: float = 0.6,
) -> None:
    """Erase (in place) a name of upright letters (``I``, ``II``, ``III``) that touches the
    trace all along, where the names of the same column in other rows stand.

    Printed over the row's first R wave (real-scan ecg00012 prints "II" with its second
    letter on the R wave's downstroke, its first one against the upstroke), the letters
    join the trace's ink: no word is read there, nothing was erased, and the letter on the
    stroke widened it, so that the fit kept the R wave's top one to two samples too long
    (0.2 mV off on the way down). The page prints its names in one font at one place
    against the rows' baselines and the segments' starts: with ``peers`` (words of the
    same column that read as their names, each with its row's baseline) and ``names``
    (every such word on the page, at least three) the name's letters are placed as the
    others are: the left end at the peers' median one, the top at the names' median height
    over the baseline, as tall as they are, each letter as wide as their upright letters
    (runs of inked columns of ``I``, ``II`` and ``III``) and one letter pitch apart (their
    letters' spacing; the width plus half the height when none has two), the top and foot
    then set on the ink. Where an upright stroke stands in each box (inked over at least
    ``cover`` of the rows in half its columns), the box is cleared, with a pixel's margin,
    except where the trace passes (:func:`_stroke_corridors`): the trace wins. A box where
    the letter would hide a stroke's tip (no ink above it, in its columns and a letter's
    width either side, while a stroke comes up to it from more than half a height below;
    or the mirror case) is left as it is.
    """
    if not peers or len(names) < 3 or not name or set(name) != {"I"}:
        return
    x0 = int(round(float(np.median([p.bbox[0] for p, _ in peers]))))
    top = int(round(center + float(np.median([p.bbox[1] - c for p, c in names]))))
    tall = int(round(float(np.median([p.bbox[3] - p.bbox[1] + 1 for p, _ in names]))))
    widths: list[int] = []
    pitches: list[int] = []
    for p, _ in names:
        if set(p.text) != {"I"}:
            continue
        inked = np.zeros(p.bbox[2] - p.bbox[0] + 1, dtype=bool)
        inked[np.asarray(p.pixels[1]) - p.bbox[0]] = True
        letters = _runs(inked)
        widths += [b - a + 1 for a, b in letters]
        pitches += np.diff([a for a, _ in letters]).tolist()
    if not widths or tall < 3:
        return
    w = int(round(float(np.median(widths))))
    pitch = float(np.median(pitches)) if pitches else w + 0.5 * tall
    h, width = prob.shape
    bottom = top + tall - 1
    half = tall // 2
    if top - 2 * tall < 0 or bottom + 2 * tall >= h:
        return
    ink = np.asarray(prob > 0.5)
    boxes = []
    for k in range(len(name)):
        a = int(round(x0 + k * pitch)) - 1
        b = a + w + 2  # exclusive, a pixel's margin either side
        if a - w < 0 or b + w > width:
            return
        covered = ink[top : bottom + 1, a:b].mean(axis=0) >= cover
        if covered.sum() < 0.5 * (b - a):
            return  # no upright stroke there: the name is not where the others put it
        boxes.append((a, b))
    # the baselines place the name to a few pixels: its top and foot are the first and last
    # rows within a tenth of its height of theirs where its letters' columns are inked
    cols = np.concatenate([np.arange(a, b) for a, b in boxes])
    m = max(2, int(round(0.1 * tall)))
    rows = np.arange(top - m, bottom + m + 1)
    full = np.flatnonzero(ink[np.ix_(rows, cols)].mean(axis=1) >= cover)
    tops, feet = full[full <= 2 * m], full[full >= rows.size - 1 - 2 * m]
    top = int(rows[tops[0]]) if tops.size else top
    bottom = int(rows[feet[-1]]) if feet.size else bottom
    for a, b in boxes:
        near = ink[:, a - w : b + w]
        above = bool(near[top - tall : top - 1].any())
        below = bool(near[bottom + 2 : bottom + 2 + tall].any())
        from_below = bool(near[bottom + 2 : bottom + 2 + half].any(axis=1).all())
        from_above = bool(near[top - 1 - half : top - 1].any(axis=1).all())
        if (from_below and not above) or (from_above and not below):
            continue  # a stroke's tip inside the letter: the trace wins
        prob[top - 1 : bottom + 2, a:b] *= _stroke_corridors(ink, top - 1, bottom + 1, a, b, w)


def _runs(mask: NDArray[np.bool_], min_len: int = 1) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in a 1-D mask at least ``min_len`` long."""
    edges = np.diff(np.concatenate(([False], mask, [False])).astype(np.int8))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b) - 1) for a, b in zip(starts, stops, strict=True) if b - a >= min_len]


def _stroke_corridors(
    ink: NDArray[np.bool_], y0: int, y1: int, a: int, b: int, reach: int
) -> NDArray[np.bool_]:
    """Where, in rows ``y0..y1`` and columns ``a..b-1`` of ``ink`` (a letter's box), the
    trace's strokes that cross those rows pass: between the straight lines joining each
    run of ink in a row up to a quarter of the box's height above it (the farthest before
    the strokes end or a flat stretch of trace, a run over 3/4 of the window, crosses) to
    the nearest run in such a row below, and each run below to the nearest above (columns within
    ``reach`` of the box). Strokes are straight over a letter's
    height (a tip inside it is left alone by the caller); the rows right beside the box
    may still hold the letter's joint with the stroke (real-scan ecg00012: an R wave's
    two strokes and the letter make one blob from 0.5 mm above the letter to 0.4 mm
    below it), the rows farther off the strokes alone. Without ink both above and below
    (a letter on its own, or a tip just above it), nowhere: the box is cleared and the
    fit draws the stroke across.
    """
    lo, hi = max(0, a - reach), min(ink.shape[1], b + reach)

    def probe(step: int) -> tuple[int, list[tuple[int, int]]]:
        # going away from the box, up to a quarter of its height, the last row before
        # one without ink (the strokes end: a tip, or the baseline) or one that a flat
        # stretch of trace crosses (a run over most of the window); its runs
        edge = y0 if step < 0 else y1
        found: tuple[int, list[tuple[int, int]]] = (edge + step, [])
        for d in range(1, max(1, (y1 - y0 + 1) // 4) + 1):
            runs = _runs(ink[edge + step * d, lo:hi])
            if not runs or any(r1 - r0 + 1 >= 0.75 * (hi - lo) for r0, r1 in runs):
                break
            found = (edge + step * d, runs)
        return found

    (ya, ups), (yb, downs) = probe(-1), probe(1)
    keep = np.zeros((y1 - y0 + 1, b - a), dtype=bool)
    frac = (np.arange(y0, y1 + 1) - ya) / (yb - ya)
    cols = np.arange(a, b) - lo
    if not ups or not downs:
        return keep

    # a stroke's run above and its run below are the nearest to each other (two strokes
    # close together must not make one corridor across the letter between them)
    def nearest(run: tuple[int, int], others: list[tuple[int, int]]) -> tuple[int, int]:
        return min(others, key=lambda o: abs(o[0] + o[1] - run[0] - run[1]))

    pairs = {(u, nearest(u, downs)) for u in ups} | {(nearest(d_, ups), d_) for d_ in downs}
    for (ua, ub), (da, db) in pairs:
        left = np.floor(ua + frac * (da - ua))
        right = np.ceil(ub + frac * (db - ub))
        keep |= (cols[None, :] >= left[:, None]) & (cols[None, :] <= right[:, None])
    return keep


def _erase_missing_letters(
    prob: NDArray[np.float32], lbl: LeadLabel, name: str, *, cover: float = 0.6
) -> None:
    """Erase (in place) the letters of ``name`` that a partial reading ``lbl`` left out.

    Where the trace touches one of a name's letters (the first ``I`` of ``III`` standing on
    the trace's first QRS stroke, or on its start), that letter joins the trace's ink and
    the word is read from the other letters only (``II``); erasing those alone leaves the
    joined letter, and the trace was followed up it (0.3 mV and more over the row's first
    0.1 s on the phone photos seen). The missing letters stand beside the word, on its
    rows, within one letter pitch each (the word's width per letter plus half its height,
    a wide letter gap): on the side where a column of ink covers at least ``cover`` of the
    word's rows (an upright stroke; a flat trace beside the word covers a few) and has
    no ink in the half height above them (a letter's top; a QRS stroke coming down into
    the name or crossing it, as on ECG-Image-Kit's pages, must stay), the word's rows are
    cleared in those columns and 0.15 × the word's height either side (serifs,
    anti-aliased edges), short of the strokes from above. Where neither side holds such a
    column nothing more is erased; nor for ``V1`` read as ``I`` (a ``V`` has no upright
    stroke: the ink that looks like one there is a QRS tip's).
    """
    found = len(lbl.text)
    missing = len(name) - found
    if missing <= 0 or set(name) != {"I"}:  # the upright letters of I, II and III only
        return
    x0, y0, x1, y1 = lbl.bbox
    height = y1 - y0 + 1
    serif = max(1, int(round(0.15 * height)))
    reach = int(np.ceil(missing * ((x1 - x0 + 1) / found + 0.5 * height))) + serif
    lo, hi = max(0, x0 - reach), min(prob.shape[1], x1 + 1 + reach)
    ink: NDArray[np.bool_] = np.asarray(prob[:, lo:hi] > 0.5)
    # a letter stands on the trace with paper above it: a stroke with ink in the half
    # height above the word (in its column or the next) is the trace's, a QRS coming down
    # into the name or crossing it (as on ECG-Image-Kit's pages), and stays
    above = np.asarray(ink[max(0, y0 - height // 2) : max(0, y0 - 1)].any(axis=0), dtype=bool)
    crossed = above.copy()
    crossed[1:] |= above[:-1]
    crossed[:-1] |= above[1:]
    share = np.where(crossed, 0.0, ink[y0 : y1 + 1].mean(axis=0))
    best: tuple[float, int, int] | None = None
    for a, b in ((0, x0 - lo), (x1 + 1 - lo, hi - lo)):
        top = float(share[a:b].max()) if b > a else 0.0
        if top >= cover and (best is None or top > best[0]):
            best = (top, a, b)
    if best is None:
        return
    # each upright column with its serifs and anti-aliased edges
    _, a, b = best
    wipe = np.zeros(hi - lo, dtype=bool)
    for c in (np.flatnonzero(share[a:b] >= cover) + a).tolist():
        wipe[max(a, c - serif) : min(b, c + serif + 1)] = True
    prob[y0 : y1 + 1, np.flatnonzero(wipe & ~crossed) + lo] = 0.0


def reassign_rhythm_strips(
    segments: dict[str, list[tuple[NDArray[np.float64], NDArray[np.float64], float]]],
    row_leads: list[tuple[str, ...]],
    *,
    fs: float,
    labels: list[list[LeadLabel | None]] | None = None,
    min_corr: float = 0.8,
    margin: float = 0.3,
    label_score: float = 0.6,
) -> dict[int, tuple[str, str]]:
    """Move rhythm strips whose trace shows another lead than the name they were given.

    A rhythm strip repeats, over the whole page, a lead that the grid prints for a fraction
    of it at the same times, so it correlates with that lead's grid segment over their common
    samples. A strip is renamed when another lead's segment correlates with it by at least
    ``min_corr`` and by ``margin`` more than the named lead's: its label may be unreadable,
    and the default (II) is not every machine's.

    Parameters
    ----------
    segments : dict
        Per lead, the digitized parts ``(times s, mV, weight)``: a rhythm strip's part spans
        most of the page, a grid segment a fraction. Changed in place: a renamed strip's part
        moves to its new lead (a lead left without parts is removed).
    row_leads : list of tuple of str
        The leads of each row (:func:`assign_leads`); rows with one lead on a page with
        multi-lead rows are the rhythm strips.
    fs : float
        Sampling frequency the times are on.
    labels : list of list of LeadLabel or None, optional
        The words read on the page (:func:`find_labels`): a strip whose label reads as its
        name with at least ``label_score``, 0.1 above any other name, keeps it (a badly traced
        grid segment must not outvote a legible label; an ambiguous reading, V3 or V2 on a
        blurred scan, does not protect it). A label that a trace touches and that reads as
        part of a longer name (:data:`_PARTIAL_READINGS`) limits the strip to those names.

    Returns
    -------
    dict
        Row index → (old name, new name), for the strips renamed.
    """
    if not any(len(leads) > 1 for leads in row_leads):
        return {}
    spans = [float(ts[-1] - ts[0]) for parts in segments.values() for ts, _, _ in parts if ts.size]
    longest = max(spans, default=0.0)

    def is_strip(ts: NDArray[np.float64]) -> bool:
        return ts.size > 0 and float(ts[-1] - ts[0]) > 0.75 * longest

    claimed: list[tuple[NDArray[np.float64], NDArray[np.float64], float]] = []
    renamed: dict[int, tuple[str, str]] = {}
    for row, leads in enumerate(row_leads):
        if len(leads) != 1:
            continue
        name = leads[0].lstrip("-")
        strip = next((p for p in segments.get(name, [])
                      if is_strip(p[0]) and all(p is not q for q in claimed)), None)  # fmt: skip
        if strip is None:
            continue
        claimed.append(strip)
        own = labels[row][0] if labels is not None and labels[row] else None
        allowed: frozenset[str] | None = None
        if own is not None:
            ranked = sorted(own.scores.values(), reverse=True)
            clear = own.text.lstrip("-") == name and ranked[0] - ranked[1] >= 0.1
            if own.scores.get(name, 0.0) >= label_score and clear:
                continue
            # a word a trace touches that reads as part of a longer name: the strip shows
            # one of the names it may be part of ("I" of "II", "III" or "V1")
            if own.crowded and own.text in _PARTIAL_READINGS and own.score >= label_score:
                allowed = _PARTS_OF[own.text]
        k_strip = np.round(strip[0] * fs).astype(np.int64)
        corr: dict[str, float] = {}
        for lead, parts in segments.items():
            for ts, mv, _ in parts:
                if is_strip(ts):
                    continue
                _, i, j = np.intersect1d(
                    k_strip, np.round(ts * fs).astype(np.int64), return_indices=True
                )
                a, b = strip[1][i], mv[j]
                ok = np.isfinite(a) & np.isfinite(b)
                if ok.sum() < 0.5 * fs or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
                    continue
                corr[lead] = max(corr.get(lead, -1.0), float(np.corrcoef(a[ok], b[ok])[0, 1]))
        if not corr:
            continue
        mine = corr.get(name, -1.0)
        if allowed is not None:
            corr = {k: v for k, v in corr.items() if k in allowed}
            if not corr:
                continue
        best = max(corr, key=corr.__getitem__)
        if best != name and corr[best] >= min_corr and corr[best] - mine >= margin:
            segments[name] = [p for p in segments[name] if p is not strip]
            if not segments[name]:
                del segments[name]
            segments.setdefault(best, []).append(strip)
            renamed[row] = (name, best)
    return renamed


def erase_text(
    prob: NDArray[np.float32],
    rows: list[RowGeometry],
    *,
    px_per_mm: float,
    min_glyphs: int = 3,
    clearance_mm: float = 4.0,
) -> NDArray[np.float32]:
    """A copy of ``prob`` without printed text lines that reach into the rows' bands.

    Header and footer text (patient fields, measurements, "25 mm/s") can sit inside the band
    of the first or last row, where a trace could be followed into it. A text line starts at
    a word of at least ``min_glyphs`` character-sized marks (see :func:`find_labels`) that
    keeps ``clearance_mm`` away from every row's baseline (a trace's stray pieces lie along
    it), and takes in the words beside it; every mark inside its words' boxes (dots, colons)
    is erased.
    """
    lab, stats, words = _words(prob > 0.5, px_per_mm=px_per_mm)
    centres = np.array([r.center for r in rows])

    def clear(box: tuple[int, int, int, int]) -> bool:
        inside = (centres >= box[1]) & (centres <= box[3])
        gap = np.minimum(np.abs(centres - box[1]), np.abs(centres - box[3]))
        return not bool(np.any(inside | (gap < clearance_mm * px_per_mm)))

    text = [len(ks) >= min_glyphs and clear(box) for ks, box in words]
    for _ in range(3):  # words beside a text line belong to it
        lines = [words[j][1] for j in range(len(words)) if text[j]]
        if not lines:
            break
        for i, (_, (x0, y0, x1, y1)) in enumerate(words):
            if text[i] or not clear((x0, y0, x1, y1)):
                continue
            for u0, v0, u1, v1 in lines:
                h = max(y1 - y0, v1 - v0) + 1
                overlap = min(y1, v1) - max(y0, v0) + 1
                if overlap >= 0.5 * h and max(u0 - x1, x0 - u1) <= h:
                    text[i] = True
                    break
    if not any(text):
        return prob
    out = prob.copy()
    cx, cy, cw, ch = stats[1:, 0], stats[1:, 1], stats[1:, 2], stats[1:, 3]
    for (_, (x0, y0, x1, y1)), is_text in zip(words, text, strict=True):
        if not is_text:
            continue
        # punctuation and dots beside the word go too
        py, px = int(0.3 * (y1 - y0 + 1)), int(0.6 * (y1 - y0 + 1))
        within = (cx >= x0 - px) & (cx + cw - 1 <= x1 + px)
        within &= (cy >= y0 - py) & (cy + ch - 1 <= y1 + py)
        ks = np.flatnonzero(within) + 1
        ya, xa = max(0, y0 - py), max(0, x0 - px)
        sub = np.isin(lab[ya : y1 + py + 1, xa : x1 + px + 1], ks)
        out[ya : y1 + py + 1, xa : x1 + px + 1][sub] = 0.0
    return out
