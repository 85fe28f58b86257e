"""Score a folder of digitized records against a folder of references (``ecgscan evaluate``).

Matching rule: the reference ``<reference_dir>/<sub>/<name>.hea`` is scored against the estimate
with the same relative path, ``<estimate_dir>/<sub>/<name>.hea``. When that does not exist, the
first of these that does is used: ``<sub>/<name>-0.hea`` (named after the page image, as
ECG-Image-Kit names pages ``<name>-0.png``), then ``<name>.hea`` and ``<name>-0.hea`` directly in
``<estimate_dir>`` (a flat output folder). A reference without an estimate is "missing" and scores
0 on every lead in the Challenge SNR, as a failed digitization does in the Challenge.
Sub-folders of ``reference_dir`` are the groups of the per-group table (records directly in it
form the group ``"."``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EcgscanError
from ._classification import challenge_f_measure
from ._kaggle import kaggle_page_ratio, kaggle_snr_from_ratios
from ._snr import _scores, mean_snr

__all__ = ["EvaluationReport", "RecordScore", "evaluate_folders", "find_estimate"]


@dataclass(frozen=True)
class RecordScore:
    """Scores of one reference record.

    Attributes
    ----------
    record : str
        Relative record path without suffix (``"A_clean/00017_hr"``).
    group : str
        Its sub-folder (``"."`` for records at the top level).
    status : str
        ``"ok"`` or ``"missing"`` (no estimate found; SNR 0 on every lead).
    estimate : str or None
        The estimate's record path, when found.
    snr, snr_corrected : dict
        Per-lead Challenge SNR (dB), official and with the negative-lag correction.
    kaggle_ratio : float
        Kaggle per-page signal-to-noise power ratio (linear).
    lags : dict
        Per-lead alignment lag in samples (None when no alignment was searched).
    labels, predicted_labels : tuple of str
        Reference and estimated labels (``# Labels:`` header comments).
    """

    record: str
    group: str
    status: str
    estimate: str | None
    snr: dict[str, float]
    snr_corrected: dict[str, float]
    kaggle_ratio: float
    lags: dict[str, int | None]
    labels: tuple[str, ...] = ()
    predicted_labels: tuple[str, ...] = ()

    @property
    def mean_snr(self) -> float:
        return mean_snr(self.snr)

    @property
    def mean_snr_corrected(self) -> float:
        return mean_snr(self.snr_corrected)

    @property
    def kaggle_snr(self) -> float:
        return kaggle_snr_from_ratios([self.kaggle_ratio])


@dataclass(frozen=True)
class EvaluationReport:
    """Result of :func:`evaluate_folders`.

    Attributes
    ----------
    snr : float
        Challenge 2024 SNR (dB), official: NaN-ignoring mean over every (record, lead) pair.
    snr_corrected : float
        The same with the negative-lag correction.
    kaggle_snr : float
        Kaggle 2025 SNR (dB) over the records (pages).
    f_measure : float or None
        Challenge macro F-measure when references and at least one estimate carry labels.
    f_measure_per_class : dict
        F1 per class (empty without labels).
    records : list of RecordScore
        Per-record scores, in sorted record order.
    """

    snr: float
    snr_corrected: float
    kaggle_snr: float
    f_measure: float | None
    f_measure_per_class: dict[str, float]
    records: list[RecordScore] = field(default_factory=list)
    reference_dir: str = ""
    estimate_dir: str = ""

    @property
    def n_missing(self) -> int:
        return sum(r.status == "missing" for r in self.records)

    def per_lead(self) -> dict[str, dict[str, float]]:
        """``{lead: {"snr", "snr_corrected", "n"}}``: means over records, per lead."""
        leads: list[str] = []
        for r in self.records:
            leads.extend(lead for lead in r.snr if lead not in leads)
        out: dict[str, dict[str, float]] = {}
        for lead in leads:
            off = [r.snr[lead] for r in self.records if lead in r.snr]
            cor = [r.snr_corrected[lead] for r in self.records if lead in r.snr_corrected]
            out[lead] = {"snr": mean_snr(off), "snr_corrected": mean_snr(cor), "n": len(off)}
        return out

    def per_group(self) -> dict[str, dict[str, float]]:
        """``{group: {"snr", "snr_corrected", "kaggle_snr", "n_records", "n_missing"}}``."""
        groups: dict[str, list[RecordScore]] = {}
        for r in self.records:
            groups.setdefault(r.group, []).append(r)
        return {
            g: {
                "snr": mean_snr([v for r in rs for v in r.snr.values()]),
                "snr_corrected": mean_snr([v for r in rs for v in r.snr_corrected.values()]),
                "kaggle_snr": kaggle_snr_from_ratios([r.kaggle_ratio for r in rs]),
                "n_records": len(rs),
                "n_missing": sum(r.status == "missing" for r in rs),
            }
            for g, rs in sorted(groups.items())
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN → None) with the overall scores and every table."""
        out: dict[str, Any] = {
            "snr": self.snr,
            "snr_corrected": self.snr_corrected,
            "kaggle_snr": self.kaggle_snr,
        }
        if self.f_measure is not None:
            out["f_measure"] = self.f_measure
            out["f_measure_per_class"] = dict(self.f_measure_per_class)
        out.update(
            {
                "reference_dir": self.reference_dir,
                "estimate_dir": self.estimate_dir,
                "n_records": len(self.records),
                "n_missing": self.n_missing,
                "per_lead": self.per_lead(),
                "per_group": self.per_group(),
                "per_record": [
                    {
                        "record": r.record,
                        "group": r.group,
                        "status": r.status,
                        "estimate": r.estimate,
                        "snr": r.mean_snr,
                        "snr_corrected": r.mean_snr_corrected,
                        "kaggle_snr": r.kaggle_snr,
                        "snr_per_lead": dict(r.snr),
                        "snr_corrected_per_lead": dict(r.snr_corrected),
                        "lag_per_lead": dict(r.lags),
                        "labels": list(r.labels),
                        "predicted_labels": list(r.predicted_labels),
                    }
                    for r in self.records
                ],
            }
        )
        return _json_ready(out)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _find_references(reference_dir: Path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(reference_dir):
        for f in files:
            if f.endswith(".hea"):
                rel = (Path(root) / f).relative_to(reference_dir).as_posix()
                found.append(rel[: -len(".hea")])
    return sorted(set(found))


def find_estimate(estimate_dir: str | os.PathLike[str], record: str) -> Path | None:
    """The estimate record (path without suffix) for a reference's relative path, or None.

    Tries ``<record>``, ``<record>-0``, then ``<name>`` and ``<name>-0`` at the top of
    ``estimate_dir`` (see the module docstring).
    """
    base = Path(estimate_dir)
    rel = Path(record)
    candidates = [rel, rel.with_name(rel.name + "-0"), Path(rel.name), Path(rel.name + "-0")]
    for cand in candidates:
        if (base / cand).with_name(cand.name + ".hea").is_file():
            return base / cand
    return None


def _check_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{what} folder {str(path)!r} not found; give an existing folder")
    if not path.is_dir():
        raise EcgscanError(f"{what} path {str(path)!r} is not a folder; give a folder of records")


def evaluate_folders(
    reference_dir: str | os.PathLike[str], estimate_dir: str | os.PathLike[str]
) -> EvaluationReport:
    """Score every WFDB record of ``reference_dir`` against its estimate in ``estimate_dir``.

    Computes the Challenge 2024 SNR (official and with the negative-lag correction, see
    :func:`ecgscan.metrics.challenge_snr`), the Kaggle 2025 SNR (one page per record) and, when
    the references carry ``# Labels:`` comments, the Challenge macro F-measure as the Challenge's
    ``evaluate_model`` does: over the records with reference labels, counting a record without
    estimated labels as predicting none, and only if at least one estimate has labels.

    Parameters
    ----------
    reference_dir : path
        Folder of reference WFDB records (searched recursively; sub-folders are groups).
    estimate_dir : path
        Folder of estimated records, matched by relative path and record name (module docstring).

    Returns
    -------
    EvaluationReport

    Raises
    ------
    FileNotFoundError
        A folder or a record's data file is missing.
    EcgscanError
        No reference record, or a record that cannot be read (names the file), or an estimate
        at another sampling frequency than its reference.
    """
    from ..data.record import Record

    ref_dir, est_dir = Path(reference_dir), Path(estimate_dir)
    _check_dir(ref_dir, "reference")
    _check_dir(est_dir, "estimate")
    names = _find_references(ref_dir)
    if not names:
        raise EcgscanError(
            f"no WFDB record (.hea file) found in reference folder {str(ref_dir)!r}; give the "
            "folder that holds the reference records"
        )
    records: list[RecordScore] = []
    for name in names:
        reference = Record.from_wfdb(ref_dir / name)
        est_path = find_estimate(est_dir, name)
        estimate = None if est_path is None else Record.from_wfdb(est_path)
        try:
            official, corrected, alignments = _scores(reference, estimate)
            ratio = kaggle_page_ratio(reference, estimate)
        except EcgscanError as exc:
            raise type(exc)(f"{est_path}: {exc}") from None
        group = Path(name).parent.as_posix()
        records.append(
            RecordScore(
                record=name,
                group=group,
                status="missing" if estimate is None else "ok",
                estimate=None if est_path is None else str(est_path),
                snr=official,
                snr_corrected=corrected,
                kaggle_ratio=ratio,
                lags={k: (None if a is None else a.lag) for k, a in alignments.items()},
                labels=tuple(reference.labels),
                predicted_labels=() if estimate is None else tuple(estimate.labels),
            )
        )
    labelled = [r for r in records if any(r.labels)]
    f_measure: float | None = None
    per_class: dict[str, float] = {}
    if labelled and any(any(r.predicted_labels) for r in labelled):
        f_measure, per_class = challenge_f_measure(
            [list(r.labels) for r in labelled], [list(r.predicted_labels) for r in labelled]
        )
    return EvaluationReport(
        snr=mean_snr([v for r in records for v in r.snr.values()]),
        snr_corrected=mean_snr([v for r in records for v in r.snr_corrected.values()]),
        kaggle_snr=kaggle_snr_from_ratios([r.kaggle_ratio for r in records]),
        f_measure=f_measure,
        f_measure_per_class=per_class,
        records=records,
        reference_dir=str(ref_dir),
        estimate_dir=str(est_dir),
    )
