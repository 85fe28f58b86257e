"""Geometry stage: grid dewarp (perspective, lens, curl), rotation, quarter turns, EXIF."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _shared import shared_path
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize, estimate_rotation, load_image, straighten
from ecgscan.digitize._geometry import (
    _int_percentile,
    _pool,
    _preview_scale,
    _shrink,
    estimate_warp,
    find_paper,
    flatten_lighting,
    upside_down,
)
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


def test_warp_is_found_through_heavy_noise() -> None:
    # blurred, noisy photos (and dotted grids) keep only a weak periodic grid signal
    # (coherence ~0.1 instead of 0.3-0.5): the warp must still be read, and read the same
    page = _render([{"name": "perspective", "offsets": _TILT}])
    clean = estimate_warp(page.image)
    assert clean is not None and clean.magnitude > 20.0
    rng = np.random.default_rng(0)
    noisy = np.clip(page.image + rng.normal(0.0, 40.0, page.image.shape), 0, 255).astype(np.uint8)
    warp = estimate_warp(noisy)
    assert warp is not None and warp.coverage > 0.8
    assert np.abs(warp.u - clean.u).max() < 1.0
    assert np.abs(warp.v - clean.v).max() < 1.0


@pytest.mark.parametrize("name", ["ecg00029.jpg", "ecg00034.jpg"])
def test_phone_photo_of_dotted_grid_is_dewarped(name: str) -> None:
    # phone photos of whole sheets (dotted 1-mm grid, ~4.3 px/mm) taken at an angle: the
    # rows' calibration pulses lie 5-15 mm apart across the sheet until the grid dewarps it
    image = load_image(shared_path("images", "real-scans", name))
    before = estimate_warp(image)
    assert before is not None and before.magnitude > 20.0
    out, geometry = straighten(image)
    assert geometry.dewarp > 20.0
    after = estimate_warp(out)
    assert after is not None and after.magnitude < 1.0  # one pass alone leaves 1.5-7 px
    rows = digitize(image).layout.rows
    starts = [r.x_start for r in rows if r.pulse]
    assert len(starts) >= 2 and max(starts) - min(starts) < 1.0 * 4.3  # within 1 mm


def _shade(image: np.ndarray, depth: float) -> np.ndarray:
    """The page under a soft dark patch (a shadow, a wrinkle's shading) down to 1 - depth."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((xx - 0.45 * w) / (0.18 * w)) ** 2 + ((yy - 0.55 * h) / (0.2 * h)) ** 2))
    return (image * (1.0 - depth * blob)[:, :, None]).round().astype(np.uint8)


def test_shading_is_flattened(flat: tuple[RenderedPage, float]) -> None:
    page, snr = flat
    assert flatten_lighting(page.image) is page.image  # evenly lit: untouched
    shaded = _shade(page.image, 0.7)
    out = flatten_lighting(shaded)
    h, w = out.shape[:2]
    paper = (page.mask == 0) & (page.image.min(axis=2) > 240)  # blank paper in the render
    centre = np.zeros_like(paper)
    centre[int(0.45 * h) : int(0.65 * h), int(0.35 * w) : int(0.55 * w)] = True
    value = out.max(axis=2).astype(float)
    assert np.median(shaded.max(axis=2)[paper & centre]) < 120  # deep in the shade before
    assert np.median(value[paper & centre]) > 230  # paper-white again
    ink = page.mask > 0
    assert np.median(value[ink & centre]) < 110  # and the trace stays dark on it
    # the whole digitizer reads the shaded page like the flat one (it lost ~6 dB before)
    assert _snr(page, shaded) >= snr - 1.0


def test_strong_rotation_is_undone(flat: tuple[RenderedPage, float]) -> None:
    page = _render([{"name": "rotate", "angle": -20.0}])
    assert estimate_rotation(page.image) == pytest.approx(20.0, abs=0.15)
    res = digitize(page.image)
    assert res.geometry.rotation == pytest.approx(20.0, abs=0.15)
    # the turn cuts off the page's corners, and with them the rhythm strip's first 0.25 s
    # and last 1.7 s: the strip is still found where it starts, and still named II (it took
    # the row above's trace for its first columns before, and was renamed aVF)
    strip = res.layout.rows[-1]
    assert strip.leads == ("II",)
    # resampling a 150-DPI page twice (the render's turn and ours) blunts the QRS tips:
    # about 3 dB below the flat page
    assert mean_snr(challenge_snr(page.reference, res.record)) >= flat[1] - 4.5


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


def _turned(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[::-1, ::-1])


@pytest.mark.parametrize(
    ("layout", "style", "seed"), [("12x1", "print", 0), ("3x4+II", "clean", 2)]
)
def test_pulses_at_the_right_end_tell_up_from_down(layout: str, style: str, seed: int) -> None:
    # some machines print the pulses after the traces: upright they stand at the right end.
    # Turned, they hang from the left end, where the search for a pulse at a row's start
    # took the one hanging from the row above for a pulse (the 12x1 page was turned over)
    rec = synthetic_ecg(fs=500, duration=10, seed=5)
    page = render_page(rec, layout=layout, dpi=100, style=style, seed=seed, calibration="right")
    assert upside_down(page.image) is False
    assert upside_down(_turned(page.image)) is True


def test_lead_names_tell_up_from_down_without_pulses() -> None:
    rec = synthetic_ecg(fs=500, duration=10, seed=5)
    page = render_page(rec, layout="3x4+II", dpi=100, style="clean", seed=2, calibration="none")
    assert upside_down(page.image) is False
    assert upside_down(_turned(page.image)) is True
    # neither pulses nor names: nothing tells up from down, the page is left as given
    bare = render_page(
        rec, layout="3x4+II", dpi=100, style="clean", seed=2, calibration="none", labels=False
    )
    assert upside_down(bare.image) is False
    assert upside_down(_turned(bare.image)) is False


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


@pytest.mark.parametrize("kind", ["rgb", "rgba", "exif", "grey"])
def test_png_pixels_are_read_exactly(tmp_path: Any, kind: str) -> None:
    # plain RGB PNGs take a faster decoder: the pixels must be Pillow's, and the other kinds
    # (transparency on white, EXIF orientation, grey) keep their handling
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    path = tmp_path / "page.png"
    if kind == "rgba":
        alpha = np.where(np.arange(320) < 160, 255, 0).astype(np.uint8)[None, :].repeat(240, 0)
        Image.fromarray(np.dstack([rgb, alpha])).save(path)
        want = np.where(alpha[:, :, None] == 255, rgb, 255)
    elif kind == "exif":
        exif = Image.Exif()
        exif[0x0112] = 3  # stored upside down
        Image.fromarray(rgb).save(path, exif=exif.tobytes())
        want = rgb[::-1, ::-1]
    elif kind == "grey":
        Image.fromarray(rgb[:, :, 0]).save(path)
        want = np.repeat(rgb[:, :, :1], 3, axis=2)
    else:
        Image.fromarray(rgb).save(path)
        want = rgb
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, want)


