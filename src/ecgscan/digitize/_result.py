"""Typed results of every digitizer stage and of the whole pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.record import Record

__all__ = [
    "Calibration",
    "DigitizationResult",
    "Geometry",
    "Grid",
    "Layout",
    "LeadQuality",
    "Row",
]


@dataclass(frozen=True)
class Geometry:
    """How the page was turned and straightened before reading.

    Attributes
    ----------
    quarter_turns : int
        Counter-clockwise 90° turns applied (0–3).
    rotation : float
        Rotation applied to level the page, in degrees (counter-clockwise positive): a page
        scanned 4° counter-clockwise is corrected by -4°.
    perspective : list of list of float or None
        The 3×3 homography applied to flatten a photographed page, if any.
    dewarp : float
        Largest displacement (pixels of the input) removed by the grid-driven dewarp that
        straightens curved or lens-distorted grids; 0 when none was needed.
    """

    quarter_turns: int = 0
    rotation: float = 0.0
    perspective: list[list[float]] | None = None
    dewarp: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Grid:
    """The ECG paper grid: pixels per millimetre along x and y.

    ``found`` is False when no grid was visible and the scale came from a prior (the
    calibration pulse or the page size); ``source`` says which.
    """

    px_per_mm_x: float
    px_per_mm_y: float
    found: bool
    source: str = "grid"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHEST_LEADS = frozenset({"V1", "V2", "V3", "V4", "V5", "V6"})


@dataclass(frozen=True)
class Calibration:
    """Paper speed (mm/s) and gain (mm/mV) and where they came from.

    Attributes
    ----------
    paper_speed : float
        mm/s.
    gain : float
        mm/mV of the limb leads (I, II, III, aVR, aVL, aVF), and of every lead when
        ``gain_chest`` is None.
    source : str
        What decided the values, joined with ``+``: ``'given'`` (the caller), ``'pulse'``
        (the calibration pulses' heights), ``'text'`` (the settings printed on the page,
        "25 mm/s 20 mm/mV", see :func:`~ecgscan.digitize.read_calibration_text`); e.g.
        ``'pulse+text'`` (a pulse between two standard heights settled by the text) or
        ``'given+pulse'``. ``'default'``: none of them (25 mm/s, 10 mm/mV).
    pulse_found : bool
        Whether a calibration pulse was found.
    gain_chest : float or None
        mm/mV of the chest leads V1–V6 on a split-gain page (printers that draw the limb
        leads at 10 mm/mV and the chest leads at 5, or 20 and 10); None when they share
        ``gain``. Read from a stepped pulse (1 mV at the limb height, then at the chest
        height), from rows led by a chest lead whose pulses stand at another height than
        the limb rows', or from the printed settings ("Limb: 10 mm/mV  Chest: 5 mm/mV").
        Use :meth:`gain_for` for a lead's gain.

    Examples
    --------
    >>> c = Calibration(gain=10.0, gain_chest=5.0)
    >>> c.gain_for("aVF"), c.gain_for("V2"), c.gain_for("-aVR")
    (10.0, 5.0, 10.0)
    """

    paper_speed: float = 25.0
    gain: float = 10.0
    source: str = "default"
    pulse_found: bool = False
    gain_chest: float | None = None

    def gain_for(self, lead: str) -> float:
        """The gain (mm/mV) ``lead`` is printed at: ``gain_chest`` for V1–V6 when set, else
        ``gain`` (a leading ``-``, an inverted lead such as Cabrera's ``-aVR``, is ignored)."""
        name = lead.lstrip("-").strip()
        if self.gain_chest is not None and name.upper() in _CHEST_LEADS:
            return self.gain_chest
        return self.gain

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """One printed row of traces.

    Attributes
    ----------
    baseline : float
        Image row (y, px) of 0 mV for this row.
    x_start, x_end : float
        Image columns (px) of time 0 of the row and of its last plotted column.
    leads : tuple of str
        Leads printed in this row, left to right.
    """

    baseline: float
    x_start: float
    x_end: float
    leads: tuple[str, ...]
    pulse: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["leads"] = list(self.leads)
        return out


@dataclass(frozen=True)
class Layout:
    """The arrangement of leads on the page (``'3x4+II'``, ``'6x2'``, ...)."""

    name: str
    n_rows: int
    n_columns: int
    rhythm_leads: tuple[str, ...]
    rows: tuple[Row, ...]
    lead_order: str = "standard"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "rhythm_leads": list(self.rhythm_leads),
            "lead_order": self.lead_order,
            "rows": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class LeadQuality:
    """Confidence (0–1) of one digitized lead and its flags.

    Flags: ``'missing'`` (not found on the page), ``'clipped'`` (the trace runs out of its
    band), ``'low_contrast'`` (weak trace), ``'gaps'`` (many columns interpolated).
    """

    lead: str
    confidence: float
    coverage: float
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "lead": self.lead,
            "confidence": round(float(self.confidence), 4),
            "coverage": round(float(self.coverage), 4),
            "flags": list(self.flags),
        }


@dataclass(frozen=True, eq=False)
class DigitizationResult:
    """Everything the digitizer found on one page.

    Attributes
    ----------
    record : Record
        The 12 standard leads in mV at the requested ``fs``; NaN where nothing was printed.
    layout, calibration, geometry, grid
        What the stages found.
    quality : dict of str to LeadQuality
        Per-lead confidence and flags.
    overlay : ndarray, shape (H, W, 3), uint8
        The (straightened) page with the found traces drawn over it; drawn on first use
        (by ``draw_overlay``), so a caller who never looks at it does not pay for it.
    timings : dict of str to float
        Seconds spent per stage.
    """

    record: Record
    layout: Layout
    calibration: Calibration
    geometry: Geometry
    grid: Grid
    quality: dict[str, LeadQuality]
    draw_overlay: Callable[[], NDArray[np.uint8]] = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    segmentation: str = "unet"

    @cached_property
    def overlay(self) -> NDArray[np.uint8]:
        """The (straightened) page with the found traces drawn over it."""
        return self.draw_overlay()

    @property
    def flagged_leads(self) -> tuple[str, ...]:
        """Leads with at least one quality flag."""
        return tuple(name for name, q in self.quality.items() if q.flags)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no signal; the record is written separately)."""
        return {
            "record": self.record.name,
            "fs": self.record.fs,
            "n_samples": self.record.n_samples,
            "leads": list(self.record.leads),
            "segmentation": self.segmentation,
            "layout": self.layout.to_dict(),
            "calibration": self.calibration.to_dict(),
            "geometry": self.geometry.to_dict(),
            "grid": self.grid.to_dict(),
            "quality": {k: v.to_dict() for k, v in self.quality.items()},
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }
