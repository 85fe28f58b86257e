"""Digitization: a page image (scan, photo, PDF) → a 12-lead :class:`~ecgscan.Record`.

The pipeline has one module per stage; each stage is usable on its own:

1. :func:`load_image` / :func:`iter_pages` — files, PDFs and arrays to RGB, EXIF orientation,
   pixel limits;
2. :func:`straighten` — paper outline and perspective of photos, tilt up to ±45°, quarter
   and half turns (:func:`upside_down`), grid-driven dewarp of curved paper
   (:func:`estimate_warp`), shadows and uneven light evened out (:func:`flatten_lighting`);
3. :func:`estimate_grid` — grid period (px/mm) along x and y;
4. :func:`calibrate` — paper speed and gain from the calibration pulse, and where the pulse
   leaves them open from the printed settings (:func:`read_calibration_text`: "25 mm/s
   20 mm/mV"); defaults 25 mm/s, 10 mm/mV;
5. :func:`find_rows`, :func:`find_labels`, :func:`assign_leads` — rows, columns, rhythm strips,
   lead names read from the page (:func:`read_label`) and checked against the limb-lead laws;
6. :func:`segment_traces`, :func:`trace_maps` — per-pixel trace probability and, where traces
   cross between rows, the network's row assignment;
7. :func:`trace_runs`, :func:`run_edges`, :func:`sample_trace` — the trace's ink per column,
   its sub-pixel edges, and the samples fitted as the vertices of the drawn line
   (:func:`fit_polyline`, a round pen of :func:`pen_radius`) at their true times
   (:func:`track_row`, :func:`trace_to_samples` give column centres);
8. :func:`lead_quality` — confidence and flags per lead.

:func:`digitize` runs them all and returns a :class:`DigitizationResult`.
"""

from __future__ import annotations

from .._callable import make_module_callable
from ._calibration import Pulse, calibrate, find_pulse
from ._extract import (
    fit_polyline,
    line_thickness,
    pen_radius,
    run_edges,
    sample_trace,
    trace_runs,
    trace_to_samples,
    track_row,
)
from ._geometry import (
    GridWarp,
    estimate_rotation,
    estimate_warp,
    find_paper,
    flatten_lighting,
    straighten,
    upside_down,
)
from ._grid import estimate_grid, grid_strength
from ._layout import (
    LAYOUTS,
    LeadLabel,
    assign_leads,
    erase_text,
    find_labels,
    find_rows,
    read_label,
    row_traces,
    separator_columns,
    separator_score,
)
from ._load import IMAGE_SUFFIXES, MAX_PIXELS, MIN_SIDE, iter_pages, load_image
from ._pipeline import digitize
from ._quality import lead_quality, trace_continuity
from ._result import (
    Calibration,
    DigitizationResult,
    Geometry,
    Grid,
    Layout,
    LeadQuality,
    Row,
)
from ._segment import SEGMENTATION_METHODS, TraceMaps, model_path, segment_traces, trace_maps
from ._text import PrintedCalibration, read_calibration_text
from ._write import OUTPUT_FORMATS, result_files, write_result

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUTS",
    "MAX_PIXELS",
    "MIN_SIDE",
    "OUTPUT_FORMATS",
    "SEGMENTATION_METHODS",
    "Calibration",
    "DigitizationResult",
    "Geometry",
    "Grid",
    "GridWarp",
    "Layout",
    "LeadLabel",
    "LeadQuality",
    "PrintedCalibration",
    "Pulse",
    "Row",
    "TraceMaps",
    "assign_leads",
    "calibrate",
    "digitize",
    "erase_text",
    "estimate_grid",
    "estimate_rotation",
    "estimate_warp",
    "find_labels",
    "find_paper",
    "find_pulse",
    "find_rows",
    "fit_polyline",
    "flatten_lighting",
    "grid_strength",
    "iter_pages",
    "lead_quality",
    "line_thickness",
    "load_image",
    "model_path",
    "pen_radius",
    "read_calibration_text",
    "read_label",
    "result_files",
    "row_traces",
    "run_edges",
    "sample_trace",
    "segment_traces",
    "separator_columns",
    "separator_score",
    "straighten",
    "trace_continuity",
    "trace_maps",
    "trace_runs",
    "trace_to_samples",
    "track_row",
    "upside_down",
    "write_result",
]

make_module_callable(__name__, "digitize")
