"""PTB-XL as distributed, with the labels of the PhysioNet Challenge 2024.

:class:`PTBXL` reads a PTB-XL folder as downloaded from PhysioNet (``ptbxl_database.csv``,
``scp_statements.csv``, ``records100/``, ``records500/``), optionally with the PTB-XL+ 12SL
statements, and gives the records with their metadata, folds (``strat_fold``), patient ids and
the Challenge 2024 labels. Records listed in the database but absent on disk (a partial download,
e.g. without fold 10) are skipped and counted by :meth:`PTBXL.missing`, never fatal.

The Challenge 2024 labels
-------------------------
The rule below is the Challenge's own derivation, read from the official example code
(repository ``physionetchallenges/python-example-2024``, script ``prepare_ptbxl_data.py``,
which writes the labels into each WFDB header as ``# Labels: a, b``, the ``substring_labels``
of its ``helper_code.py``). This module
reimplements it and reproduces its output exactly, quirks included; :func:`challenge_labels` is
the pure function.

1. *Superclasses.* Every SCP code that is a row of ``scp_statements.csv`` with
   ``diagnostic == 1`` maps to its ``diagnostic_class`` (NORM, MI, STTC, CD, HYP). A record's
   superclasses are those of **all** its ``scp_codes``, whatever their likelihood (0 included).
   Codes that are not diagnostic (``diagnostic`` empty) contribute no superclass.
2. *Acute MI.* The statement numbers 821, 822, 823, 827, 829, 902, 903, 904 and 963–968 are
   turned into 12SL acronyms through the ``StatementNumber`` and ``Acronym`` columns of PTB-XL+'s
   ``labels/mapping/12slv23ToSNOMED.csv`` (its SNOMED columns are not used). Numbers absent from
   that table are ignored: with mapping v2.3 only 821 ``STEMI``, 902 ``SERYR1``, 903 ``SERYR2``
   and 963–967 (``IIOHAI``, ``AIOHAI``, ``LIOHAI``, ``ALIHAI``, ``ILIHAI``) remain. A record is
   Acute MI when one of these acronyms occurs in its ``statements`` field of
   ``labels/12sl_statements.csv``. Quirk: the official code tests ``acronym in <field>`` on the
   field's raw text (a Python-list literal such as ``"['NSR', 'STEMI']"``), i.e. a *substring*
   test, not a token test; we do the same (on PTB-XL+ 1.0.1 both give the same 209 records).
   Acute MI does **not** require the MI superclass (50 of those 209 records have none). A record
   absent from ``12sl_statements.csv`` is never Acute MI.
3. *Old MI* = MI superclass and not Acute MI.
4. *NORM, STTC, CD, HYP* = the superclass of the same name.
5. *Rhythm and ectopy* from the record's SCP codes with likelihood ``>= 0`` (in practice every
   code, since PTB-XL likelihoods are 0–100): PAC ← ``PAC``; PVC ← ``PVC``; AFIB/AFL ← ``AFIB`` or
   ``AFLT``; TACHY ← ``STACH``, ``SVTAC`` or ``PSVT``; BRADY ← ``SBRAD``. The 12SL statements are
   used for Acute MI only (a 12SL ``SBRAD`` does not make BRADY).
6. Labels are listed in the order of :data:`~ecgscan.data.labels.CHALLENGE_LABELS`; a record may
   have none (284 of PTB-XL 1.0.3's 21,799 records, e.g. pacemaker-only ``PACE``).

Without PTB-XL+ the 12SL statements are unknown, so no record is Acute MI and every MI record is
Old MI, exactly what the official code does for a record without 12SL statements;
:attr:`PTBXL.has_acute_mi` tells which case applies. With PTB-XL 1.0.3 and PTB-XL+ 1.0.1 the
counts are NORM 9514, Acute MI 209, Old MI 5310, STTC 5235, CD 4898, HYP 2649, PAC 398,
PVC 1143, AFIB/AFL 1570, TACHY 867, BRADY 637.

Examples
--------
>>> ptbxl = PTBXL("~/data/ptb-xl", ptbxl_plus="~/data/ptb-xl-plus")  # doctest: +SKIP
>>> ptbxl.challenge_labels[77]                                       # doctest: +SKIP
('Acute MI', 'CD')
>>> rec = ptbxl.record(77, fs=500)                                   # doctest: +SKIP
>>> train = ptbxl.ecg_ids(folds=range(1, 9))                         # doctest: +SKIP
"""

