"""Digitization and classification metrics of the PhysioNet Challenge 2024 and Kaggle 2025.

- :func:`challenge_snr` — per-lead Challenge 2024 SNR (official scoring, or ``corrected=True``);
  :func:`challenge_alignment` — its alignment search, shared by both variants.
- :func:`kaggle_snr`, :func:`kaggle_page_ratio` — the Kaggle 2025 "Digitization of ECG Images" SNR.
- :func:`challenge_f_measure`, :func:`auroc` — classification metrics.
- :func:`evaluate_folders` — score a folder of estimates against a folder of references
  (the ``ecgscan evaluate`` command), returning an :class:`EvaluationReport`.
"""

from ._classification import auroc, challenge_f_measure
from ._evaluate import EvaluationReport, RecordScore, evaluate_folders, find_estimate
from ._kaggle import KAGGLE_MAX_RATIO, kaggle_align, kaggle_page_ratio, kaggle_snr
from ._snr import (
    ChallengeAlignment,
    challenge_alignment,
    challenge_lead_snr,
    challenge_snr,
    mean_snr,
)

__all__ = [
    "KAGGLE_MAX_RATIO",
    "ChallengeAlignment",
    "EvaluationReport",
    "RecordScore",
    "auroc",
    "challenge_alignment",
    "challenge_f_measure",
    "challenge_lead_snr",
    "challenge_snr",
    "evaluate_folders",
    "find_estimate",
    "kaggle_align",
    "kaggle_page_ratio",
    "kaggle_snr",
    "mean_snr",
]
