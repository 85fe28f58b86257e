"""Drawing one clean ECG page with its exact ground truth.

Every coordinate is computed analytically from the page model: a sample ``n`` of a segment
whose paper position starts at ``x_seg`` px is drawn at

    x = x_seg + (n / fs - segment.start) * paper_speed * px_per_mm.x
    y = baseline - sign * v[n] * gain * px_per_mm.y

and the polyline through those points is what the printer draws (anti-aliased, sub-pixel
precise via OpenCV's fixed-point ``shift``), so the ground truth is exact by construction.
Pixel centres are at integer coordinates; the page's left edge is at x = -0.5.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..data.record import LEADS, Record
from ..errors import EcgscanError, LayoutError
from ._grid import GridSpec, draw_grid
from ._layout import Layout, Segment
from ._text import draw_text, text_height

__all__ = ["PAPER_SIZES", "PageSpec", "RenderWarning", "draw_page"]

#: Paper sizes in millimetres, landscape (width, height).
PAPER_SIZES: dict[str, tuple[float, float]] = {
    "letter": (279.4, 215.9),
    "a4": (297.0, 210.0),
    "legal": (355.6, 215.9),
    "a3": (420.0, 297.0),
}

_CHEST = frozenset({"V1", "V2", "V3", "V4", "V5", "V6"})
_SHIFT = 4  # OpenCV fixed-point bits: coordinates in 1/16 px
_SCALE = float(1 << _SHIFT)


class RenderWarning(UserWarning):
    """Something on the page differs from what was asked (missing leads, clipped content)."""


@dataclass(frozen=True)
class PageSpec:
    """Everything that decides how a page looks (lengths in mm, colours RGB).

    ``render_page`` draws a spec from a style and a seed, then applies the caller's overrides;
    any field can be overridden by name.
    """

    paper: tuple[float, float] = PAPER_SIZES["letter"]
    paper_name: str = "letter"
    dpi: float = 200.0
    paper_speed: float = 25.0
    gain_limb: float = 10.0
    gain_chest: float = 10.0
    margins: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # left, top, right, bottom
    lead_in: float = 14.0  # mm between the grid's left edge and the trace area
    header_height: float = 0.0  # mm reserved at the top for the header text
    footer_height: float = 8.0  # mm reserved at the bottom for the footer text
    header_lines: tuple[str, ...] = ()
    footer_text: str = "{speed:g}mm/s    {gain:g}mm/mV"
    grid: GridSpec = field(default_factory=GridSpec)
    calibration: str = "left"  # 'left', 'right', 'none'
    calibration_shape: str = "square"  # 'square', 'step'
    # split gains (gain_chest != gain_limb): 'stepped' draws every row's pulse as the limb
    # height then the chest height (what such printers print); 'row' draws each row's pulse
    # at its first lead's gain
    calibration_split: str = "stepped"
    labels: bool = True
    label_position: str = "below"  # 'above', 'below'
    separators: bool = True
    separator_style: str = "tick"  # 'tick' (short bar at the baseline) or 'dotted' (row high)
    label_offset: float = 1.5  # mm between the baseline and the label's nearest edge
    calibration_gap: float = 3.0  # mm between a left calibration pulse and the trace
    font: str = "sans"
    font_size: float = 3.2  # mm, cap height ≈ 0.7 × this
    text_color: tuple[int, int, int] = (0, 0, 0)
    trace_width: float = 0.2  # mm
    trace_color: tuple[int, int, int] = (0, 0, 0)
    overflow: str = "overlap"  # 'overlap' (traces cross into the next row) or 'clip'
    duration: float | None = None  # seconds shown; None: as much of the record as fits (≤ 10 s)
    monochrome: bool = False  # black-and-white printing: the page is converted to grey levels
    qr_code: bool = False  # a QR-code-like block at the top right (as ECG-Image-Kit adds)
    qr_code_seed: int = 0

    @property
    def px_per_mm(self) -> float:
        return self.dpi / 25.4

    @property
    def size_px(self) -> tuple[int, int]:
        s = self.px_per_mm
        return int(round(self.paper[0] * s)), int(round(self.paper[1] * s))


def check_spec(spec: PageSpec) -> None:
    """Raise :class:`EcgscanError` naming the first invalid field of ``spec``."""
    if not (isinstance(spec.dpi, int | float) and 72 <= spec.dpi <= 600):
        raise EcgscanError(f"dpi must be between 72 and 600, got {spec.dpi!r}; e.g. dpi=200")
    if spec.paper_speed not in (12.5, 25.0, 50.0):
        raise EcgscanError(
            f"paper_speed must be 12.5, 25 or 50 mm/s, got {spec.paper_speed!r}; e.g. 25"
        )
    for name in ("gain_limb", "gain_chest"):
        value = getattr(spec, name)
        if value not in (2.5, 5.0, 10.0, 20.0, 40.0):
            raise EcgscanError(f"{name} must be 2.5, 5, 10, 20 or 40 mm/mV, got {value!r}")
    w, h = spec.paper
    if not (50 <= w <= 1000 and 50 <= h <= 1000):
        raise EcgscanError(f"paper must be (width, height) in mm between 50 and 1000, got {w}×{h}")
    choices = {
        "calibration": ("left", "right", "none"),
        "calibration_shape": ("square", "step"),
        "calibration_split": ("stepped", "row"),
        "label_position": ("above", "below"),
        "separator_style": ("tick", "dotted"),
        "overflow": ("overlap", "clip"),
    }
    for name, allowed in choices.items():
        if getattr(spec, name) not in allowed:
            raise EcgscanError(
                f"{name} must be one of {', '.join(map(repr, allowed))}, "
                f"got {getattr(spec, name)!r}"
            )
    if spec.grid.style not in ("lines", "dots", "none"):
        raise EcgscanError(f"grid style must be 'lines', 'dots' or 'none', got {spec.grid.style!r}")


def _to_px(mm: float | NDArray[np.float64], scale: float) -> Any:
    return mm * scale - 0.5


@dataclass
class _Row:
    baseline_mm: float
    top_mm: float
    bottom_mm: float


def _rows_geometry(spec: PageSpec, n_rows: int) -> tuple[list[_Row], float]:
    _, top, _, bottom = spec.margins
    y_top = top + spec.header_height
    y_bot = spec.paper[1] - bottom - spec.footer_height
    if y_bot - y_top < 10.0 * n_rows:
        raise LayoutError(
            f"{n_rows} rows do not fit in {y_bot - y_top:.0f} mm of paper height; use fewer "
            "rows, a larger paper or smaller margins/header"
        )
    # Evenly spaced baselines on grid lines (5 mm lines when rows are tall enough), as
    # printers place them; each row's band runs from 60 % of a pitch above to 40 % below.
    step = 5.0 if (y_bot - y_top) / n_rows >= 20 else 1.0
    pitch = max(step * math.floor((y_bot - y_top) / n_rows / step), step)
    origin_y = spec.grid.origin[1]
    slack = (y_bot - y_top) - n_rows * pitch  # left over by whole-grid pitches: centre it
    first = y_top + slack / 2 + pitch * 0.6
    first = origin_y + step * round((first - origin_y) / step)
    rows = []
    for i in range(n_rows):
        base = first + i * pitch
        rows.append(_Row(base, base - 0.6 * pitch, base + 0.4 * pitch))
    return rows, pitch


def page_duration(spec: PageSpec, record_duration: float) -> float:
    """Seconds of signal that fit across the trace area (≤ 10 s and ≤ the record)."""
    if spec.duration is not None:
        return float(spec.duration)
    left, _, right, _ = spec.margins
    avail_mm = spec.paper[0] - left - right - spec.lead_in - 4.0
    if spec.calibration == "right":
        avail_mm -= 8.0
    fit = math.floor(avail_mm / spec.paper_speed * 2) / 2  # half seconds
    return max(min(10.0, record_duration, fit), 0.25)


def draw_page(
    record: Record, layout: Layout, spec: PageSpec
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], dict[str, Any], NDArray[np.float64]]:
    """Draw ``record`` on a clean page; return (image, mask, truth, reference signal)."""
    check_spec(spec)
    sx = sy = spec.px_per_mm
    width, height = spec.size_px
    left, top, right, bottom = spec.margins
    extent = (left, top, spec.paper[0] - right, spec.paper[1] - bottom)
    grid = dataclasses.replace(spec.grid, extent=extent)
    image = np.array(draw_grid((width, height), (sx, sy), grid))
    mask = np.zeros((height, width), np.uint8)

    x_trace_mm = left + spec.lead_in
    span_mm = layout.duration * spec.paper_speed
    if x_trace_mm + span_mm > spec.paper[0] - right + 1e-6:
        raise LayoutError(
            f"layout {layout.name!r} spans {layout.duration:g} s = {span_mm:.0f} mm at "
            f"{spec.paper_speed:g} mm/s but only {spec.paper[0] - right - x_trace_mm:.0f} mm "
            f"fit on {spec.paper_name} paper; use a shorter duration, a slower paper speed or "
            "a wider paper"
        )
    rows, _ = _rows_geometry(spec, layout.n_rows)

    rec = record.standard()
    fs = rec.fs
    sig = rec.signal
    n_total = rec.n_samples
    reference = np.full((n_total, len(LEADS)), np.nan)
    trace_px = max(2, int(round(spec.trace_width * sx)))
    color = tuple(int(c) for c in spec.trace_color)
    missing = [n for n in layout.leads if n in record.missing_leads]

    leads_truth: list[dict[str, Any]] = []
    labels_truth: list[dict[str, Any]] = []
    cal_truth: list[dict[str, Any]] = []
    rows_truth: list[dict[str, Any]] = []
    font_px = spec.font_size * sy
    clipped_total = 0

    for r, (row, row_geo) in enumerate(zip(layout.rows, rows, strict=True)):
        base_px = _to_px(row_geo.baseline_mm, sy)
        band_top = _to_px(row_geo.top_mm, sy)
        band_bot = _to_px(row_geo.bottom_mm, sy)
        rows_truth.append(
            {
                "index": r,
                "baseline_y": round(float(base_px), 3),
                "top_y": round(float(band_top), 3),
                "bottom_y": round(float(band_bot), 3),
                "leads": [s.label for s in row],
            }
        )
        first_gain = _gain(spec, row[0].lead) if row else spec.gain_limb
        stepped = spec.gain_chest != spec.gain_limb and spec.calibration_split == "stepped"
        if spec.calibration != "none":
            if spec.calibration == "left":
                pulse_mm = 4.0 + 0.2 * spec.paper_speed
                cx_mm = max(x_trace_mm - pulse_mm - spec.calibration_gap, left + 0.5)
            else:
                cx_mm = x_trace_mm + span_mm + 2.0
            cal = _draw_calibration(
                image, cx_mm, row_geo.baseline_mm, first_gain, spec, trace_px, color,
                chest_gain=spec.gain_chest if stepped else None,
            )  # fmt: skip
            cal_truth.append({"row": r, **cal})
        for seg in row:
            entry = _draw_segment(
                image,
                mask,
                sig,
                fs,
                seg,
                spec,
                x_trace_mm,
                base_px,
                (band_top, band_bot),
                trace_px,
                color,
                reference,
            )
            entry["row"] = r
            clipped_total += entry["clipped_samples"]
            leads_truth.append(entry)
            seg_x_px = _to_px(x_trace_mm + seg.offset * spec.paper_speed, sx)
            if spec.separators and seg.offset > 0:
                _draw_separator(image, seg_x_px, base_px, (band_top, band_bot), spec, color)
            if spec.labels:
                if spec.label_position == "below":
                    ty = base_px + spec.label_offset * sy
                else:
                    ty = base_px - spec.label_offset * sy - text_height(spec.font, font_px)
                box = draw_text(
                    image,
                    seg.label,
                    (seg_x_px + 0.6 * sx, ty),
                    font=spec.font,
                    size_px=font_px,
                    color=spec.text_color,
                )
                labels_truth.append({"text": seg.label, "lead": seg.lead, "row": r, "bbox": box})

    text_truth = _draw_header_footer(image, spec, rows)
    if spec.monochrome:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        image = np.repeat(grey[:, :, None], 3, axis=2)
    if missing:
        warnings.warn(
            f"record {record.name!r} lacks lead(s) {', '.join(missing)}; their places on the "
            "page are left blank",
            RenderWarning,
            stacklevel=3,
        )
    truth: dict[str, Any] = {
        "width": width,
        "height": height,
        "dpi": float(spec.dpi),
        "px_per_mm": {"x": sx, "y": sy},
        "layout": layout.name,
        "paper_speed": float(spec.paper_speed),
        "gain": float(spec.gain_limb),
        "gain_chest": float(spec.gain_chest),
        "paper": {
            "name": spec.paper_name,
            "width_mm": spec.paper[0],
            "height_mm": spec.paper[1],
        },
        "fs": fs,
        "n_samples": n_total,
        "duration": layout.duration,
        "record": record.name,
        "leads": leads_truth,
        "rows": rows_truth,
        "calibration": cal_truth,
        "labels": labels_truth,
        "text": text_truth,
        "missing_leads": missing,
        "clipped_samples": clipped_total,
        "overflow": spec.overflow,
        "trace_width_px": trace_px,
        "degradations": [],
    }
    return image, mask, truth, reference


def _draw_separator(
    image: NDArray[np.uint8],
    x: float,
    base_px: float,
    band: tuple[float, float],
    spec: PageSpec,
    color: tuple[int, ...],
) -> None:
    s = spec.px_per_mm
    xi = round(x * _SCALE)
    if spec.separator_style == "tick":
        half = 2.5 * s
        p0, p1 = (xi, round((base_px - half) * _SCALE)), (xi, round((base_px + half) * _SCALE))
        cv2.line(image, p0, p1, color, max(1, int(round(0.2 * s))), cv2.LINE_AA, _SHIFT)
        return
    y = band[0] + 0.5 * s
    while y < band[1] - 0.5 * s:  # dotted: 0.3 mm dots every mm
        p0, p1 = (xi, round(y * _SCALE)), (xi, round((y + 0.3 * s) * _SCALE))
        cv2.line(image, p0, p1, color, 1, cv2.LINE_AA, _SHIFT)
        y += s


def _gain(spec: PageSpec, lead: str) -> float:
    return spec.gain_chest if lead in _CHEST else spec.gain_limb


def _draw_segment(
    image: NDArray[np.uint8],
    mask: NDArray[np.uint8],
    sig: NDArray[np.float64],
    fs: float,
    seg: Segment,
    spec: PageSpec,
    x_trace_mm: float,
    base_px: float,
    band: tuple[float, float],
    trace_px: int,
    color: tuple[int, ...],
    reference: NDArray[np.float64],
) -> dict[str, Any]:
    sx = sy = spec.px_per_mm
    k = LEADS.index(seg.lead)
    n_total = sig.shape[0]
    s0 = max(int(math.ceil(seg.start * fs - 1e-9)), 0)
    s1 = min(int(math.ceil(seg.end * fs - 1e-9)), n_total)
    s1 = max(s1, s0)
    gain = _gain(spec, seg.lead)
    v = sig[s0:s1, k]
    n = np.arange(s0, s1)
    seg_x_px = _to_px(x_trace_mm + seg.offset * spec.paper_speed, sx)
    xs = seg_x_px + (n / fs - seg.start) * spec.paper_speed * sx
    sign = -1.0 if seg.inverted else 1.0
    ys = base_px - sign * v * gain * sy
    clipped = 0
    if spec.overflow == "clip":
        lo, hi = band
        over = (ys < lo) | (ys > hi)
        clipped = int(np.count_nonzero(over & np.isfinite(ys)))
        ys = np.clip(ys, lo, hi)
    reference[s0:s1, k] = v
    finite = np.isfinite(ys)
    polys = polylines_fixed(xs, ys)
    if polys:
        cv2.polylines(image, polys, False, color, trace_px, cv2.LINE_AA, _SHIFT)
        cv2.polylines(mask, polys, False, k + 1, trace_px, cv2.LINE_8, _SHIFT)
    pixels = np.stack([xs, ys], axis=1)
    half = trace_px / 2.0 + 0.5
    if finite.any():
        bbox = [
            float(np.floor(xs[finite].min() - half)),
            float(np.floor(ys[finite].min() - half)),
            float(np.ceil(xs[finite].max() + half)),
            float(np.ceil(ys[finite].max() + half)),
        ]
    else:
        bbox = [float(seg_x_px), float(base_px), float(seg_x_px), float(base_px)]
    return {
        "name": seg.lead,
        "label": seg.label,
        "inverted": seg.inverted,
        "gain": float(gain),
        "bbox": bbox,
        "start_sample": s0,
        "end_sample": s1,
        "start_time": seg.start,
        "end_time": seg.end,
        "x_start": round(float(seg_x_px), 3),
        "baseline_y": round(float(base_px), 3),
        "pixels": _pixels_json(pixels),
        "clipped_samples": clipped,
    }


def _pixels_json(pixels: NDArray[np.float64]) -> list[list[float | None]]:
    """[[x, y], ...] rounded to 1/1000 px; ``[None, None]`` for samples not printed (NaN)."""
    enabled = gc.isenabled()
    gc.disable()  # thousands of small lists, no cycles: keep the cyclic GC out of it
    try:
        out: list[list[float | None]] = np.round(pixels, 3).tolist()
    finally:
        if enabled:
            gc.enable()
    if not np.isfinite(pixels).all():
        for i in np.flatnonzero(~np.isfinite(pixels).all(axis=1)):
            out[i] = [None, None]
    return out


def polylines_fixed(xs: NDArray[np.float64], ys: NDArray[np.float64]) -> list[NDArray[np.int32]]:
    """Fixed-point (``shift`` = 4) polylines through the points, split at NaN."""
    finite = np.isfinite(xs) & np.isfinite(ys)
    pts = np.stack(
        [np.where(finite, np.rint(xs * _SCALE), 0), np.where(finite, np.rint(ys * _SCALE), 0)],
        axis=1,
    ).astype(np.int32)
    polys = []
    for a, b in _finite_runs(finite):
        run = pts[a:b]
        if len(run) == 1:
            run = np.concatenate([run, run])
        polys.append(run.reshape(-1, 1, 2))
    return polys


def draw_mask(
    mask: NDArray[np.uint8], leads: list[dict[str, Any]], thickness: int
) -> NDArray[np.uint8]:
    """(Re)draw the lead mask from ground-truth ``pixels`` in drawing order."""
    for lead in leads:
        pts = np.asarray(lead["pixels"], dtype=np.float64).reshape(-1, 2)
        polys = polylines_fixed(pts[:, 0], pts[:, 1])
        if polys:
            value = LEADS.index(lead["name"]) + 1
            cv2.polylines(mask, polys, False, value, thickness, cv2.LINE_8, _SHIFT)
    return mask


def _finite_runs(finite: NDArray[np.bool_]) -> list[tuple[int, int]]:
    if finite.all():
        return [(0, len(finite))] if len(finite) else []
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _draw_calibration(
    image: NDArray[np.uint8],
    x_mm: float,
    baseline_mm: float,
    gain: float,
    spec: PageSpec,
    trace_px: int,
    color: tuple[int, ...],
    *,
    chest_gain: float | None = None,
) -> dict[str, Any]:
    """One calibration pulse (1 mV for 0.2 s) at the row's start ``x_mm``; with
    ``chest_gain``, a stepped pulse: 1 mV at ``gain`` for 0.1 s, then at ``chest_gain``
    for 0.1 s, then back to the baseline (always closed, whatever the spec's shape)."""
    s = spec.px_per_mm
    width_mm = 0.2 * spec.paper_speed  # 200 ms pulse
    lead_mm = 2.0
    h = gain  # 1 mV
    shape = spec.calibration_shape
    if chest_gain is not None:
        mid = lead_mm + width_mm / 2
        pts_mm = [
            (0, 0),
            (lead_mm, 0),
            (lead_mm, -h),
            (mid, -h),
            (mid, -chest_gain),
            (lead_mm + width_mm, -chest_gain),
            (lead_mm + width_mm, 0),
            (2 * lead_mm + width_mm, 0),
        ]
        shape = "stepped"
    elif spec.calibration_shape == "square":
        pts_mm = [
            (0, 0),
            (lead_mm, 0),
            (lead_mm, -h),
            (lead_mm + width_mm, -h),
            (lead_mm + width_mm, 0),
            (2 * lead_mm + width_mm, 0),
        ]
    else:  # 'step': up and stays (older printers), drawn as an open step
        pts_mm = [(0, 0), (lead_mm, 0), (lead_mm, -h), (lead_mm + width_mm, -h)]
    pts = np.array([(_to_px(x_mm + px, s), _to_px(baseline_mm + py, s)) for px, py in pts_mm])
    poly = np.rint(pts * _SCALE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(image, [poly], False, color, trace_px, cv2.LINE_AA, _SHIFT)
    half = trace_px / 2.0 + 0.5
    bbox = [
        float(np.floor(pts[:, 0].min() - half)),
        float(np.floor(pts[:, 1].min() - half)),
        float(np.ceil(pts[:, 0].max() + half)),
        float(np.ceil(pts[:, 1].max() + half)),
    ]
    gains = [float(gain)] + ([float(chest_gain)] if chest_gain is not None else [])
    return {"bbox": bbox, "shape": shape, "height_mv": 1.0, "width_s": 0.2, "gains": gains}


def _draw_header_footer(
    image: NDArray[np.uint8], spec: PageSpec, rows: list[_Row]
) -> list[dict[str, Any]]:
    s = spec.px_per_mm
    left, top, right, bottom = spec.margins
    out: list[dict[str, Any]] = []
    size = spec.font_size * s
    line_h = size * 1.35
    y0 = _to_px(top + 2.0, s)
    y = y0
    column = 0
    col_width = max((spec.paper[0] - left - right - 8.0) / 3.0, 40.0)
    for line in spec.header_lines:
        if not line:  # an empty line starts the next column
            column += 1
            y = y0
            continue
        x = _to_px(left + 4.0 + column * col_width, s)
        box = draw_text(image, line, (x, y), font=spec.font, size_px=size, color=spec.text_color)
        out.append({"kind": "header", "text": line, "bbox": box})
        y += line_h
    if spec.footer_text:
        text = spec.footer_text.format(
            speed=spec.paper_speed, gain=spec.gain_limb, gain_chest=spec.gain_chest
        )
        fy = _to_px(spec.paper[1] - bottom - spec.footer_height + 1.5, s)
        box = draw_text(
            image,
            text,
            (_to_px(left + spec.lead_in + 20.0, s), fy),
            font=spec.font,
            size_px=size,
            color=spec.text_color,
        )
        out.append({"kind": "footer", "text": text, "bbox": box})
    if spec.qr_code:
        size_mm = min(14.0, max(spec.header_height - 4.0, 8.0))
        x0 = _to_px(spec.paper[0] - right - size_mm - 3.0, s)
        y0 = _to_px(top + 2.0, s)
        box = _draw_qr(image, x0, y0, size_mm * s, spec.qr_code_seed)
        out.append({"kind": "qr", "text": "", "bbox": box})
    return out


def _draw_qr(image: NDArray[np.uint8], x0: float, y0: float, size: float, seed: int) -> list[int]:
    """A QR-code-like block (random modules and the three finder squares); no payload."""
    n = 25
    g = np.random.default_rng(seed)
    modules = g.random((n, n)) < 0.5
    finder = np.zeros((7, 7), bool)
    finder[[0, 6], :] = finder[:, [0, 6]] = True
    finder[2:5, 2:5] = True
    for r, c in ((0, 0), (0, n - 7), (n - 7, 0)):
        modules[max(r - 1, 0) : r + 8, max(c - 1, 0) : c + 8] = False  # white separator
        modules[r : r + 7, c : c + 7] = finder
    cell = max(int(size // (n + 2)), 1)
    big = np.kron((~modules).astype(np.uint8) * 255, np.ones((cell, cell), np.uint8))
    big = np.pad(big, cell, constant_values=255)
    h_img, w_img = image.shape[:2]
    xi, yi = int(round(x0)), int(round(y0))
    x1, y1 = min(xi + big.shape[1], w_img), min(yi + big.shape[0], h_img)
    xi, yi = max(xi, 0), max(yi, 0)
    if xi >= x1 or yi >= y1:
        return [0, 0, 0, 0]
    image[yi:y1, xi:x1] = big[: y1 - yi, : x1 - xi, None]
    return [xi, yi, x1, y1]
