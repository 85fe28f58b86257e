"""ecgscan: paper electrocardiograms to digital 12-lead signals and diagnoses.

The public API is importable from the top level; heavy dependencies load on first use, so
``import ecgscan`` stays cheap.

>>> import ecgscan
>>> ecgscan.LEADS[:3]
('I', 'II', 'III')
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it (imported lazily on first attribute access)
_LAZY = {
    "LEADS": "ecgscan.data.record",
    "Record": "ecgscan.data.record",
    "read_record": "ecgscan.data.record",
    "normalize_lead_name": "ecgscan.data.record",
    "synthetic_ecg": "ecgscan.data.synthetic",
    "PTBXL": "ecgscan.data.ptbxl",
    "CHALLENGE_LABELS": "ecgscan.data.labels",
    "labels_to_vector": "ecgscan.data.labels",
    "vector_to_labels": "ecgscan.data.labels",
    "classify": "ecgscan.classify",
    "Prediction": "ecgscan.classify",
    "digitize": "ecgscan.digitize",
    "DigitizationResult": "ecgscan.digitize",
    "challenge_snr": "ecgscan.metrics",
    "kaggle_snr": "ecgscan.metrics",
    "evaluate_folders": "ecgscan.metrics",
    "render_page": "ecgscan.render",
    "RenderedPage": "ecgscan.render",
    "parse_layout": "ecgscan.render",
    "EcgscanError": "ecgscan.errors",
    "DigitizationError": "ecgscan.errors",
    "RecordError": "ecgscan.errors",
}

__all__ = [
    "CHALLENGE_LABELS",
    "LEADS",
    "PTBXL",
    "DigitizationError",
    "DigitizationResult",
    "EcgscanError",
    "Prediction",
    "Record",
    "RecordError",
    "RenderedPage",
    "__version__",
    "challenge_snr",
    "classify",
    "digitize",
    "evaluate_folders",
    "kaggle_snr",
    "labels_to_vector",
    "normalize_lead_name",
    "parse_layout",
    "read_record",
    "render_page",
    "synthetic_ecg",
    "vector_to_labels",
]

if TYPE_CHECKING:
    from .classify import Prediction, classify
    from .data.labels import CHALLENGE_LABELS, labels_to_vector, vector_to_labels
    from .data.ptbxl import PTBXL
    from .data.record import LEADS, Record, normalize_lead_name, read_record
    from .data.synthetic import synthetic_ecg
    from .digitize import DigitizationResult, digitize
    from .errors import DigitizationError, EcgscanError, RecordError
    from .metrics import challenge_snr, evaluate_folders, kaggle_snr
    from .render import RenderedPage, parse_layout, render_page


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgscan' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
