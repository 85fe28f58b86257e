"""Layout stage: lead names read from the page choose the layout and name the rhythm strips.

Pages are drawn by our renderer from a synthetic record (no ../shared needed); the label
reader is also checked on a font it has no template for.
"""

from __future__ import annotations

import dataclasses
import os

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.digitize import digitize
from ecgscan.digitize._geometry import straighten
from ecgscan.digitize._layout import (
    LABEL_NAMES,
    LeadLabel,
    RowGeometry,
    _missed_rows,
    _single_stroke_share,
    _straight_everywhere,
    _strip_evidence,
    assign_leads,
    erase_labels,
    erase_text,
    find_labels,
    find_rows,
    read_label,
    reassign_rhythm_strips,
    row_spacing,
    row_traces,
)
from ecgscan.digitize._segment import segment_traces
from ecgscan.render import render_page

_NAMES = [n for n in LABEL_NAMES if n != "-aVR"]


def _word(text: str, font_file: str, size: int) -> np.ndarray:
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", font_file)
    face = ImageFont.truetype(path, size)
    canvas = Image.new("L", (8 * size, 3 * size), 0)
    ImageDraw.Draw(canvas).text((size, size), text, font=face, fill=255)
    return np.asarray(canvas) > 110


def _label(text: str, score: float = 0.9) -> LeadLabel:
    """A word printed in DejaVu Sans, read as ``text`` with ``score``."""
    ys, xs = np.nonzero(_word(text, "DejaVuSans.ttf", 20))
    scores = dict.fromkeys(LABEL_NAMES, 0.1)
    scores[text] = score
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    return LeadLabel(bbox=box, scores=scores, pixels=(ys, xs))


@pytest.fixture(scope="module")
def record():
    return synthetic_ecg(fs=500, duration=10, seed=3, name="example")


