"""Split gains (limb leads at 10 mm/mV, chest leads at 5) and pulses as tall as their rows'
spacing: the rules on measured pulses, and whole pages drawn by our renderer through the
whole pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize, result_files
from ecgscan.digitize._calibration import Pulse, calibrate, settle_gains, zero_line
from ecgscan.digitize._result import Calibration
from ecgscan.digitize._text import PrintedCalibration
from ecgscan.render import render_page

_KW = {"px_per_mm_x": 8.0, "px_per_mm_y": 8.0}
_LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")
_CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")


def _pulse(height_mm: float, chest_mm: float | None = None) -> Pulse:
    base = 500.0
    return Pulse(x_rise=100.0, x_fall=140.0, y_top=base - 8.0 * height_mm, y_base=base,
                 y_chest=None if chest_mm is None else base - 8.0 * chest_mm)  # fmt: skip


def test_gain_for_and_the_summary() -> None:
    cal = Calibration(gain=20.0, gain_chest=10.0, source="pulse", pulse_found=True)
    assert [cal.gain_for(n) for n in ("II", "-aVR", "V1", "v6")] == [20.0, 20.0, 10.0, 10.0]
    assert Calibration(gain=10.0).gain_for("V3") == 10.0
    assert cal.to_dict()["gain_chest"] == 10.0 and "gain_chest=10.0" in repr(cal)


def test_stepped_pulses_and_printed_settings_give_the_chest_gain() -> None:
    # stepped pulses (10 mm then 5 mm): the second level is the chest gain
    cal = calibrate([_pulse(10.0, 5.0)] * 3, **_KW)
    assert (cal.gain, cal.gain_chest, cal.source) == (10.0, 5.0, "pulse")
    # plain 10-mm pulses and "Limb: 10 mm/mV  Chest: 5 mm/mV" printed
    split = PrintedCalibration(paper_speed=25.0, gain=10.0, gain_chest=5.0)
    cal = calibrate([_pulse(10.0)] * 3, printed=split, **_KW)
    assert (cal.gain, cal.gain_chest, cal.source) == (10.0, 5.0, "pulse+text")
    # a printed limb gain that is not the pulses' is not the page's: its chest gain neither
    cal = calibrate([_pulse(20.0)] * 3, printed=split, **_KW)
    assert (cal.gain, cal.gain_chest) == (20.0, None)
    # the caller's gain applies to every lead
    cal = calibrate([_pulse(10.0, 5.0)] * 3, printed=split, gain=10.0, **_KW)
    assert (cal.gain, cal.gain_chest) == (10.0, None)


def test_rows_led_by_chest_leads_with_their_own_pulses() -> None:
    rows = [(n,) for n in _LIMB + _CHEST]
    pulses = [_pulse(10.0)] * 6 + [_pulse(5.0)] * 6
    first = calibrate(pulses, **_KW)
    cal = settle_gains(first, pulses, rows, px_per_mm_y=8.0)
    assert (cal.gain, cal.gain_chest, cal.source) == (10.0, 5.0, "pulse")
    # 0 mV is 1 mV below each pulse's top at its own row's gain
    assert zero_line(pulses[0], cal, "I", px_per_mm_y=8.0) == 500.0
    assert zero_line(pulses[-1], cal, "V6", px_per_mm_y=8.0) == 500.0
    assert zero_line(_pulse(10.0, 5.0), cal, "V1", px_per_mm_y=8.0) == 500.0  # stepped
    # one row misread (or a one-gain page): unchanged
    odd = [*pulses[:-1], _pulse(10.0)]
    assert settle_gains(first, odd, rows, px_per_mm_y=8.0) == first
    assert settle_gains(first, pulses, rows, px_per_mm_y=8.0, given=True) == first
    same = [_pulse(10.0)] * 12
    assert settle_gains(calibrate(same, **_KW), same, rows, px_per_mm_y=8.0).gain_chest is None


def test_stepped_pulses_give_the_limb_gain_beside_chest_strips_plain_pulses() -> None:
    # a 3x4+II,V1,V5 page at 20/10 (our 100-DPI scan render, pulses stacked into a ladder):
    # the grid rows' pulses are stepped (20 mm, then 10), the rhythm strips of V1 and V5
    # have plain 10-mm ones, and only one stepped pulse was found. The median pulse reads
    # 10 mm/mV: every limb lead came out at half its size and 0 mV 10 mm off on the
    # stepped row (the page scored 1.3 dB; 7.2 with the gains settled)
    rows = [("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"),
            ("II",), ("V1",), ("V5",)]  # fmt: skip
    pulses = [_pulse(20.0, 10.0), None, None, None, _pulse(10.0), _pulse(10.0)]
    first = calibrate([p for p in pulses if p is not None], **_KW)
    assert first.gain == 10.0  # the premise
    cal = settle_gains(first, pulses, rows, px_per_mm_y=8.0)
    assert (cal.gain, cal.gain_chest) == (20.0, 10.0)
    assert zero_line(pulses[0], cal, "I", px_per_mm_y=8.0) == 500.0  # type: ignore[arg-type]
    assert zero_line(pulses[4], cal, "V1", px_per_mm_y=8.0) == 500.0  # type: ignore[arg-type]
    # stepped pulses alone leave the chest gain to their second level, as before
    assert settle_gains(first, pulses[:4], rows[:4], px_per_mm_y=8.0) == first


@pytest.fixture(scope="module")
def record():  # type: ignore[no-untyped-def]
    return synthetic_ecg(fs=500, duration=10, seed=3, name="example")


def _size(page, result, leads) -> float:  # type: ignore[no-untyped-def]
    """Median over ``leads`` of the digitized lead's spread over the reference's."""
    ref, est = page.reference, result.record
    ratios = []
    for name in leads:
        a, b = ref.lead(name), est.lead(name)
        both = np.isfinite(a) & np.isfinite(b)
        ratios.append(float(np.std(b[both]) / np.std(a[both])))
    return float(np.median(ratios))


@pytest.mark.parametrize(
    ("layout", "split"),
    [("3x4+II", "stepped"), ("12x1", "row")],  # a stepped pulse; V1-V6 rows' 5-mm pulses
)
def test_split_gain_pages_are_read_at_both_gains(record, layout: str, split: str) -> None:
    page = render_page(record, layout=layout, dpi=100, style="clean", seed=2, gain_limb=10.0,
                       gain_chest=5.0, calibration_split=split, footer_text="",
                       header_height=20.0)  # fmt: skip
    res = digitize(page.image, fs=500)
    cal = res.calibration
    assert (cal.gain, cal.gain_chest, cal.source) == (10.0, 5.0, "pulse")
    # every lead at its size against the reference (read at the limb gain, the chest leads
    # would come out half as large: 0.5)
    limb, chest = _size(page, res, _LIMB), _size(page, res, _CHEST)
    assert 0.7 < limb < 1.2 and 0.85 < chest < 1.2, (limb, chest)
    summary = json.loads(result_files(res, name="p", formats=("csv",))[".json"])
    assert summary["calibration"]["gain_chest"] == 5.0


def test_pulses_as_tall_as_their_rows_spacing(record) -> None:
    # 12 rows 12 mm apart at 150 DPI with 10-mm pulses on a dark grid whose major lines run
    # along the pulses' edges: each pulse is 10 mm, not two rows' pulses and lines (20 mm)
    page = render_page(record, layout="12x1", dpi=150, style="print", seed=85, header_lines=(),
                       footer_text="", labels=False)  # fmt: skip
    gaps = np.diff([r["baseline_y"] for r in page.truth["rows"]]) / (150 / 25.4)
    assert gaps.max() < 12.5  # the rows are as close as the pulses are tall
    res = digitize(page.image, fs=500)
    assert (res.calibration.gain, res.calibration.source) == (10.0, "pulse")
    assert sum(r.pulse for r in res.layout.rows) == 12
    truth = [r["baseline_y"] for r in page.truth["rows"]]
    found = [r.baseline for r in res.layout.rows]
    np.testing.assert_allclose(found, truth, atol=1.5)  # 0 mV from each pulse, to 0.25 mm
