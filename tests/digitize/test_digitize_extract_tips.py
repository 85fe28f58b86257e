"""QRS tips of thin strokes on low-resolution pages: the ink the segmentation keeps and the
runs the tracker follows, against the drawing's known tip."""

from __future__ import annotations

import numpy as np

from ecgscan.digitize._extract import trace_runs, track_row
from ecgscan.digitize._segment import _dark_map, faint_strokes, segment_traces

PPM = 4  # px/mm, as a web scan of a page


def _narrow_spike_page() -> tuple[np.ndarray, np.ndarray, int, int]:
    """A grey-gridded page at 4 px/mm with one thin trace (1 px tall, black) and a narrow R/S
    complex: the upstroke drawn solid in one column, the downstroke two columns to its
    right, across the baseline into a deep S wave, only partly covering its pixels
    (darkness ~0.4: a hairline between pixel centres, smeared by JPEG). Returns the page,
    the downstroke's mask, the R tip's and the S trough's rows."""
    rng = np.random.default_rng(7)
    h, w = 60 * PPM, 60 * PPM
    value = np.full((h, w), 250.0)
    for k in range(0, w, PPM):  # a grey grid, its major lines darker
        value[:, k] = 215.0 if k % (5 * PPM) else 178.0
    for k in range(0, h, PPM):
        value[k, :] = np.minimum(value[k, :], 215.0 if k % (5 * PPM) else 178.0)
    base, tip, trough, x = 30 * PPM + 2, 25 * PPM + 2, 33 * PPM + 2, 30 * PPM + 2
    value[base, 5 * PPM : x] = 20.0  # the flat trace, up to the R wave
    value[tip : base + 1, x] = 20.0  # the upstroke
    value[tip, x + 1] = 60.0  # the turning point
    down = np.zeros((h, w), bool)
    down[tip + 1 : trough, x + 2] = True  # the faint downstroke, to the S trough
    value[down] *= 1.0 - (0.48 - 0.1 * rng.random(down.sum()))
    value[trough, x + 2 : x + 4] = 20.0  # the trough
    value[base:trough, x + 4] = 20.0  # the return to the baseline
    value[base, x + 5 : 55 * PPM] = 20.0  # and the flat trace after it
    img = np.repeat(np.clip(value + rng.normal(0, 1.5, value.shape), 0, 255)[:, :, None], 3, 2)
    return img.astype(np.uint8), down, tip, trough


def test_a_faint_downstroke_two_columns_from_its_upstroke_is_kept() -> None:
    img, down, tip, trough = _narrow_spike_page()
    dark, sheet, trace, background = _dark_map(img, float(PPM))
    plain = dark >= background + 0.45 * (trace - background)
    assert plain[down].mean() < 0.3  # the premise: the threshold loses the downstroke
    # its upstroke stands two columns to the left: no valley there, yet it is a stroke
    added = faint_strokes(dark, sheet, trace=trace, background=background, px_per_mm=PPM)
    assert (added | plain)[down].mean() > 0.9
    prob, _ = segment_traces(img, px_per_mm=float(PPM), method="darkness")
    assert (prob[~down & ~plain] > 0.5).sum() <= 3  # no other pixel becomes ink
    # and the trace reaches both the R tip and the S trough (the pen's centre lines)
    _, ys = track_row(prob, y_lo=15 * PPM, y_hi=45 * PPM, x0=5 * PPM, x1=55 * PPM - 1,
                      baseline=30.0 * PPM, px_per_mm=float(PPM), thickness=1.0)  # fmt: skip
    assert ys.min() < tip + 1.0
    assert ys.max() > trough - 1.0


def test_the_tip_column_beside_a_steep_stroke_is_not_skipped() -> None:
    # a flat trace, an upstroke too faint to keep, the tip's dark blob 2 px above the first
    # piece of the downstroke in the next column, and the return to the baseline: the
    # tracker, pulled to the baseline and charged for the jump to the tip, skipped the blob
    # (past the first 12 mm, where a lead name may stand)
    band = np.zeros((80, 140), np.float32)
    band[60:62, :90] = 1.0  # the flat trace
    band[20:25, 90] = 1.0  # the tip (5 px: over 1 mm)
    band[27:45, 91] = 1.0  # the downstroke, 2 px below it
    band[44:60, 92] = 1.0  # and on to the baseline
    band[60:62, 93:] = 1.0
    xs, lo, _ = trace_runs(band, y_lo=0, y_hi=80, x0=0, x1=139, baseline=61.0, px_per_mm=4.0)
    assert 90 in xs.tolist()
    assert lo[xs.tolist().index(90)] == 20
    # while a dash two rows above a flat trace beside no steep stroke stays out
    band[55:58, 110] = 1.0
    xs, lo, _ = trace_runs(band, y_lo=0, y_hi=80, x0=0, x1=139, baseline=61.0, px_per_mm=4.0)
    assert lo[xs.tolist().index(110)] == 60


def test_a_tip_column_split_by_a_light_pixel_keeps_its_tip() -> None:
    # a narrow R wave whose tip column breaks one pixel above the stroke's foot there (the
    # thin stroke lighter than the threshold for a pixel: probability 0): the column holds
    # the tip's tall piece (rows 8-18) and a short piece (20-22) nearer the baseline; both
    # touch the upstroke in the column before (18-26), so the pull to the baseline chose
    # the short piece and cut the spike by 12 px
    band = np.zeros((60, 120), np.float32)
    base = 36
    band[base, :60] = 1.0  # the flat trace
    band[27:base, 57] = 1.0  # the upstroke
    band[18:27, 58] = 1.0
    band[8:19, 59] = 1.0  # the tip's piece ...
    band[20:23, 59] = 1.0  # ... and the short one, a light pixel (row 19) between
    band[22:27, 60] = 1.0  # the downstroke
    band[26:base, 61] = 1.0
    band[base, 61:] = 1.0
    xs, lo, hi = trace_runs(band, y_lo=0, y_hi=60, x0=0, x1=119, baseline=float(base),
                            px_per_mm=4.0)  # fmt: skip
    k = xs.tolist().index(59)
    assert (int(lo[k]), int(hi[k])) == (8, 22)  # one run from the tip down
    # a tall mark a pixel above a flat trace that no neighbouring run touches stays out
    band[24:34, 100] = 1.0
    xs, lo, _ = trace_runs(band, y_lo=0, y_hi=60, x0=0, x1=119, baseline=float(base),
                           px_per_mm=4.0)  # fmt: skip
    assert lo[xs.tolist().index(100)] == base


def test_a_split_tip_on_a_photo_is_not_cut() -> None:
    # the rhythm strip of a phone photo (ecg00031): the R wave at x = 319 reaches row 408,
    # but a light pixel at row 419 splits its column into 408-418 and 420-422; the trace
    # stopped at 420, 2.6 mm (0.26 mV) short of the tip
    from test_digitize_extract import _scan_rows

    prob, rows, ppm = _scan_rows("ecg00031.jpg")
    r = rows[-1]
    xs, lo, _ = trace_runs(prob, y_lo=r.y_lo, y_hi=r.y_hi, x0=200, x1=420, baseline=r.center,
                           px_per_mm=ppm)  # fmt: skip
    near = (xs >= 316) & (xs <= 322)
    assert lo[near].min() <= 409
