"""Lead names printed on or against the trace: found, read and erased (digitize._layout's
label functions)."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from _shared import shared_path
from ecgscan.digitize import digitize
from ecgscan.digitize._layout import LeadLabel, RowGeometry, erase_labels, find_labels


def _word(text: str, font_file: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a word's ink, drawn with a matplotlib font, from (0, 0)."""
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", font_file)
    face = ImageFont.truetype(path, size)
    canvas = Image.new("L", (8 * size, 3 * size), 0)
    ImageDraw.Draw(canvas).text((size, size), text, font=face, fill=255)
    ys, xs = np.nonzero(np.asarray(canvas) > 110)
    return ys - ys.min(), xs - xs.min()


def _page_with_names_on_the_trace(names: tuple[str, ...]) -> tuple[
    np.ndarray, list[RowGeometry], list[list[float]], list[int]
]:  # fmt: skip
    """A 4.3 px/mm ink map with one row per name, printed over the first beat as on
    real-scan ecg00050: the letters stand 1 px above the trace's line, and a piece of the
    trace cut off by faded stretches (flat bits and a 4-mm R wave) starts one pixel after
    the name, at the letters' height."""
    ppm = 4.3
    prob = np.zeros((130 * len(names), 700), np.float32)
    rows, starts, feet = [], [], []
    for k, name in enumerate(names):
        base = 130 * k + 80
        ys, xs = _word(name, "DejaVuSerif-Bold.ttf", 18)
        foot = base - 2
        prob[ys + foot - ys.max(), xs + 93] = 1.0
        right = 93 + int(xs.max())
        prob[base, 80:90] = 1.0  # the trace before the name
        piece = right + 2  # the piece: 5 mm of line with an R wave in its middle
        prob[base, piece : piece + int(5 * ppm)] = 1.0
        x = piece + int(2.5 * ppm)
        prob[base - int(4 * ppm) : base, x : x + 2] = 1.0
        prob[base, piece + int(5 * ppm) + 3 : 690] = 1.0  # the rest, after a faded gap
        rows.append(RowGeometry(center=float(base), y_lo=base - 60, y_hi=base + 50,
                                x_first=80, x_last=690, coverage=0.9))  # fmt: skip
        starts.append([93.0])
        feet.append(foot)
    return prob, rows, starts, feet


def test_a_name_standing_on_the_trace_is_read_apart_from_its_waves() -> None:
    """Letters on the trace's line, grouped into one word with a piece of the trace beside
    them, still read as the name; erasing the name leaves the trace."""
    prob, rows, starts, feet = _page_with_names_on_the_trace(("III", "II"))
    labels = find_labels(prob, rows, starts, px_per_mm=4.3)
    assert [row[0].text if row[0] else None for row in labels] == ["III", "II"]
    for row, foot in zip(labels, feet, strict=True):
        lbl = row[0]
        assert lbl is not None and lbl.score >= 0.6
        # the word is the letters alone: none of its ink below their feet
        assert lbl.bbox[3] <= foot
    out = erase_labels(prob, labels, [("III",), ("II",)])
    for r in rows:
        base = int(r.center)
        assert np.array_equal(out[base], prob[base])  # the trace's line is kept
        assert out[base - 12 : base - 2, 93:110].max() == 0.0  # the letters are gone


def test_a_lone_stroke_on_the_trace_is_not_read_as_a_name() -> None:
    """A single stroke standing on the trace where a name is looked for (a QRS complex's
    stroke looks like an "I") is not taken for a name."""
    ppm = 4.3
    prob = np.zeros((160, 600), np.float32)
    prob[100, 60:590] = 1.0
    prob[86:100, 96:98] = 1.0  # a 3-mm stroke up from the line, at the segment's start
    row = RowGeometry(center=100.0, y_lo=40, y_hi=150, x_first=60, x_last=590, coverage=0.9)
    labels = find_labels(prob, [row], [[93.0]], px_per_mm=ppm)
    assert labels[0][0] is None or labels[0][0].score < 0.5


