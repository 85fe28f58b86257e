from __future__ import annotations

import numpy as np
import pytest

from ecgscan.classify import encode_signals, prepare_record
from ecgscan.data import LEADS, Record
from ecgscan.errors import RecordError


def test_missing_leads_become_nan_and_are_named(example_record: Record) -> None:
    rec = example_record.with_leads(["I", "II", "V1"])
    prep = prepare_record(rec, fs=100)
    assert prep.signal.shape == (12, 1000)
    assert set(prep.missing_leads) == set(LEADS) - {"I", "II", "V1"}
    assert np.isnan(prep.signal[LEADS.index("V6")]).all()
    assert np.isfinite(prep.signal[LEADS.index("V1")]).all()


def test_wrong_fs_is_resampled(example_record: Record) -> None:
    prep = prepare_record(example_record, fs=100)
    assert prep.resampled_from == 500
    direct = example_record.resample(100)
    np.testing.assert_allclose(prep.signal, direct.signal.T.astype(np.float32), atol=1e-5)


def test_short_records_are_padded(example_record: Record) -> None:
    short = example_record.with_signal(example_record.signal[:500])  # 1 s at 500 Hz
    prep = prepare_record(short, fs=100)
    assert prep.signal.shape == (12, 250)
    assert np.isnan(prep.signal[:, 100:]).all()


def test_a_record_without_any_lead_is_refused() -> None:
    rec = Record(np.full((1000, 12), np.nan), fs=100, leads=LEADS, name="empty")
    with pytest.raises(RecordError, match="'empty' has no usable standard lead"):
        prepare_record(rec, fs=100)


def test_encoding_masks_unknown_samples() -> None:
    x = np.ones((1, 12, 8), dtype=np.float32)
    x[0, 3, 2:5] = np.nan
    z = encode_signals(x, mean=[1.0] * 12, std=[2.0] * 12)
    assert z.shape == (1, 24, 8)
    assert np.all(z[0, :12] == 0)  # (1 - 1) / 2, and NaN -> 0
    assert z[0, 12 + 3, 2:5].tolist() == [0, 0, 0]
    assert z[0, 12 + 3, :2].tolist() == [1, 1]
    with pytest.raises(RecordError, match="batch, 12"):
        encode_signals(np.ones((1, 11, 8)), mean=[0] * 12, std=[1] * 12)
