"""The ECG record: the currency every ecgscan stage reads and writes.

A :class:`Record` holds a signal as a (samples × leads) float array in millivolts, its sampling
frequency ``fs`` in Hz, the lead names, and metadata. NaN marks samples that are not known (for
example leads printed only for 2.5 s on a 3×4 page). Records read and write WFDB, CSV and JSON,
and resample to any frequency without smearing NaN gaps.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._io import atomic_files, atomic_write_text
from ..errors import InputFileError, RecordError

__all__ = [
    "LEADS",
    "Record",
    "normalize_lead_name",
    "read_record",
]

#: The 12 standard leads in their conventional order.
LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip

_CANONICAL = {name.upper(): name for name in LEADS}
# Spellings met in the wild (WFDB files, vendor exports, Roman numerals in lower case, ...).
_ALIASES = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF", "1": "I", "2": "II", "3": "III"}


def normalize_lead_name(name: str) -> str:
    """Return the canonical spelling of a lead name (``'AVR'`` → ``'aVR'``, ``'v1'`` → ``'V1'``).

    Raises
    ------
    RecordError
        If ``name`` is not one of the 12 standard leads.

    Examples
    --------
    >>> normalize_lead_name("avr"), normalize_lead_name(" V5 "), normalize_lead_name("ii")
    ('aVR', 'V5', 'II')
    """
    key = re.sub(r"[\s_\-]", "", str(name)).upper()
    key = key.removeprefix("LEAD")
    if key in _CANONICAL:
        return _CANONICAL[key]
    if key in _ALIASES:
        return _ALIASES[key]
    raise RecordError(
        f"unknown lead name {name!r}; expected one of {', '.join(LEADS)} (case-insensitive)"
    )


def _check_fs(fs: Any) -> float:
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise RecordError(f"fs must be a positive number of Hz, got {fs!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise RecordError(f"fs must be a positive number of Hz, got {fs!r}")
    return value


@dataclass(frozen=True, eq=False)
class Record:
    """A multi-lead ECG signal in physical units.

    Parameters
    ----------
    signal : array_like, shape (n_samples, n_leads)
        Samples in millivolts. NaN marks unknown samples; ±inf is rejected.
    fs : float
        Sampling frequency in Hz (> 0).
    leads : sequence of str
        Lead names, one per column; aliases such as ``'AVR'`` are normalised.
    name : str
        Record identifier (used as the file stem when writing).
    labels : sequence of str
        Diagnostic labels, e.g. the Challenge's ``('NORM',)``.
    age, sex : optional
        Patient fields; ``sex`` is ``'Male'``, ``'Female'`` or ``None``.
    metadata : mapping
        Any further JSON-serialisable fields.

    Examples
    --------
    >>> import numpy as np
    >>> rec = Record(np.zeros((1000, 2)), fs=100, leads=["I", "AVR"])
    >>> rec.leads, rec.duration
    (('I', 'aVR'), 10.0)
    """

    signal: NDArray[np.float64]
    fs: float
    leads: Sequence[str]
    name: str = "record"
    labels: Sequence[str] = ()
    age: float | None = None
    sex: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            signal = np.array(self.signal, dtype=np.float64)
        except (TypeError, ValueError):
            raise RecordError("signal must be a numeric (samples × leads) array") from None
        if signal.ndim == 1:
            signal = signal[:, None]
        if signal.ndim != 2:
            raise RecordError(
                f"signal must be 2-D (samples × leads), got an array of shape {signal.shape}"
            )
        if signal.shape[0] == 0:
            raise RecordError("signal has no samples")
        if np.isinf(signal).any():
            raise RecordError("signal contains ±inf; use NaN for unknown samples")
        leads = tuple(normalize_lead_name(n) for n in self.leads)
        if len(leads) != signal.shape[1]:
            raise RecordError(
                f"signal has {signal.shape[1]} lead column(s) but {len(leads)} lead name(s) "
                f"were given ({', '.join(leads) or 'none'})"
            )
        if len(set(leads)) != len(leads):
            dup = sorted({n for n in leads if leads.count(n) > 1})
            raise RecordError(f"lead name(s) given twice: {', '.join(dup)}")
        signal.flags.writeable = False
        sex = self.sex
        if sex is not None:
            sex = {"m": "Male", "male": "Male", "0": "Male", "f": "Female", "female": "Female",
                   "1": "Female"}.get(str(sex).strip().lower())  # fmt: skip
        object.__setattr__(self, "signal", signal)
        object.__setattr__(self, "fs", _check_fs(self.fs))
        object.__setattr__(self, "leads", leads)
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "sex", sex)
        object.__setattr__(self, "metadata", dict(self.metadata))

    # ------------------------------------------------------------------ basic properties
    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_leads(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.fs

    @property
    def time(self) -> NDArray[np.float64]:
        """Sample times in seconds, starting at 0."""
        return np.arange(self.n_samples) / self.fs

    def lead(self, name: str) -> NDArray[np.float64]:
        """The samples of one lead (read-only view), by any accepted spelling."""
        canonical = normalize_lead_name(name)
        if canonical not in self.leads:
            raise RecordError(
                f"record {self.name!r} has no lead {canonical}; it has {', '.join(self.leads)}"
            )
        return self.signal[:, self.leads.index(canonical)]

    @property
    def missing_leads(self) -> tuple[str, ...]:
        """Standard leads that are absent or entirely NaN."""
        present = {n for i, n in enumerate(self.leads) if np.isfinite(self.signal[:, i]).any()}
        return tuple(n for n in LEADS if n not in present)

    def __repr__(self) -> str:
        return (
            f"Record(name={self.name!r}, fs={self.fs:g}, n_samples={self.n_samples}, "
            f"leads={list(self.leads)}, labels={list(self.labels)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.fs == other.fs
            and self.leads == other.leads
            and self.signal.shape == other.signal.shape
            and bool(np.array_equal(self.signal, other.signal, equal_nan=True))
            and self.name == other.name
            and self.labels == other.labels
        )

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ transformations
    def with_signal(self, signal: ArrayLike, **changes: Any) -> Record:
        """A copy with another signal (and optionally other fields changed)."""
        return replace(self, signal=np.asarray(signal, dtype=np.float64), **changes)

    def with_leads(self, leads: Sequence[str] = LEADS) -> Record:
        """Select and reorder leads; leads the record lacks become all-NaN columns."""
        wanted = [normalize_lead_name(n) for n in leads]
        out = np.full((self.n_samples, len(wanted)), np.nan)
        for j, name in enumerate(wanted):
            if name in self.leads:
                out[:, j] = self.signal[:, self.leads.index(name)]
        return replace(self, signal=out, leads=tuple(wanted))

    def standard(self) -> Record:
        """The record with exactly the 12 standard leads in standard order (missing → NaN)."""
        return self if self.leads == LEADS else self.with_leads(LEADS)

    def resample(self, fs: float, *, n_samples: int | None = None) -> Record:
        """Resample to ``fs`` Hz, NaN-aware.

        Each finite run of samples is resampled on its own (polyphase filtering where the ratio
        is rational, Fourier otherwise), so NaN gaps stay gaps and do not smear into their
        neighbours. ``n_samples`` fixes the output length (cropped or NaN-padded).
        """
        fs = _check_fs(fs)
        n_out = n_samples if n_samples is not None else int(round(self.n_samples * fs / self.fs))
        if n_out <= 0:
            raise RecordError(f"n_samples must be positive, got {n_out}")
        if fs == self.fs:
            sig = self.signal
        else:
            sig = _resample_nan_aware(self.signal, self.fs, fs)
        out = np.full((n_out, self.n_leads), np.nan)
        n = min(n_out, sig.shape[0])
        out[:n] = sig[:n]
        return replace(self, signal=out, fs=fs)

    def require_finite(self) -> Record:
        """Raise :class:`RecordError` if every sample of every lead is NaN."""
        if not np.isfinite(self.signal).any():
            raise RecordError(f"record {self.name!r} has no finite sample (all NaN)")
        return self

    # ------------------------------------------------------------------ I/O
    def to_wfdb(self, path: str | os.PathLike[str]) -> Path:
        """Write ``<path>.hea`` and ``<path>.dat`` (format 16, µV resolution) atomically.

        ``path`` is the record path without suffix; the record is written under the stem of
        ``path`` (which need not equal :attr:`name`). Labels go into a ``# Labels:`` comment
        as in the PhysioNet Challenge; age and sex into ``# Age:``/``# Sex:``.
        """
        base = Path(path)
        base = base.with_name(base.name.removesuffix(".hea").removesuffix(".dat"))
        stem = base.name
        sig = self.signal
        finite = sig[np.isfinite(sig)]
        peak = float(np.abs(finite).max()) if finite.size else 0.0
        gain = 1000.0 if peak < 32.0 else float(np.floor(32000.0 / peak))
        if gain < 1:
            raise RecordError(f"record {self.name!r} has samples of {peak:g} mV; not an ECG?")
        comments = []
        if self.labels:
            comments.append("Labels: " + ", ".join(self.labels))
        if self.age is not None:
            comments.append(f"Age: {self.age:g}")
        if self.sex is not None:
            comments.append(f"Sex: {self.sex}")
        for key, value in self.metadata.items():
            if isinstance(value, str | int | float) and "\n" not in str(value):
                comments.append(f"{key}: {value}")
        with atomic_files([base.with_suffix(".dat"), base.with_suffix(".hea")]) as (dat, hea):
            sig_for_write = np.where(np.isfinite(sig), sig, np.nan)
            _wfdb().wrsamp(
                stem,
                fs=self.fs,
                units=["mV"] * self.n_leads,
                sig_name=list(self.leads),
                p_signal=sig_for_write,
                fmt=["16"] * self.n_leads,
                adc_gain=[gain] * self.n_leads,
                baseline=[0] * self.n_leads,
                comments=comments,
                write_dir=str(dat.parent),
            )
            # wfdb writes both files into the first temporary folder; move them into place.
            (dat.parent / f"{stem}.hea").replace(hea)
        return base

    @classmethod
    def from_wfdb(cls, path: str | os.PathLike[str]) -> Record:
        """Read a WFDB record (``path`` with or without ``.hea``)."""
        base = Path(path)
        if base.suffix in {".hea", ".dat"}:
            base = base.with_suffix("")
        hea = base.with_name(base.name + ".hea")
        if not hea.is_file():
            raise FileNotFoundError(
                f"WFDB header {str(hea)!r} not found; give the record path without suffix"
            )
        try:
            rec = _wfdb().rdrecord(str(base))
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"WFDB record {str(base)!r}: data file missing ({exc.filename or exc})"
            ) from None
        except Exception as exc:  # wfdb raises many types for corrupt files
            raise InputFileError(
                f"cannot read WFDB record {str(base)!r}: {exc}; the files are truncated or corrupt"
            ) from None
        if rec.p_signal is None:
            raise InputFileError(f"WFDB record {str(base)!r} has no signal")
        signal = np.asarray(rec.p_signal, dtype=np.float64)
        expected = rec.sig_len
        if signal.shape[0] != expected:
            raise InputFileError(
                f"WFDB record {str(base)!r} is truncated: header says {expected} samples, "
                f"data has {signal.shape[0]}"
            )
        units = [u or "mV" for u in (rec.units or ["mV"] * signal.shape[1])]
        scale = np.array([_unit_to_mv(u, base) for u in units])
        signal = signal * scale
        meta = _parse_comments(rec.comments or [])
        labels = meta.pop("labels", "")
        age = meta.pop("age", None)
        sex = meta.pop("sex", None)
        try:
            return cls(
                signal,
                fs=rec.fs,
                leads=rec.sig_name,
                name=base.name,
                labels=[x.strip() for x in labels.split(",") if x.strip()],
                age=_float_or_none(age),
                sex=sex,
                metadata=meta,
            )
        except RecordError as exc:
            raise RecordError(f"WFDB record {str(base)!r}: {exc}") from None

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write a CSV with a header row ``time_s,I_mV,II_mV,...``; NaN as empty fields."""
        path = Path(path)
        header = "time_s," + ",".join(f"{n}_mV" for n in self.leads)
        t = self.time
        lines = [header]
        for i in range(self.n_samples):
            vals = ",".join("" if np.isnan(v) else f"{v:.4f}" for v in self.signal[i])
            lines.append(f"{t[i]:.6f},{vals}")
        atomic_write_text(path, "\n".join(lines) + "\n")
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], *, fs: float | None = None) -> Record:
        """Read a CSV written by :meth:`to_csv` (or any CSV with lead names in its header).

        The header must name the leads (``I`` or ``I_mV``; a ``_uV`` suffix is converted). A
        ``time_s`` column, if present, gives ``fs``; otherwise ``fs`` is required.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"CSV file {str(path)!r} not found")
        text = path.read_text(encoding="utf-8-sig")
        rows = [r for r in text.splitlines() if r.strip()]
        if not rows:
            raise InputFileError(f"CSV file {str(path)!r} is empty")
        header = [h.strip() for h in rows[0].split(",")]
        if all(_is_number(h) for h in header):
            raise InputFileError(
                f"CSV file {str(path)!r} has no header row; the first row must name the leads "
                "(e.g. time_s,I_mV,II_mV,...)"
            )
        try:
            data = np.array(
                [[float(v) if v.strip() else np.nan for v in r.split(",")] for r in rows[1:]],
                dtype=np.float64,
            )
        except ValueError as exc:
            raise InputFileError(f"CSV file {str(path)!r}: non-numeric value ({exc})") from None
        if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != len(header):
            raise InputFileError(
                f"CSV file {str(path)!r}: every row must have {len(header)} fields like the header"
            )
        cols = [h.lower() for h in header]
        time_col = next((i for i, c in enumerate(cols) if c in {"time_s", "time", "t"}), None)
        if time_col is not None and fs is None and data.shape[0] > 1:
            dt = np.diff(data[:, time_col])
            if not np.all(dt > 0):
                raise InputFileError(f"CSV file {str(path)!r}: time column is not increasing")
            fs = float(round(1.0 / float(np.median(dt)), 6))
        if fs is None:
            raise InputFileError(
                f"CSV file {str(path)!r} has no time_s column; pass fs= (Hz) explicitly"
            )
        lead_idx = [i for i in range(len(header)) if i != time_col]
        names, scales = [], []
        for i in lead_idx:
            name, scale = _split_unit(header[i])
            names.append(name)
            scales.append(scale)
        try:
            return cls(data[:, lead_idx] * np.array(scales), fs=fs, leads=names, name=path.stem)
        except RecordError as exc:
            raise RecordError(f"CSV file {str(path)!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``fs``, ``units``, ``leads`` {name: [values, null for NaN]}, ..."""
        return {
            "name": self.name,
            "fs": self.fs,
            "units": "mV",
            "n_samples": self.n_samples,
            "labels": list(self.labels),
            "age": self.age,
            "sex": self.sex,
            "metadata": dict(self.metadata),
            "leads": {
                n: [None if np.isnan(v) else float(v) for v in self.signal[:, i]]
                for i, n in enumerate(self.leads)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_dict`."""
        try:
            leads = data["leads"]
            fs = data["fs"]
        except (KeyError, TypeError):
            raise RecordError("record JSON needs 'fs' and 'leads' {name: [values]}") from None
        if not isinstance(leads, Mapping) or not leads:
            raise RecordError("record JSON 'leads' must map lead names to lists of values")
        lengths = {len(v) for v in leads.values()}
        if len(lengths) != 1:
            raise RecordError("record JSON leads have different lengths")
        signal = np.array(
            [[np.nan if v is None else v for v in col] for col in leads.values()], dtype=np.float64
        ).T
        unit = str(data.get("units", "mV"))
        signal = signal * _unit_to_mv(unit, Path("<json>"))
        return cls(
            signal,
            fs=fs,
            leads=list(leads.keys()),
            name=data.get("name", "record"),
            labels=data.get("labels") or (),
            age=data.get("age"),
            sex=data.get("sex"),
            metadata=data.get("metadata") or {},
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), allow_nan=False))
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Record:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"JSON file {str(path)!r} not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputFileError(f"JSON file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except RecordError as exc:
            raise RecordError(f"JSON file {str(path)!r}: {exc}") from None


def read_record(path: str | os.PathLike[str], *, fs: float | None = None) -> Record:
    """Read a record from WFDB (path with or without ``.hea``), ``.csv`` or ``.json``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return Record.from_csv(p, fs=fs)
    if suffix == ".json":
        return Record.from_json(p)
    return Record.from_wfdb(p)


# ---------------------------------------------------------------------- helpers
def _wfdb() -> Any:
    """The wfdb module, with its pandas deprecation warnings silenced (not ours to fix)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import wfdb
    return _QuietWfdb(wfdb)


class _QuietWfdb:
    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        func = getattr(self._module, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            import warnings

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                return func(*args, **kwargs)

        return call


_UNIT_SCALE = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


def _unit_to_mv(unit: str, where: Path) -> float:
    key = unit.strip().lower()
    if key not in _UNIT_SCALE:
        raise InputFileError(f"{str(where)!r}: unit {unit!r} is not a voltage (mV, uV or V)")
    return _UNIT_SCALE[key]


def _split_unit(column: str) -> tuple[str, float]:
    m = re.fullmatch(r"(.+?)(?:[_ \[(]+(mV|uV|µV|μV|V)[\])]?)?", column.strip(), re.IGNORECASE)
    if m is None:  # pragma: no cover - the pattern matches any non-empty string
        return column, 1.0
    name, unit = m.group(1), m.group(2) or "mV"
    return name, _UNIT_SCALE[unit.lower()]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float_or_none(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _parse_comments(comments: Iterable[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in comments:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip()
    return meta


def _resample_nan_aware(signal: NDArray[np.float64], fs_in: float, fs_out: float) -> NDArray:
    from fractions import Fraction

    from scipy.signal import resample, resample_poly

    n_in = signal.shape[0]
    n_out = int(round(n_in * fs_out / fs_in))
    out = np.full((n_out, signal.shape[1]), np.nan)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    rational = abs(float(ratio) - fs_out / fs_in) < 1e-9
    for j in range(signal.shape[1]):
        col = signal[:, j]
        finite = np.isfinite(col)
        if not finite.any():
            continue
        # Runs of finite samples: [start, stop) in input samples.
        edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for a, b in zip(starts, stops, strict=True):
            seg = col[a:b]
            o_a = int(math.ceil(a * fs_out / fs_in - 1e-9))
            # a run of samples [a, b) covers the time [a, b) / fs_in
            o_b = min(n_out, int(math.ceil(b * fs_out / fs_in - 1e-9)))
            m = o_b - o_a
            if m <= 0:
                continue
            if seg.size == 1:
                out[o_a:o_b, j] = seg[0]
                continue
            if rational and seg.size >= 8:
                mean = seg.mean()
                r = resample_poly(seg - mean, ratio.numerator, ratio.denominator, padtype="line")
                r = r + mean
            else:
                r = resample(seg, max(1, int(round(seg.size * fs_out / fs_in))))
            # Align: output sample k of this run sits at input time a + k*fs_in/fs_out.
            offset = o_a - a * fs_out / fs_in
            idx = np.arange(m) + int(round(offset))
            idx = idx[(idx >= 0) & (idx < r.size)]
            out[o_a : o_a + idx.size, j] = r[idx]
    return out