def test_a_real_page_with_names_over_its_first_beats_keeps_einthoven() -> None:
    """ecg00050 (a phone photo) prints "II" and "III" over the traces' first beats: the
    names are read and erased, not followed as trace (Einthoven's law holds to 12 dB over
    the first column; 4 dB when "III" was followed)."""
    res = digitize(shared_path("images", "real-scans", "ecg00050.jpg"), fs=500)
    assert res.layout.name.startswith("3x4")
    i, ii, iii = (res.record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    assert ok.sum() >= 500  # the first column: 2.5 s
    a = ii[ok] - ii[ok].mean()
    err = a - (i[ok] + iii[ok] - (i[ok] + iii[ok]).mean())
    assert 10 * np.log10(np.sum(a**2) / np.sum(err**2)) >= 12.0


def test_a_stroke_away_from_where_the_page_prints_its_names_is_not_a_name() -> None:
    """A QRS stroke the size of a letter that reads as "I" better than the small printed "I"
    does (real-scan ecg00025), but stands 10 mm above where the page prints its names, is
    not taken for the name: the printed word is."""
    ppm = 4.0
    names = (("I", "aVR"), ("II", "aVL"), ("III", "aVF"))
    prob = np.zeros((3 * 150, 800), np.float32)
    rows, starts = [], []
    for k, row_names in enumerate(names):
        base = 150 * k + 70
        prob[base, 20:790] = 1.0
        for x0, name in zip((20, 400), row_names, strict=True):
            ys, xs = _word(name, "STIXGeneral.ttf", 12)
            prob[ys + base + 14, xs + x0 + 4] = 1.0  # 3.5 mm under the trace
        rows.append(RowGeometry(center=float(base), y_lo=base - 70, y_hi=base + 70,
                                x_first=20, x_last=790, coverage=0.9))  # fmt: skip
        starts.append([20.0, 400.0])
    ys, xs = _word("I", "STIXGeneral.ttf", 12)
    prob[70 - 30 : 70 - 30 + int(ys.max()) + 1, 50] = 1.0  # a 1-px stroke, as tall, above
    labels = find_labels(prob, rows, starts, px_per_mm=ppm)
    assert [lbl.text if lbl else None for row in labels[1:] for lbl in row] == [
        "II", "aVL", "III", "aVF"
    ]  # fmt: skip
    top = labels[0][0]
    assert top is not None and top.bbox[1] == 70 + 14  # the printed word, not the stroke


def _label(
    x0: int, y0: int, w: int, h: int, scores: dict[str, float], *, crowded: bool = False
) -> LeadLabel:
    """A word's reading over a filled box (``erase_labels`` only looks at the box)."""
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w]
    return LeadLabel(bbox=(x0, y0, x0 + w - 1, y0 + h - 1), scores=scores,
                     pixels=(yy.ravel(), xx.ravel()), crowded=crowded)  # fmt: skip


def test_a_name_the_trace_runs_through_is_erased_where_the_others_stand() -> None:
    """A name printed on the trace's line (the 1200-px phone photos) reads as another word
    once the trace crosses it; where the other rows' names of its column read well at the
    same place and size, it is erased all the same; a word elsewhere is not."""
    prob = np.ones((400, 300), np.float32)
    row_leads = [("I", "aVR"), ("II", "aVL"), ("III", "aVF"), ("II",)]
    good = [_label(70, 60, 5, 13, {"I": 0.8}), _label(70, 160, 10, 14, {"II": 0.8}),
            None, _label(69, 360, 12, 14, {"II": 0.85})]  # fmt: skip
    # "III" with the trace through it (taller by the trace's piece), read as V6
    crossed = _label(70, 255, 22, 19, {"V6": 0.36, "III": 0.16}, crowded=True)
    labels: list[list[LeadLabel | None]] = [[g, None] for g in good[:2]]
    labels += [[crossed, None], [good[3]]]
    out = erase_labels(prob, labels, row_leads)
    assert (out[crossed.pixels] == 0).all()
    assert (out[good[0].pixels] == 0).all()
    # the same word 6 mm to the right of where the names stand is not a name
    away = _label(95, 255, 22, 19, {"V6": 0.36, "III": 0.16}, crowded=True)
    labels[2] = [away, None]
    assert (erase_labels(prob, labels, row_leads)[away.pixels] == 1).all()
    # a crowded "I" where "III" stands is the rest of it; a poor one (a QRS stroke) is not
    part = _label(95, 255, 4, 13, {"I": 0.7, "III": 0.05}, crowded=True)
    labels[2] = [part, None]
    assert (erase_labels(prob, labels, row_leads)[part.pixels] == 0).all()
    stroke = _label(95, 255, 4, 25, {"I": 0.4, "III": 0.05}, crowded=True)
    labels[2] = [stroke, None]
    assert (erase_labels(prob, labels, row_leads)[stroke.pixels] == 1).all()


