"""Every font style of the renderer draws letters, and the digitizer reads them."""

from __future__ import annotations

import numpy as np
import pytest

from ecgscan.digitize._layout import read_label
from ecgscan.digitize._text import read_calibration_text
from ecgscan.render._text import FONTS, draw_text

_PPM = 200 / 25.4  # 200 DPI
_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _drawn(text: str, font: str, width_mm: float = 40.0) -> np.ndarray:
    """Ink (bool) of ``text`` drawn 3.2 mm tall at 200 DPI on a white strip."""
    image = np.full((int(10 * _PPM), int(width_mm * _PPM), 3), 255, np.uint8)
    draw_text(image, text, (int(2 * _PPM), int(2 * _PPM)), font=font, size_px=3.2 * _PPM)
    return np.asarray(image[..., 0] < 128)


@pytest.mark.parametrize("font", list(FONTS))
def test_every_font_draws_the_lead_names_and_the_label_reader_reads_them(font: str) -> None:
    for name in _NAMES:
        ink = _drawn(name, font)
        rows = np.flatnonzero(ink.any(axis=1))
        # letters, not a blank: ink as tall as a capital (0.7 of the 3.2-mm size, give or take)
        assert rows.size and rows[-1] - rows[0] >= 1.8 * _PPM, (font, name)
        scores = read_label(ink)
        assert max(scores, key=scores.__getitem__) == name, (font, name)


@pytest.mark.parametrize("font", list(FONTS))
def test_every_font_prints_settings_the_reader_reads(font: str) -> None:
    ink = _drawn("Speed: 25 mm/sec   Limb: 10 mm/mV   Chest: 5 mm/mV", font, width_mm=190.0)
    read = read_calibration_text(ink.astype(np.float32), px_per_mm=_PPM)
    assert (read.paper_speed, read.gain, read.gain_chest) == (25.0, 10.0, 5.0), font
