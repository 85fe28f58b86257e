"""Clean pages: geometry, exact ground truth, reference record, saving, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ecgscan.data import LEADS, Record, read_record
from ecgscan.errors import EcgscanError, LayoutError
from ecgscan.render import RenderWarning, parse_layout, render_page


def _gt_points(lead: dict) -> np.ndarray:
    return np.asarray(lead["pixels"], dtype=float)


def assert_gt_on_trace(page, *, dark: int = 120) -> None:
    """Every finite GT point's pixel is in the lead mask and darker than the paper."""
    gray = page.image.min(axis=2)
    for lead in page.truth["leads"]:
        pts = _gt_points(lead)
        ok = np.isfinite(pts).all(axis=1) if len(pts) else np.zeros(0, bool)
        if not ok.any():
            continue
        xi = np.rint(pts[ok, 0]).astype(int)
        yi = np.rint(pts[ok, 1]).astype(int)
        assert (page.mask[yi, xi] > 0).all(), lead["name"]
        assert gray[yi, xi].max() <= dark, lead["name"]


@pytest.mark.parametrize("dpi", [72, 100, 200, 300])
def test_clean_gt_lies_on_trace_and_maps_back(example_record: Record, dpi: int) -> None:
    page = render_page(example_record, dpi=dpi)
    t = page.truth
    assert page.image.shape == (t["height"], t["width"], 3)
    assert page.image.dtype == np.uint8 and page.mask.shape == page.image.shape[:2]
    assert t["width"] == round(279.4 * dpi / 25.4)
    assert_gt_on_trace(page)
    ppmm = t["px_per_mm"]["y"]
    fs = example_record.fs
    for lead in t["leads"]:
        pts = _gt_points(lead)
        n = np.arange(lead["start_sample"], lead["end_sample"])
        assert len(pts) == len(n)
        v = (lead["baseline_y"] - pts[:, 1]) / (lead["gain"] * ppmm)
        true = example_record.lead(lead["name"])[n]
        # Half a pixel in amplitude and in time, through the JSON's rounding.
        assert np.abs(v - true).max() * lead["gain"] * ppmm <= 0.5
        tt = (pts[:, 0] - lead["x_start"]) / (t["paper_speed"] * t["px_per_mm"]["x"])
        assert np.abs(tt + lead["start_time"] - n / fs).max() * fs <= 0.5


def test_time_placement_matches_the_challenge_convention(example_record: Record) -> None:
    page = render_page(example_record)
    spans = {(d["name"], d["start_sample"], d["end_sample"]) for d in page.truth["leads"]}
    for k, col in enumerate(
        [("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6")]
    ):
        for name in col:
            assert (name, 1250 * k, 1250 * (k + 1)) in spans
    assert ("II", 0, 5000) in spans
    ref = page.reference
    assert ref.leads == LEADS and ref.fs == example_record.fs
    finite = np.isfinite(ref.signal)
    assert finite[:, 1].all()  # II printed over 10 s as rhythm strip
    assert finite[:1250, 0].all() and not finite[1250:, 0].any()
    assert finite[1250:2500, 3].all() and not finite[:1250, 3].any()
    np.testing.assert_array_equal(ref.signal[finite], example_record.signal[finite])


@pytest.mark.shared
def test_reference_nan_pattern_equals_ecg_image_kit(tmp_path: Path) -> None:
    from _shared import shared_path

    folder = shared_path("images", "eik-dev", "A_clean")
    eik = read_record(folder / "00017_hr")
    page = render_page(eik.with_signal(np.nan_to_num(eik.signal, nan=0.0)), layout="3x4+II")
    np.testing.assert_array_equal(np.isfinite(page.reference.signal), np.isfinite(eik.signal))


