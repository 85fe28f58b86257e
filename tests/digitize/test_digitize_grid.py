"""The grid stage: period of the 1-mm grid in px/mm on renders and real scans."""

from __future__ import annotations

import numpy as np
import pytest

from _shared import shared_path
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import estimate_grid, grid_strength, straighten
from ecgscan.digitize._load import load_image
from ecgscan.render import render_page


@pytest.mark.parametrize("dpi", [100, 200, 300])
def test_grid_period_of_a_render(dpi: int) -> None:
    page = render_page(synthetic_ecg(seed=3), dpi=dpi, seed=0)
    grid = estimate_grid(page.image)
    assert grid is not None and grid.found
    expected = dpi / 25.4
    assert grid.px_per_mm_x == pytest.approx(expected, rel=0.01)
    assert grid.px_per_mm_y == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", ["ecg00029.jpg", "ecg00030.jpg", "ecg00034.jpg", "ecg00040.jpg"])
def test_coarse_photo_grid_is_not_read_at_the_5mm_period(name: str) -> None:
    # ~1200-px photos of whole sheets (about 4.3 px/mm): the 5-mm squares (about 21 px) must
    # not be taken for the 1-mm grid, which would make the sheet 56 mm wide
    path = shared_path("images", "real-scans", name)
    page, _ = straighten(load_image(path))  # the grid stage works on the straightened page
    grid = estimate_grid(page)
    assert grid is not None
    assert 3.4 < grid.px_per_mm_x < 5.2
    assert abs(grid.px_per_mm_x - grid.px_per_mm_y) / grid.px_per_mm_x < 0.08


def test_high_resolution_scan_is_not_read_at_twice_the_period() -> None:
    # a 600-DPI scan (3776 px wide, ~14 px/mm): traces and text give broadband power between
    # the grid's spectral lines, which must not pass for sub-harmonics of a 2-mm grid
    image = load_image(shared_path("images", "real-scans", "ecg00012.jpg"))
    grid = estimate_grid(image)
    assert grid is not None
    assert grid.px_per_mm_x == pytest.approx(14.0, rel=0.02)
    assert grid.px_per_mm_y == pytest.approx(14.0, rel=0.02)


def test_blank_page_has_no_grid() -> None:
    assert estimate_grid(np.full((800, 1100, 3), 250, np.uint8)) is None


def test_grid_strength_is_spread_plus_darkness() -> None:
    # the 8-bit fast path (integer spread, darkness by table) gives the float formula's values
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    f = image.astype(np.float32)
    want = (f.max(axis=2) - f.min(axis=2)) + (255.0 - (f[..., 0] + f[..., 1] + f[..., 2]) / 3.0)
    got = grid_strength(image)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(grid_strength(f / 1.0), want, rtol=1e-6)  # float input too


@pytest.mark.parametrize(
    ("layout", "dpi", "style"), [("3x4", 150, "scan"), ("6x2+II", 300, "clean")]
)
def test_a_page_printed_without_grid_has_no_grid(layout: str, dpi: int, style: str) -> None:
    # rows of heartbeats repeat too: their comb made such pages 2-3x too small (a 100-mm page)
    page = render_page(synthetic_ecg(seed=3, fs=100, duration=10), layout=layout, dpi=dpi,
                       style=style, seed=1, grid_style="none")  # fmt: skip
    assert estimate_grid(page.image) is None


def test_a_page_printed_without_grid_is_scaled_by_its_pulses() -> None:
    from ecgscan.digitize import digitize

    page = render_page(synthetic_ecg(seed=3, fs=100, duration=10), layout="6x2+II", dpi=150,
                       style="scan", seed=1, grid_style="none")  # fmt: skip
    res = digitize(page.image, fs=100)
    assert not res.grid.found
    assert res.grid.px_per_mm_x == pytest.approx(150 / 25.4, rel=0.05)
    assert [r.leads for r in res.layout.rows] == [("I", "V1"), ("II", "V2"), ("III", "V3"),
                                                  ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6"),
                                                  ("II",)]  # fmt: skip


@pytest.mark.parametrize("gain", [5.0, 20.0])
def test_a_page_without_grid_at_another_gain_keeps_its_time_scale(gain: float) -> None:
    # the pulse alone cannot tell a 5-mm pulse at 5 mm/mV from a 10-mm one at 2x the scale;
    # the rows' printed length (10 s = 250 mm) can, and times the rows exactly
    from ecgscan.digitize import digitize
    from ecgscan.metrics import challenge_snr, mean_snr

    record = synthetic_ecg(seed=3, fs=100, duration=10)
    page = render_page(record, layout="3x4+II", dpi=200, style="clean", seed=1,
                       grid_style="none", gain=gain)  # fmt: skip
    res = digitize(page.image, fs=100)
    assert not res.grid.found and res.calibration.gain == gain
    assert res.grid.px_per_mm_x == pytest.approx(200 / 25.4, rel=0.01)
    assert res.record.n_samples == 1000
    assert mean_snr(challenge_snr(page.reference, res.record)) > 15
