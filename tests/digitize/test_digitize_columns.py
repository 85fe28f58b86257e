"""Column count from the printed lead names: 15-lead pages (a fifth column of extra leads,
2 s per column) are read as 3×5, and their 12 standard leads timed by their own columns."""

from __future__ import annotations

import numpy as np

from _shared import shared_path
from ecgscan.digitize import digitize
from ecgscan.digitize._layout import (
    EXTRA_LABEL_NAMES,
    LABEL_NAMES,
    LeadLabel,
    assign_leads,
    columns_from_labels,
    read_label,
)


def _word(scores: dict[str, float], extra: dict[str, float] | None = None, *,
          wide: bool = True) -> LeadLabel:  # fmt: skip
    """A word 30 px wide (a name of several letters) or 4 px wide (a stroke), 12 px tall."""
    full = dict.fromkeys(LABEL_NAMES, 0.1) | scores
    box = (0, 0, 29 if wide else 3, 11)
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp))
    return LeadLabel(bbox=box, scores=full, pixels=empty, extra=extra or {})


def test_columns_from_labels_counts_names_not_strokes():
    name = _word({"V2": 0.7})
    stroke = _word({"I": 0.9}, wide=False)  # a QRS stroke beside a quarter reads as "I"
    five = [[None, name, name, name, name] for _ in range(3)]
    four = [[None, stroke, None, stroke] for _ in range(3)]
    assert columns_from_labels({4: four, 5: five}) == 5
    assert columns_from_labels({4: [[None, name, name, name]] * 3, 5: five}) is None
    assert columns_from_labels({4: four, 5: [[None, name, None, None, None]] * 3}) is None


def test_extra_names_are_read_apart_from_the_twelve():
    scores = read_label(np.zeros((10, 10), bool))
    assert set(scores) == set(LABEL_NAMES)  # the public reading is about the 12 leads


def test_assign_leads_names_the_fifth_column_by_its_labels():
    name, rows, origin = assign_leads(3, [5, 5, 5])
    assert name == "3x5" and origin == "synchronous"
    assert rows[0] == ("I", "aVR", "V1", "V4", "*")
    v8 = _word({}, {n: (0.8 if n == "V8" else 0.2) for n in EXTRA_LABEL_NAMES})
    labels: list[list[LeadLabel | None]] = [[None] * 5, [None, None, None, None, v8], [None] * 5]
    assert assign_leads(3, [5, 5, 5], labels=labels)[1][1] == ("II", "aVL", "V2", "V5", "V8")
    assert assign_leads(3, [1, 1, 1], layout="3x5")[1][2][:4] == ("III", "aVF", "V3", "V6")


def test_fifteen_lead_scan_is_read_in_five_two_second_columns():
    # a scanned 15-lead page: I/aVR/V1/V4/V4r over II/aVL/V2/V5/V8 over III/aVF/V3/V6/V9,
    # 2 s per column, no separators and no pulse; its right edge is cut off
    res = digitize(shared_path("images", "real-scans", "ecg00020.jpg"), fs=100)
    assert res.layout.name == "3x5" and res.layout.n_columns == 5
    assert [r.leads[:4] for r in res.layout.rows] == [
        ("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"),
    ]  # fmt: skip
    assert all(r.leads[4] in (*EXTRA_LABEL_NAMES, "*") for r in res.layout.rows)
    rec = res.record
    assert rec.leads == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    t = np.arange(rec.signal.shape[0]) / rec.fs - 0.02  # the 20-ms lead-in
    for lead, (start, end) in {"I": (0.0, 2.0), "aVR": (2.0, 4.0), "V4": (6.0, 8.0)}.items():
        finite = t[np.isfinite(rec.lead(lead))]
        assert abs(finite[-1] - end) < 0.15, (lead, finite[-1])
        assert abs(finite[0] - start) < 0.3, (lead, finite[0])