def test_integer_percentile_from_the_histogram_is_numpys() -> None:
    rng = np.random.default_rng(2)
    for size in (1, 2, 7, 1000, 12345):
        values = rng.integers(-300, 400, size).astype(np.int16)
        for q in (0.0, 37.5, 90.0, 99.99, 100.0):
            assert _int_percentile(values, q) == np.percentile(values, q)


def test_pooling_averages_first_and_filters_the_cells_like_the_whole_image() -> None:
    import cv2

    rng = np.random.default_rng(3)
    a = rng.normal(size=(203, 317)).astype(np.float32)
    step, sigma = 9, 4.2
    ny, nx = a.shape[0] // step, a.shape[1] // step
    k = 2 * int(3 * sigma) + 1
    for axis, ksize in ((1, (k, 1)), (0, (1, k))):
        # the direct way: filter the whole image along the axis, then average the cells
        full = cv2.GaussianBlur(a, ksize, sigmaX=sigma, sigmaY=sigma)[: ny * step, : nx * step]
        cells = cv2.resize(full, (nx, ny), interpolation=cv2.INTER_AREA)
        want = cv2.GaussianBlur(cells, (0, 0), 1.0)
        np.testing.assert_allclose(_pool(a, step, axis, sigma), want, atol=1e-5)


