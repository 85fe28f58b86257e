"""Stage 4 (text): paper speed and gain read from the page's printed words ("25 mm/s", "20 mm/mV").

ECG machines print their settings on the page ("25mm/s 10mm/mV", "Speed: 25 mm/sec  Limb: 10
mm/mV  Chest: 10.0 mm/mV"). Without a calibration pulse these words are the only record of the
gain. They are read here without an OCR engine: the character-sized marks of the header and
footer are grouped into lines, a unit is looked for around each slash, and it and the number
before it are compared with the units and the standard values drawn in the fonts matplotlib
ships (the same normalised correlation as the lead names, :func:`~ecgscan.digitize.read_label`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from ._layout import RowGeometry, _crop, _drawn, _font_files, _match, _normalise_word

__all__ = ["PrintedCalibration", "read_calibration_text"]

#: Fonts (matplotlib's ttf folder) the words are compared with: the renderer's faces (the
#: DejaVu sans, bold, mono and serif; Computer Modern Sans, its narrow 'condensed' style) and
#: STIX for the serif shapes of other printers.
_FONTS: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf", "STIXGeneral.ttf", "cmss10.ttf",
)  # fmt: skip

#: Standard values printed before each unit (as printed → value).
_SPEEDS: dict[str, float] = {"12.5": 12.5, "25": 25.0, "25.0": 25.0, "50": 50.0, "50.0": 50.0}
_GAINS: dict[str, float] = {
    "2.5": 2.5, "5": 5.0, "5.0": 5.0, "10": 10.0, "10.0": 10.0, "20": 20.0, "20.0": 20.0,
    "40": 40.0,
}  # fmt: skip
_UNITS: dict[str, str] = {"mm/s": "speed", "mm/sec": "speed", "mm/mV": "gain"}

#: Height of the normalised token images (the width follows the token's aspect ratio).
_H = 20
#: Widths (px) the token images are compared at: the token's own aspect ratio, rounded.
_WIDTH_STEP = 8


@dataclass(frozen=True)
class PrintedCalibration:
    """Paper speed and gain printed on the page, as read.

    Attributes
    ----------
    paper_speed : float or None
        mm/s printed before ``mm/s`` (``mm/sec``); None when not found or ambiguous.
    gain : float or None
        mm/mV printed before the first ``mm/mV`` (the limb leads' gain); None when not found
        or ambiguous.
    gain_chest : float or None
        A second, different mm/mV value on the same line ("Chest: 5 mm/mV"); None otherwise.
    speed_score, gain_score : float
        Confidence in [0, 1] of each reading: the lower of the unit's and the number's
        similarity to their templates (0 when not found).
    boxes : tuple of (x0, y0, x1, y1)
        Page pixels of the tokens read (number and unit), for overlays and checks.
    """

    paper_speed: float | None = None
    gain: float | None = None
    gain_chest: float | None = None
    speed_score: float = 0.0
    gain_score: float = 0.0
    boxes: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def found(self) -> bool:
        """Whether a speed or a gain was read."""
        return self.paper_speed is not None or self.gain is not None


@cache
def _vocabulary() -> tuple[tuple[tuple[str, str, str], ...], tuple[NDArray[np.float32], ...]]:
    """Every template: ``(kind, number, unit)`` and its cropped ink, in every font.

    ``kind`` is ``'unit'`` (the unit alone, ``number`` empty) or ``'number'`` (``unit`` then
    says which values: ``'speed'`` or ``'gain'``).
    """
    entries: list[tuple[str, str, str]] = []
    for unit in _UNITS:
        entries.append(("unit", "", unit))
    entries += [("number", n, "speed") for n in _SPEEDS]
    entries += [("number", n, "gain") for n in _GAINS if n not in _SPEEDS]
    keys: list[tuple[str, str, str]] = []
    crops: list[NDArray[np.float32]] = []
    for path in _font_files(_FONTS):
        for kind, number, unit in entries:
            text = number if kind == "number" else number + unit
            crop = _drawn(text, path)
            if crop is not None:
                keys.append((kind, number, unit))
                crops.append(crop)
    return tuple(keys), tuple(crops)


@dataclass(frozen=True)
class _Stack:
    """Templates normalised at one width: ``keys`` ``(kind, number, unit)``, ``images`` (one
    flattened row each), log aspect ratios, and per template its ``kind``, ``family``
    (``'speed'``/``'gain'``) and ``value`` (NaN for a unit alone)."""

    keys: tuple[tuple[str, str, str], ...]
    images: NDArray[np.float32]
    log_aspects: NDArray[np.float64]
    kind: NDArray[np.str_]
    family: NDArray[np.str_]
    value: NDArray[np.float64]


@cache
def _template_stack(width: int, group: str) -> _Stack:
    """The templates of ``group`` (``'unit'``: units with or without their number;
    ``'number'``: numbers alone) normalised at ``_H`` × ``width``."""
    keys, crops = _vocabulary()
    pick = [i for i, k in enumerate(keys) if (k[0] == "number") == (group == "number")]
    chosen = tuple(keys[i] for i in pick)
    families = [_family(k) for k in chosen]
    return _Stack(
        keys=chosen,
        images=np.stack([_normalise_word(crops[i], width).ravel() for i in pick]).astype(
            np.float32
        ),
        log_aspects=np.array([np.log(crops[i].shape[1] / crops[i].shape[0]) for i in pick]),
        kind=np.array([k[0] for k in chosen]),
        family=np.array(families),
        value=np.array([_value(k[1], f) for k, f in zip(chosen, families, strict=True)]),
    )


def _similarity(mask: NDArray[np.bool_], group: str) -> tuple[_Stack, NDArray[np.float64]]:
    """Similarity in [0, 1] of a token's ink to every template of ``group`` (see
    :func:`_template_stack`), and the templates."""
    crop = _crop(mask)
    aspect = crop.shape[1] / crop.shape[0]
    width = int(np.clip(_WIDTH_STEP * round(_H * aspect / _WIDTH_STEP), _WIDTH_STEP, 240))
    stack = _template_stack(width, group)
    return stack, _match(crop, width, stack.log_aspects, stack.images)


def _slashes(lab: NDArray[np.int32], stats: NDArray[np.int32], line: list[int]) -> list[int]:
    """Positions in ``line`` of glyphs shaped like a slash: tall (at least 0.8 × the line's
    tallest glyphs), narrow (0.15-1 as wide as tall), their ink at the top to the right of
    their ink at the bottom by a quarter of their width."""
    cap = float(np.percentile(stats[line, 3], 75))
    out = []
    for i, k in enumerate(line):
        x, y, w, h = (int(v) for v in stats[k, :4])
        if h < 0.8 * cap or not 0.15 <= w / h <= 1.0 or w < 2:
            continue
        own = lab[y : y + h, x : x + w] == k
        third = max(1, h // 3)
        cols = np.arange(w, dtype=np.float64)
        top, bottom = own[:third].sum(axis=0), own[-third:].sum(axis=0)
        if top.sum() == 0 or bottom.sum() == 0:
            continue
        shift = float(np.dot(top, cols) / top.sum() - np.dot(bottom, cols) / bottom.sum())
        if shift >= 0.25 * w:
            out.append(i)
    return out


def _lines(stats: NDArray[np.int32], ks: NDArray[np.intp]) -> list[list[int]]:
    """Glyphs (component indices ``ks`` into ``stats``) grouped into lines, left to right: a
    glyph joins the line whose last glyph overlaps it vertically by half the smaller height
    and is at most two heights to its left."""
    order = ks[np.argsort(stats[ks, 0], kind="stable")].tolist()
    boxes = stats[order, :4].tolist()
    lines: list[list[int]] = []
    ends: list[tuple[int, int, int]] = []  # per line: its last glyph's right end, top, bottom
    for k, (x, y, w, h) in zip(order, boxes, strict=True):
        for i in range(len(lines) - 1, max(-1, len(lines) - 61), -1):
            right, top, bottom = ends[i]
            lh = bottom - top
            overlap = min(y + h, bottom) - max(y, top)
            if overlap >= 0.5 * min(h, lh) and x - right <= 2 * max(h, lh):
                lines[i].append(k)
                ends[i] = (x + w, y, y + h)
                break
        else:
            lines.append([k])
            ends.append((x + w, y, y + h))
    return [line for line in lines if len(line) >= 3]


def _gaps(stats: NDArray[np.int32], line: list[int]) -> NDArray[np.float64]:
    """Blank space between each glyph of a line and the next, in units of the line's
    character height (its tallest glyphs: capitals and digits)."""
    cap = max(1.0, float(np.percentile(stats[line, 3], 75)))
    right = np.maximum.accumulate(stats[line, 0] + stats[line, 2])
    return np.asarray((stats[line[1:], 0] - right[:-1]) / cap, dtype=np.float64)


def _box(stats: NDArray[np.int32], ks: Sequence[int]) -> tuple[int, int, int, int]:
    x0 = int(stats[ks, 0].min())
    y0 = int(stats[ks, 1].min())
    x1 = int((stats[ks, 0] + stats[ks, 2]).max()) - 1
    y1 = int((stats[ks, 1] + stats[ks, 3]).max()) - 1
    return x0, y0, x1, y1


def _ink_of(
    ink: NDArray[np.bool_], lab: NDArray[np.int32], stats: NDArray[np.int32], ks: Sequence[int]
) -> NDArray[np.bool_]:
    """The ink in the box of glyphs ``ks`` (their own ink and the small marks inside, like a
    decimal point; not other glyphs' ink)."""
    x0, y0, x1, y1 = _box(stats, ks)
    sub_lab = lab[y0 : y1 + 1, x0 : x1 + 1]
    sub = ink[y0 : y1 + 1, x0 : x1 + 1].copy()
    small = stats[sub_lab, 3] < 0.35 * (y1 - y0 + 1)  # dots, not a neighbour's stroke
    out: NDArray[np.bool_] = sub & (np.isin(sub_lab, list(ks)) | small)
    return out


def _best(
    sim: NDArray[np.float64], stack: _Stack, family: str = ""
) -> tuple[tuple[str, str, str], float, float]:
    """The best template (of unit ``family`` if given: ``'speed'``/``'gain'``), its score,
    and the best score of a template of the same kind and family whose value differs (0 when
    none does)."""
    allowed = stack.family == family if family else np.ones(sim.size, dtype=bool)
    i = int(np.argmax(np.where(allowed, sim, -1.0)))
    rival = (stack.kind == stack.kind[i]) & (stack.family == stack.family[i])
    rival &= ~(stack.value == stack.value[i])
    runner = float(sim[rival].max()) if rival.any() else 0.0
    return stack.keys[i], float(sim[i]), runner


def _family(key: tuple[str, str, str]) -> str:
    """``'speed'`` or ``'gain'``: what a template's number measures."""
    return key[2] if key[0] == "number" else _UNITS[key[2]]


def _value(number: str, family: str) -> float:
    """The value printed as ``number`` (NaN for none: a unit alone)."""
    return (_SPEEDS if family == "speed" else _GAINS).get(number, float("nan"))


def _read_unit(
    ink: NDArray[np.bool_],
    lab: NDArray[np.int32],
    stats: NDArray[np.int32],
    line: list[int],
    slash: int,
    *,
    merged: bool = False,
    min_score: float,
    min_margin: float,
) -> tuple[str, float, float, tuple[tuple[int, int, int, int], ...]] | None:
    """The unit around the slash at position ``slash`` of ``line`` (``merged``: the mark
    there holds the slash and the letters before it) and its number:
    ``(family, value, score, boxes)``, or None when either does not read.

    A unit is "mm" before the slash and "s", "sec" or "mV" after it, within one word (gaps
    under 0.8 × the character height); its number is the one to five glyphs before it
    ("25 mm/s", "25mm/s"), closer than 1.5 character heights, that read best as a standard
    value.
    """
    gaps = _gaps(stats, line)
    cap = float(np.percentile(stats[line, 3], 75))
    left, right = stats[line, 0], stats[line, 0] + stats[line, 2]
    if merged:  # letters that touch ("mm/" in one mark): the unit starts with the mark
        starts, ends = [slash], [slash]
    elif not slash or stats[line[slash - 1], 3] > 0.85 * cap or gaps[slash - 1] > 0.8:
        return None  # a small letter ("m") stands right before a unit's slash
    else:
        # "mm" spans at most about 2.7 character heights, "sec" or "mV" 2.4: thin printing
        # at low resolution may break a letter into pieces, so the extent counts
        starts = [slash - 1]
        while starts[-1] > 0 and gaps[starts[-1] - 1] < 0.8 and len(starts) < 6:
            if left[slash] - left[starts[-1] - 1] > 3.2 * cap:
                break
            starts.append(starts[-1] - 1)
        ends = [slash + 1] if slash + 1 < len(line) and gaps[slash] < 0.8 else []
    while ends and ends[-1] + 1 < len(line) and gaps[ends[-1]] < 0.8 and len(ends) < 5:
        if right[ends[-1] + 1] - right[slash] > 2.8 * cap:
            break
        ends.append(ends[-1] + 1)
    best: tuple[float, int, int, str] | None = None
    for start in starts:
        for end in ends:
            stack, sim = _similarity(_ink_of(ink, lab, stats, line[start : end + 1]), "unit")
            key, score, _ = _best(sim, stack)
            if best is None or score > best[0]:
                best = (score, start, end, key[2])
    if best is None or best[0] < min_score or best[1] == 0 or gaps[best[1] - 1] > 1.5:
        return None
    score, start, end, unit = best
    family = _UNITS[unit]
    found: tuple[float, float, str, int] | None = None
    for n0 in range(start - 1, max(-1, start - 6), -1):
        if n0 < start - 1 and gaps[n0] > 0.8:  # the number's digits are one word
            break
        if left[start] - left[n0] > 4.0 * cap:  # "12.5" spans about 3 character heights
            break
        stack, sim = _similarity(_ink_of(ink, lab, stats, line[n0:start]), "number")
        key, n_score, n_runner = _best(sim, stack, family)
        if found is None or n_score > found[0]:
            found = (n_score, n_runner, key[1], n0)
    if found is None or found[0] < min_score or found[0] - found[1] < min_margin:
        return None
    n_score, _, number, n0 = found
    boxes = (_box(stats, line[n0:start]), _box(stats, line[start : end + 1]))
    return family, _value(number, family), min(score, n_score), boxes


def _text_bands(
    height: int, rows: Sequence[RowGeometry], *, px_per_mm: float, margin_mm: float = 8.0
) -> list[tuple[int, int]]:
    """Image rows ``(y0, y1)`` where printed settings are looked for: above the first row's
    baseline and below the last one's, ``margin_mm`` away from them (the footer first, then
    the header; the whole page when no row is known)."""
    if not rows:
        return [(0, height)]
    top = int(min(r.center for r in rows) - margin_mm * px_per_mm)
    bottom = max(0, int(max(r.center for r in rows) + margin_mm * px_per_mm))
    return [(bottom, height)] + ([(0, top)] if top > 0 else [])


def _read_band(
    prob: NDArray[np.float32], *, px_per_mm: float, min_score: float, min_margin: float
) -> list[tuple[str, float, float, tuple[tuple[int, int, int, int], ...]]]:
    """The units read in one band of the page: ``(family, value, score, boxes)`` each."""
    import cv2

    if prob.shape[0] < 2 * px_per_mm:
        return []
    # text needs no more than about 6 px/mm (a 2.5-mm digit 15 px tall): larger pages are
    # shrunk by a whole factor, a cell inked when a quarter of it is
    factor = int(px_per_mm // 5.5)
    ink = prob > 0.5
    if factor >= 2:
        small = cv2.resize(ink.astype(np.uint8) * 255, None, fx=1.0 / factor, fy=1.0 / factor,
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        ink = np.asarray(small) > 64
    else:
        factor = 1
    ppm = px_per_mm / factor
    _, lab_any, stats_any, _ = cv2.connectedComponentsWithStats(
        ink.astype(np.uint8), connectivity=8
    )
    lab: NDArray[np.int32] = np.asarray(lab_any, dtype=np.int32)
    stats: NDArray[np.int32] = np.asarray(stats_any, dtype=np.int32)
    h, w = stats[:, 3], stats[:, 2]
    glyph = (h >= 0.8 * ppm) & (h <= 6 * ppm) & (w <= 8 * ppm) & (stats[:, 4] >= 3)
    glyph[0] = False
    out = []
    raw: list[tuple[int, int, int, int]] = []  # the units' boxes (band pixels)
    for line in _lines(stats, np.flatnonzero(glyph)):
        # every unit has a slash, on its own or in a mark of letters that touch (a serif
        # font's "mm/" at 200 DPI): a mark at least 1.8 character heights wide
        cap = float(np.percentile(stats[line, 3], 75))
        wide = np.flatnonzero(stats[line, 2] >= 1.8 * cap).tolist()
        for slash, merged in [(i, False) for i in _slashes(lab, stats, line)] + [
            (i, True) for i in wide
        ]:
            reading = _read_unit(ink, lab, stats, line, slash, merged=merged,
                                 min_score=min_score, min_margin=min_margin)  # fmt: skip
            if reading is not None:
                family, value, score, boxes = reading
                if any(_overlap(boxes[-1], seen) for seen in raw):
                    continue  # the same unit, found from its slash and from its letters
                back = tuple(
                    (x0 * factor, y0 * factor, (x1 + 1) * factor - 1, (y1 + 1) * factor - 1)
                    for x0, y0, x1, y1 in boxes
                )
                out.append((family, value, score, back))
                raw.append(boxes[-1])
    return out


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes ``(x0, y0, x1, y1)`` share pixels."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _same_line(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes overlap vertically by half the smaller one's height."""
    overlap = min(a[3], b[3]) - max(a[1], b[1]) + 1
    return overlap >= 0.5 * min(a[3] - a[1] + 1, b[3] - b[1] + 1)


def read_calibration_text(
    prob: NDArray[np.float32],
    rows: Sequence[RowGeometry] = (),
    *,
    px_per_mm: float,
    min_score: float = 0.7,
    min_margin: float = 0.04,
) -> PrintedCalibration:
    """Paper speed and gain printed on the page ("25 mm/s", "10mm/mV", "Limb: 20 mm/mV").

    Parameters
    ----------
    prob : ndarray
        Ink probability map of the page (ink above 0.5).
    rows : sequence of RowGeometry
        The rows of traces (:func:`~ecgscan.digitize.find_rows`): only the footer below the
        last row's baseline and the header above the first one's (8 mm away from them) are
        read, where printers put their settings, the header only when the footer gives no
        gain (the whole page when no row is given).
    px_per_mm : float
        Page scale.
    min_score : float
        Least similarity of the unit and of the number to their templates.
    min_margin : float
        Least lead of the value read over the runner-up value (``10`` vs ``20``).

    Returns
    -------
    PrintedCalibration
        The values read, ``None`` where no unit was found, its number could not be read, or
        two different values were printed with the same unit (the gain's second value is
        ``gain_chest`` when it follows the first on its line).

    Notes
    -----
    Character-sized marks (0.8-6 mm tall, at most 8 mm wide; pages above 11 px/mm are shrunk
    to half or less first) are grouped into lines. Around every slash-shaped mark (or mark of
    touching letters, 1.8 character heights wide or more), the run of glyphs of one word that
    reads best as ``mm/s``, ``mm/sec`` or ``mm/mV`` is the unit; its number is the one to five
    glyphs before it ("25 mm/s", "25mm/s") that read best as a standard value. Every
    comparison is a normalised correlation with the strings drawn in seven of matplotlib's
    fonts, at the token's own aspect ratio. Only tokens near those marks are compared, so a
    page costs a few milliseconds beyond its connected components.

    Examples
    --------
    >>> import numpy as np
    >>> read_calibration_text(np.zeros((100, 100), np.float32), px_per_mm=4.0).found
    False
    """
    if not np.isfinite(px_per_mm) or px_per_mm <= 0:
        raise ValueError(f"px_per_mm must be a positive number, got {px_per_mm!r}")
    found: dict[str, list[tuple[float, float, tuple[tuple[int, int, int, int], ...]]]] = {
        "speed": [],
        "gain": [],
    }
    for y0, y1 in _text_bands(prob.shape[0], rows, px_per_mm=px_per_mm):
        if found["gain"]:
            break  # the footer gave the gain (its speed is printed beside it): header unread
        for family, value, score, boxes in _read_band(
            prob[y0:y1], px_per_mm=px_per_mm, min_score=min_score, min_margin=min_margin
        ):
            moved = tuple((bx0, by0 + y0, bx1, by1 + y0) for bx0, by0, bx1, by1 in boxes)
            found[family].append((value, score, moved))
    speeds, gains = found["speed"], found["gain"]
    speed = speeds[0][0] if speeds and len({s[0] for s in speeds}) == 1 else None
    gain = gain_chest = None
    if gains:
        values = [g[0] for g in gains]
        if len(set(values)) == 1:
            gain = values[0]
        elif len(gains) == 2 and _same_line(gains[0][2][-1], gains[1][2][-1]):
            gain, gain_chest = values  # "Limb: 10 mm/mV  Chest: 5 mm/mV"
    return PrintedCalibration(
        paper_speed=speed,
        gain=gain,
        gain_chest=gain_chest,
        speed_score=float(min(s[1] for s in speeds)) if speed is not None else 0.0,
        gain_score=float(min(g[1] for g in gains)) if gain is not None else 0.0,
        boxes=tuple(b for item in speeds + gains for b in item[2]),
    )
