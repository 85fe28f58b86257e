"""The shipped signal model through the public API, on real PTB-XL records."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import ecgscan
from ecgscan.classify import Prediction, classify, load_classifier
from ecgscan.data import LEADS, Record
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import DigitizationError, EcgscanError, RecordError


@pytest.fixture(scope="module")
def ptbxl_db(ptbxl_dir: Path) -> PTBXL:
    """The PTB-XL folder, parsed once per module."""
    return PTBXL(ptbxl_dir)


@pytest.fixture(scope="module")
def fold9(ptbxl_db: PTBXL) -> list[Record]:
    db = ptbxl_db
    return [db.record(e) for e in db.ecg_ids(folds=[9])[:60]]


def test_shipped_model_separates_normal_from_abnormal(fold9: list[Record]) -> None:
    clf = load_classifier("signal")
    assert clf.labels == CHALLENGE_LABELS
    preds = [classify(rec, model="signal") for rec in fold9]
    assert all(isinstance(p, Prediction) and p.model == "signal" for p in preds)
    norm = np.array(["NORM" in r.labels for r in fold9])
    p_norm = np.array([p.probabilities["NORM"] for p in preds])
    # AUROC of NORM on 60 held-out records (fold 9 was never used for training or selection)
    auc = (p_norm[norm][:, None] > p_norm[~norm][None, :]).mean()
    assert auc > 0.85
    for p in preds:
        chosen = {n for n in CHALLENGE_LABELS if p.probabilities[n] >= p.thresholds[n]}
        assert set(p.labels) == chosen
        assert all(0.0 <= v <= 1.0 for v in p.probabilities.values())
        assert set(p.superclass_probabilities) == {"NORM", "MI", "STTC", "CD", "HYP"}


def test_inference_is_fast(fold9: list[Record]) -> None:
    clf = load_classifier("signal")
    clf.predict(fold9[0])  # warm-up
    t0 = time.perf_counter()
    for rec in fold9[:20]:
        clf.predict(rec)
    assert (time.perf_counter() - t0) / 20 < 0.2


def test_paths_records_and_top_level_api_agree(fold9: list[Record], tmp_path: Path) -> None:
    rec = fold9[0]
    base = rec.to_wfdb(tmp_path / rec.name)
    by_path = classify(base)
    by_record = ecgscan.classify(rec)
    assert by_path.record == rec.name
    for name in CHALLENGE_LABELS:  # WFDB stores µV: tiny rounding only
        assert by_path.probabilities[name] == pytest.approx(by_record.probabilities[name], abs=1e-3)


def test_missing_leads_are_classified_and_reported(fold9: list[Record]) -> None:
    rec = fold9[1]
    six = rec.with_leads(["I", "II", "III", "aVR", "aVL", "aVF"])
    pred = classify(six)
    assert pred.missing_leads == ("V1", "V2", "V3", "V4", "V5", "V6")
    gappy = rec.signal.copy()
    gappy[200:600, :] = np.nan
    assert classify(rec.with_signal(gappy)).missing_leads == ()
    with pytest.raises(RecordError, match="no usable standard lead"):
        classify(rec.with_signal(np.full_like(gappy, np.nan)))


def test_other_sampling_rates_are_resampled(ptbxl_db: PTBXL) -> None:
    db = ptbxl_db
    ecg_id = next(e for e in db.ecg_ids(folds=[9], fs=500) if e <= 500)
    hi, lo = db.record(ecg_id, fs=500), db.record(ecg_id, fs=100)
    p_hi, p_lo = classify(hi), classify(lo)
    assert p_hi.resampled_from == 500 and p_lo.resampled_from is None
    diff = max(abs(p_hi.probabilities[n] - p_lo.probabilities[n]) for n in CHALLENGE_LABELS)
    assert diff < 0.1


def test_threshold_overrides(fold9: list[Record]) -> None:
    rec = fold9[2]
    assert classify(rec, thresholds=0.0).labels == CHALLENGE_LABELS
    base = classify(rec)
    strict = classify(rec, thresholds={"norm": 1.0})  # label names are case-insensitive
    assert strict.thresholds["NORM"] == 1.0
    assert strict.thresholds["STTC"] == base.thresholds["STTC"]
    assert ("NORM" in strict.labels) == (base.probabilities["NORM"] >= 1.0)
    with pytest.raises(
        EcgscanError, match=r"threshold for thresholds must be a number in \[0, 1\]"
    ):
        classify(rec, thresholds=2.0)


def test_unknown_model_and_bad_input() -> None:
    with pytest.raises(EcgscanError, match="unknown classifier"):
        load_classifier("nope")
    with pytest.raises(TypeError, match="classify\\(\\) takes a Record"):
        classify(42)


def test_an_image_that_is_not_an_ecg_raises_the_digitizers_error(tmp_path: Path) -> None:
    import importlib

    if not hasattr(importlib.import_module("ecgscan.digitize"), "digitize"):
        pytest.skip("ecgscan.digitize.digitize is not available yet")
    from PIL import Image

    Image.fromarray(np.full((700, 1000, 3), 255, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(DigitizationError, match="ECG"):
        classify(tmp_path / "blank.png")


def test_leads_in_any_order_and_spelling(fold9: list[Record]) -> None:
    rec = fold9[3]
    order = list(reversed(LEADS))
    shuffled = Record(rec.with_leads(order).signal, fs=rec.fs, leads=[n.upper() for n in order])
    a, b = classify(rec), classify(shuffled)
    assert a.probabilities == b.probabilities


def test_an_ecg_image_is_digitized_then_classified() -> None:
    import importlib

    from _shared import shared_path

    if not hasattr(importlib.import_module("ecgscan.digitize"), "digitize"):
        pytest.skip("ecgscan.digitize.digitize is not available yet")
    page = shared_path("images", "eik-dev", "A_clean", "00017_hr-0.png")
    pred = classify(page)
    assert pred.record == "00017_hr-0"
    assert pred.resampled_from is not None  # the digitizer's fs, not the model's
    assert set(pred.probabilities) == set(CHALLENGE_LABELS)
