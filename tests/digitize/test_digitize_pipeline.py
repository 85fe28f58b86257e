"""Pipeline: every row on the page's one time axis, calibration pulses cut by the page's
left edge recognised (never read as signal), step pulses (no falling edge) and pulses printed
after the traces.

Pages are drawn by our renderer from a synthetic record whose limb leads obey Einthoven's law
exactly (no ../shared needed); the pulse finder and the row origins are also checked on
drawn ink maps with known answers.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize
from ecgscan.digitize._calibration import Pulse, calibrate, find_end_pulse, find_pulse
from ecgscan.digitize._pipeline import _row_origins, _trace_origin
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


def test_rows_of_a_page_are_digitized_on_one_time_axis(record, page) -> None:  # type: ignore[no-untyped-def]
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
