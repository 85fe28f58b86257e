"""Synthetic ECG paper pages with exact ground truth.

:func:`render_page` draws a record on a page (layout, paper, grid, text, traces) and applies a
chain of degradations (scan, print, photo artefacts) while keeping the ground truth exact.
:class:`RenderDataset` (PyTorch, imported lazily) renders pages on the fly for training;
``ecgscan render`` is the command line.

Ground truth (``RenderedPage.truth``, saved as ``<stem>.json``)
----------------------------------------------------------------
Coordinates are image pixels, ``x`` right and ``y`` down, pixel *centres* at integers (the
image's left edge is at x = -0.5). After geometric degradations every coordinate below is where
it lies in the degraded image (points cropped away keep their coordinates outside the image).

``width``, ``height``, ``dpi``, ``px_per_mm`` {``x``, ``y``} (of the page as drawn, before any
warp), ``paper`` {``name``, ``width_mm``, ``height_mm``}, ``layout`` (normalised string),
``paper_speed`` (mm/s), ``gain`` (limb, mm/mV), ``gain_chest``, ``fs``, ``n_samples``,
``duration`` (s), ``record``, ``style``, ``seed``, ``image_format``.

``leads``: one entry per printed segment, in drawing order: ``name`` (standard lead), ``label``
(``'-aVR'`` when inverted), ``inverted``, ``gain`` (mm/mV used), ``row``, ``start_sample`` /
``end_sample`` (half-open; 3×4 at 500 Hz: I 0–1250, aVR 1250–2500, ...), ``start_time`` /
``end_time`` (s), ``pixels`` (one ``[x, y]`` per sample of ``start_sample:end_sample``,
``[null, null]`` where the sample is NaN), ``bbox`` ``[x0, y0, x1, y1]`` (trace extent incl. its
width), ``x_start`` / ``baseline_y`` (page position of time ``start_time`` at 0 mV, before any
warp; ``baseline_start_image`` after it) and ``clipped_samples``. On an unwarped page
``v = sign · (baseline_y - y) / (gain · px_per_mm.y)`` and
``t = start_time + (x - x_start) / (paper_speed · px_per_mm.x)`` give the signal back.

``rows`` (``baseline_y``, ``top_y``, ``bottom_y``, ``leads``; page coordinates), ``calibration``
(``row``, ``bbox``, ``shape``), ``labels`` (``text``, ``lead``, ``row``, ``bbox``), ``text``
(header/footer lines with ``bbox``), ``missing_leads``, ``clipped_samples``, ``overflow``,
``trace_width_px``, ``page_corners`` (where the page's corners went), ``image_px_per_mm``
{``x``, ``y``} (the page's scale in the final image: equal to ``px_per_mm`` unless a warp
resized it; the mean scale under perspective), ``warped``, and
``degradations``: the applied chain, each ``{"name": ..., **parameters}`` (replayable with
``render_page(..., degradations=[...])``); ``jpeg_quality`` when the image is a JPEG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import STYLES, RenderedPage, render_page
from ._degrade import DEGRADATIONS, Degradation
from ._layout import Layout, Segment, parse_layout
from ._page import PAPER_SIZES, PageSpec, RenderWarning

__all__ = [
    "DEGRADATIONS",
    "PAPER_SIZES",
    "STYLES",
    "Degradation",
    "Layout",
    "PageSpec",
    "RenderDataset",
    "RenderWarning",
    "RenderedPage",
    "Segment",
    "parse_layout",
    "render_page",
]

if TYPE_CHECKING:
    from ._dataset import RenderDataset


def __getattr__(name: str) -> Any:
    if name == "RenderDataset":
        from ._dataset import RenderDataset

        return RenderDataset
    raise AttributeError(f"module 'ecgscan.render' has no attribute {name!r}")