def test_shrinking_in_two_steps_is_an_area_reduction() -> None:
    import cv2

    # smooth content (paper shading, wide strokes): the same as one fractional reduction
    smooth = 128 + 100 * np.cos(np.arange(1700) / 70.0)[:, None] * np.sin(np.arange(2200) / 90.0)
    image = np.repeat(smooth[:, :, None].astype(np.uint8), 3, axis=2)
    for size in ((800, 618), (1100, 850), (1000, 773)):
        out = _shrink(image, size)
        direct = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        assert out.shape == direct.shape
        assert np.abs(out.astype(int) - direct).max() <= 2
    assert _shrink(image, (2200, 1700)) is image


def test_previews_are_whole_number_reductions_where_they_can_be() -> None:
    assert _preview_scale(1100) == 1.0  # small pages as they are
    assert _preview_scale(2200) == 0.5  # 200-DPI letter: 1100 px
    assert _preview_scale(3300) == pytest.approx(1 / 3)  # 300-DPI letter: 1100 px
    assert _preview_scale(2600) == 0.5  # 1300 px
    assert _preview_scale(1650) == pytest.approx(1200 / 1650)  # no whole factor fits


def test_tilt_is_read_on_a_half_size_preview() -> None:
    rec = synthetic_ecg(fs=500, duration=10, seed=3)
    page = render_page(
        rec, layout="3x4+II", dpi=200, style="clean", seed=1,
        degradations=[{"name": "rotate", "angle": 3.0}],
    )  # fmt: skip
    assert max(page.image.shape) == 2200
    out, geometry = straighten(page.image)
    assert geometry.rotation == pytest.approx(-3.0, abs=0.1)
    assert geometry.quarter_turns == 0 and upside_down(out) is False


def test_sheet_on_a_background_is_found_on_large_photos() -> None:
    import cv2

    # a 2400-px photo: the quick look on the whole-number reduction must not miss the sheet
    photo = np.full((1800, 2400, 3), (70, 60, 50), np.uint8)
    corners = np.array([[300, 200], [2050, 260], [2000, 1600], [340, 1550]], np.float64)
    cv2.fillConvexPoly(photo, corners.astype(np.int32), (245, 245, 240))
    found = find_paper(photo)
    assert found is not None
    np.testing.assert_allclose(found, corners, atol=15.0)  # within 3 px of the 800-px view
    # a scan (paper to the edges) has no outline
    assert find_paper(np.full((1800, 2400, 3), 245, np.uint8)) is None


def test_sheet_corners_come_from_its_straight_sides() -> None:
    import cv2

    photo = np.full((1800, 2400, 3), (70, 60, 50), np.uint8)
    # the sheet's top-right corner lies outside the picture, and a bright patch of the table
    # (a lamp's reflection) touches its left side
    corners = np.array([[300, 200], [2500, 120], [2050, 1600], [340, 1550]], np.float64)
    cv2.fillConvexPoly(photo, corners.astype(np.int32), (245, 245, 240))
    cv2.circle(photo, (250, 900), 120, (240, 240, 236), -1)
    found = find_paper(photo)
    assert found is not None
    np.testing.assert_allclose(found, corners, atol=15.0)
    # a rounded bright blob is no sheet: its outline has no straight sides
    blob = np.full((1800, 2400, 3), (70, 60, 50), np.uint8)
    cv2.ellipse(blob, (1200, 900), (900, 650), 0, 0, 360, (245, 245, 240), -1)
    assert find_paper(blob) is None