def _correlations(ref, est) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Per lead, the best Pearson correlation of the estimate with the reference over lags of
    0-20 samples (the digitizer's 20-ms lead-in delays it by 10 samples at 500 Hz)."""
    out = {}
    for j, lead in enumerate(ref.leads):
        a, b = ref.signal[:, j], est.signal[:, j]
        best = -1.0
        for lag in range(21):
            x, y = a[: a.size - lag], b[lag:]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() > 200:
                best = max(best, float(np.corrcoef(x[ok], y[ok])[0, 1]))
        out[lead] = best
    return out


def _digitize(record, layout: str):  # type: ignore[no-untyped-def]
    page = render_page(record, layout=layout, dpi=150, style="clean", seed=1)
    return page, digitize(page.image, fs=500)


# ------------------------------------------------------------------ label reader
@pytest.mark.parametrize("font", ["DejaVuSans-Oblique.ttf", "DejaVuSerif-Bold.ttf", "cmb10.ttf"])
def test_read_label_reads_lead_names_in_a_font_it_has_no_template_for(font: str) -> None:
    right = 0
    for size in (14, 20, 32):
        for name in _NAMES:
            scores = read_label(_word(name, font, size))
            right += max(scores, key=scores.__getitem__) == name
    assert right >= 0.85 * 3 * len(_NAMES)


def test_read_label_tells_one_two_and_three_strokes_apart() -> None:
    for name in ("I", "II", "III"):
        scores = read_label(_word(name, "DejaVuSerif.ttf", 18))
        assert max(scores, key=scores.__getitem__) == name
        assert scores[name] > 0.65
    assert read_label(np.zeros((10, 10), bool)) == dict.fromkeys(LABEL_NAMES, 0.0)


# ------------------------------------------------------------------ assign_leads
def test_labels_choose_cabrera_and_name_the_rhythm_strip() -> None:
    cab = [["aVL", "II", "V1", "V4"], ["I", "aVF", "V2", "V5"], ["-aVR", "III", "V3", "V6"]]
    labels: list[list[LeadLabel | None]] = [[_label(n) for n in row] for row in cab]
    labels.append([_label("V1"), None, None, None])
    name, rows, origin = assign_leads(4, [1, 1, 1, 1], labels=labels)
    assert name == "3x4+V1"
    assert rows[0] == ("aVL", "II", "V1", "V4") and rows[2][0] == "-aVR"
    assert origin == "synchronous"
    # without labels: the row count's guess; a weak rhythm label keeps the default II
    assert assign_leads(4, [1, 1, 1, 1])[1][0] == ("I", "aVR", "V1", "V4")
    # a strip's word that matches a grid word (same font) takes that word's lead, even when
    # the templates misread it; an unreadable word that matches none keeps the default II
    labels[3][0] = dataclasses.replace(_label("V2"), scores=_label("I").scores)
    assert assign_leads(4, [1, 1, 1, 1], labels=labels)[0] == "3x4+V2"
    labels[3][0] = _label("V1", score=0.5)
    labels[0][2] = None
    assert assign_leads(4, [1, 1, 1, 1], labels=labels)[0] == "3x4+II"


def test_labels_tell_standard_6x2_from_the_ecg_image_kit_order() -> None:
    std = [("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6")]
    labels: list[list[LeadLabel | None]] = [[_label(a), None, _label(b), None] for a, b in std]
    name, rows, origin = assign_leads(6, [2] * 6, labels=labels)
    assert (name, rows[3], origin) == ("6x2", ("aVR", "V4"), "synchronous")
    # the same rows without readable labels keep the separators' guess
    assert assign_leads(6, [2] * 6)[1][0] == ("V1", "V4")


_STD_6X2 = [("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6")]
_EIK_6X2 = [("V1", "V4"), ("I", "aVR"), ("V2", "V5"), ("II", "aVL"), ("V3", "V6"), ("III", "aVF")]


def _traces(record, grid) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Rows as :func:`row_traces` gives them (480 points, px up) for a lead grid printed
    synchronously (column c shows the c-th part of the recording) at 10 mm/mV, 8 px/mm."""
    out = []
    for names in grid:
        n = len(names)
        parts = [np.array_split(record.lead(name), n)[c] for c, name in enumerate(names)]
        row = np.concatenate(parts) * 80.0 + 3.0  # a row's centre is not exactly its baseline
        out.append(np.interp(np.linspace(0, row.size - 1, 480), np.arange(row.size), row))
    return out


def test_limb_lead_laws_choose_the_6x2_order_when_labels_cannot_be_read(record) -> None:  # type: ignore[no-untyped-def]
    # no labels (a 100-DPI page's thin names are lost): the separators' guess is the
    # ECG-Image-Kit order; the traces obey Einthoven's law in the standard order only
    assert assign_leads(6, [2] * 6)[1][0] == ("V1", "V4")
    name, rows, origin = assign_leads(6, [2] * 6, traces=_traces(record, _STD_6X2))
    assert (name, rows, origin) == ("6x2", _STD_6X2, "synchronous")
    assert assign_leads(6, [2] * 6, traces=_traces(record, _EIK_6X2))[1] == _EIK_6X2
    assert assign_leads(7, [2] * 6 + [1], traces=_traces(record, [*_STD_6X2, ("II",)]))[0] == (
        "6x2+II"
    )
    # labels read well outweigh the traces; traces of the wrong length are ignored
    labels: list[list[LeadLabel | None]] = [[_label(a), None, _label(b), None] for a, b in _EIK_6X2]
    assert assign_leads(6, [2] * 6, labels=labels, traces=_traces(record, _STD_6X2))[1] == _EIK_6X2
    assert assign_leads(6, [2] * 6, traces=_traces(record, _STD_6X2)[:5])[1][0] == ("V1", "V4")
    # flat traces (nothing to test) decide nothing
    assert assign_leads(6, [2] * 6, traces=[np.zeros(480)] * 6)[1][0] == ("V1", "V4")


_STD_3X4 = [("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")]


def test_rhythm_strips_that_repeat_a_cell_make_six_rows_a_3x4_page(record) -> None:  # type: ignore[no-untyped-def]
    # six rows, no separators and no names read (a 100-DPI scan): the row count alone says
    # 6x2; rows that repeat one grid cell each at the same times are rhythm strips
    strips = [("II",), ("V1",), ("V5",)]
    rows_3x4 = [*_STD_3X4, *strips]
    name, rows, _ = assign_leads(6, [1] * 6, traces=_traces(record, rows_3x4))
    assert (name, rows) == ("3x4+II,V1,V5", rows_3x4)
    # a 6x2 page's lower rows resemble the upper ones over whole halves, not over one cell:
    # still 6x2, in whichever order its limb leads obey the laws
    for grid in (_STD_6X2, _EIK_6X2):
        assert assign_leads(6, [1] * 6, traces=_traces(record, grid))[1] == grid
    # the evidence itself: all three strips repeat a cell; strips from another recording
    # repeat none
    assert _strip_evidence(_traces(record, rows_3x4), "3x4", 6) == pytest.approx(1.0)
    other = _traces(synthetic_ecg(fs=500, duration=10, seed=11), strips)
    assert _strip_evidence(_traces(record, _STD_3X4) + other, "3x4", 6) == 0.0


def test_a_scanned_3x4_page_with_three_strips_and_no_names_is_not_read_as_6x2(ptbxl_dir) -> None:  # type: ignore[no-untyped-def]
    """At 100 DPI the page's separators are lost and no names are printed; at 20 mm/mV the
    grid rows' traces cross and the limb-lead laws cannot decide: the row count said 6x2
    (robustness benchmark, -4.1 dB). The strips repeat their grid cells."""
    from ecgscan.data.ptbxl import PTBXL

    db = PTBXL(ptbxl_dir)
    rec = db.record(db.ecg_ids(folds=[9], fs=100)[1], fs=100)
    page = render_page(rec, layout="3x4+II,V1,V5", dpi=100, style="scan", seed=34)
    res = digitize(page.image, fs=100)
    assert res.layout.name == "3x4+II,V1,V5"
    assert [r.leads for r in res.layout.rows] == [*_STD_3X4, ("II",), ("V1",), ("V5",)]


def test_row_traces_follow_the_rows_of_a_6x2_page(record) -> None:  # type: ignore[no-untyped-def]
    page = render_page(record, layout="6x2", dpi=150, style="clean", seed=2)
    ppm = page.truth["px_per_mm"]["x"]
    prob, _ = segment_traces(page.image, px_per_mm=ppm, method="darkness")
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 6
    t0 = page.truth["leads"][0]["x_start"]
    length = page.truth["duration"] * page.truth["paper_speed"] * ppm
    traces = row_traces(prob, rows, [t0] * 6, [length] * 6)
    assert all(t.shape == (480,) and np.isfinite(t).mean() > 0.9 for t in traces)
    # the rough traces follow the leads (I of row 0 against the reference, in px up)
    ref = np.interp(np.linspace(0, 1, 240), np.linspace(0, 1, record.n_samples // 2),
                    record.lead("I")[: record.n_samples // 2])  # fmt: skip
    ok = np.isfinite(traces[0][:240])
    assert np.corrcoef(traces[0][:240][ok], ref[ok])[0, 1] > 0.8
    assert assign_leads(6, [1] * 6, traces=traces)[1] == _STD_6X2


def test_a_rhythm_label_cut_by_the_trace_keeps_the_default_name() -> None:
    grid = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    labels: list[list[LeadLabel | None]] = [[_label(n) for n in row] for row in grid]
    # the "1" of a "V1" whose "V" merged into the trace reads as "I" (and matches row 0's I)
    labels += [[_label("II"), None, None, None], [_label("I"), None, None, None]]
    assert assign_leads(5, [1] * 5, labels=labels)[0] == "3x4+II,I"
    labels[4][0] = dataclasses.replace(_label("I"), crowded=True)
    assert assign_leads(5, [1] * 5, labels=labels)[0] == "3x4+II,V5"
    # a crowded word that reads as a name no letter loss can produce still names the strip
    labels[4][0] = dataclasses.replace(_label("aVF"), crowded=True)
    assert assign_leads(5, [1] * 5, labels=labels)[0] == "3x4+II,aVF"


def test_find_labels_marks_words_a_trace_touches_as_crowded() -> None:
    ppm = 8.0
    prob = np.zeros((300, 900), np.float32)
    word = _word("II", "DejaVuSans.ttf", 24)
    ys, xs = np.nonzero(word)
    ys, xs = ys - ys.min(), xs - xs.min()
    for y0 in (60, 200):
        prob[ys + y0, xs + 40] = 1.0
    right = 40 + xs.max()
    prob[70:72, right + 4 : 800] = 1.0  # a trace starting one stroke right of the word
    prob[210:212, right + 120 : 800] = 1.0  # a trace 15 mm away
    rows = [
        RowGeometry(center=c, y_lo=lo, y_hi=hi, x_first=40, x_last=800, coverage=0.9)
        for c, lo, hi in ((71.0, 0, 140), (211.0, 140, 300))
    ]
    labels = find_labels(prob, rows, [[40.0], [40.0]], px_per_mm=ppm)
    assert labels[0][0] is not None and labels[1][0] is not None
    assert labels[0][0].crowded and not labels[1][0].crowded
    assert labels[1][0].text == "II"


def test_assign_leads_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown layout '5x5'"):
        assign_leads(3, [4, 4, 4], layout="5x5")
    with pytest.raises(ValueError, match="labels has 2 rows"):
        assign_leads(3, [4, 4, 4], labels=[[None], [None]])
    # an explicit layout wins over the labels
    labels: list[list[LeadLabel | None]] = [[_label("aVL")]] * 3
    assert assign_leads(3, [4, 4, 4], layout="3x4", labels=labels)[1][0][0] == "I"


def test_erase_labels_removes_only_labels_that_read_as_their_lead() -> None:
    prob = np.ones((4, 4), np.float32)
    good = LeadLabel((0, 0, 1, 1), {**dict.fromkeys(LABEL_NAMES, 0.0), "II": 0.9},
                     (np.array([0, 1]), np.array([0, 1])))  # fmt: skip
    wrong = LeadLabel((2, 2, 3, 3), {**dict.fromkeys(LABEL_NAMES, 0.0), "V6": 0.9},
                      (np.array([3]), np.array([3])))  # fmt: skip
    out = erase_labels(prob, [[good, None, wrong, None]], [("II", "V2")])
    assert out[0, 0] == 0 and out[1, 1] == 0 and out[3, 3] == 1 and prob.min() == 1


def test_a_rhythm_strip_moves_to_the_lead_its_trace_matches(record) -> None:  # type: ignore[no-untyped-def]
    fs = record.fs
    t = np.arange(record.n_samples) / fs
    lead = {n: record.signal[:, j] for j, n in enumerate(record.leads)}
    q = record.n_samples // 4
    segments = {
        "I": [(t[:q], lead["I"][:q], 1.0)],
        "aVR": [(t[q : 2 * q], lead["aVR"][q : 2 * q], 1.0)],
        "V1": [(t[2 * q : 3 * q], lead["V1"][2 * q : 3 * q], 1.0)],
        "II": [(t, lead["V1"], 1.0)],  # the strip printed V1; it was named II
    }
    rows = [("I", "aVR", "V1", "V4"), ("II",)]
    # a legible "II" label outvotes the traces
    legible: list[list[LeadLabel | None]] = [[None] * 4, [_label("II")]]
    assert reassign_rhythm_strips(segments, rows, fs=fs, labels=legible) == {}
    assert reassign_rhythm_strips(segments, rows, fs=fs) == {1: ("II", "V1")}
    assert "II" not in segments and len(segments["V1"]) == 2
    # a strip that matches its own lead stays
    segments = {"V1": [(t[2 * q : 3 * q], lead["V1"][2 * q : 3 * q], 1.0), (t, lead["V1"], 1.0)]}
    assert reassign_rhythm_strips(segments, [("V1", "V4"), ("V1",)], fs=fs) == {}


def test_an_ambiguous_or_partial_rhythm_label_does_not_outvote_the_trace(record) -> None:  # type: ignore[no-untyped-def]
    fs = record.fs
    t = np.arange(record.n_samples) / fs
    lead = {n: record.signal[:, j] for j, n in enumerate(record.leads)}
    q = record.n_samples // 4
    rows = [("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"),
            ("V5",)]  # fmt: skip

    def segments_with(strip: str) -> dict:  # type: ignore[type-arg]
        segs = {n: [(t[c * q : (c + 1) * q], lead[n][c * q : (c + 1) * q], 1.0)]
                for r in rows[:3] for c, n in enumerate(r)}  # fmt: skip
        segs[rows[3][0]].append((t, lead[strip], 1.0))
        return segs

    # "V5" read at 0.71 but "V6" at 0.65 (a blurred scan): the trace, which is V1, decides
    blurred = _label("V5", 0.71)
    blurred.scores["V6"] = 0.65
    labels: list[list[LeadLabel | None]] = [[None] * 4] * 3 + [[blurred]]
    assert reassign_rhythm_strips(segments_with("V1"), rows, fs=fs, labels=labels) == {
        3: ("V5", "V1")
    }
    # read clearly, the label keeps its name
    labels = [[None] * 4] * 3 + [[_label("V5", 0.71)]]
    assert reassign_rhythm_strips(segments_with("V1"), rows, fs=fs, labels=labels) == {}
    # a crowded "I" (the rest of "II", "III" or "V1") allows those names only: a strip named
    # II whose trace looks most like aVF (its II segment badly traced) is not moved to aVF
    rows[3] = ("II",)

    def badly_traced_ii() -> dict:  # type: ignore[type-arg]
        segs = segments_with("aVF")
        segs["II"][0] = (segs["II"][0][0], np.zeros(q), 1.0)
        return segs

    crowded = dataclasses.replace(_label("I", 0.74), crowded=True)
    labels = [[None] * 4] * 3 + [[crowded]]
    moved = reassign_rhythm_strips(badly_traced_ii(), rows, fs=fs, labels=labels)
    assert moved.get(3, ("II", "II"))[1] in {"I", "II", "III", "V1"}
    assert reassign_rhythm_strips(badly_traced_ii(), rows, fs=fs) == {3: ("II", "aVF")}


def test_erase_text_removes_text_lines_but_not_the_trace_or_its_label() -> None:
    ppm = 8.0
    prob = np.zeros((400, 900), np.float32)
    text = _word("Room 12: Tech", "DejaVuSerif.ttf", 24)  # ~2 mm capitals, 20 mm above
    prob[: text.shape[0], : text.shape[1]][text] = 1.0
    ys, xs = np.nonzero(_word("aVF", "DejaVuSans.ttf", 24))
    prob[ys - ys.min() + 213, xs - xs.min() + 300] = 1.0  # 1.5 mm below the baseline
    prob[200:202, 50:850] = 1.0  # the trace, at the row's baseline
    row = RowGeometry(center=201.0, y_lo=0, y_hi=400, x_first=50, x_last=850, coverage=0.9)
    out = erase_text(prob, [row], px_per_mm=ppm)
    assert out[:100].sum() == 0 and prob[:100].sum() > 100
    assert np.array_equal(out[100:], prob[100:])
    lower = prob[100:]
    row.center -= 100
    assert erase_text(lower, [row], px_per_mm=ppm) is lower  # no text: the map itself


# ------------------------------------------------------------------ whole pages
def test_cabrera_page_is_read_as_cabrera_with_leads_in_their_channels(record) -> None:  # type: ignore[no-untyped-def]
    page, res = _digitize(record, "cabrera:3x4+II")
    assert res.layout.lead_order == "cabrera"
    assert res.layout.name == "3x4+II"
    assert res.layout.rows[0].leads == ("aVL", "II", "V1", "V4")
    assert res.layout.rows[2].leads[0] == "-aVR"
    corr = _correlations(page.reference, res.record)
    # every lead where it belongs (a lead in the wrong channel, or aVR not turned back
    # upright, correlates weakly or negatively)
    assert min(corr.values()) > 0.75, corr


@pytest.mark.parametrize(
    ("layout", "expected", "rhythm"),
    [
        ("3x4+V1", "3x4+V1", ("V1",)),
        ("6x2", "6x2", ()),
        ("3x4+aVF,V2,V5", "3x4+aVF,V2,V5", ("aVF", "V2", "V5")),
    ],
)
def test_layout_and_rhythm_strip_are_read_from_the_page(record, layout, expected, rhythm) -> None:  # type: ignore[no-untyped-def]
    page, res = _digitize(record, layout)
    assert res.layout.name == expected
    assert res.layout.rhythm_leads == rhythm
    assert res.layout.lead_order == "standard"
    truth_rows = [tuple(r["leads"]) for r in page.truth["rows"]]
    assert [r.leads for r in res.layout.rows] == truth_rows
    corr = _correlations(page.reference, res.record)
    assert min(corr.values()) > 0.75, corr


# ------------------------------------------------------------------ rows
@pytest.mark.parametrize(
    ("dpi", "style", "seed"), [(200, "clean", 1), (100, "scan", 1), (100, "clean", 1),
                               (200, "scan", 90)],
)  # fmt: skip
def test_find_rows_finds_every_row_of_a_12x1_page(ptbxl_dir, dpi, style, seed) -> None:  # type: ignore[no-untyped-def]
    """12x1 rows are ~11 mm apart, and a row's ink wanders about its baseline by more than
    the 1 mm left over a fixed 10-mm minimum distance; at 100 DPI their ink covers > 5 % of
    the page. The record's II and aVF wander by more than half the spacing (and clip flat
    for seconds): the page's profile has no peak of theirs, and the regular stack of the
    other rows puts them back (10 of 12 rows were found at 100 DPI clean and 200 DPI scan)."""
    from ecgscan.data.ptbxl import PTBXL

    db = PTBXL(ptbxl_dir)
    ecg_id = next(iter(db.ecg_ids(folds=[9], fs=100)))
    page = render_page(db.record(ecg_id, fs=100), layout="12x1", dpi=dpi, style=style, seed=seed)
    ppm = page.truth["px_per_mm"]["x"]
    image = page.image
    if style != "clean":  # a scan is skewed: straightened, as digitize does
        image, _ = straighten(image)
    prob, _ = segment_traces(image, px_per_mm=ppm, method="darkness")
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 12
    spacing = np.diff([r.center for r in rows])
    assert spacing.min() > 0.6 * np.median(spacing) and spacing.max() < 1.5 * np.median(spacing)
    if style == "clean":  # the page as drawn: one row per printed row, and whole
        baselines = np.array([r["baseline_y"] for r in page.truth["rows"]])
        nearest = [int(np.argmin(np.abs(baselines - r.center))) for r in rows]
        assert nearest == list(range(12))
        width = page.truth["duration"] * page.truth["paper_speed"] * ppm
        assert all(r.x_last - r.x_first > 0.9 * width for r in rows)


def test_missed_rows_fill_only_a_regular_stack_of_close_rows() -> None:
    ppm = 8.0
    stack = np.array([300, 388, 476, 640, 728, 816, 900, 988])  # the row at 564 missed
    filled = _missed_rows(stack, px_per_mm=ppm, n=1600)
    assert filled.tolist() == [300, 388, 476, 558, 640, 728, 816, 900, 988]
    # rows 35 mm apart, or peaks that do not repeat, are left as they are
    wide = np.array([300, 580, 860, 1400, 1500])
    assert _missed_rows(wide, px_per_mm=ppm, n=1600).tolist() == wide.tolist()
    ragged = np.array([300, 350, 460, 530, 700, 760])
    assert _missed_rows(ragged, px_per_mm=ppm, n=1600).tolist() == ragged.tolist()


def test_header_and_footer_text_of_a_photographed_page_are_not_rows(ptbxl_dir) -> None:  # type: ignore[no-untyped-def]
    """On this photographed Cabrera page the header's last line and the footer are as wide
    as a third of a row and fill their bands like a trace: their letters crossing columns
    two or three times tell them apart (they were read as two more rows, 6 of 4)."""
    from ecgscan.data.ptbxl import PTBXL

    db = PTBXL(ptbxl_dir)
    ecg_id = next(iter(db.ecg_ids(folds=[9], fs=100)))
    page = render_page(db.record(ecg_id, fs=100), layout="cabrera:3x4+II", dpi=300,
                       style="photo", seed=111)  # fmt: skip
    res = digitize(page.image, fs=100)
    truth_rows = [tuple(n.lstrip("-") for n in r["leads"]) for r in page.truth["rows"]]
    assert [tuple(n.lstrip("-") for n in r.leads) for r in res.layout.rows] == truth_rows


def test_single_stroke_share_tells_a_trace_from_a_line_of_text() -> None:
    ppm = 8.0
    x = np.arange(1200)
    ink = np.zeros((200, 1200), dtype=bool)
    ink[(60 + 10 * np.sin(x / 15)).astype(int), x] = True  # a wavy trace
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    canvas = Image.new("L", (1200, 60), 0)
    ImageDraw.Draw(canvas).text((10, 20), "Speed: 25 mm/sec   Limb: 10 mm/mV   Chest: "
                                "10 mm/mV   F 0.16-150 Hz", font=ImageFont.truetype(path, 22),
                                fill=255)  # fmt: skip
    ink[120:180] = np.asarray(canvas) > 110
    assert _single_stroke_share(ink, 60, px_per_mm=ppm) > 0.95
    assert _single_stroke_share(ink, 150, px_per_mm=ppm) < 0.72


def test_the_edges_of_a_photographed_sheet_are_not_rows(ptbxl_dir) -> None:  # type: ignore[no-untyped-def]
    """The sheet's top edge on this photo tilts by 2° and bends, its bottom edge is broken
    into dashes: neither is a ruled line, and both were read as rows (9 of 7)."""
    from ecgscan.data.ptbxl import PTBXL
    from ecgscan.digitize._grid import estimate_grid

    db = PTBXL(ptbxl_dir)
    ecg_id = list(db.ecg_ids(folds=[9], fs=100))[2]
    page = render_page(db.record(ecg_id, fs=100), layout="6x2+II", dpi=100, style="photo",
                       seed=1023, labels=False)  # fmt: skip
    image, _ = straighten(page.image, perspective=True)
    grid = estimate_grid(image)
    assert grid is not None
    prob, _ = segment_traces(image, px_per_mm=grid.px_per_mm_x, method="darkness")
    rows = find_rows(prob, px_per_mm=grid.px_per_mm_x)
    assert len(rows) == 7
    spacing = np.diff([r.center for r in rows])
    assert spacing.max() < 1.2 * spacing.min()


def test_grid_lines_a_print_made_dark_are_not_rows(ptbxl_dir) -> None:  # type: ignore[no-untyped-def]
    """On this grey-gridded print a few major grid lines come out as dark as the traces
    (where a line lands on two pixels): two run between rows, crossed by the vertical ones
    and touched by V2's waves, one runs along aVF and V6. The first two were read as rows
    and the last row was lost once text lines were told by their letters alone (8 rows of
    6 before; the vertical lines are left out of the straightness test, and a row's band
    with a line along it is in long pieces, not letters)."""
    from ecgscan.data.ptbxl import PTBXL

    db = PTBXL(ptbxl_dir)
    ecg_id = next(iter(db.ecg_ids(folds=[9], fs=100)))
    page = render_page(db.record(ecg_id, fs=100), layout="6x2", dpi=200, style="print",
                       seed=1015, calibration="none")  # fmt: skip
    ppm = page.truth["px_per_mm"]["x"]
    prob, _ = segment_traces(page.image, px_per_mm=ppm, method="darkness")
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 6
    spacing = np.diff([r.center for r in rows])
    assert spacing.max() < 1.2 * spacing.min()


def test_straight_everywhere_tells_a_bent_dashed_edge_from_a_flat_trace() -> None:
    ppm = 4.0
    x = np.arange(1000)
    edge = np.zeros((120, 1000), dtype=bool)
    y = 40 + 0.035 * np.minimum(x, 500) + 3 * np.sin(x / 300)  # tilted 2°, then bending
    keep = (x // 30) % 3 != 2  # dashes
    edge[y[keep].astype(int), x[keep]] = True
    assert _straight_everywhere(edge, 55, px_per_mm=ppm)
    edge[:, 100::20] = True  # crossed by vertical grid lines
    assert _straight_everywhere(edge, 55, px_per_mm=ppm)
    trace = np.zeros((120, 1000), dtype=bool)
    ecg = np.full(1000, 60.0)
    for beat in range(20, 1000, 100):  # a flat lead with 1.5-mm QRS complexes
        ecg[beat : beat + 6] -= 6 * np.sin(np.linspace(0, np.pi, 6))
    for i in range(999):  # drawn as a connected line
        a, b = sorted((int(ecg[i]), int(ecg[i + 1])))
        trace[a : b + 1, i] = True
    assert not _straight_everywhere(trace, 60, px_per_mm=ppm)


def test_row_spacing_is_measured_only_on_closely_printed_rows() -> None:
    ppm = 8.0
    profile = np.zeros(1600)
    for k in range(12):
        profile[int(300 + k * 11 * ppm) + np.arange(-6, 7)] = 50.0
    assert row_spacing(profile, px_per_mm=ppm) == pytest.approx(88, abs=2)
    wide = np.zeros(1600)
    for k in range(4):
        wide[int(300 + k * 35 * ppm) + np.arange(-6, 7)] = 50.0
    assert row_spacing(wide, px_per_mm=ppm) is None


def test_a_row_whose_baseline_wanders_keeps_its_whole_length() -> None:
    ppm = 4.0
    prob = np.zeros((800, 1100), np.float32)
    x = np.arange(40, 1060)
    # the middle row's baseline wanders 18 mm down and back over the middle of the page
    drift = 18 * ppm * np.exp(-0.5 * ((x - 550) / 80.0) ** 2)
    for c in (200.0, 340.0, 480.0):
        y = np.round(c + 3 * np.sin(x / 6.0) + (drift if c == 340.0 else 0.0)).astype(int)
        prob[y, x] = prob[y + 1, x] = 1.0
        for k in range(60, 1060, 100):  # a 7-mm R wave every second (25 mm)
            prob[y[k - 40] - 28 : y[k - 40], k : k + 2] = 1.0
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 3
    assert all(r.x_first <= 42 and r.x_last >= 1057 for r in rows), [
        (r.x_first, r.x_last) for r in rows
    ]


def test_a_flat_trace_is_a_row_and_a_ruled_line_is_not() -> None:
    """Both fill one line of pixels over the page; the trace's beats leave it at regular
    intervals, the letters beside a ruled line do not."""
    ppm = 4.0
    prob = np.zeros((600, 1200), np.float32)
    prob[199:202, 40:1160] = 1.0  # a flat lead drawn 3 px thick
    for k in range(80, 1160, 100):  # its QRS complexes, one a second
        prob[168:200, k : k + 2] = 1.0
    prob[400:402, 40:1160] = 1.0  # a ruled line, with words above it here and there
    for x0 in (60, 75, 90, 420, 436, 900, 1010):
        prob[380:392, x0 : x0 + 8] = 1.0
    rows = find_rows(prob, px_per_mm=ppm)
    assert [round(r.center) for r in rows] == [200]


def test_a_trace_along_a_ruled_line_is_a_row_and_a_page_edge_is_not() -> None:
    """A page edge left by a scan (a long line, tilted against the grid, broken in two) and a
    ruled line crossed by 1-px grid lines every 5 mm are not rows; a trace printed along a
    ruled line, and a flat lead whose small waves leave its line, are."""
    ppm = 4.0
    prob = np.zeros((900, 1200), np.float32)
    x = np.arange(40, 1160)
    prob[np.round(60 + 0.01 * x).astype(int), x] = 1.0  # the paper's edge, tilted 0.6°
    prob[840, 100:600] = prob[846, 650:1150] = 1.0  # the bottom edge, in two pieces
    prob[300, 40:1160] = 1.0  # a ruled line...
    prob[292:309, 60:1160:20] = 1.0  # ...crossed by grid lines every 5 mm
    prob[500, 40:1160] = 1.0  # a ruled line with a trace printed along it
    for k in range(80, 1160, 100):
        prob[470:500, k : k + 3] = 1.0  # QRS
        prob[493:500, k + 30 : k + 60] = 1.0  # T wave
    prob[700:702, 40:1160] = 1.0  # a flat lead drawn 2 px thick, its QRS 3 mm tall
    for k in range(60, 1160, 100):
        prob[688:700, k : k + 4] = 1.0
        prob[695:700, k + 30 : k + 50] = 1.0
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 2
    assert abs(rows[0].center - 500) <= 4 and abs(rows[1].center - 700) <= 4


def test_page_edges_of_a_rendered_scan_are_not_rows() -> None:
    # a 6x2 page scanned at 150 DPI: the straightened scan keeps the paper's edges, long
    # straight lines that used to be read as a seventh row
    page = render_page(synthetic_ecg(seed=1, fs=100, duration=10), layout="6x2", dpi=150,
                       style="scan", seed=1)  # fmt: skip
    image, _ = straighten(page.image)
    ppm = 150 / 25.4
    prob, _ = segment_traces(image, px_per_mm=ppm, method="darkness")
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 6


def test_a_faded_stretch_does_not_end_a_row() -> None:
    # the middle row's trace fades out for 8 mm (more than the 4-mm gaps closed everywhere):
    # rows print side by side, so it still spans the page like the others
    ppm = 4.0
    prob = np.zeros((600, 1200), np.float32)
    x = np.arange(40, 1160)
    for c in (150, 300, 450):
        y = np.round(c + 3 * np.sin(x / 6.0)).astype(int)
        keep = ~((c == 300) & (x >= 500) & (x < 532))
        prob[y[keep], x[keep]] = 1.0
        for k in range(60, 1160, 100):
            prob[c - 28 : c, k : k + 2] = 1.0
    rows = find_rows(prob, px_per_mm=ppm)
    assert len(rows) == 3
    assert all(r.x_first <= 45 and r.x_last >= 1155 for r in rows), [
        (r.x_first, r.x_last) for r in rows
    ]


def test_a_name_printed_against_its_separator_is_read() -> None:
    """The name's first letter touches the separator bar (one mark too tall for a letter
    unless the bar is left out), and a trace fragment of another height that reads as "I"
    lies in the same window: the page's one label height picks the name."""
    ppm = 6.0
    prob = np.zeros((400, 1500), np.float32)
    row = RowGeometry(center=200.0, y_lo=50, y_hi=350, x_first=40, x_last=1450, coverage=0.9)
    starts = [40.0, 400.0, 760.0, 1120.0]
    for x0, name in zip(starts, ("II", "aVL", "V2", "V5"), strict=True):
        word = _word(name, "DejaVuSans.ttf", 22)
        ys, xs = np.nonzero(word)
        ys, xs = ys - ys.min(), xs - xs.min()
        prob[ys + 212, xs + int(x0) + 3] = 1.0
    prob[200:202, 40:1450] = 1.0  # the trace
    prob[176:216, 1119:1123] = 1.0  # the bar before V5 (its foot touches the V of V5)
    prob[178:192, 1100:1103] = 1.0  # a stroke of the trace ending 3 mm before it
    labels = find_labels(prob, [row], [starts], px_per_mm=ppm)
    assert [lbl.text if lbl else None for lbl in labels[0]] == ["II", "aVL", "V2", "V5"]
