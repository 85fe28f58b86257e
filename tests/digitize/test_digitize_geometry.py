"""Geometry stage: grid dewarp (perspective, lens, curl), rotation, quarter turns, EXIF."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize, estimate_rotation, load_image, straighten
from ecgscan.digitize._geometry import estimate_warp, upside_down
from ecgscan.metrics import challenge_snr, mean_snr
from ecgscan.render import RenderedPage, render_page

#: Camera tilt without a background around the sheet (find_paper cannot see its outline).
_TILT = [0.03, 0.02, -0.02, 0.03, 0.01, -0.03, 0.03, -0.01]


def _render(degradations: list[Any]) -> RenderedPage:
    rec = synthetic_ecg(fs=500, duration=10, seed=3)
    return render_page(
        rec, layout="3x4+II", dpi=150, style="clean", seed=1, degradations=degradations
    )


def _snr(page: RenderedPage, image: Any = None) -> float:
    res = digitize(page.image if image is None else image)
    return mean_snr(challenge_snr(page.reference, res.record))


@pytest.fixture(scope="module")
def flat() -> tuple[RenderedPage, float]:
    page = _render([])
    return page, _snr(page)


def test_flat_page_is_left_untouched(flat: tuple[RenderedPage, float]) -> None:
    page, snr = flat
    warp = estimate_warp(page.image)
    assert warp is not None and warp.coverage > 0.5
    assert warp.magnitude < 1.0  # the grid is already straight: nothing to fix
    out, geometry = straighten(page.image)
    assert out is page.image  # no resampling at all
    assert geometry.quarter_turns == 0 and geometry.perspective is None
    assert snr >= 8.0


def test_blank_page_has_no_grid_warp() -> None:
    assert estimate_warp(np.full((800, 1000, 3), 250, np.uint8)) is None


@pytest.mark.parametrize(
    "degradation",
    [
        {"name": "lens", "k": 0.04},
        {"name": "curl", "amplitude": 12.0, "edge": "right", "reach": 0.4, "bow": 5.0},
    ],
    ids=["lens", "curl"],
)
def test_bent_grid_is_straightened(degradation: dict[str, Any]) -> None:
    page = _render([degradation])
    before = estimate_warp(page.image)
    assert before is not None and before.magnitude > 4.0  # lines bend by several pixels
    out, _ = straighten(page.image)
    after = estimate_warp(out)
    assert after is not None and after.magnitude < 1.0  # straight and evenly spaced again


def test_tilted_camera_page_reads_like_a_flat_one(flat: tuple[RenderedPage, float]) -> None:
    # a photo filling the frame: no background, so the sheet's outline cannot be used
    page = _render([{"name": "perspective", "offsets": _TILT}])
    out, geometry = straighten(page.image)
    assert geometry.perspective is None
    after = estimate_warp(out)
    assert after is not None and after.magnitude < 1.0
    without, _ = straighten(page.image, dewarp=False)
    assert estimate_warp(without).magnitude > 4.0  # type: ignore[union-attr]
    # without the dewarp this page loses ~5 dB; with it, it reads like the flat page
    assert _snr(page) >= flat[1] - 1.5


def test_strong_rotation_is_undone(flat: tuple[RenderedPage, float]) -> None:
    page = _render([{"name": "rotate", "angle": -20.0}])
    assert estimate_rotation(page.image) == pytest.approx(20.0, abs=0.15)
    res = digitize(page.image)
    assert res.geometry.rotation == pytest.approx(20.0, abs=0.15)
    assert mean_snr(challenge_snr(page.reference, res.record)) >= flat[1] - 3.0


@pytest.mark.parametrize(("turn", "expected"), [(2, 2), (-1, 1), (1, 3)])
def test_turned_scan_is_turned_back(
    flat: tuple[RenderedPage, float], turn: int, expected: int
) -> None:
    page, _ = flat
    assert upside_down(page.image) is False
    turned = np.ascontiguousarray(np.rot90(page.image, turn))  # upside down or sideways
    assert upside_down(turned) is (turn == 2)
    out, geometry = straighten(turned)
    assert geometry.quarter_turns == expected  # counter-clockwise turns applied
    np.testing.assert_array_equal(out, page.image)  # quarter turns lose nothing


@pytest.mark.parametrize("calibration", ["none", "right"])
def test_page_without_left_pulses_is_not_turned(calibration: str) -> None:
    # no pulses (nothing tells up from down) or pulses at the right end: left as given
    rec = synthetic_ecg(fs=500, duration=10, seed=5)
    page = render_page(
        rec, layout="3x4+II", dpi=100, style="clean", seed=2, calibration=calibration
    )
    assert upside_down(page.image) is False
    if calibration == "none":
        assert upside_down(np.ascontiguousarray(page.image[::-1, ::-1])) is False


@pytest.mark.parametrize(("orientation", "turn"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Any, orientation: int, turn: int) -> None:
    rng = np.random.default_rng(0)
    upright = np.full((300, 400, 3), 255, np.uint8)
    upright[40:80, 30:200] = (200, 30, 30)  # an asymmetric mark: top-left
    upright -= rng.integers(0, 3, upright.shape, dtype=np.uint8)
    # the camera stores the pixels turned and says so in the EXIF orientation tag
    stored = np.ascontiguousarray(np.rot90(upright, -turn))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    path = tmp_path / "photo.jpg"
    path.write_bytes(buf.getvalue())
    loaded = load_image(path)
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright.astype(int)).mean() < 3.0
