"""Calibration pulses on pages drawn by our renderer in its random style (PTB-XL records,
seeded by their ids, as the renderer's robustness checks draw them): step pulses with the
trace or the row's name under their top, a step's top against the first R wave, pulses
stacked into a ladder on 12x1 pages, and a step cut by the page's edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscan.data.ptbxl import PTBXL
from ecgscan.digitize import DigitizationResult, digitize
from ecgscan.metrics import challenge_snr, mean_snr
from ecgscan.render import RenderedPage, render_page


def _page(ptbxl_dir: Path, ecg_id: int, layout: str, dpi: int) -> RenderedPage:
    db = PTBXL(ptbxl_dir)
    return render_page(db.record(ecg_id, fs=100), layout=layout, dpi=dpi, style="random",
                       seed=ecg_id)  # fmt: skip


def _read(page: RenderedPage) -> tuple[DigitizationResult, dict[str, float]]:
    res = digitize(page.image, fs=100)
    return res, challenge_snr(page.reference, res.record)


def _first_x(page: RenderedPage) -> float:
    """Image column of the first lead's first sample (pages not moved by the renderer)."""
    return float(page.truth["leads"][0]["pixels"][0][0])


def test_step_pulses_with_the_trace_or_the_name_under_their_top(ptbxl_dir: Path) -> None:
    # 5 mm/mV step pulses whose top the trace starts under (its first wave rises inside
    # the pulse) and the row's name sits on: no pulse was found (the paper under the top
    # was not blank), so the gain was the default 10 mm/mV and the rows started at the
    # rise (2.2 dB)
    page = _page(ptbxl_dir, 9517, "3x4+II", 200)
    assert page.truth["calibration"][0]["shape"] == "step" and page.truth["gain"] == 5.0
    res, snr = _read(page)
    assert (res.calibration.gain, res.calibration.source) == (5.0, "pulse")
    assert sum(r.pulse for r in res.layout.rows) == 4
    assert mean_snr(snr) > 18.0  # 22.2


def test_a_trace_that_starts_against_a_step_rise_is_not_timed_late(ptbxl_dir: Path) -> None:
    # the trace's first wave touches the step's rising stroke: its start is hidden in the
    # stroke, and the first column clear of it is 3.5 px late (2.4 samples early: two
    # leads scored NaN, the page -0.8 dB with no pulse found, 8.1 with the pulse)
    page = _page(ptbxl_dir, 9515, "3x4", 150)
    res, snr = _read(page)
    assert res.calibration.gain == 20.0 and all(r.pulse for r in res.layout.rows)
    x0 = _first_x(page)
    assert all(x0 - 1.0 * 150 / 25.4 <= r.x_start <= x0 + 0.5 for r in res.layout.rows)
    assert not any(np.isnan(v) for v in snr.values())
    assert mean_snr(snr) > 9.5  # 10.6


def test_a_step_top_that_ends_short_of_the_first_r_wave_is_a_step(ptbxl_dir: Path) -> None:
    # the first row's step top ends 1.3 mm before the trace's first R wave, as tall as the
    # pulse: the two were read as a square pulse whose falling edge was the R wave's
    # downstroke; the other rows' steps were not found (the name under the top), so the
    # page started 0.13 s late (0.4 dB)
    page = _page(ptbxl_dir, 11105, "3x4+II,V1,V5", 150)
    res, snr = _read(page)
    assert res.calibration.gain == 10.0
    x0 = _first_x(page)
    assert all(abs(r.x_start - x0) < 1.5 for r in res.layout.rows)
    assert mean_snr(snr) > 13.0  # 15.4


@pytest.mark.parametrize(
    ("ecg_id", "gain", "floor"),
    [
        (9908, 20.0, 5.0),  # square pulses 20 mm tall, rows 11.8 mm apart: -2.0 -> 7.3 dB
        (9506, 10.0, 8.0),  # step pulses 10 mm tall, rows 10 mm apart (scan): NaN -> 10.4
    ],
)
def test_pulses_stacked_into_a_ladder(ptbxl_dir: Path, ecg_id: int, gain: float,
                                      floor: float) -> None:  # fmt: skip
    # 12x1 rows closer than a pulse is tall: each pulse rises through the rows above, the
    # rises (and falls) merge into one vertical line with the tops as rungs. No pulse stood
    # on its row's baseline: 9908's ladder was read as a 7.7-mm pulse (5 mm/mV, the printed
    # "20mm/mV" then rejected), 9506 took a wrong pulse on one row and started every row
    # 0.12 s late (every lead's estimate early: NaN)
    page = _page(ptbxl_dir, ecg_id, "12x1", 200)
    assert page.truth["gain"] == gain
    res, snr = _read(page)
    assert (res.calibration.gain, res.calibration.source) == (gain, "pulse")
    assert sum(r.pulse for r in res.layout.rows) >= 10
    truth = sorted(r["baseline_y"] for r in page.truth["rows"])
    if "rotate" not in str(page.truth.get("degradations")):  # 0 mV 1 mV below each rung
        off = [min(abs(r.baseline - t) for t in truth) for r in res.layout.rows if r.pulse]
        assert max(off) < 2.0
    assert mean_snr(snr) > floor


def test_a_step_pulse_cut_by_the_page_edge(ptbxl_dir: Path) -> None:
    # a print cut through the step pulses: only the last 5 mm of each top, from the image's
    # first column, then 1.5 mm of paper and the trace. The tops were read as the rows'
    # start, 6.6 mm (0.26 s) before the traces (-1.0 dB)
    page = _page(ptbxl_dir, 11202, "cabrera:3x4+II", 150)
    res, snr = _read(page)
    assert res.calibration.pulse_found and res.calibration.gain == 10.0
    x0 = _first_x(page)
    assert all(abs(r.x_start - x0) < 1.5 for r in res.layout.rows)
    assert mean_snr(snr) > 8.0  # 10.4