from __future__ import annotations

import ast
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..errors import EcgscanError, InputFileError
from .labels import CHALLENGE_LABELS
from .record import Record

__all__ = [
    "ACUTE_MI_STATEMENTS",
    "PTBXL",
    "PTBXLError",
    "acute_mi_acronyms",
    "challenge_labels",
    "read_12sl_mapping",
    "read_12sl_statements",
    "read_database",
    "read_scp_statements",
    "superclass_map",
]

#: 12SL statement numbers whose presence makes a record Acute MI (Challenge 2024).
ACUTE_MI_STATEMENTS: frozenset[int] = frozenset(
    {821, 822, 823, 827, 829, 902, 903, 904, 963, 964, 965, 966, 967, 968}
)

DATABASE_CSV = "ptbxl_database.csv"
SCP_STATEMENTS_CSV = "scp_statements.csv"
STATEMENTS_12SL_CSV = "12sl_statements.csv"
MAPPING_12SL_CSV = "12slv23ToSNOMED.csv"

_FILENAME_COLUMN = {100: "filename_lr", 500: "filename_hr"}
_SUFFIX = {100: "lr", 500: "hr"}
_SEX = {0: "Male", 1: "Female"}


class PTBXLError(EcgscanError, ValueError):
    """A request about PTB-XL is invalid: unknown ``ecg_id``, unsupported ``fs``, bad folds."""


# ----------------------------------------------------------------------------- reading CSV files
def _read_csv(
    path: Path, what: str, required: Iterable[str], *, index: str | None = None, **kwargs: Any
) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found")
    try:
        frame = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(
            f"{what} {str(path)!r} is not a readable CSV file ({exc}); it is truncated or "
            "corrupt, download it again"
        ) from None
    except ValueError as exc:  # e.g. usecols naming a column the file lacks
        raise InputFileError(
            f"{what} {str(path)!r}: {exc}; is it the file as distributed? download it again"
        ) from None
    missing = [c for c in (*([index] if index else []), *required) if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{what} {str(path)!r} lacks the column(s) {', '.join(missing)}; is it the file as "
            "distributed? download it again"
        )
    return frame.set_index(index) if index else frame


def _int_index(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    raw = frame.index.tolist()
    values = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        first = raw[int(np.flatnonzero(bad)[0])]
        raise InputFileError(f"{what} {str(path)!r}: ecg_id {first!r} is not an integer")
    frame.index = pd.Index(values.astype(np.int64), name="ecg_id")
    duplicated = frame.index.duplicated()
    if duplicated.any():
        raise InputFileError(
            f"{what} {str(path)!r}: ecg_id {int(frame.index[duplicated][0])} appears twice"
        )
    return frame


def _parse_scp_codes(text: Any, ecg_id: int, path: Path) -> dict[str, float]:
    try:
        value = ast.literal_eval(text) if isinstance(text, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) for k, v in value.items()
    ):
        raise InputFileError(
            f"{str(path)!r}: scp_codes of ecg_id {ecg_id} is {text!r}, not a dict of "
            "{code: likelihood}; the file is corrupt, download it again"
        )
    return {k: float(v) for k, v in value.items()}


