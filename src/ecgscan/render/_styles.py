"""Styles: families of page looks, drawn from a seeded generator.

``clean``
    ECG-Image-Kit's default look: Letter, red grid over the whole page, rows in the lower
    three quarters, calibration pulses, labels, speed/gain footer; nothing random.
``print``
    Printer output of many vendors: paper size, grid colour and style, tint, margins, header
    with patient fields, measurements and interpretation, fonts, trace width and colour,
    calibration side/shape, split limb/chest gains (10 % of pages: a stepped pulse or each
    row's pulse at its first lead's gain), label placement, black-and-white printing — all
    drawn from the seed.
``scan`` / ``photo``
    A ``print`` page followed by a scanner or camera degradation chain (see ``_degrade``).
``random``
    One of the above, drawn from the seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..data.record import Record
from ._grid import GRID_COLORS, GridSpec
from ._page import PAPER_SIZES, PageSpec
from ._text import FONTS

__all__ = ["resolve_style", "sample_spec"]

_STYLE_WEIGHTS = (("clean", 0.15), ("print", 0.35), ("scan", 0.3), ("photo", 0.2))
_GRID_WEIGHTS = (
    ("red", 0.42),
    ("pink", 0.18),
    ("orange", 0.1),
    ("green", 0.06),
    ("blue", 0.06),
    ("grey", 0.1),
    ("black", 0.08),
)

_INTERPRETATIONS = (
    "Sinus rhythm",
    "Normal sinus rhythm",
    "Sinus bradycardia",
    "Sinus tachycardia",
    "Atrial fibrillation",
    "Left axis deviation",
    "Right bundle branch block",
    "Incomplete right bundle branch block",
    "Left ventricular hypertrophy",
    "Nonspecific ST abnormality",
    "Nonspecific T wave abnormality",
    "Borderline ECG",
    "Normal ECG",
    "Abnormal ECG",
    "Otherwise normal ECG",
    "Low voltage QRS",
    "Premature ventricular complexes",
    "Possible inferior infarct, age undetermined",
    "Prolonged QT",
    "First degree AV block",
    "Unconfirmed report",
)
_FILTERS = ("0.05-150 Hz", "0.05-100 Hz", "0.5-40 Hz", "0.16-150 Hz", "0.05-40 Hz")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def resolve_style(style: str, rng: np.random.Generator) -> str:
    """The concrete style (``'random'`` drawn among the others)."""
    if style != "random":
        return style
    names = [n for n, _ in _STYLE_WEIGHTS]
    return str(_pick(rng, names, [w for _, w in _STYLE_WEIGHTS]))


def _rgb(values: Any) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(v, 0, 255)) for v in values)
    return r, g, b


def _pick(rng: np.random.Generator, items: Any, weights: Any = None) -> Any:
    if weights is not None:
        p = np.asarray(weights, float) / np.sum(weights)
        return items[int(rng.choice(len(items), p=p))]
    return items[int(rng.integers(len(items)))]


def _header_lines(record: Record | None, rng: np.random.Generator) -> tuple[str, ...]:
    name = record.name if record is not None else "record"
    age = record.age if record is not None and record.age is not None else rng.integers(18, 90)
    age_text = "90+" if age is not None and float(age) >= 90 else f"{float(age):.0f}"
    sex = record.sex if record is not None and record.sex else _pick(rng, ("Male", "Female"))
    year, month, day = int(rng.integers(1989, 2024)), _pick(rng, _MONTHS), int(rng.integers(1, 29))
    hh, mm = int(rng.integers(0, 24)), int(rng.integers(0, 60))
    rate = int(rng.integers(45, 130))
    pr, qrs = int(rng.integers(110, 220)), int(rng.integers(70, 140))
    qt = int(rng.integers(300, 460))
    qtc = int(qt / np.sqrt(60.0 / rate))
    axes = (int(rng.integers(-30, 90)), int(rng.integers(-40, 110)), int(rng.integers(-20, 90)))
    column1 = [
        f"ID: {name}",
        f"{day:02d}-{month}-{year} {hh:02d}:{mm:02d}:{int(rng.integers(60)):02d}",
        f"{age_text} yr  {sex}",
        _pick(rng, ("Room: 12", "Loc: 3", "Ward: ED", "Cardiology", "Outpatient")),
    ]
    column2 = [
        f"Vent. rate {rate} BPM",
        f"PR interval {pr} ms",
        f"QRS duration {qrs} ms",
        f"QT/QTc {qt}/{qtc} ms",
        f"P-R-T axes {axes[0]} {axes[1]} {axes[2]}",
    ]
    n_interp = int(rng.integers(1, 4))
    column3 = [str(_pick(rng, _INTERPRETATIONS)) for _ in range(n_interp)]
    if rng.random() < 0.5:
        column3.append("Confirmed by: ____________")
    return (*column1, "", *column2, "", *column3)


def sample_spec(
    style: str, *, dpi: float, rng: np.random.Generator, record: Record | None = None
) -> PageSpec:
    """The page model of a concrete ``style`` at ``dpi`` (random fields drawn from ``rng``)."""
    if style == "clean":
        # ECG-Image-Kit's default page: the top ~65 mm stay free for a header it does not print
        return PageSpec(dpi=dpi, header_height=66.0)
    paper_name = _pick(rng, ("letter", "a4"), (0.65, 0.35))
    paper = PAPER_SIZES[paper_name]
    color = _pick(rng, [c for c, _ in _GRID_WEIGHTS], [w for _, w in _GRID_WEIGHTS])
    jitter = rng.integers(-12, 13, 3)
    minor_c, major_c = (_rgb(np.asarray(c) + jitter) for c in GRID_COLORS[color])
    tint = 255 - rng.integers(0, 14, 3) if rng.random() < 0.4 else np.full(3, 255)
    grid_style = _pick(rng, ("lines", "dots", "none"), (0.86, 0.09, 0.05))
    header = rng.random() < 0.75
    margin = float(rng.uniform(0, 12)) if rng.random() < 0.6 else 0.0
    margins = (margin, margin + float(rng.uniform(0, 4)), margin, margin)
    header_height = float(rng.uniform(24, 36)) if header else 0.0
    if rng.random() < 0.3:  # rows packed low on the page, below a tall (possibly empty) header
        header_height = float(rng.uniform(40, 70))
    width_mm = paper[0] - 2 * margin
    lead_in = float(rng.uniform(10, 16))
    if width_mm - lead_in < 254:
        lead_in = max(width_mm - 254.0, 3.0)
    grid = GridSpec(
        style=grid_style,
        minor_color=minor_c,
        major_color=major_c,
        background=_rgb(tint),
        minor=bool(rng.random() < 0.9),
        minor_width=float(rng.uniform(0.05, 0.14)),
        major_width=float(rng.uniform(0.12, 0.3)),
        origin=(margin + float(rng.uniform(0, 5)) * (rng.random() < 0.3), margin),
    )
    trace_dark = int(rng.integers(0, 60))
    trace_color = (trace_dark, trace_dark, trace_dark)
    if rng.random() < 0.12:
        trace_color = (
            int(rng.integers(0, 40)),
            int(rng.integers(0, 60)),
            int(rng.integers(80, 160)),
        )
    speed = 25.0
    gain_limb = float(_pick(rng, (10.0, 5.0, 20.0), (0.9, 0.06, 0.04)))
    gain_chest = gain_limb if rng.random() < 0.9 else gain_limb / 2
    filt = _pick(rng, _FILTERS)
    footer = _pick(
        rng,
        (
            "{speed:g}mm/s    {gain:g}mm/mV",
            "{speed:g} mm/s   {gain:g} mm/mV   " + filt + "   50 Hz",
            "Speed: {speed:g} mm/sec   Limb: {gain:g} mm/mV   Chest: {gain_chest:g} mm/mV   F "
            + filt,
            "",
        ),
    )
    if footer and gain_chest != gain_limb and "gain_chest" not in footer:
        footer += "   Chest: {gain_chest:g} mm/mV"  # a split-gain page says so
    font = _pick(rng, list(FONTS), (0.3, 0.25, 0.1, 0.1, 0.15, 0.1))
    spec = PageSpec(
        paper=paper,
        paper_name=paper_name,
        dpi=dpi,
        paper_speed=speed,
        gain_limb=gain_limb,
        gain_chest=gain_chest,
        margins=margins,
        lead_in=lead_in,
        header_height=header_height,
        footer_height=float(rng.uniform(6, 10)) if footer else 3.0,
        header_lines=_header_lines(record, rng) if header else (),
        footer_text=footer,
        grid=grid,
        calibration=_pick(rng, ("left", "right", "none"), (0.8, 0.1, 0.1)),
        calibration_shape=_pick(rng, ("square", "step"), (0.85, 0.15)),
        labels=bool(rng.random() < 0.97),
        label_position=_pick(rng, ("above", "below"), (0.6, 0.4)),
        separators=bool(rng.random() < 0.7),
        separator_style=_pick(rng, ("tick", "dotted"), (0.75, 0.25)),
        label_offset=float(rng.uniform(1.0, 5.0)),
        calibration_gap=float(rng.uniform(0.0, 3.0)) if rng.random() < 0.6 else 0.0,
        font=font,
        font_size=float(rng.uniform(2.6, 3.8)),
        text_color=_rgb([rng.integers(0, 50)] * 3),
        trace_width=float(rng.uniform(0.12, 0.35)),
        trace_color=trace_color,
        overflow=_pick(rng, ("overlap", "clip"), (0.75, 0.25)),
        monochrome=bool(rng.random() < 0.25),
        qr_code=bool(header and rng.random() < 0.3),
        qr_code_seed=int(rng.integers(2**31)),
    )
    # how a split-gain page shows its chest gain: drawn from a generator of its own, so that
    # the pages (and degradations) drawn before this field existed stay the same
    own = np.random.default_rng([spec.qr_code_seed, 0x5C])
    split = _pick(own, ("stepped", "row"), (0.75, 0.25))
    return dataclasses.replace(spec, calibration_split=split)
