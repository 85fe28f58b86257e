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
    "EcgscanError": "ecgscan.errors",
    "DigitizationError": "ecgscan.errors",
    "RecordError": "ecgscan.errors",
}

__all__ = [
    "LEADS",
    "DigitizationError",
    "EcgscanError",
    "Record",
    "RecordError",
    "__version__",
    "normalize_lead_name",
    "read_record",
    "synthetic_ecg",
]

if TYPE_CHECKING:
    from .data.record import LEADS, Record, normalize_lead_name, read_record
    from .data.synthetic import synthetic_ecg
    from .errors import DigitizationError, EcgscanError, RecordError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgscan' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