def read_database(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``ptbxl_database.csv``: indexed by ``ecg_id``, ``scp_codes`` parsed to dicts.

    Other columns are kept as distributed (``age`` 300 means "over 89", ``sex`` 0 male / 1
    female). Raises :class:`~ecgscan.errors.InputFileError` naming the file if it is corrupt.
    """
    path = Path(path).expanduser()
    what = "PTB-XL database"
    frame = _read_csv(path, what, ("scp_codes", "strat_fold"), index="ecg_id")
    frame = _int_index(frame, path, what)
    ids: list[Any] = frame.index.tolist()
    texts: list[Any] = frame["scp_codes"].tolist()
    frame["scp_codes"] = pd.Series(
        [_parse_scp_codes(text, int(e), path) for e, text in zip(ids, texts, strict=True)],
        index=frame.index,
        dtype=object,
    )
    folds = pd.to_numeric(frame["strat_fold"], errors="coerce")
    if folds.isna().any() or (folds != folds.round()).any():
        first = int(frame.index[folds.isna() | (folds != folds.round())][0])
        raise InputFileError(
            f"{what} {str(path)!r}: strat_fold of ecg_id {first} is not an integer"
        )
    frame["strat_fold"] = folds.astype("int64")
    return frame


def read_scp_statements(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``scp_statements.csv`` indexed by SCP code (columns as distributed)."""
    path = Path(path).expanduser()
    frame = _read_csv(path, "SCP statements table", ("diagnostic", "diagnostic_class"))
    return frame.set_index(frame.columns[0])


def read_12sl_statements(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read PTB-XL+ ``12sl_statements.csv`` (``ecg_id`` index, raw ``statements`` text)."""
    path = Path(path).expanduser()
    what = "PTB-XL+ 12SL statements"
    frame = _read_csv(
        path, what, ("statements",), index="ecg_id", usecols=lambda c: c in {"ecg_id", "statements"}
    )
    return _int_index(frame, path, what)


def read_12sl_mapping(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read PTB-XL+ ``12slv23ToSNOMED.csv`` indexed by (integer) ``StatementNumber``.

    Rows without a statement number (continuation rows of the table) are dropped.
    """
    path = Path(path).expanduser()
    frame = _read_csv(
        path, "PTB-XL+ 12SL mapping", ("StatementNumber", "Acronym"), encoding="utf-8-sig"
    )
    numbers = pd.to_numeric(frame["StatementNumber"], errors="coerce")
    frame = frame[numbers.notna()].copy()
    frame.index = pd.Index(numbers[numbers.notna()].astype("int64"), name="StatementNumber")
    return frame.drop(columns="StatementNumber")


# ----------------------------------------------------------------------------- the label rule
def superclass_map(scp_statements: pd.DataFrame) -> dict[str, str]:
    """SCP code → diagnostic superclass, for the rows with ``diagnostic == 1``."""
    out: dict[str, str] = {}
    for code, row in scp_statements.iterrows():
        superclass = row["diagnostic_class"]
        if row["diagnostic"] == 1 and isinstance(superclass, str):
            out[str(code)] = superclass
    return out


def acute_mi_acronyms(mapping: pd.DataFrame) -> frozenset[str]:
    """12SL acronyms of :data:`ACUTE_MI_STATEMENTS` found in a ``12slv23ToSNOMED`` table.

    ``mapping`` is indexed by statement number (as from :func:`read_12sl_mapping`) or has a
    ``StatementNumber`` column; numbers absent from it are ignored, as in the official code.
    """
    if "StatementNumber" in mapping.columns:
        mapping = mapping.set_index("StatementNumber")
    numbers = pd.to_numeric(pd.Series(mapping.index), errors="coerce")
    acronyms = mapping["Acronym"].to_numpy()
    return frozenset(
        str(acronym)
        for number, acronym in zip(numbers, acronyms, strict=True)
        if number in ACUTE_MI_STATEMENTS and isinstance(acronym, str)
    )


def _mentions_any(statements: Any, acronyms: frozenset[str]) -> bool:
    """Whether a 12SL ``statements`` field names one of ``acronyms`` (see the module docstring)."""
    if isinstance(statements, str):
        return any(acronym in statements for acronym in acronyms)  # substring test, as official
    if statements is None or (isinstance(statements, float) and math.isnan(statements)):
        return False
    return not acronyms.isdisjoint(statements)  # already parsed to a list of acronyms


def _codes_dict(codes: Any) -> Mapping[str, float]:
    if isinstance(codes, str):
        try:
            codes = ast.literal_eval(codes)
        except (ValueError, SyntaxError):
            raise PTBXLError(f"scp_codes {codes!r} is not a dict literal") from None
    if not isinstance(codes, Mapping):
        raise PTBXLError(f"scp_codes must be dicts of {{code: likelihood}}, got {codes!r}")
    return codes


def challenge_labels(
    database: pd.DataFrame,
    scp_statements: pd.DataFrame,
    statements_12sl: pd.DataFrame | None = None,
    snomed_map: pd.DataFrame | None = None,
) -> pd.Series:
    """The Challenge 2024 labels of every record of ``database`` (rule in the module docstring).

    Parameters
    ----------
    database : DataFrame
        ``ptbxl_database.csv`` indexed by ``ecg_id`` with a ``scp_codes`` column (dicts, or their
        text as distributed), e.g. from :func:`read_database`.
    scp_statements : DataFrame
        ``scp_statements.csv`` indexed by SCP code, e.g. from :func:`read_scp_statements`.
    statements_12sl, snomed_map : DataFrame, optional
        PTB-XL+ ``12sl_statements.csv`` (indexed by ``ecg_id``, ``statements`` column) and
        ``12slv23ToSNOMED.csv``; give both or neither. Without them no record is Acute MI and
        every MI record is Old MI.

    Returns
    -------
    Series
        Indexed by ``ecg_id``, one tuple of labels per record in
        :data:`~ecgscan.data.labels.CHALLENGE_LABELS` order (empty tuple when none applies).
    """
    if (statements_12sl is None) != (snomed_map is None):
        raise PTBXLError(
            "statements_12sl and snomed_map go together (PTB-XL+ 12sl_statements.csv and "
            "12slv23ToSNOMED.csv); give both to derive Acute MI, or neither"
        )
    superclass_of = superclass_map(scp_statements)
    acronyms = frozenset() if snomed_map is None else acute_mi_acronyms(snomed_map)
    sl: Mapping[Any, Any] = {}
    if statements_12sl is not None:
        sl = statements_12sl["statements"].to_dict()

    out: list[tuple[str, ...]] = []
    for ecg_id, raw_codes in database["scp_codes"].items():
        codes = _codes_dict(raw_codes)
        superclasses = {superclass_of[c] for c in codes if c in superclass_of}
        present = {c for c, likelihood in codes.items() if likelihood >= 0}
        acute = _mentions_any(sl.get(ecg_id), acronyms)
        flags = {
            "NORM": "NORM" in superclasses,
            "Acute MI": acute,
            "Old MI": "MI" in superclasses and not acute,
            "STTC": "STTC" in superclasses,
            "CD": "CD" in superclasses,
            "HYP": "HYP" in superclasses,
            "PAC": "PAC" in present,
            "PVC": "PVC" in present,
            "AFIB/AFL": bool(present & {"AFIB", "AFLT"}),
            "TACHY": bool(present & {"STACH", "SVTAC", "PSVT"}),
            "BRADY": "SBRAD" in present,
        }
        out.append(tuple(label for label in CHALLENGE_LABELS if flags[label]))
    return pd.Series(out, index=database.index.copy(), name="labels", dtype=object)


# ----------------------------------------------------------------------------- the dataset
def _find_ptbxl_plus(folder: Path) -> tuple[Path, Path]:
    """Locate ``12sl_statements.csv`` and the mapping in a PTB-XL+ folder or its ``labels/``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"PTB-XL+ folder {str(folder)!r} not found")
    for labels in (folder / "labels", folder):
        statements = labels / STATEMENTS_12SL_CSV
        if statements.is_file():
            return statements, labels / "mapping" / MAPPING_12SL_CSV
    raise FileNotFoundError(
        f"PTB-XL+ folder {str(folder)!r} has no labels/{STATEMENTS_12SL_CSV}; give the PTB-XL+ "
        "folder as downloaded from PhysioNet (the one containing labels/)"
    )


def _check_fs(fs: Any) -> int:
    if fs in (100, 500):
        return int(fs)
    raise PTBXLError(f"fs must be 100 or 500 (Hz; PTB-XL's records100/records500), got {fs!r}")


def _none_if_nan(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar -> Python scalar (JSON-serialisable metadata)
        return value.item()
    return value


class PTBXL:
    """A PTB-XL folder as distributed, with the PhysioNet Challenge 2024 labels.

    Parameters
    ----------
    root : path
        Folder with ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records100/`` and/or
        ``records500/`` (records may be missing, e.g. a download without fold 10).
    ptbxl_plus : path, optional, keyword-only
        PTB-XL+ folder (containing ``labels/12sl_statements.csv`` and
        ``labels/mapping/12slv23ToSNOMED.csv``; its ``labels/`` folder itself is accepted too).
        Needed for the Acute MI label: without it no record is Acute MI and every MI record is
        Old MI (see :attr:`has_acute_mi`).

    Raises
    ------
    FileNotFoundError
        If ``root`` or one of its two CSV files (or a PTB-XL+ file) is missing; the message
        names it.
    InputFileError
        If a CSV file is corrupt or lacks a column.

    Attributes
    ----------
    database : DataFrame
        ``ptbxl_database.csv`` indexed by ``ecg_id``, ``scp_codes`` parsed to dicts.
    scp_statements : DataFrame
        ``scp_statements.csv`` indexed by SCP code.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, ptbxl_plus: str | os.PathLike[str] | None = None
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"PTB-XL folder {str(self.root)!r} not found")
        for name in (DATABASE_CSV, SCP_STATEMENTS_CSV):
            if not (self.root / name).is_file():
                raise FileNotFoundError(
                    f"{str(self.root)!r} is not a PTB-XL folder: {name} is missing; give the "
                    "folder downloaded from PhysioNet that holds ptbxl_database.csv, "
                    "scp_statements.csv and records100/"
                )
        self.database: pd.DataFrame = read_database(self.root / DATABASE_CSV)
        self.scp_statements: pd.DataFrame = read_scp_statements(self.root / SCP_STATEMENTS_CSV)
        self.ptbxl_plus = None if ptbxl_plus is None else Path(ptbxl_plus).expanduser()
        self.statements_12sl: pd.DataFrame | None = None
        self.mapping_12sl: pd.DataFrame | None = None
        if self.ptbxl_plus is not None:
            statements, mapping = _find_ptbxl_plus(self.ptbxl_plus)
            self.statements_12sl = read_12sl_statements(statements)
            self.mapping_12sl = read_12sl_mapping(mapping)
        self._available: dict[int, frozenset[int]] = {}
        self._paths: dict[int, pd.Series] = {}

    def __repr__(self) -> str:
        plus = "" if self.ptbxl_plus is None else f", ptbxl_plus={str(self.ptbxl_plus)!r}"
        return f"PTBXL({str(self.root)!r}{plus}; {len(self)} records listed)"

    def __len__(self) -> int:
        return len(self.database)

    @property
    def has_acute_mi(self) -> bool:
        """Whether the Acute MI label can be derived (PTB-XL+ was given)."""
        return self.statements_12sl is not None

    @cached_property
    def challenge_labels(self) -> pd.Series:
        """Challenge 2024 labels of every listed record: Series ``ecg_id`` → tuple of labels."""
        return challenge_labels(
            self.database, self.scp_statements, self.statements_12sl, self.mapping_12sl
        )

    # -------------------------------------------------------------------------- files
    def _check_id(self, ecg_id: Any) -> int:
        if not isinstance(ecg_id, numbers.Integral) or isinstance(ecg_id, bool):
            raise PTBXLError(f"ecg_id must be an integer, got {ecg_id!r}")
        key = int(ecg_id)
        if key not in self.database.index:
            raise PTBXLError(
                f"ecg_id {ecg_id!r} is not listed in {str(self.root / DATABASE_CSV)!r} "
                f"(ids {int(self.database.index.min())}–{int(self.database.index.max())})"
            )
        return key

    def _relative(self, ecg_id: int, fs: int) -> str:
        return str(self._relatives(fs).at[ecg_id])

    def _relatives(self, fs: int) -> pd.Series:
        """Record paths relative to the root, without suffix, for every listed ``ecg_id``."""
        if fs not in self._paths:
            ids = self.database.index
            derived = pd.Series(
                [f"records{fs}/{e // 1000 * 1000:05d}/{e:05d}_{_SUFFIX[fs]}" for e in ids],
                index=ids,
                dtype=object,
            )
            column = _FILENAME_COLUMN[fs]
            if column in self.database.columns:  # the paths as distributed, where given
                given = self.database[column].astype(object)
                usable = given.map(lambda v: isinstance(v, str) and bool(v))
                derived[usable] = given[usable]
            self._paths[fs] = derived
        return self._paths[fs]

    def record_path(self, ecg_id: int, *, fs: int = 100) -> Path:
        """Path of a record's WFDB files without suffix (whether or not they exist)."""
        return self.root / self._relative(self._check_id(ecg_id), _check_fs(fs))

    def _available_ids(self, fs: int) -> frozenset[int]:
        if fs not in self._available:
            present: set[str] = set()
            top = self.root / f"records{fs}"
            subfolders = [e for e in os.scandir(top) if e.is_dir()] if top.is_dir() else []
            for sub in subfolders:
                names = {e.name for e in os.scandir(sub.path)}
                present.update(
                    f"records{fs}/{sub.name}/{n[:-4]}"
                    for n in names
                    if n.endswith(".hea") and n[:-4] + ".dat" in names
                )
            relatives = self._relatives(fs)
            self._available[fs] = frozenset(
                int(e) for e in relatives.index[relatives.isin(present)]
            )
        return self._available[fs]

    def ecg_ids(
        self, *, folds: Iterable[int] | None = None, fs: int = 100, available_only: bool = True
    ) -> list[int]:
        """Sorted ``ecg_id`` of the records in ``folds`` (all by default).

        Parameters
        ----------
        folds : iterable of int, optional
            ``strat_fold`` values to keep (PTB-XL's recommended split: 1–8 train, 9 validation,
            10 test).
        fs : {100, 500}
            Sampling frequency whose files must be present when ``available_only``.
        available_only : bool
            Keep only records whose ``.hea`` and ``.dat`` files are on disk (default); else
            every listed record.
        """
        fs = _check_fs(fs)
        frame = self.database
        if folds is not None:
            if isinstance(folds, int | str):
                raise PTBXLError(
                    f"folds must be an iterable of ints such as [9, 10], got {folds!r}"
                )
            wanted: set[int] = set()
            for fold in folds:
                if not isinstance(fold, numbers.Integral) or isinstance(fold, bool):
                    raise PTBXLError(f"folds must hold integers (strat_fold), got {fold!r}")
                wanted.add(int(fold))
            frame = frame[frame["strat_fold"].isin(wanted)]
        ids = [int(e) for e in frame.index]
        if available_only:
            available = self._available_ids(fs)
            ids = [e for e in ids if e in available]
        return sorted(ids)

    def missing(self, fs: int = 100) -> list[int]:
        """Sorted ``ecg_id`` of records listed in the database whose files at ``fs`` are absent."""
        available = self._available_ids(_check_fs(fs))
        return sorted(int(e) for e in self.database.index if int(e) not in available)

    def record(self, ecg_id: int, *, fs: int = 100) -> Record:
        """Read one record with its Challenge labels, age, sex and PTB-XL metadata.

        The record's name is the file stem (``'00001_lr'`` at 100 Hz, ``'00001_hr'`` at 500 Hz);
        ``metadata`` holds ``ecg_id``, ``patient_id``, ``strat_fold``, ``scp_codes`` and the
        recording's date, device, site, height and weight. ``age`` is as distributed (300 means
        over 89 years).

        Raises
        ------
        FileNotFoundError
            If the record is listed but its files are not in the folder.
        """
        key = self._check_id(ecg_id)
        fs = _check_fs(fs)
        path = self.root / self._relative(key, fs)
        if not (path.with_name(path.name + ".hea").is_file() and
                path.with_name(path.name + ".dat").is_file()):  # fmt: skip
            fold = int(cast(int, self.database.at[key, "strat_fold"]))
            raise FileNotFoundError(
                f"PTB-XL record {key} (fold {fold}) is listed in {DATABASE_CSV} but "
                f"{str(path)!r}.hea/.dat are not on disk (partial download?); list the present "
                "ones with ecg_ids(available_only=True)"
            )
        rec = Record.from_wfdb(path)
        row = self.database.loc[key]
        sex = _none_if_nan(row.get("sex"))
        patient = _none_if_nan(row.get("patient_id"))
        metadata: dict[str, Any] = {
            "ecg_id": key,
            "patient_id": None if patient is None else int(patient),
            "strat_fold": int(cast(int, row["strat_fold"])),
            "scp_codes": dict(row["scp_codes"]),
        }
        for column in ("recording_date", "device", "site", "height", "weight"):
            if column in row.index:
                metadata[column] = _none_if_nan(row[column])
        return replace(
            rec,
            labels=self.challenge_labels[key],
            age=_none_if_nan(row.get("age")),
            sex=_SEX.get(int(sex)) if sex is not None else None,
            metadata=metadata,
        )
