"""Stage 8: quality — per-lead confidence and flags, and the 'is this an ECG at all' check."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._result import LeadQuality

__all__ = ["lead_quality", "trace_continuity"]


def trace_continuity(y: NDArray[np.float64], *, thickness: float) -> float:
    """Fraction of consecutive traced columns whose centres are within a plausible step.

    A drawn line moves at most a few line widths between neighbouring columns except in QRS
    spikes; noise and text jump about.
    """
    if y.size < 3:
        return 0.0
    step = np.abs(np.diff(y))
    return float(np.mean(step <= 3.0 * thickness + 2.0))


def lead_quality(
    name: str,
    values: NDArray[np.float64] | None,
    *,
    continuity: float,
    contrast: float,
    clipped: float,
) -> LeadQuality:
    """Confidence and flags of one lead from its printed samples and tracking statistics.

    Parameters
    ----------
    values : ndarray or None
        The samples inside the lead's printed window (None when the lead is not on the page).
    continuity : float
        :func:`trace_continuity` of its traced columns.
    contrast : float
        Mean trace probability along the chosen path (0–1).
    clipped : float
        Fraction of columns where the trace touches the edge of the row's band.
    """
    if values is None or values.size == 0 or not np.isfinite(values).any():
        return LeadQuality(lead=name, confidence=0.0, coverage=0.0, flags=("missing",))
    coverage = float(np.isfinite(values).mean())
    flags = []
    if coverage < 0.9:
        flags.append("gaps")
    if contrast < 0.75:
        flags.append("low_contrast")
    if clipped > 0.01:
        flags.append("clipped")
    conf = coverage * continuity * min(1.0, contrast / 0.75) * (1.0 - min(clipped * 5, 0.5))
    return LeadQuality(
        lead=name, confidence=float(np.clip(conf, 0, 1)), coverage=coverage, flags=tuple(flags)
    )
