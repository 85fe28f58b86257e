"""Calibration read from the printed settings ("25 mm/s   20 mm/mV"): the reader on footers
drawn in several fonts, the rules that combine it with the pulse, and whole pages drawn by our
renderer without a pulse at 20 mm/mV (read at 20, not at the default 10).
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize
from ecgscan.digitize._calibration import Pulse, calibrate
from ecgscan.digitize._text import PrintedCalibration, read_calibration_text
from ecgscan.metrics import challenge_snr, mean_snr
from ecgscan.render import render_page
from ecgscan.render._text import draw_text

_PPM = 200 / 25.4  # px per mm of the drawn lines (200 DPI)


def _line(text: str, font: str, *, size_mm: float = 3.2) -> np.ndarray:
    """``text`` drawn on a blank strip at 200 DPI, as an ink probability map."""
    image = np.full((int(12 * _PPM), int(190 * _PPM), 3), 255, np.uint8)
    draw_text(image, text, (int(5 * _PPM), int(3 * _PPM)), font=font, size_px=size_mm * _PPM,
              color=(0, 0, 0))  # fmt: skip
    return (1.0 - image[..., 0] / 255.0).astype(np.float32)


@pytest.mark.parametrize("font", ["sans", "serif", "mono-bold", "condensed"])
@pytest.mark.parametrize(
    ("text", "speed", "gain", "chest"),
    [
        ("25 mm/s   20 mm/mV   0.5-40 Hz   50 Hz", 25.0, 20.0, None),
        ("50mm/s    5mm/mV", 50.0, 5.0, None),
        ("Speed: 25 mm/sec   Limb: 10 mm/mV   Chest: 5 mm/mV   F 0.05-150 Hz", 25.0, 10.0, 5.0),
    ],
)
def test_reads_the_printed_settings(text: str, speed: float, gain: float, chest, font: str):
    read = read_calibration_text(_line(text, font), px_per_mm=_PPM)
    assert (read.paper_speed, read.gain, read.gain_chest) == (speed, gain, chest)
    assert read.gain_score >= 0.7 and read.speed_score >= 0.7
    assert len(read.boxes) >= 2  # a box per token read, in page pixels inside the line
    for x0, y0, x1, y1 in read.boxes:
        assert 0 <= x0 < x1 < 190 * _PPM and 0 <= y0 < y1 < 12 * _PPM


def test_reads_a_serif_footer_whose_letters_touch():
    # a scanned GE-style footer in a Times-like face at 200 DPI: "mm/" prints as one mark
    import os

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "STIXGeneral.ttf")
    canvas = Image.new("L", (900, 60), 255)
    ImageDraw.Draw(canvas).text(
        (20, 15), "25mm/s     10mm/mV     100Hz", font=ImageFont.truetype(path, 24), fill=0
    )
    prob = (1.0 - np.asarray(canvas) / 255.0).astype(np.float32)
    read = read_calibration_text(prob, px_per_mm=_PPM)
    assert (read.paper_speed, read.gain) == (25.0, 10.0)


def test_other_words_read_as_nothing():
    for text in ("ID: 00010_lr   QT/QTc 446/460 ms", "0.5-40 Hz   50 Hz", ""):
        read = read_calibration_text(_line(text, "sans"), px_per_mm=_PPM)
        assert not read.found and read.gain is None and read.paper_speed is None


def _pulse(height_mm: float, ppm: float = 8.0) -> Pulse:
    return Pulse(x_rise=100.0, x_fall=100.0 + 5 * ppm, y_top=500.0 - height_mm * ppm, y_base=500.0)


def test_calibrate_combines_pulse_text_and_caller():
    kw = {"px_per_mm_x": 8.0, "px_per_mm_y": 8.0}
    text = PrintedCalibration(paper_speed=50.0, gain=20.0, speed_score=0.8, gain_score=0.8)
    # no pulse: the printed values decide
    cal = calibrate([], printed=text, **kw)
    assert (cal.paper_speed, cal.gain, cal.source) == (50.0, 20.0, "text")
    # a clear 10-mm pulse decides (the text is read for a chest gain only, and names none)
    calls: list[int] = []

    def reader() -> PrintedCalibration:
        calls.append(1)
        return text

    cal = calibrate([_pulse(10.0)], printed=reader, **kw)
    assert (cal.gain, cal.paper_speed, cal.source, calls) == (10.0, 25.0, "pulse", [1])
    # ... and is not read at all when the caller gives the gain
    cal = calibrate([_pulse(10.0)], printed=reader, gain=10.0, **kw)
    assert (cal.gain, cal.source, calls) == (10.0, "given+pulse", [1])
    # a 14-mm pulse lies between 10 and 20 mm/mV: the text settles it ...
    cal = calibrate([_pulse(14.0)], printed=reader, **kw)
    assert (cal.gain, cal.source, calls) == (20.0, "pulse+text", [1, 1])
    # ... but not with a value that is neither (a 7-mm pulse is 5 or 10, the text says 20)
    cal = calibrate([_pulse(7.0)], printed=text, **kw)
    assert (cal.gain, cal.source) == (5.0, "pulse")
    # the caller's values win
    cal = calibrate([], printed=text, gain=10.0, **kw)
    assert (cal.gain, cal.paper_speed, cal.source) == (10.0, 50.0, "given+text")
    cal = calibrate([], printed=PrintedCalibration(), **kw)
    assert (cal.gain, cal.paper_speed, cal.source) == (10.0, 25.0, "default")


@pytest.fixture(scope="module")
def record():
    return synthetic_ecg(fs=500, duration=10, seed=3, name="example")


def _page(record, **overrides):  # type: ignore[no-untyped-def]
    return render_page(record, layout="3x4+II", dpi=100, style="clean", seed=2, **overrides)


def test_page_without_pulse_is_read_at_its_printed_gain(record):
    # 20 mm/mV, no pulse: read at 20 from the footer, as well as the same page with a pulse,
    # and far better than at the default 10 mm/mV (every lead twice too large)
    footer = "{speed:g} mm/s   {gain:g} mm/mV   0.5-40 Hz   50 Hz"
    bare = _page(record, calibration="none", gain=20.0, footer_text=footer, font="sans-bold")
    res = digitize(bare.image, fs=500)
    assert (res.calibration.gain, res.calibration.source) == (20.0, "text")
    assert not res.calibration.pulse_found
    snr = mean_snr(challenge_snr(bare.reference, res.record))
    snr_at_10 = mean_snr(
        challenge_snr(bare.reference, digitize(bare.image, fs=500, gain=10).record)
    )
    with_pulse = _page(record, calibration="left", gain=20.0, footer_text=footer, font="sans-bold")
    res_pulse = digitize(with_pulse.image, fs=500)
    assert (res_pulse.calibration.gain, res_pulse.calibration.source) == (20.0, "pulse")
    snr_pulse = mean_snr(challenge_snr(with_pulse.reference, res_pulse.record))
    assert snr > snr_pulse - 2.0 and snr > snr_at_10 + 5.0, (snr, snr_pulse, snr_at_10)


def test_page_with_pulse_and_footer_and_page_without_either(record):
    page = _page(
        record, calibration="left", gain=10.0, footer_text="{speed:g}mm/s    {gain:g}mm/mV"
    )
    cal = digitize(page.image, fs=500).calibration
    assert (cal.gain, cal.source) == (10.0, "pulse")
    bare = _page(record, calibration="none", footer_text="", header_lines=())
    cal = digitize(bare.image, fs=500).calibration
    assert (cal.gain, cal.paper_speed, cal.source) == (10.0, 25.0, "default")