def test_same_seed_same_bytes_and_other_seed_differs(example_record: Record) -> None:
    a = render_page(example_record, dpi=100, style="random", seed=5)
    b = render_page(example_record, dpi=100, style="random", seed=5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert json.dumps(a.truth) == json.dumps(b.truth)
    c = render_page(example_record, dpi=100, style="random", seed=6)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize(
    ("layout", "n_rows", "n_segments"),
    [
        ("3x4", 3, 12),
        ("3x4+II,V1,V5", 6, 15),
        ("6x2", 6, 12),
        ("6x2+II", 7, 13),
        ("12x1", 12, 12),
        ("cabrera:3x4+II", 4, 13),
        ("I@0-5 V1@5-10; II", 2, 3),
    ],
)
def test_layouts(example_record: Record, layout: str, n_rows: int, n_segments: int) -> None:
    page = render_page(example_record, layout=layout, dpi=100)
    assert len(page.truth["rows"]) == n_rows
    assert len(page.truth["leads"]) == n_segments
    assert_gt_on_trace(page)


def test_cabrera_inverts_avr(example_record: Record) -> None:
    page = render_page(example_record, layout="cabrera:3x4", dpi=100)
    (avr,) = [d for d in page.truth["leads"] if d["name"] == "aVR"]
    assert avr["inverted"] and avr["label"] == "-aVR"
    pts = _gt_points(avr)
    n = np.arange(avr["start_sample"], avr["end_sample"])
    v = (pts[:, 1] - avr["baseline_y"]) / (avr["gain"] * page.truth["px_per_mm"]["y"])
    np.testing.assert_allclose(v, example_record.lead("aVR")[n], atol=0.01)


def test_50mm_s_and_chest_gain(example_record: Record) -> None:
    page = render_page(example_record, dpi=100, paper_speed=50, gain_chest=5)
    assert page.truth["duration"] == 5.0
    v1 = next(d for d in page.truth["leads"] if d["name"] == "V1")
    assert v1["gain"] == 5.0 and (v1["start_sample"], v1["end_sample"]) == (1250, 1875)
    assert_gt_on_trace(page)


def test_clip_mode_keeps_traces_in_their_row(example_record: Record) -> None:
    big = example_record.with_signal(example_record.signal * 4)
    page = render_page(big, dpi=100, overflow="clip")
    assert page.truth["clipped_samples"] > 0
    rows = page.truth["rows"]
    for lead in page.truth["leads"]:
        row = rows[lead["row"]]
        ys = _gt_points(lead)[:, 1]
        assert ys.min() >= row["top_y"] - 1e-6 and ys.max() <= row["bottom_y"] + 1e-6
    assert_gt_on_trace(page)


def test_missing_leads_and_nan_gaps(example_record: Record) -> None:
    sig = example_record.signal[:, :6].copy()
    sig[100:200, 1] = np.nan
    rec = Record(sig, fs=example_record.fs, leads=LEADS[:6], name="limb")
    with pytest.warns(RenderWarning, match="V1"):
        page = render_page(rec, dpi=100)
    assert page.truth["missing_leads"] == list(LEADS[6:])
    assert not (page.mask == LEADS.index("V1") + 1).any()
    ii = next(d for d in page.truth["leads"] if d["name"] == "II" and d["end_sample"] == 5000)
    assert ii["pixels"][150] == [None, None]
    assert np.isnan(page.reference.lead("II")[150]) and np.isnan(page.reference.lead("V1")).all()
    assert_gt_on_trace(page)


def test_any_fs_and_short_record() -> None:
    from ecgscan.data.synthetic import synthetic_ecg

    rec = synthetic_ecg(fs=257, duration=6, seed=1)
    page = render_page(rec, dpi=100)
    assert page.truth["duration"] == 6.0
    assert page.reference.n_samples == rec.n_samples
    assert_gt_on_trace(page)


def test_save_writes_all_files(example_record: Record, tmp_path: Path) -> None:
    page = render_page(example_record, dpi=100)
    paths = page.save(tmp_path, "p")
    names = sorted(p.name for p in paths)
    assert names == ["p-mask.png", "p.dat", "p.hea", "p.json", "p.png"]
    img = cv2.imread(str(tmp_path / "p.png"))[:, :, ::-1]
    assert np.array_equal(img, page.image)
    mask = cv2.imread(str(tmp_path / "p-mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask, page.mask)
    assert json.loads((tmp_path / "p.json").read_text()) == page.truth
    ref = read_record(tmp_path / "p")
    np.testing.assert_allclose(ref.signal, page.reference.signal, atol=1e-3)
    assert np.array_equal(np.isnan(ref.signal), np.isnan(page.reference.signal))


def test_parse_layout_errors() -> None:
    with pytest.raises(LayoutError, match="3x5"):
        parse_layout("3x5")
    with pytest.raises(LayoutError, match="unknown lead"):
        parse_layout("3x4+V9")
    with pytest.raises(LayoutError, match="window"):
        parse_layout("I@5-2")
    with pytest.raises(LayoutError, match="empty"):
        parse_layout("  ")


def test_bad_options(example_record: Record) -> None:
    with pytest.raises(EcgscanError, match="dpi"):
        render_page(example_record, dpi=20)
    with pytest.raises(EcgscanError, match="style"):
        render_page(example_record, style="fancy")
    with pytest.raises(EcgscanError, match="unknown render option 'colour'"):
        render_page(example_record, colour="red")
    with pytest.raises(EcgscanError, match="paper_speed"):
        render_page(example_record, paper_speed=30)
