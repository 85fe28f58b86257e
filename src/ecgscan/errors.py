"""Exceptions raised by ecgscan.

Every error a *user* can cause (a bad file, a wrong parameter, a page that is not an ECG)
derives from :class:`EcgscanError`. The command line turns these into one clear message and
exit status 2 (1 for pages that could not be digitized); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = [
    "DigitizationError",
    "EcgscanError",
    "InputFileError",
    "LayoutError",
    "RecordError",
]


class EcgscanError(Exception):
    """Base class for errors caused by input or usage rather than by a bug."""


class RecordError(EcgscanError, ValueError):
    """An ECG record is invalid: wrong shape, unknown leads, bad sampling frequency, ..."""


class InputFileError(EcgscanError, ValueError):
    """A file exists but cannot be read as what it should be (truncated, corrupt, wrong type)."""


class LayoutError(EcgscanError, ValueError):
    """A page layout description is invalid."""


class DigitizationError(EcgscanError):
    """The digitizer cannot read a page (not an ECG, empty, too small, ...)."""
