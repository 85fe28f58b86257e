"""QRS tips of thin strokes on low-resolution pages: the ink the segmentation keeps and the
runs the tracker follows, against the drawing's known tip."""

from __future__ import annotations

import numpy as np

from ecgscan.digitize._extract import trace_runs, track_row
from ecgscan.digitize._segment import _dark_map, faint_stroke_tiers, faint_strokes, segment_traces

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


def _spike_fading_to_the_grid() -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """A 4 px/mm page as real-scan ecg00013: a grey trace (darkness ~0.56) on a grid whose
    major lines are half as dark (~0.3), and 8 mm after the row's start (where a lead name
    may stand) a narrow R wave whose up- and downstroke, two columns apart, are as light as
    the grid's lines (darkness ~0.26) between the trace's line and the tip's dark blob.
    Returns the page, the strokes' mask, the baseline's, the tip's and the start's
    column/row."""
    rng = np.random.default_rng(7)
    h, w = 60 * PPM, 60 * PPM
    value = np.full((h, w), 250.0)
    for k in range(0, w, PPM):
        value[:, k] = 215.0 if k % (5 * PPM) else 178.0
    for k in range(0, h, PPM):
        value[k, :] = np.minimum(value[k, :], 215.0 if k % (5 * PPM) else 178.0)
    base, tip, x, start = 30 * PPM + 2, 25 * PPM + 1, 12 * PPM + 1, 4 * PPM
    value[base, start:x] = 110.0  # the trace up to the R wave
    value[base, x + 3 : 55 * PPM] = 110.0  # and after it
    value[tip : tip + 3, x : x + 3] = 110.0  # the tip's blob
    strokes = np.zeros((h, w), bool)
    strokes[tip + 3 : base + 1, x] = True  # the upstroke
    strokes[tip + 3 : base + 1, x + 2] = True  # the downstroke
    value[strokes] = 250.0 * 0.75
    img = np.repeat(np.clip(value + rng.normal(0, 1.5, value.shape), 0, 255)[:, :, None], 3, 2)
    return img.astype(np.uint8), strokes, base, tip, start


def test_a_spike_whose_strokes_fade_to_the_grid_is_climbed_to_its_tip() -> None:
    img, strokes, base, tip, start = _spike_fading_to_the_grid()
    dark, sheet, trace, background = _dark_map(img, float(PPM))
    strong, weak = faint_stroke_tiers(dark, sheet, trace=trace, background=background,
                                      px_per_mm=PPM)  # fmt: skip
    # the premise: the strokes are lighter than the background level, no faint stroke
    assert dark[strokes].mean() < background and strong[strokes].mean() < 0.1
    # the weak tier finds them, and nothing else (no grid line, no fringe of the trace)
    assert weak[strokes].mean() > 0.8
    assert not (weak & ~strokes).any()
    prob, _ = segment_traces(img, px_per_mm=float(PPM), method="darkness")
    assert 0.0 < prob[weak & ~strong].max() < 0.5  # a trace of ink, no run of its own
    # the tracker climbs to the tip (it stayed on the baseline, 5 mm below it)
    _, ys = track_row(prob, y_lo=15 * PPM, y_hi=45 * PPM, x0=start, x1=55 * PPM - 1,
                      baseline=float(base), px_per_mm=float(PPM), thickness=1.0)  # fmt: skip
    assert ys.min() < tip + 2.0


def test_a_real_scan_faint_r_wave_is_followed_to_its_tip() -> None:
    """Real-scan ecg00013 (a 1024-px scan, 3.8 px/mm): lead II's first R wave, 10 mm after
    the row's start, is drawn with strokes as light as the grid; the trace reaches its tip
    (0.36 mV; it passed under it at 0.0-0.1 mV, the first column's Einthoven 11.5 dB)."""
    from _shared import shared_path
    from ecgscan.digitize import digitize

    res = digitize(shared_path("images", "real-scans", "ecg00013.jpg"), fs=500)
    ii = res.record.lead("II")
    r_wave = ii[int(0.3 * 500) : int(0.6 * 500)]
    assert np.nanmax(r_wave) - np.nanmedian(ii[: int(2.5 * 500)]) > 0.25


def test_the_columns_between_a_spikes_strokes_take_the_stroke_not_a_grid_speck() -> None:
    # a photographed R wave 5 columns wide (as eik-dev G_photo/00233_hr's V5, 7.2 px/mm):
    # the upstroke's foot, the tip's three columns reaching 154 px above the baseline, the
    # downstroke; between the strokes a dark grid line leaves specks 35 px above the
    # baseline, and blur leaves faint ink everywhere between them, so the tracker's jumps
    # to the specks cost nothing and their pull to the baseline wins: the middle column
    # took a 2-px speck and its neighbours only the part of their runs beside the strokes
    band = np.zeros((300, 120), np.float32)
    base = 259
    band[base - 1 : base + 2, :50] = 1.0  # the flat trace
    band[base - 1 : base + 2, 56:] = 1.0
    band[100:262, 50:55] = 0.3  # blur between the strokes
    band[173:261, 50] = 1.0  # the upstroke's foot
    band[115:212, 51] = 1.0  # the tip's columns
    band[105:198, 52] = 1.0
    band[105:197, 53] = 1.0
    band[221:226, 51] = 1.0  # the grid line's specks
    band[223:225, 52:54] = 1.0
    band[116:240, 54] = 1.0  # the downstroke
    band[236 : base + 2, 55] = 1.0
    xs, lo, hi = trace_runs(band, y_lo=0, y_hi=300, x0=0, x1=119, baseline=float(base),
                            px_per_mm=7.2)  # fmt: skip
    runs = {int(x): (int(a), int(b)) for x, a, b in zip(xs, lo, hi, strict=True)}
    assert runs[51] == (115, 211)  # whole, not cut at the upstroke's top (173)
    assert runs[52] == (105, 197)  # the tip, not the speck (223-224)
    assert runs[53] == (105, 196)
    assert runs[49] == (base - 1, base + 1)  # the flat trace beside it is left alone


def test_a_photographed_r_wave_keeps_its_full_height() -> None:
    """eik-dev G_photo/00233_hr (ECG-Image-Kit page, photographed): V5's first R wave is
    2.27 mV tall; the tip's columns took grid specks near the baseline and it came out
    1.52 mV tall (V5 13.0 dB)."""
    from _shared import shared_path
    from ecgscan.data import Record
    from ecgscan.digitize import digitize

    image = shared_path("images", "eik-dev", "G_photo", "00233_hr-0.jpg")
    ref = Record.from_wfdb(image.parent / "00233_hr")
    est = digitize(image, fs=500).record
    r, e = ref.lead("V5"), est.lead("V5")
    beat = slice(int(8.15 * 500), int(8.35 * 500))
    tall = np.nanmax(r[beat]) - np.nanmedian(r[int(7.5 * 500) :])
    got = np.nanmax(e[beat]) - np.nanmedian(e[int(7.5 * 500) :])
    assert abs(got - tall) < 0.15
