"""Pipeline: every row on the page's one time axis (rows moved against the grid put back by
the column separators, rhythm strips onto their grid segment's times), calibration pulses cut
by the page's left edge recognised (never read as signal, also with a bent falling edge), step
pulses (no falling edge, also drawn over the traces' start) and pulses printed after the traces.

Pages are drawn by our renderer from a synthetic record whose limb leads obey Einthoven's law
exactly (no ../shared needed); the pulse finder and the row origins are also checked on
drawn ink maps with known answers.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize
from ecgscan.digitize._calibration import (
    Pulse,
    calibrate,
    find_end_pulse,
    find_pulse,
    refine_fall,
)
from ecgscan.digitize._pipeline import (
    _align_strips,
    _column_shifts,
    _row_origins,
    _row_skew,
    _time_mark,
    _trace_origin,
)
from ecgscan.render import render_page
from ecgscan.render._degrade import CropPad

_PPM = 6.0  # px per mm of the drawn ink maps


@pytest.fixture(scope="module")
def record():
    return synthetic_ecg(fs=500, duration=10, seed=3, name="example")


@pytest.fixture(scope="module")
def page(record):
    return render_page(record, layout="3x4+II", dpi=150, style="clean", seed=1)


def _einthoven(rec) -> tuple[float, tuple[int, int]]:  # type: ignore[no-untyped-def]
    """II vs I + III (dB, means removed) where all three are printed, and the lags (samples)
    of I and III against II that fit best (0, 0 for simultaneous rows)."""
    i, ii, iii = (rec.lead(n) for n in ("I", "II", "III"))

    def db(a: int, b: int) -> float:
        x, z = np.roll(i, a), np.roll(iii, b)
        ok = np.isfinite(x) & np.isfinite(ii) & np.isfinite(z)
        ok[:20] = ok[-20:] = False  # (the rolled ends)
        ref = ii[ok] - ii[ok].mean()
        s = x[ok] + z[ok]
        return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - (s - s.mean())) ** 2)))

    lags = max(((a, b) for a in range(-6, 7) for b in range(-6, 7)), key=lambda ab: db(*ab))
    return db(0, 0), lags


def _lag_and_error(ref, est, lead: str) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """The lag (samples) at which ``est`` best matches ``ref`` and the largest error (mV, means
    removed) over the first 0.3 s the estimate prints at that lag."""
    a, b = ref.lead(lead), est.lead(lead)

    def fit(lag: int) -> float:
        x, y = a[: a.size - lag], b[lag:]
        ok = np.isfinite(x) & np.isfinite(y)
        return float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 200 else -1.0

    lag = max(range(0, 200), key=fit)
    x, y = a[: a.size - lag], b[lag:]
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))[:150]
    d = (x[ok] - y[ok]) - np.mean(x[ok] - y[ok])
    return lag, float(np.max(np.abs(d)))


def test_rows_of_a_page_are_digitized_on_one_time_axis() -> None:
    # without the record's white noise, whose samples the page cannot hold, so that the
    # limb leads' best lags measure the rows' time axis and not the noise
    clean = synthetic_ecg(fs=500, duration=10, seed=3, noise_mv=0.0)
    page = render_page(clean, layout="3x4+II", dpi=150, style="clean", seed=1)
    res = digitize(page.image, fs=500)
    assert res.layout.name == "3x4+II"
    starts = [r.x_start for r in res.layout.rows]  # the rhythm strip's too
    assert np.ptp(starts) < 0.3
    db, lags = _einthoven(res.record)
    assert max(map(abs, lags)) <= 1  # within a sample (0.3 px at 150 DPI)
    assert db > 18.0


def test_a_pulse_cut_by_the_left_edge_is_recognised_and_not_read_as_signal(  # type: ignore[no-untyped-def]
    record, page
) -> None:
    box = page.truth["calibration"][0]["bbox"]
    cut = int(round((box[0] + box[2]) / 2))  # through the middle of the pulses' tops
    cropped = render_page(record, layout="3x4+II", dpi=150, style="clean", seed=1,
                          degradations=[CropPad(left=-cut)])  # fmt: skip
    full = digitize(page.image, fs=500)
    res = digitize(cropped.image, fs=500)
    assert all(r.pulse for r in res.layout.rows)
    assert res.calibration.gain == 10.0
    # the rows start where they start on the whole page, moved by the crop
    for a, b in zip(full.layout.rows, res.layout.rows, strict=True):
        assert b.x_start == pytest.approx(a.x_start - cut, abs=0.3)
    for lead in ("I", "II", "III"):
        lag, err = _lag_and_error(cropped.reference, res.record, lead)
        assert abs(lag - 10) <= 1  # the 20-ms lead-in: the time axis is not moved
        assert err < 0.15  # not the pulse's 1-mV top
    assert _einthoven(res.record)[0] > 18.0


def _ink(h: int = 200, w: int = 400) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def test_find_pulse_finds_a_pulse_cut_by_the_left_edge() -> None:
    prob = _ink()
    prob[89:92, 0:18] = 1.0  # the top, 1 mV (10 mm) above the baseline, cut at x = 0
    prob[89:151, 18:21] = 1.0  # the falling edge
    prob[148:151, 18:400] = 1.0  # the trace
    prob[120:151, 200:203] = 1.0  # an R wave
    pulse = find_pulse(prob, baseline=149.5, x_first=0, px_per_mm=_PPM, thickness=3.0)
    assert pulse is not None and pulse.partial
    assert pulse.x_fall == pytest.approx(19.0, abs=0.3)
    assert pulse.y_base - pulse.y_top == pytest.approx(10 * _PPM, abs=2.0)
    # the height counts for the gain, the cut width not for the speed
    cal = calibrate([pulse], px_per_mm_x=_PPM, px_per_mm_y=_PPM)
    assert (cal.gain, cal.paper_speed, cal.source) == (10.0, 25.0, "pulse")


def test_a_row_that_starts_with_a_wave_has_no_pulse() -> None:
    # a tall R wave at the start of a row, its top rounded: not a cut pulse
    prob = _ink()
    prob[148:151, 0:400] = 1.0
    xs = np.arange(4, 22)
    tops = (89 + 0.6 * (xs - 13) ** 2).astype(int)
    for x, t in zip(xs, tops, strict=True):
        prob[t:151, x] = 1.0
    assert find_pulse(prob, baseline=149.5, x_first=0, px_per_mm=_PPM, thickness=3.0) is None
    # a flat step 10 mm up with the trace running on before it: not a pulse's start either
    prob = _ink()
    prob[148:151, 0:10] = 1.0
    prob[89:151, 10:13] = 1.0
    prob[89:92, 10:30] = 1.0
    prob[89:151, 30:33] = 1.0
    prob[148:151, 30:400] = 1.0
    pulse = find_pulse(prob, baseline=149.5, x_first=0, px_per_mm=_PPM, thickness=3.0)
    assert pulse is None or not pulse.partial


def _pulse(x_fall: float, y: float) -> Pulse:
    return Pulse(x_rise=x_fall - 30, x_fall=x_fall, y_top=y - 60, y_base=y)


def test_row_origins_follow_the_pulses_line_across_the_page() -> None:
    centres = [100.0, 300.0, 500.0, 700.0, 900.0]
    falls = [50.0 + 0.004 * y for y in centres]  # a 0.23° skew of the traces
    pulses: list[Pulse | None] = [_pulse(f, y) for f, y in zip(falls, centres, strict=True)]
    pulses[2] = _pulse(falls[2] + 3.0, centres[2])  # a mis-measured pulse
    pulses[4] = None  # a row whose pulse was missed
    # the traces start 12 px after the fall; a label hides the gap of row 1
    starts: list[float | None] = [falls[0] + 12.0, falls[1] + 3.0, falls[2] + 12.0,
                                  falls[3] + 12.0, None]  # fmt: skip
    origins, row_falls, on_axis = _row_origins(centres, pulses, starts, [0.0] * 5, ppm=_PPM)
    assert origins == pytest.approx([f + 12.0 for f in falls], abs=0.05)
    assert row_falls[4] == pytest.approx(falls[4], abs=0.05)
    assert all(on_axis)


def test_row_origins_tilt_reaches_the_rows_whose_pulse_was_cut_off() -> None:
    # a phone photo (ecg00045): the pulses of the first and third rows are cut off, the
    # second row's and the rhythm strip's falls are 0.9 px apart over their 365 px. Across
    # all four rows the line moves the origin by 1.4 px: a tilt, and the top row starts
    # 0.46 px right of the second (it started with it: lead I ran 2.5 samples late)
    centres = [67.0, 253.0, 436.0, 618.0]
    pulses: list[Pulse | None] = [None, _pulse(29.0, 253.0), None, _pulse(28.1, 618.0)]
    starts: list[float | None] = [None, 29.0, None, 28.1]
    origins, _, on_axis = _row_origins(centres, pulses, starts, [29.0] * 4, ppm=4.7)
    assert all(on_axis)
    slope = -0.9 / 365.0
    assert origins == pytest.approx([29.0 + slope * (y - 253.0) for y in centres], abs=0.05)
    # 0.9 px between the first and the last row is below a pixel: one start for all
    pulses = [_pulse(29.0, 67.0), None, None, _pulse(28.1, 618.0)]
    origins, _, _ = _row_origins(centres, pulses, [29.0, None, None, 28.1], [29.0] * 4, ppm=4.7)
    assert origins == [29.0] * 4


def test_a_photo_with_cut_off_pulses_keeps_its_rows_on_one_time_axis() -> None:
    """ecg00045: on the tilted line through the two pulses left, lead I no longer runs
    2.5 samples late against II (Einthoven's law over the first column 10.9 -> 15.5 dB)."""
    from _shared import shared_path

    res = digitize(shared_path("images", "real-scans", "ecg00045.jpg"), fs=500)
    assert res.layout.name.startswith("3x4")
    i, ii, iii = (res.record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    assert ok.sum() >= 1000
    a = ii[ok] - ii[ok].mean()
    err = a - (i[ok] + iii[ok] - (i[ok] + iii[ok]).mean())
    assert 10 * np.log10(np.sum(a**2) / np.sum(err**2)) >= 14.0


def test_row_origins_keep_a_row_of_its_own_and_share_a_start_without_pulses() -> None:
    centres = [100.0, 300.0, 500.0]
    pulses: list[Pulse | None] = [_pulse(50.0, 100.0), _pulse(50.4, 300.0), _pulse(200.0, 500.0)]
    origins, _, on_axis = _row_origins(centres, pulses, [50.0, 50.4, 210.0], [0.0] * 3, ppm=_PPM)
    assert origins[2] == 210.0 and on_axis == [True, True, False]
    # falls 0.4 px apart are not a tilt: both rows start together (the upper median)
    assert origins[0] == origins[1] == 50.4
    origins, falls, on_axis = _row_origins(centres, [None] * 3, [None] * 3, [12.0, 11.0, 30.0],
                                           ppm=_PPM)  # fmt: skip
    assert origins == [12.0] * 3 and falls == [None] * 3 and all(on_axis)


def test_the_row_name_printed_in_the_gap_after_the_pulse_does_not_hide_the_gap() -> None:
    prob = _ink()
    prob[89:151, 20:23] = 1.0  # the pulse: rising edge, top, falling edge
    prob[89:92, 20:51] = 1.0
    prob[89:151, 48:51] = 1.0
    prob[148:151, 80:400] = 1.0  # the trace, 5 mm after the fall
    prob[160:176, 68:70] = prob[160:176, 74:76] = 1.0  # "II" below the baseline, in the gap
    pulse = find_pulse(prob, baseline=149.5, x_first=20, px_per_mm=_PPM, thickness=3.0)
    assert pulse is not None and not pulse.partial
    assert _trace_origin(prob, pulse, thickness=3.0, ppm=_PPM) == pytest.approx(81.0)


def test_a_step_pulse_is_found_and_its_trace_starts_after_the_gap() -> None:
    # older printers: up 1 mV, held 0.2 s (5 mm), pen lifted; the trace starts 3 mm on
    prob = _ink()
    prob[148:151, 8:22] = 1.0  # 2 mm flat at the baseline
    prob[89:151, 20:23] = 1.0  # the rise
    prob[89:92, 20:51] = 1.0  # the top, ending at x = 50 (no falling edge)
    prob[148:151, 69:400] = 1.0  # the trace
    prob[120:151, 200:203] = 1.0  # an R wave
    pulse = find_pulse(prob, baseline=149.5, x_first=8, px_per_mm=_PPM, thickness=3.0)
    assert pulse is not None and pulse.shape == "step" and not pulse.partial
    assert pulse.x_fall == pytest.approx(49.0, abs=0.6)  # the top's end, less its cap
    assert pulse.y_base - pulse.y_top == pytest.approx(10 * _PPM, abs=2.0)
    assert calibrate([pulse], px_per_mm_x=_PPM, px_per_mm_y=_PPM).gain == 10.0
    # never the top's end: the first ink after the gap
    assert _trace_origin(prob, pulse, thickness=3.0, ppm=_PPM) == pytest.approx(70.0)


def test_a_pulse_after_the_trace_is_found_at_the_row_end_only() -> None:
    prob = _ink(w=500)
    prob[148:151, 10:400] = 1.0  # the trace, then 2 mm of paper
    prob[120:151, 200:203] = 1.0  # an R wave
    prob[148:151, 412:424] = 1.0  # the pulse's 2-mm lead
    prob[89:151, 424:427] = prob[89:151, 452:455] = 1.0  # rise and fall
    prob[89:92, 424:455] = 1.0
    prob[148:151, 452:466] = 1.0  # its foot
    assert find_pulse(prob, baseline=149.5, x_first=10, px_per_mm=_PPM, thickness=3.0) is None
    pulse = find_end_pulse(prob, baseline=149.5, x_last=465, px_per_mm=_PPM, thickness=3.0)
    assert pulse is not None and pulse.x_rise == pytest.approx(425.0, abs=0.6)
    # a row ending in a wave has none
    assert find_end_pulse(prob, baseline=149.5, x_last=399, px_per_mm=_PPM, thickness=3.0) is None


@pytest.mark.parametrize(
    ("calibration", "shape"), [("left", "step"), ("right", "square")], ids=["step", "right"]
)
def test_pages_with_a_step_pulse_or_the_pulse_after_the_traces(  # type: ignore[no-untyped-def]
    record, calibration, shape
) -> None:
    page = render_page(record, layout="3x4+II", dpi=150, style="clean", seed=2, gain=5.0,
                       calibration=calibration, calibration_shape=shape)  # fmt: skip
    res = digitize(page.image, fs=500)
    assert res.layout.name == "3x4+II"
    assert res.calibration.gain == 5.0  # read from the pulse, not the default 10
    assert all(r.pulse == (calibration == "left") for r in res.layout.rows)
    for lead in ("I", "II", "III"):
        lag, err = _lag_and_error(page.reference, res.record, lead)
        # the 20-ms lead-in (10 samples): on time after a pulse; without one the rows start
        # at their first ink, half a line early (never late: the record is not early)
        assert (9 <= lag <= 11) if calibration == "left" else (9 <= lag <= 15)
        assert err < 0.15
    assert _einthoven(res.record)[0] > 15.0


def _beat(t: np.ndarray) -> np.ndarray:
    """A spiky periodic test signal (mV) at times ``t`` (s)."""
    phase = np.mod(t, 0.8)
    return np.exp(-(((phase - 0.3) / 0.012) ** 2)) + 0.2 * np.sin(2 * np.pi * 1.3 * t)


def test_a_rhythm_strip_is_moved_onto_its_grid_segment_or_left_out_where_they_disagree() -> None:
    fs = 500.0
    ts = np.arange(0, 5000) / fs
    early = 3.4  # samples: the strip shows each instant 3.4 samples before the grid does
    strip = (ts, _beat(ts + early / fs), 1.0)
    seg_t = ts[:1250]
    segments = {"II": [(seg_t, _beat(seg_t), 0.9), strip], "V1": [(seg_t, np.sin(seg_t), 1.0)]}
    moved = _align_strips(segments, fs=fs)
    assert moved["II"] == pytest.approx(early, abs=0.3)
    (_, mv, _) = next(p for p in segments["II"] if p[0].size == ts.size)
    ok = np.isfinite(mv)
    assert np.max(np.abs(mv[ok] - _beat(ts[ok]))) < 0.1  # (was 0.6: the beat's tip moved)
    # a strip that is another signal over the segment's times is left out there
    other = np.where(ts < 2.5, _beat(ts + 0.4), _beat(ts))
    segments = {"II": [(seg_t, _beat(seg_t), 0.9), (ts, other, 1.0)]}
    assert _align_strips(segments, fs=fs) == {}
    kept = next(p for p in segments["II"] if p[0].size > 1250)
    assert kept[0].min() > seg_t.max() and kept[0].size == ts.size - 1250


def test_a_rhythm_strip_early_against_its_grid_segment_is_a_skew_every_row_shares() -> None:
    fs = 500.0
    ts = np.arange(0, 5000) / fs
    seg_t = ts[:1250]
    centres = [100.0, 250.0, 400.0, 550.0]  # rows I.., II.., III.., strip II
    leads = [("I", "aVR"), ("II", "aVL"), ("III", "aVF"), ("II",)]
    early = 3.0  # samples: the strip, 300 px below row II, shows each instant 3 samples early
    strip = (ts, _beat(ts + early / fs), 1.0)
    grid = [(seg_t, _beat(seg_t + k / fs), 0.9) for k in (-1.5, 0.0, 1.5)]
    segments = {"I": [grid[0]], "II": [grid[1], strip], "III": [grid[2]]}
    row_of = {id(grid[0]): 0, id(grid[1]): 1, id(grid[2]): 2, id(strip): 3}
    on = [True] * 4
    got = _row_skew(segments, row_of, centres, leads, on, fs=fs, px_per_sample=0.3)
    # 1 sample per 100 px, zero at the grid rows' mean (row II)
    assert got == pytest.approx([-1.5, 0.0, 1.5, 3.0], abs=0.15)
    # the separators placed two grid rows already: their times stand, the strip alone moves
    placed = [True, False, True, False]
    assert _row_skew(segments, row_of, centres, leads, on, fs=fs, px_per_sample=0.3,
                     placed=placed) == [0.0] * 4  # fmt: skip
    # a skew of 1.5 % (0.3 px per sample) is no shear: another signal, or a row of its own
    assert _row_skew(segments, row_of, centres, leads, on, fs=fs, px_per_sample=1.5) == [0.0] * 4
    # a row of its own keeps its time
    got = _row_skew(segments, row_of, centres, leads, [False, True, True, True], fs=fs,
                    px_per_sample=0.3)  # fmt: skip
    assert got[0] == 0.0 and got[3] == pytest.approx(2.25, abs=0.15)  # (mean of rows II, III)
    # a strip that does not match its grid segment says nothing
    other = (ts, np.sin(2 * np.pi * 0.37 * ts), 1.0)
    segments = {"I": [grid[0]], "II": [grid[1], other], "III": [grid[2]]}
    row_of = {id(grid[0]): 0, id(grid[1]): 1, id(grid[2]): 2, id(other): 3}
    assert _row_skew(segments, row_of, centres, leads, on, fs=fs, px_per_sample=0.3) == [0.0] * 4


def _warped_ink(img: np.ndarray, warp: np.ndarray, x0: int) -> np.ndarray:
    """``img`` with its ink right of column ``x0`` moved by the affine ``warp`` over its
    unmoved grid (the ink left of ``x0``, the pulses, stays where it is)."""
    import cv2

    moved = cv2.warpAffine(img, warp, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                           borderValue=(255, 255, 255))  # fmt: skip
    ink, ink_moved = img.max(axis=2) < 220, moved.max(axis=2) < 220
    ink[:, :x0] = ink_moved[:, :x0] = False
    out = img.copy()
    out[ink] = 255
    out[ink_moved] = moved[ink_moved]
    return out


def _sheared_traces(page, k: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``page``'s image with its ink right of the pulses sheared against the grid, x' = x -
    k (y - y_mid) (y_mid: the grid rows' mean baseline), as the traces of a photographed
    thermal printout sit against its straightened grid: the lower the row, the further left."""

    img = page.image
    base = sorted({lead["baseline_y"] for lead in page.truth["leads"]})
    x0 = int(page.truth["leads"][0]["x_start"]) + 15
    mid = float(np.mean(base[:3]))
    return _warped_ink(img, np.float32([[1, -k, k * mid], [0, 1, 0]]), x0)


def test_traces_sheared_against_the_grid_are_put_on_one_time_axis_by_the_rhythm_strip(  # type: ignore[no-untyped-def]
    record, monkeypatch
) -> None:
    # no separators: the rhythm strip, lead II again, is the only witness of the shear
    page = render_page(record, layout="3x4+II", dpi=150, style="clean", seed=1, separators=False)
    image = _sheared_traces(page, 0.004)  # rows 0.9 px (3 samples) apart, the strip 1.8 px
    res = digitize(image, fs=500)
    assert res.layout.name == "3x4+II"
    db, lags = _einthoven(res.record)
    assert max(map(abs, lags)) <= 1 and db > 18.0
    # each row on its own origin (the rule before): I and III 3 samples off II
    import ecgscan.digitize._pipeline as pipeline

    monkeypatch.setattr(pipeline, "_row_skew", lambda *a, **k: [0.0] * len(a[2]))
    old_db, old_lags = _einthoven(digitize(image, fs=500).record)
    assert max(map(abs, old_lags)) >= 2 and old_db < db - 6.0


def _marked_rows(offsets: list[float] | list[tuple[float, float, float]]) -> np.ndarray:
    """Three 4-segment rows (baselines 100, 250, 400; origin 20 px; segments 120 px long)
    with a dotted time mark at each boundary, moved right by ``offsets`` (px, one per row,
    or one per row and boundary)."""
    prob = _ink(h=500, w=560)
    for k, (y, off) in enumerate(zip((100, 250, 400), offsets, strict=True)):
        prob[y - 1 : y + 2, 20:520] = 1.0
        for b in (1, 2, 3):
            x = 20 + b * 120 + (off if isinstance(off, float) else off[b - 1])
            x0 = int(np.floor(x))
            frac = x - x0
            rows = np.arange(y - 26, y + 26, 2)
            prob[rows, x0] = 1.0 - frac
            prob[rows, x0 + 1] = 1.0
            prob[rows, x0 + 2] = frac
        if k == 1:
            prob[y - 40 : y + 1, 20 + 120 + 12] = 1.0  # an R wave 2 mm after a boundary
    return prob


def _page_of(prob: np.ndarray) -> np.ndarray:
    """The RGB page whose dark ink is ``prob``."""
    return np.repeat(np.round(255 * (1 - prob)).astype(np.uint8)[..., None], 3, axis=2)


def test_column_separators_place_each_row_on_the_page_time_axis() -> None:
    prob = _marked_rows([1.0, 0.0, -0.7])
    page = _page_of(prob)
    # (a mark drawn at x covers x - 0.5 ... x + 1.5: its centre is x + 0.5)
    for x, y, centre in ((141.0, 100.0, 141.5), (140.0, 250.0, 140.5), (139.3, 400.0, 139.8)):
        assert _time_mark(page, prob, x=x, baseline=y, ppm=_PPM) == pytest.approx(centre, abs=0.1)
    beside = prob.copy()
    beside[210:251, 144] = 1.0  # an R wave beside the mark: which is the mark is not clear
    assert _time_mark(_page_of(beside), beside, x=140.0, baseline=250.0, ppm=_PPM) is None
    leads = [("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")]
    shifts, placed = _column_shifts(page, prob, [20.0] * 3, [100.0, 250.0, 400.0],
                                    [*leads, ("II",)], px_per_s=150.0, seg_s=[0.8] * 3 + [3.2],
                                    ppm=_PPM)  # fmt: skip
    assert placed == [True, True, True]
    # each row moved as a whole, about the rows' mean; the rhythm strip is left alone
    assert np.allclose(shifts[0], 0.9, atol=0.1) and np.allclose(shifts[2], -0.8, atol=0.1)
    assert np.allclose(shifts[1], -0.1, atol=0.1) and shifts[3] == [0.0]
    # an R wave on one row's mark moves that mark: the row keeps the median of its marks
    prob[210:251, 140] = 1.0
    again, _ = _column_shifts(_page_of(prob), prob, [20.0] * 3, [100.0, 250.0, 400.0], leads,
                              px_per_s=150.0, seg_s=[0.8] * 3, ppm=_PPM)  # fmt: skip
    assert np.allclose(again, shifts[:3], atol=0.15)
    # a row whose marks drift along it (paper stretched under the print head) is not moved
    # as a whole: its offset is within its marks' spread
    drift = _marked_rows([(0.0, 0.3, 1.2), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)])
    drifting = _column_shifts(_page_of(drift), drift, [20.0] * 3, [100.0, 250.0, 400.0], leads,
                              px_per_s=150.0, seg_s=[0.8] * 3, ppm=_PPM)  # fmt: skip
    assert drifting == ([[0.0] * 4] * 3, [False, True, True])
    # no marks: nothing is moved
    plain = _ink(h=500, w=560)
    plain[[99, 100, 101, 249, 250, 251, 399, 400, 401], 20:520] = 1.0
    assert _column_shifts(_page_of(plain), plain, [20.0] * 3, [100.0, 250.0, 400.0], leads,
                          px_per_s=150.0, seg_s=[0.8] * 3, ppm=_PPM) == ([[0.0] * 4] * 3,
                                                                          [False] * 3)  # fmt: skip
    # rows whose marks agree that they are in place are placed, unmoved: their times are
    # measured (a rhythm strip's lag against them is the strip's own, not a shear)
    straight = _marked_rows([0.0, 0.0, 0.0])
    assert _column_shifts(_page_of(straight), straight, [20.0] * 3, [100.0, 250.0, 400.0], leads,
                          px_per_s=150.0, seg_s=[0.8] * 3, ppm=_PPM) == ([[0.0] * 4] * 3,
                                                                          [True] * 3)  # fmt: skip


def test_a_grid_line_is_no_time_mark_but_a_separator_printed_on_one_is() -> None:
    # vertical grid lines every 5 mm across the page, a trace along each row, no separator:
    # the dark line near the expected boundary repeats 5 mm either side, so it is no mark
    prob = _ink(h=500, w=560)
    prob[:, 20:540:30] = 0.5
    for y in (100, 250, 400):
        prob[y - 1 : y + 2, 20:520] = 1.0
    assert _time_mark(_page_of(prob), prob, x=141.0, baseline=250.0, ppm=_PPM) is None
    # a tick printed on that grid line is darker than its neighbours: a mark
    prob[226:275, 139:142] = 1.0
    assert _time_mark(_page_of(prob), prob, x=141.0, baseline=250.0,
                      ppm=_PPM) == pytest.approx(140.0, abs=0.3)  # fmt: skip


def _stretched_ink(page, scale: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``page``'s image with its ink right of the pulses stretched in x by ``scale`` about
    the first trace's start against the grid, as a printer whose columns are longer than its
    grid says draws them; returns the image and the stretched separators' true x per row."""

    img = page.image
    x0 = float(min(lead["x_start"] for lead in page.truth["leads"]))
    return _warped_ink(img, np.float32([[scale, 0, x0 * (1 - scale)], [0, 1, 0]]), int(x0) - 5)


def test_separators_of_columns_longer_than_the_grid_says_are_found_from_the_page_spacing(  # type: ignore[no-untyped-def]
    record, monkeypatch
) -> None:
    # the trace and its separators 1.6 % longer than the grid: the marks lie 1, 2 and 3 mm past
    # the grid's boundaries, the last two outside the 1.2 mm the grid's boundary is searched
    page = render_page(record, layout="3x4", dpi=150, style="clean", seed=1)
    scale = 1.016
    image = _stretched_ink(page, scale)
    x0 = float(min(lead["x_start"] for lead in page.truth["leads"]))
    truth = sorted({round(x0 + (lead["x_start"] - x0) * scale, 1)
                    for lead in page.truth["leads"] if lead["x_start"] > x0 + 5})  # fmt: skip
    assert len(truth) == 3
    import ecgscan.digitize._pipeline as pipeline

    seen: list[tuple[list[list[float]], list[bool]]] = []
    marks: list[float] = []
    real_shifts, real_mark = pipeline._column_shifts, pipeline._time_mark

    def shifts(*a, **k):  # type: ignore[no-untyped-def]
        seen.append(real_shifts(*a, **k))
        return seen[-1]

    def mark(*a, **k):  # type: ignore[no-untyped-def]
        got = real_mark(*a, **k)
        if got is not None:
            marks.append(got)
        return got

    monkeypatch.setattr(pipeline, "_column_shifts", shifts)
    monkeypatch.setattr(pipeline, "_time_mark", mark)
    res = digitize(image, fs=500)
    assert res.layout.name == "3x4"
    assert seen and seen[0][1] == [True, True, True]
    # every row's mark at every boundary, each on its separator
    for x in truth:
        near = [m for m in marks if abs(m - x) < 3.0]
        assert len(near) == 3 and all(abs(m - x) < 0.5 for m in near), (x, near)


def test_find_pulse_follows_a_falling_edge_bent_sideways_on_a_photo() -> None:
    # a pulse cut by the page's edge whose falling edge steps 3 px right halfway down, and
    # faint: the row's start must not be read as a 1-mV ramp
    prob = _ink()
    prob[89:92, 0:18] = 1.0
    prob[89:122, 18:20] = 1.0
    prob[122:131, 18:20] = 0.3
    prob[118:151, 22:24] = 1.0
    prob[148:151, 22:400] = 1.0
    pulse = find_pulse(prob, baseline=149.5, x_first=0, px_per_mm=_PPM, thickness=2.0)
    assert pulse is not None and pulse.partial
    assert 18.0 <= pulse.x_fall <= 20.0


def _faded_fall(foot_dx: int, foot_piece: int) -> np.ndarray:
    """Real-scan ecg00045's row III at 4.7 px/mm: a pulse whose rise has faded away (the
    top starts at x = 10, nothing under it), its falling edge down one column to 8.1 mm,
    then 4 px of nothing, then its last ``foot_piece`` px down one column ``foot_dx`` px
    right of the edge, where the trace leaves (10.9 mm below the top)."""
    prob = _ink(120, 300)
    prob[20, 10:30] = 1.0  # the top
    prob[20:59, 30] = 1.0  # the falling edge, down to 8.1 mm
    prob[63 + 9 - foot_piece : 72, 30 + foot_dx] = 1.0  # its foot, after a 4-px break
    prob[71, 30 + foot_dx : 300] = 1.0  # the trace
    prob[55:71, 150] = 1.0  # an R wave
    return prob


def test_find_pulse_follows_a_faded_falling_edge_down_to_its_foot() -> None:
    # the edge's own ink is 8.1 mm, too short for a 1-mV pulse at any usual gain (10 mm
    # within 12 %): across the break, its foot makes it 10.9 mm (0.2 mV more: as h8 gave
    # it by hand, the page's Einthoven figure rose from 15.6 to 16.7 dB)
    pulse = find_pulse(_faded_fall(3, 9), baseline=71.0, x_first=10, px_per_mm=4.7,
                       thickness=1.0)  # fmt: skip
    assert pulse is not None and pulse.partial
    assert pulse.x_fall == pytest.approx(30.0, abs=0.3)
    assert pulse.y_base - pulse.y_top == pytest.approx(51.0, abs=1.0)
    # a foot further aside than a bent stroke goes (0.75 mm), or a speck below the break
    # rather than a piece of stroke (1 mm down one column), is not the edge's
    for dx, piece in ((5, 9), (3, 3)):
        assert find_pulse(_faded_fall(dx, piece), baseline=71.0, x_first=10, px_per_mm=4.7,
                          thickness=1.0) is None  # fmt: skip


def test_a_real_page_whose_pulse_fades_finds_it() -> None:
    """ecg00045: row III's pulse, whose falling edge fades into pieces, is found (its
    Einthoven figure 15.6 -> 16.3 dB)."""
    from _shared import shared_path

    res = digitize(shared_path("images", "real-scans", "ecg00045.jpg"), fs=500)
    assert [r.pulse for r in res.layout.rows] == [False, True, True, True]
    i, ii, iii = (res.record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    a = ii[ok] - ii[ok].mean()
    err = a - (i[ok] + iii[ok] - (i[ok] + iii[ok]).mean())
    assert 10 * np.log10(np.sum(a**2) / np.sum(err**2)) >= 16.0


def _move_ink(image: np.ndarray, y0: int, y1: int, x0: int, dx: int) -> np.ndarray:
    """``image`` with the dark ink (trace, bars, labels) of rows y0:y1 right of x0 moved
    ``dx`` px to the right, as a photo's row can sit against the grid."""
    out = image.copy()
    band = out[y0:y1, x0:]
    ink = band.max(axis=2) < 220  # (the red grid is bright in its red channel)
    moved = np.zeros_like(ink)
    moved[:, dx:] = ink[:, :-dx]
    pixels = band[ink]
    band[ink] = 255
    band[moved] = pixels
    return out


def test_rows_and_the_rhythm_strip_moved_against_the_grid_are_put_back_on_one_time_axis(  # type: ignore[no-untyped-def]
    page,
) -> None:
    base = sorted({lead["baseline_y"] for lead in page.truth["leads"]})
    assert len(base) == 4
    mid = [int(round((a + b) / 2)) for a, b in itertools.pairwise(base)]
    x0 = int(page.truth["leads"][0]["x_start"]) + 15  # right of the pulses
    image = _move_ink(page.image, 0, mid[0], x0, 2)  # row I 2 px (7 samples) late
    image = _move_ink(image, mid[2], image.shape[0], x0, 3)  # the rhythm strip 3 px late
    res = digitize(image, fs=500)
    assert res.layout.name == "3x4+II"
    # the separators put I back beside II and III: Einthoven holds at lag 0
    db, lags = _einthoven(res.record)
    assert max(map(abs, lags)) <= 1 and db > 15.0
    # and II is one signal over the page: its strip is on row II's time axis
    ref, est = page.reference.lead("II"), res.record.lead("II")

    def lag(lo: int, hi: int) -> int:
        def fit(k: int) -> float:
            a, b = ref[lo : hi - 20], est[lo + k : hi - 20 + k]
            ok = np.isfinite(a) & np.isfinite(b)
            return float(np.corrcoef(a[ok], b[ok])[0, 1])

        return max(range(0, 20), key=fit)

    assert abs(lag(0, 1250) - lag(1500, 5000)) <= 1


def test_row_durations_snap_to_printed_lengths_only_within_their_error() -> None:
    from ecgscan.digitize._pipeline import _snap_duration

    assert _snap_duration(9.8) == 10.0  # a pulse's foot or a 2 % scale error
    assert _snap_duration(2.4) == 2.5
    assert _snap_duration(9.5) == 9.5  # a page that shows 9.5 s is not stretched
    # a row whose end is misread takes its page's printed length
    assert _snap_duration(9.3, page=np.array([9.3, 9.95, 10.02])) == 10.0
    # a row cut off by the image's edge is longer than it looks (real scan ecg00017: 9.42 s)
    assert _snap_duration(9.42, cut=True) == 10.0
    assert _snap_duration(8.5, cut=True) == 8.5  # too short for a cut 10-s row


def test_samples_before_the_first_traced_column_are_unknown_not_extrapolated() -> None:
    # a trace that starts at the pulse's falling edge (no gap, as ECG-Image-Kit and many
    # printers draw it) at a scan's low resolution (3 px/mm): its first pixels merge with the
    # falling stroke, so the samples there were extrapolated (0.4 mV off on II) and are NaN
    clean = synthetic_ecg(fs=500, duration=10, seed=3, noise_mv=0.0)
    page = render_page(clean, layout="3x4+II", dpi=75, style="clean", seed=1,
                       calibration_gap=0.0)  # fmt: skip
    res = digitize(page.image, fs=500)
    for lead in ("I", "II", "III"):
        ref, est = page.reference.lead(lead), res.record.lead(lead)
        ok = np.isfinite(ref) & np.isfinite(est)
        first = int(np.flatnonzero(np.isfinite(est))[0])
        assert 10 < first <= 10 + 30  # after the 20-ms lead-in; at most 1.5 mm left out
        d = est - ref - np.median(est[ok] - ref[ok])
        assert np.max(np.abs(d[first : first + 20])) < 0.15


@pytest.mark.parametrize("x", [50.0, 50.3, 50.55, 50.8])
def test_falling_edge_from_the_grey_levels(x: float) -> None:
    """A crisp stroke's anti-aliased edges are fainter than grid lines, so the darkness map
    keeps only its solid columns and their centroid misses the stroke's centre by up to a
    quarter of a pixel; the grey levels give it to a few hundredths, also where the trace
    leaves the stroke on some of its rows. A step pulse's ``x_fall`` is left alone."""
    import cv2

    img = np.full((120, 120, 3), 250, np.uint8)
    cv2.line(img, (int(x * 16), 20 * 16), (int(x * 16), 100 * 16), (30, 30, 30), 3,
             cv2.LINE_AA, 4)  # fmt: skip
    pulse = Pulse(x_rise=10.0, x_fall=float(round(x)), y_top=20.0, y_base=100.0)
    assert refine_fall(img, pulse, thickness=3.0).x_fall == pytest.approx(x, abs=0.05)
    # the trace leaves the stroke on a few of its middle rows
    cv2.line(img, (int(x * 16), 60 * 16), (100 * 16, 52 * 16), (30, 30, 30), 2, cv2.LINE_AA, 4)
    assert refine_fall(img, pulse, thickness=3.0).x_fall == pytest.approx(x, abs=0.05)
    step = Pulse(x_rise=10.0, x_fall=float(round(x)), y_top=20.0, y_base=100.0, shape="step")
    assert refine_fall(img, step, thickness=3.0) == step


def test_a_trace_that_starts_under_a_step_pulses_top_starts_there() -> None:
    # a step pulse pushed against the trace (short lead-in): the trace begins below the top,
    # 2 mm before its end, with the row's name printed under the top too; in a 12x1 stack
    # the next row's pulse top lies 5 mm below the baseline and the trace dips onto it
    prob = _ink()
    prob[148:151, 8:22] = 1.0  # 2 mm flat at the baseline
    prob[89:151, 20:23] = 1.0  # the rise
    prob[89:92, 20:51] = 1.0  # the top, ending at x = 50 (no falling edge)
    prob[178:181, 20:51] = 1.0  # the next row's pulse top, from its rise on
    prob[148:151, 38:400] = 1.0  # the trace, from x = 38 on
    prob[150:181, 60:63] = 1.0  # an S wave down onto the next row's pulse top
    prob[100:116, 40:42] = 1.0  # "I" under the top
    pulse = find_pulse(prob, baseline=149.5, x_first=8, px_per_mm=_PPM, thickness=3.0)
    assert pulse is not None and pulse.shape == "step"
    # was the top's end, then the next row's top (its first column after the rise)
    assert _trace_origin(prob, pulse, thickness=3.0, ppm=_PPM) == pytest.approx(39.0)


def test_a_page_whose_step_pulses_overlap_the_traces_starts_on_time(  # type: ignore[no-untyped-def]
    record,
) -> None:
    # a 6-mm lead-in leaves no room for the 7-mm step pulse: the renderer pushes it against
    # the left margin and the traces start 1.5 mm (0.06 s) before its top ends (PTB-XL
    # 10534 in the random style: 90 ms late, 0.6 dB)
    page = render_page(record, layout="3x4+II", dpi=200, style="clean", seed=2, lead_in=6.0,
                       calibration_shape="step")  # fmt: skip
    cal, first = page.truth["calibration"][0], page.truth["leads"][0]
    assert cal["shape"] == "step" and first["x_start"] < cal["bbox"][2] - 1.0 * 200 / 25.4
    res = digitize(page.image, fs=500)
    assert res.layout.name == "3x4+II"
    # px (was 19 px late, 0.1 s: the rows started at the top's end)
    assert all(abs(r.x_start - first["x_start"]) < 2.0 for r in res.layout.rows)
    for lead in ("I", "II", "III"):
        lag, err = _lag_and_error(page.reference, res.record, lead)
        assert 9 <= lag <= 11  # the 20-ms lead-in, on time
        assert err < 0.15
