"""``render_page`` and :class:`RenderedPage`: the public face of the renderer."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._io import atomic_files, ensure_output_dir
from ..data.record import LEADS, Record, read_record
from ..errors import EcgscanError
from ._grid import GRID_COLORS, GridSpec
from ._layout import Layout, parse_layout
from ._page import PAPER_SIZES, PageSpec, check_spec, draw_page, page_duration
from ._styles import resolve_style, sample_spec

__all__ = ["STYLES", "RenderedPage", "render_page"]

STYLES = ("clean", "print", "scan", "photo", "random")


@dataclass(frozen=True, eq=False)
class RenderedPage:
    """A rendered ECG page and its exact ground truth.

    Attributes
    ----------
    image : ndarray, uint8, H×W×3
        The page (RGB).
    mask : ndarray, uint8, H×W
        0 for background, ``k + 1`` where the trace of lead ``LEADS[k]`` is drawn (the lead drawn
        last where two overlap).
    truth : dict
        JSON-serialisable ground truth (see :func:`render_page`).
    reference : Record
        The 12 standard leads at the input ``fs``: the input samples where printed, NaN elsewhere.
    """

    image: NDArray[np.uint8]
    mask: NDArray[np.uint8]
    truth: dict[str, Any]
    reference: Record
    encoded: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def image_format(self) -> str:
        """``'jpg'`` for photo-like pages, ``'png'`` otherwise."""
        return str(self.truth.get("image_format", "png"))

    def save(self, folder: str | os.PathLike[str], stem: str | None = None) -> list[Path]:
        """Write ``<stem>.png|.jpg``, ``<stem>.json``, ``<stem>-mask.png``, ``<stem>.hea/.dat``.

        The reference record is written first, then image, mask and JSON together atomically
        (the JSON last, so its presence marks a complete page). Returns the written paths.
        """
        import cv2

        out = ensure_output_dir(folder)
        stem = stem or str(self.truth.get("record") or "page")
        if not stem or "/" in stem or stem.startswith("."):
            raise EcgscanError(f"stem {stem!r} is not a valid file name; give a plain name")
        ext = self.image_format
        base = out / stem
        self.reference.to_wfdb(base)
        if ext == "jpg" and self.encoded is not None:
            ok, img_bytes = True, np.frombuffer(self.encoded, np.uint8)
        elif ext == "jpg":
            quality = int(self.truth.get("jpeg_quality", 92))
            ok, img_bytes = cv2.imencode(
                ".jpg", self.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]
            )
        else:
            ok, img_bytes = cv2.imencode(".png", self.image[:, :, ::-1])
        ok2, mask_bytes = cv2.imencode(".png", self.mask)
        if not (ok and ok2):  # pragma: no cover
            raise EcgscanError(f"could not encode the page {stem!r}")
        targets = [out / f"{stem}.{ext}", out / f"{stem}-mask.png", out / f"{stem}.json"]
        text = json.dumps(self.truth, separators=(",", ":"), allow_nan=False)
        with atomic_files(targets) as (t_img, t_mask, t_json):
            t_img.write_bytes(img_bytes.tobytes())
            t_mask.write_bytes(mask_bytes.tobytes())
            t_json.write_text(text, encoding="utf-8")
        return [*targets, base.with_suffix(".hea"), base.with_suffix(".dat")]


_ALIASES = {"gain": ("gain_limb", "gain_chest")}


def _apply_overrides(spec: PageSpec, overrides: dict[str, Any]) -> PageSpec:
    fields = {f.name for f in dataclasses.fields(PageSpec)}
    grid_fields = {f.name for f in dataclasses.fields(GridSpec)}
    changes: dict[str, Any] = {}
    grid_changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _ALIASES:
            for target in _ALIASES[key]:
                changes[target] = float(value)
        elif key == "paper" and isinstance(value, str):
            name = value.lower()
            if name not in PAPER_SIZES:
                raise EcgscanError(
                    f"paper {value!r} is unknown; expected one of {', '.join(PAPER_SIZES)} "
                    "or (width_mm, height_mm)"
                )
            changes["paper"], changes["paper_name"] = PAPER_SIZES[name], name
        elif key == "paper":
            w, h = (float(x) for x in value)
            changes["paper"], changes["paper_name"] = (w, h), "custom"
        elif key == "grid_color":
            if value not in GRID_COLORS:
                raise EcgscanError(
                    f"grid_color {value!r} is unknown; expected one of {', '.join(GRID_COLORS)}"
                )
            grid_changes["minor_color"], grid_changes["major_color"] = GRID_COLORS[value]
        elif key.startswith("grid_") and key[5:] in grid_fields:
            grid_changes[key[5:]] = value
        elif key in fields:
            changes[key] = value
        else:
            known = sorted(fields | {"gain", "grid_color"} | {f"grid_{g}" for g in grid_fields})
            raise EcgscanError(f"unknown render option {key!r}; expected one of {', '.join(known)}")
    if grid_changes:
        changes["grid"] = dataclasses.replace(changes.get("grid", spec.grid), **grid_changes)
    return dataclasses.replace(spec, **changes)


def render_page(
    record: Record | str | os.PathLike[str],
    *,
    layout: str | Layout = "3x4+II",
    dpi: float = 200,
    style: str = "clean",
    seed: int = 0,
    **overrides: Any,
) -> RenderedPage:
    """Render an ECG record onto a paper page with exact ground truth.

    Parameters
    ----------
    record : Record or path
        The signal (a WFDB record path without suffix is read with
        :func:`~ecgscan.data.read_record`). Missing leads leave blanks (with a
        :class:`RenderWarning`); NaN samples leave gaps.
    layout : str or Layout
        ``'3x4+II'``, ``'3x4'``, ``'3x4+II,V1,V5'``, ``'6x2'``, ``'6x2+II'``, ``'12x1'``,
        ``'cabrera:3x4+II'`` or a custom text (see :func:`parse_layout`).
    dpi : float
        Resolution, 72–600.
    style : {'clean', 'print', 'scan', 'photo', 'random'}
        Family from which the page's look and degradations are drawn.
    seed : int
        Seed of every random choice: the same arguments give byte-identical pages.
    **overrides
        Any :class:`PageSpec` field (``paper_speed=50``, ``gain_chest=5``, ``paper='a4'``,
        ``grid_color='green'``, ``overflow='clip'``, ...), and ``degradations=[...]`` to
        replace the style's degradation chain.

    Returns
    -------
    RenderedPage
        ``image``, ``mask``, ``truth`` (the JSON content) and ``reference``.

    Examples
    --------
    >>> from ecgscan.data.synthetic import synthetic_ecg
    >>> page = render_page(synthetic_ecg(fs=500, duration=10, seed=1), dpi=100)
    >>> page.image.shape, page.truth["layout"], len(page.truth["leads"])
    ((850, 1100, 3), '3x4+II', 13)
    """
    if not isinstance(record, Record):
        record = read_record(record)
    if style not in STYLES:
        raise EcgscanError(f"style {style!r} is unknown; expected one of {', '.join(STYLES)}")
    try:
        dpi_value = float(dpi)
    except (TypeError, ValueError):
        raise EcgscanError(f"dpi must be a number between 72 and 600, got {dpi!r}") from None
    if not 72 <= dpi_value <= 600:
        raise EcgscanError(f"dpi must be between 72 and 600, got {dpi!r}; e.g. dpi=200")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xEC6]))
    concrete = resolve_style(style, rng)
    spec = sample_spec(concrete, dpi=dpi_value, rng=rng, record=record)
    degradations = overrides.pop("degradations", None)
    spec = _apply_overrides(spec, overrides)
    check_spec(spec)
    lay = parse_layout(layout, duration=page_duration(spec, record.duration))
    image, mask, truth, ref = draw_page(record, lay, spec)
    truth["style"] = concrete
    truth["seed"] = int(seed)
    truth["image_format"] = "jpg" if concrete == "photo" else "png"
    from ._degrade import apply_chain, sample_chain

    chain = sample_chain(concrete, rng) if degradations is None else list(degradations)
    image, mask, truth, encoded = apply_chain(image, mask, truth, chain, rng)
    reference = Record(
        ref,
        fs=record.fs,
        leads=LEADS,
        name=record.name,
        labels=record.labels,
        age=record.age,
        sex=record.sex,
    )
    return RenderedPage(image=image, mask=mask, truth=truth, reference=reference, encoded=encoded)