def test_a_real_name_on_the_trace_line_is_not_followed() -> None:
    """ecg00040 (a phone photo) prints "III" on the trace's line after the pulse: the trace
    was followed up its letters (0.13-0.39 mV over the first 0.15 s of lead III); now the
    letters are erased and the trace under them is unknown."""
    res = digitize(shared_path("images", "real-scans", "ecg00040.jpg"), fs=500)
    assert res.layout.name.startswith("3x4")
    iii = res.record.lead("III")
    assert not (iii[:100] > 0.1).any()
    assert np.isfinite(iii[150:1250]).mean() > 0.95  # the rest of the first column is read


def test_the_letter_a_partial_reading_leaves_out_is_erased_too() -> None:
    """ "III" printed on the trace's line right after the row's start, its first letter
    against the first QRS's stroke (real-scan ecg00034): that letter joins the stroke, the
    word reads as a crowded "II" and erasing it alone left the first "I", which the trace
    was followed up (III 6.4 dB by Einthoven over the first column). The left-out letter
    goes too (the word's rows beside it, where an upright stroke stands); the trace's line
    and the stroke below the letters stay, and so does a stroke that comes down into the
    name's rows from above (no letter has ink above it)."""
    ppm = 4.3
    prob = np.zeros((160, 600), np.float32)
    base = 100
    prob[base, 60:590] = 1.0
    ys, xs = _word("III", "DejaVuSerif-Bold.ttf", 18)
    foot = base - 2
    prob[ys + foot - ys.max(), xs + 100] = 1.0
    top = foot - int(ys.max())
    prob[base - 14 : base + int(6 * ppm), 98:100] = 1.0  # the QRS: down 6 mm, up past the foot
    row = RowGeometry(center=float(base), y_lo=40, y_hi=150, x_first=60, x_last=590, coverage=0.9)
    labels = find_labels(prob, [row], [[95.0]], px_per_mm=ppm)
    lbl = labels[0][0]
    assert lbl is not None and lbl.text == "II" and lbl.crowded  # the premise
    assert lbl.bbox[0] > 100 + 4  # the first letter is not in the word
    out = erase_labels(prob, labels, [("III",)])
    assert out[top : foot + 1, 100 : 100 + int(xs.max()) + 1].max() == 0.0  # all three letters
    assert np.array_equal(out[base:], prob[base:])  # the trace's line and the QRS below it
    # a word that reads whole leaves its neighbours alone
    out2 = erase_labels(prob, [[lbl]], [("II",)])  # "II" where "II" stands: nothing missing
    assert np.array_equal(out2[:, :106], prob[:, :106])
    # a QRS stroke that comes down into the name's rows beside it (ECG-Image-Kit prints the
    # names over the rows' first beats) is the trace's: it stays
    prob3 = prob.copy()
    prob3[top - 30 : foot + 1, 96:107] = 0.0  # no first letter; a stroke from 7 mm above
    prob3[top - 30 : top + 8, 103:105] = 1.0  # 2/3 of the rows
    out3 = erase_labels(prob3, [[lbl]], [("III",)])
    assert np.array_equal(out3[:, :107], prob3[:, :107])


