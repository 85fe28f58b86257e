"""Degradations: under every transform the ground truth still lands on the drawn trace."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.errors import EcgscanError
from ecgscan.render import RenderedPage, render_page
from ecgscan.render._degrade import DEGRADATIONS, apply_chain, make_degradation

# Strong settings, so that an error in a transform's ground-truth mapping cannot hide.
STRONG: dict[str, dict] = {
    "rotate": {"angle": 7.5},
    "perspective": {"offsets": [0.05, 0.03, -0.04, 0.05, 0.02, -0.05, 0.04, -0.02]},
    "crop_pad": {"left": -30, "top": 45, "right": 25, "bottom": -12, "fill": [20, 20, 20]},
    "resize": {"factor": 0.63},
    "curl": {"amplitude": 25.0, "edge": "right", "reach": 0.5, "bow": 6.0},
    "lens": {"k": -0.06},
    "wrinkles": {
        "amplitude": 4.0,
        "bumps": [0.3, 0.4, 0.1, 1, -1, 0.5, 0.7, 0.6, 0.15, -1, 1, -0.8],
        "seed": 1,
    },
    "table": {"left": 60, "top": 30, "right": 10, "bottom": 50, "fill": [90, 60, 120]},
    "lighting": {"strength": 0.5, "angle": 40, "vignette": 0.4},
    "shadow": {"darkness": 0.6},
    "blur": {"kind": "defocus", "size": 1.5},
    "noise": {"sigma": 12.0, "seed": 3},
    "jpeg": {"quality": 30},
    "color_cast": {"gains": [1.1, 0.9, 0.75], "gamma": 1.3, "contrast": 0.8},
    "stains": {"n": 3, "seed": 2, "opacity": 0.5},
    "handwriting": {"n": 8, "seed": 4},
    "stamp": {"x": 0.5, "y": 0.5, "radius": 0.12},
    "moire": {"period": 5.0, "angle": 30.0, "amplitude": 0.15},
    "texture": {"strength": 0.08, "seed": 5},
    "creases": {"lines": [0.5, 0.0, 0.52, 1.0, 0.0, 0.4, 1.0, 0.38], "strength": 0.3},
    "grayscale": {},
}


@pytest.fixture(scope="module")
def page() -> RenderedPage:
    return render_page(synthetic_ecg(fs=500, duration=10, seed=3, name="ex"), dpi=100)


def gt_points(truth: dict) -> np.ndarray:
    pts = [np.asarray(lead["pixels"], float).reshape(-1, 2) for lead in truth["leads"]]
    allp = np.concatenate(pts)
    return allp[np.isfinite(allp).all(axis=1)]


def check_on_trace(image: np.ndarray, mask: np.ndarray, truth: dict, *, contrast: float) -> None:
    pts = gt_points(truth)
    h, w = mask.shape
    xi, yi = np.rint(pts[:, 0]).astype(int), np.rint(pts[:, 1]).astype(int)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    assert inside.mean() > 0.9
    xi, yi = xi[inside], yi[inside]
    assert (mask[yi, xi] > 0).mean() >= 0.995
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    local_paper = cv2.dilate(gray, np.ones((11, 11), np.uint8))  # brightest nearby = paper
    darker = local_paper[yi, xi] - gray[yi, xi]
    assert np.mean(darker >= contrast) >= 0.97


def test_every_degradation_is_tested() -> None:
    assert set(STRONG) == set(DEGRADATIONS)


@pytest.mark.parametrize("name", sorted(STRONG))
def test_gt_stays_on_the_trace(page: RenderedPage, name: str) -> None:
    truth = copy.deepcopy(page.truth)
    rng = np.random.default_rng(0)
    d = make_degradation({"name": name, **STRONG[name]}, rng, (page.truth["width"], 0))
    image, mask, truth, _ = apply_chain(page.image, page.mask, truth, [d], rng)
    assert image.shape[:2] == mask.shape == (truth["height"], truth["width"])
    assert truth["degradations"][-1]["name"] == name
    check_on_trace(image, mask, truth, contrast=25 if name != "color_cast" else 15)
    if not d.geometric:
        assert np.array_equal(mask, page.mask)
        assert truth["leads"] == page.truth["leads"]


@pytest.mark.parametrize("name", ["rotate", "perspective", "curl", "lens", "wrinkles", "resize"])
def test_forward_map_inverts_the_resampling_map(page: RenderedPage, name: str) -> None:
    d = make_degradation({"name": name, **STRONG[name]}, np.random.default_rng(0), (1, 1))
    size = (page.truth["width"], page.truth["height"])
    pts = gt_points(page.truth)
    fx, fy = d.forward(pts[:, 0], pts[:, 1], size)  # type: ignore[attr-defined]
    bx, by = d.inverse(fx, fy, size)  # type: ignore[attr-defined]
    assert np.abs(bx - pts[:, 0]).max() < 2e-3 and np.abs(by - pts[:, 1]).max() < 2e-3


def test_full_chain_keeps_gt_and_bboxes(page: RenderedPage) -> None:
    truth = copy.deepcopy(page.truth)
    chain = [
        {"name": n, **STRONG[n]}
        for n in (
            "wrinkles",
            "curl",
            "perspective",
            "rotate",
            "lens",
            "table",
            "resize",
            "lighting",
            "shadow",
            "blur",
            "noise",
            "jpeg",
        )
    ]
    image, mask, truth, encoded = apply_chain(
        page.image, page.mask, truth, chain, np.random.default_rng(0)
    )
    check_on_trace(image, mask, truth, contrast=20)
    assert encoded is not None and truth["jpeg_quality"] == 30
    for lead in truth["leads"]:
        pts = np.asarray(lead["pixels"], float)
        x0, y0, x1, y1 = lead["bbox"]
        assert (pts[:, 0] >= x0).all() and (pts[:, 0] <= x1).all()
        assert (pts[:, 1] >= y0).all() and (pts[:, 1] <= y1).all()
    json.dumps(truth, allow_nan=False)


@pytest.mark.parametrize("style", ["print", "scan", "photo", "random"])
def test_styles_are_deterministic_and_exact(style: str) -> None:
    rec = synthetic_ecg(fs=100, duration=10, seed=1, name="s")
    a = render_page(rec, dpi=100, style=style, seed=11)
    b = render_page(rec, dpi=100, style=style, seed=11)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.truth == b.truth and a.encoded == b.encoded
    check_on_trace(a.image, a.mask, a.truth, contrast=15)


def test_photo_saves_the_exact_jpeg(tmp_path: Path) -> None:
    rec = synthetic_ecg(fs=100, duration=10, seed=1, name="s")
    page = render_page(rec, dpi=100, style="photo", seed=2)
    written = page.save(tmp_path)
    assert written[0].name == "s.jpg"
    img = cv2.cvtColor(cv2.imread(str(written[0])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(img, page.image)


def test_degradation_errors(page: RenderedPage) -> None:
    with pytest.raises(EcgscanError, match="unknown degradation 'fog'"):
        render_page(synthetic_ecg(fs=100, duration=10), dpi=100, degradations=["fog"])
    with pytest.raises(EcgscanError, match="no parameter 'angel'"):
        make_degradation({"name": "rotate", "angel": 3}, np.random.default_rng(0), (10, 10))


def test_pages_do_not_depend_on_process_history() -> None:
    """A page rendered after others (caches and noise bank grown) equals a fresh process's."""
    import hashlib
    import subprocess
    import sys

    code = (
        "import hashlib; from ecgscan.data.synthetic import synthetic_ecg; "
        "from ecgscan.render import render_page; "
        "p = render_page(synthetic_ecg(fs=100, duration=10, seed=1, name='s'), dpi=100, "
        "style='photo', seed=7); print(hashlib.sha256(p.image.tobytes()).hexdigest())"
    )
    rec = synthetic_ecg(fs=100, duration=10, seed=1, name="s")
    from ecgscan.render._degrade import _gaussian_bank

    _gaussian_bank(9_000_000, np.random.default_rng(0))  # grows the process-wide noise bank
    page = render_page(rec, dpi=100, style="photo", seed=7)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(page.image.tobytes()).hexdigest()


def test_image_scale_follows_resize_and_rotation(page: RenderedPage) -> None:
    truth = copy.deepcopy(page.truth)
    chain = [{"name": "resize", "factor": 0.5}, {"name": "rotate", "angle": 10.0}]
    _, _, truth, _ = apply_chain(page.image, page.mask, truth, chain, np.random.default_rng(0))
    ppmm = page.truth["px_per_mm"]["x"]
    assert truth["image_px_per_mm"]["x"] == pytest.approx(ppmm * 0.5, rel=1e-3)
    assert truth["image_px_per_mm"]["y"] == pytest.approx(ppmm * 0.5, rel=1e-3)


def test_recorded_chain_replays_exactly() -> None:
    rec = synthetic_ecg(fs=100, duration=10, seed=1, name="s")
    first = render_page(rec, dpi=100, style="photo", seed=4)
    again = render_page(rec, dpi=100, style="photo", seed=4,
                        degradations=first.truth["degradations"])  # fmt: skip
    assert np.array_equal(first.image, again.image)
    assert again.truth["degradations"] == first.truth["degradations"]
