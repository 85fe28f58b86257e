"""Page layouts: which lead segment goes where, for which time window.

A :class:`Layout` is a tuple of rows; each row is a tuple of :class:`Segment` placed one after
the other from the left edge of the trace area. A segment prints the samples of one lead whose
times fall in the half-open window ``[start, end)`` seconds; this matches the PhysioNet
Challenge 2024 / ECG-Image-Kit convention (on a 10 s, 500 Hz 3×4 page lead I covers samples
0–1249 and aVR samples 1250–2499: the sample at the 2.5 s boundary belongs to the right-hand
segment only).

Layout strings
--------------
``RxC[+RHYTHM]`` with ``R*C == 12`` (``3x4``, ``6x2``, ``12x1``, ``4x3``, ...), leads filled
column by column in the standard order, or in Cabrera order (aVL, I, −aVR, II, aVF, III, V1–V6)
with the prefix ``cabrera:``. ``RHYTHM`` lists full-length rhythm strips: ``+II``,
``+II,V1,V5``, or a count ``+1`` (II) / ``+3`` (II, V1, V5).

Custom layouts are a short text: rows separated by ``;`` or new lines, segments separated by
spaces, each segment ``LEAD`` or ``LEAD@T0-T1`` (seconds); a leading ``-`` prints the lead
inverted (``-aVR``). Segments without a window share the page duration equally, at their true
times. Example: ``"I@0-5 V1@5-10; II"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..data.record import LEADS, normalize_lead_name
from ..errors import LayoutError, RecordError

__all__ = ["Layout", "Segment", "parse_layout"]

_CABRERA = ("aVL", "I", "-aVR", "II", "aVF", "III", "V1", "V2", "V3", "V4", "V5", "V6")
_RHYTHM_COUNT = {0: (), 1: ("II",), 2: ("II", "V1"), 3: ("II", "V1", "V5")}
_GRID_RE = re.compile(r"^(?:(cabrera|standard):)?(\d+)x(\d+)(?:\+(.*))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Segment:
    """One lead printed over a time window.

    Attributes
    ----------
    lead : str
        Canonical lead name (one of :data:`ecgscan.data.LEADS`).
    start, end : float
        Signal time window in seconds, half-open ``[start, end)``.
    inverted : bool
        Printed upside down (Cabrera's −aVR).
    offset : float
        Horizontal position of the segment's left edge on the paper, in seconds of paper from
        the start of the row's trace area.
    """

    lead: str
    start: float
    end: float
    inverted: bool = False
    offset: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        return ("-" if self.inverted else "") + self.lead


@dataclass(frozen=True)
class Layout:
    """Rows of lead segments.

    Attributes
    ----------
    name : str
        The layout string it was parsed from (normalised).
    rows : tuple of tuple of Segment
        Rows from top to bottom.
    duration : float
        Paper time of the longest row, in seconds.
    """

    name: str
    rows: tuple[tuple[Segment, ...], ...]

    @property
    def duration(self) -> float:
        return max((s.offset + s.duration for row in self.rows for s in row), default=0.0)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(s for row in self.rows for s in row)

    @property
    def leads(self) -> tuple[str, ...]:
        """Leads printed somewhere on the page, in standard order."""
        used = {s.lead for s in self.segments}
        return tuple(n for n in LEADS if n in used)


def _lead(token: str, where: str) -> tuple[str, bool]:
    text = token.strip()
    inverted = text.startswith("-")
    try:
        return normalize_lead_name(text.lstrip("-+")), inverted
    except RecordError:
        raise LayoutError(
            f"layout {where!r}: unknown lead {token!r}; expected one of {', '.join(LEADS)} "
            "(prefix '-' to invert)"
        ) from None


def _grid_layout(match: re.Match[str], spec: str, duration: float) -> Layout:
    order_name, r_text, c_text, rhythm_text = match.groups()
    n_rows, n_cols = int(r_text), int(c_text)
    if n_rows * n_cols != 12:
        raise LayoutError(
            f"layout {spec!r}: {n_rows}x{n_cols} does not hold the 12 leads; "
            "use 3x4, 4x3, 6x2, 2x6, 12x1 or 1x12"
        )
    order = _CABRERA if (order_name or "").lower() == "cabrera" else LEADS
    width = duration / n_cols
    rows: list[tuple[Segment, ...]] = []
    for r in range(n_rows):
        row = []
        for c in range(n_cols):
            name, inverted = _lead(order[c * n_rows + r], spec)
            start = c * width
            row.append(Segment(name, start, start + width, inverted, start))
        rows.append(tuple(row))
    rhythm: tuple[str, ...] = ()
    if rhythm_text is not None:
        text = rhythm_text.strip()
        if text.isdigit():
            count = int(text)
            if count not in _RHYTHM_COUNT:
                raise LayoutError(
                    f"layout {spec!r}: {count} rhythm strips; expected 0 to 3 "
                    "(or name them, e.g. '+II,V1,V5')"
                )
            rhythm = _RHYTHM_COUNT[count]
        elif text:
            rhythm = tuple(_lead(t, spec)[0] for t in re.split(r"[,+/ ]+", text) if t)
        else:
            raise LayoutError(f"layout {spec!r}: nothing after '+'; e.g. '{r_text}x{c_text}+II'")
    for name in rhythm:
        rows.append((Segment(name, 0.0, duration, False, 0.0),))
    prefix = "cabrera:" if order is _CABRERA else ""
    suffix = "+" + ",".join(rhythm) if rhythm else ""
    return Layout(f"{prefix}{n_rows}x{n_cols}{suffix}", tuple(rows))


def _custom_layout(spec: str, duration: float) -> Layout:
    rows: list[tuple[Segment, ...]] = []
    for row_text in re.split(r"[;\n]+", spec):
        tokens = row_text.split()
        if not tokens:
            continue
        parsed: list[tuple[str, bool, float | None, float | None]] = []
        for token in tokens:
            name_part, _, window = token.partition("@")
            name, inverted = _lead(name_part, spec)
            if window:
                m = re.fullmatch(r"(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)", window)
                if m is None:
                    raise LayoutError(
                        f"layout {spec!r}: bad time window {window!r} in {token!r}; "
                        "expected T0-T1 in seconds, e.g. 'V1@5-7.5'"
                    )
                t0, t1 = float(m.group(1)), float(m.group(2))
                if not t1 > t0:
                    raise LayoutError(
                        f"layout {spec!r}: empty time window {window!r} in {token!r}; "
                        "the end must be after the start"
                    )
                parsed.append((name, inverted, t0, t1))
            else:
                parsed.append((name, inverted, None, None))
        share = duration / len(parsed)
        offset = 0.0
        row: list[Segment] = []
        for k, (name, inverted, w0, w1) in enumerate(parsed):
            t0 = k * share if w0 is None else w0
            t1 = (k + 1) * share if w1 is None else w1
            row.append(Segment(name, t0, t1, inverted, offset))
            offset += t1 - t0
        rows.append(tuple(row))
    if not rows:
        raise LayoutError("layout is empty; give rows of leads, e.g. 'I@0-5 V1@5-10; II'")
    return Layout(spec.strip(), tuple(rows))


def parse_layout(spec: str | Layout, *, duration: float = 10.0) -> Layout:
    """Parse a layout string (``'3x4+II'``, ``'6x2'``, ``'12x1'``, ``'cabrera:3x4+II'``, custom).

    Parameters
    ----------
    spec : str or Layout
        The layout (see the module documentation for the grammar); a :class:`Layout` is
        returned unchanged.
    duration : float
        Seconds of signal the page shows (10 s at 25 mm/s on Letter/A4 paper).

    Raises
    ------
    LayoutError
        If the string cannot be parsed, names an unknown lead or has an empty window.

    Examples
    --------
    >>> lay = parse_layout("3x4+II")
    >>> [s.label for s in lay.rows[0]], lay.rows[0][1].start, lay.rows[3][0].end
    (['I', 'aVR', 'V1', 'V4'], 2.5, 10.0)
    >>> [s.label for s in parse_layout("cabrera:3x4").rows[2]]
    ['-aVR', 'III', 'V3', 'V6']
    """
    if isinstance(spec, Layout):
        return spec
    if not isinstance(spec, str):
        raise LayoutError(f"layout must be a string such as '3x4+II', got {type(spec).__name__}")
    if not (math.isfinite(duration) and duration > 0):
        raise LayoutError(f"layout duration must be positive seconds, got {duration!r}")
    text = spec.strip()
    if not text:
        raise LayoutError("layout is empty; use e.g. '3x4+II', '6x2', '12x1' or a custom text")
    match = _GRID_RE.match(text.replace(" ", ""))
    if match is not None:
        return _grid_layout(match, text, duration)
    if re.fullmatch(r"[\w:]*\d+x\d+.*", text) and "@" not in text and ";" not in text:
        raise LayoutError(
            f"layout {spec!r} is not understood; expected RxC[+RHYTHM] such as '3x4+II', "
            "'6x2', '12x1', 'cabrera:3x4+II', or a custom text such as 'I@0-5 V1@5-10; II'"
        )
    return _custom_layout(text, duration)