def test_a_real_name_whose_first_letter_touches_the_qrs_is_not_followed() -> None:
    """ecg00034 (a phone photo) prints "III" on the trace's line over the first QRS; the
    word read "II" and the trace was followed up the first "I" (Einthoven 6.4 dB over the
    first column): with the whole name erased it follows the QRS down (10.9 dB)."""
    res = digitize(shared_path("images", "real-scans", "ecg00034.jpg"), fs=500)
    assert res.layout.name.startswith("3x4")
    i, ii, iii = (res.record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    a = ii[ok] - ii[ok].mean()
    err = a - (i[ok] + iii[ok] - (i[ok] + iii[ok]).mean())
    assert 10 * np.log10(np.sum(a**2) / np.sum(err**2)) >= 9.0


def _line(prob: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], width: int) -> None:
    """A straight stroke ``width`` px wide from ``p0`` to ``p1`` (row, column), inked."""
    n = int(4 * max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    for t in np.linspace(0.0, 1.0, n):
        y, x = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
        prob[int(round(y)), int(round(x)) : int(round(x)) + width] = 1.0


def _page_with_ii_on_an_r_wave(*, tip_above: int) -> tuple[
    np.ndarray, np.ndarray, list[RowGeometry], list[list[float]], int, int, int
]:  # fmt: skip
    """Three rows at 8 px/mm (200 DPI) whose names stand 0.6 mm above the baseline at both
    segment starts, as on real-scan ecg00012; row II's first R wave (3-px strokes, its tip
    ``tip_above`` px above the baseline) runs through "II": the upstroke against the first
    letter, the downstroke on the second. Returns the page, the R wave's own ink, the rows,
    the starts, the letters' top and foot and the R wave's tip column."""
    names = (("I", "aVR"), ("II", "aVL"), ("III", "aVF"))
    prob = np.zeros((3 * 250, 1200), np.float32)
    rows, starts = [], []
    for k, row_names in enumerate(names):
        base = 250 * k + 150
        prob[base - 1 : base + 2, 20:1190] = 1.0
        for x0, name in zip((60, 620), row_names, strict=True):
            ys, xs = _word(name, "DejaVuSans-Bold.ttf", 30)
            prob[ys + base - 5 - ys.max(), xs + x0] = 1.0
        rows.append(RowGeometry(center=float(base), y_lo=base - 120, y_hi=base + 120,
                                x_first=20, x_last=1190, coverage=0.9))  # fmt: skip
        starts.append([45.0, 605.0])
    base = 400
    ys, xs = _word("II", "DejaVuSans-Bold.ttf", 30)
    top, foot = base - 5 - int(ys.max()), base - 5
    cols = np.unique(xs)
    gap = int(np.flatnonzero(np.diff(cols) > 1)[0])
    first_end, second = int(cols[gap]) + 60, int(cols[gap + 1]) + 60
    wave = np.zeros_like(prob)
    tip = second
    _line(wave, (base, first_end - 1), (base - tip_above, tip), 3)  # up against the first
    _line(wave, (base - tip_above, tip), (base + 15, second + 4), 3)  # down on the second
    return np.maximum(prob, wave), wave, rows, starts, top, foot, tip


def test_a_name_joined_to_the_r_wave_is_erased_and_the_r_wave_kept() -> None:
    """ "II" printed over the row's first R wave (real-scan ecg00012), its second letter on
    the downstroke and its first against the upstroke: both join the trace, no word is
    read there, and the letter widened the downstroke (the fit kept the R wave's top 1-2
    samples too long). The name is placed where the other rows print theirs and erased
    but for the strokes that run through it: the trace wins. A letter that would hide the
    R wave's tip is left alone."""
    prob, wave, rows, starts, top, foot, _ = _page_with_ii_on_an_r_wave(tip_above=100)
    labels = find_labels(prob, rows, starts, px_per_mm=8.0)
    assert labels[1][0] is None  # the premise: the name is not read
    assert [row[0].text if row[0] else None for row in labels[::2]] == ["I", "III"]
    row_leads = [("I", "aVR"), ("II", "aVL"), ("III", "aVF")]
    centers = [r.center for r in rows]
    before = erase_labels(prob, labels, row_leads)
    out = erase_labels(prob, labels, row_leads, centers=centers)
    letters = (prob > 0) & (wave == 0)
    letters[: top - 1] = letters[foot + 2 :] = False
    letters[:, 100:] = False
    assert letters.sum() > 150 and before[letters].min() == 1.0  # left in place before
    # the letters' own ink is gone but for a pixel beside the strokes (the corridor's
    # rounding); every pixel of the R wave stays
    near = np.zeros_like(letters)
    for dx in (-1, 0, 1):
        near |= np.roll(wave > 0, dx, axis=1)
    assert out[letters & ~near].max() == 0.0
    assert np.array_equal(out[wave > 0], prob[wave > 0])
    # the R wave's tip inside the second letter: that letter stays (the trace wins)
    prob2, _, _, _, _, _, tip = _page_with_ii_on_an_r_wave(tip_above=400 - top - 6)
    out2 = erase_labels(prob2, labels, row_leads, centers=centers)
    keep = np.s_[top - 2 : foot + 3, tip - 2 : tip + 10]
    assert np.array_equal(out2[keep], prob2[keep])


def test_a_rendered_name_over_the_first_r_wave_leaves_its_strokes_in_place() -> None:
    """A 200-DPI render whose names stand 1 mm above the baseline in 4.5-mm type, with
    the first R wave 0.07 s into the row: "I" and "II" lie on the R waves' strokes and
    join them. Against the exact truth (at the lag that fits the rest of the column), lead
    II's first 0.25 s is off by 0.032 mV rms (0.042 when the joined name was left in
    place; 0.014 over the rest of the column)."""
    from ecgscan.data.record import Record
    from ecgscan.data.synthetic import synthetic_ecg
    from ecgscan.render import render_page

    rec = synthetic_ecg(fs=500, duration=10, seed=1)
    peak = int(np.argmax(rec.signal[:500, list(rec.leads).index("II")]))
    signal = np.roll(rec.signal, 35 - peak, axis=0)  # an R wave at 0.07 s
    page = render_page(Record(signal=signal, fs=500, leads=rec.leads), layout="3x4+II",
                       dpi=200, style="clean", seed=0, label_position="above",
                       label_offset=1.0, font_size=4.5)  # fmt: skip
    est = digitize(page.image, fs=500).record.lead("II")
    ref = page.reference.lead("II")
    rest = np.zeros(ref.size, bool)
    rest[150:1250] = True

    def misfit(x: np.ndarray, where: np.ndarray) -> float:
        ok = where & np.isfinite(x) & np.isfinite(ref)
        d = x[ok] - ref[ok]
        return float(np.sqrt(np.mean((d - np.median(d)) ** 2)))

    lag = min(range(-30, 31), key=lambda k: misfit(np.roll(est, k), rest))
    first = np.zeros(ref.size, bool)
    first[:125] = True
    assert misfit(np.roll(est, lag), rest) < 0.02  # the premise: the rest fits
    assert misfit(np.roll(est, lag), first) < 0.037


def _with_ticks(image: np.ndarray, truth: dict, dpi: float) -> np.ndarray:  # type: ignore[type-arg]
    """``image`` with real-scan ecg00012's separators drawn at every inner segment start of
    the grid rows: 5-mm ticks, 0.6 mm thick, one 2.5-7.5 mm above the baseline and one as
    far below it, clear of the trace."""
    import cv2

    out = image.copy()
    s = dpi / 25.4
    for lead in truth["leads"]:
        if lead["start_time"] > 0 and lead["row"] < 3:
            x, b = int(round(lead["x_start"])), lead["baseline_y"]
            for y0, y1 in ((b - 7.5 * s, b - 2.5 * s), (b + 2.5 * s, b + 7.5 * s)):
                cv2.line(out, (x, int(round(y0))), (x, int(round(y1))), (0, 0, 0),
                         max(1, int(round(0.6 * s))), cv2.LINE_AA)  # fmt: skip
    return out


def test_separator_ticks_clear_of_the_trace_are_not_read_as_names(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ticks above and below the trace at the segments' starts (real-scan ecg00012) read as
    "I" (0.98) at every inner start and outvoted the printed names, whose size and place they
    set: no name of the grid was read, not even the first column's. Centred on the boundary
    and repeated across the trace, they are separators, and every printed name is read."""
    from ecgscan.data.synthetic import synthetic_ecg
    from ecgscan.digitize import _pipeline
    from ecgscan.render import render_page

    page = render_page(synthetic_ecg(fs=500, duration=10, seed=1), layout="3x4+II", dpi=200,
                       style="clean", seed=3, separators=False, label_position="above")  # fmt: skip
    seen: list[list[list[LeadLabel | None]]] = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = find_labels(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(_pipeline, "find_labels", recording)
    res = digitize(_with_ticks(page.image, page.truth, 200.0), fs=500)
    names = [[lbl.text if lbl else None for lbl in row] for row in seen[0][:3]]
    assert names == [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"],
                     ["III", "aVF", "V3", "V6"]]  # fmt: skip
    assert res.layout.name == "3x4+II"


def test_a_real_page_with_separator_ticks_reads_its_names() -> None:
    """ecg00012 marks its segment boundaries with 5-mm ticks above and below the trace; with
    the ticks read as names its Einthoven figure was 14.6 dB, with the names read 16.0."""
    image = shared_path("images", "real-scans", "ecg00012.jpg")
    res = digitize(image, fs=500)
    assert res.layout.name == "3x4+II"
    i, ii, iii = (res.record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    assert ok.sum() >= 1000
    a = ii[ok] - ii[ok].mean()
    err = a - (i[ok] + iii[ok] - (i[ok] + iii[ok]).mean())
    assert 10 * np.log10(np.sum(a**2) / np.sum(err**2)) >= 15.5
