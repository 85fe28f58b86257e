from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscan.data import LEADS, Record, normalize_lead_name, read_record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.errors import InputFileError, RecordError


@pytest.mark.parametrize(
    ("given", "expected"),
    [("AVR", "aVR"), ("avl", "aVL"), ("aVF", "aVF"), ("v1", "V1"), (" ii ", "II"), ("III", "III")],
)
def test_lead_aliases_are_normalised(given: str, expected: str) -> None:
    assert normalize_lead_name(given) == expected


def test_unknown_lead_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(RecordError, match="unknown lead name 'X7'.*aVR"):
        Record(np.zeros((10, 1)), fs=100, leads=["X7"])


@pytest.mark.parametrize("fs", [0, -5, float("nan"), "abc"])
def test_bad_fs_is_rejected(fs: object) -> None:
    with pytest.raises(RecordError, match="fs must be a positive number"):
        Record(np.zeros((10, 1)), fs=fs, leads=["I"])  # type: ignore[arg-type]


def test_lead_count_must_match_columns() -> None:
    with pytest.raises(RecordError, match="2 lead column.*1 lead name"):
        Record(np.zeros((10, 2)), fs=100, leads=["I"])


def test_inf_and_duplicates_are_rejected() -> None:
    with pytest.raises(RecordError, match="inf"):
        Record(np.full((10, 1), np.inf), fs=100, leads=["I"])
    with pytest.raises(RecordError, match="given twice: I"):
        Record(np.zeros((10, 2)), fs=100, leads=["I", "i"])


def test_all_nan_is_flagged_by_require_finite() -> None:
    rec = Record(np.full((10, 12), np.nan), fs=100, leads=LEADS, name="empty")
    assert rec.missing_leads == LEADS
    with pytest.raises(RecordError, match="all NaN"):
        rec.require_finite()


def test_signal_is_read_only(example_record: Record) -> None:
    with pytest.raises(ValueError, match="read-only"):
        example_record.signal[0, 0] = 1.0


def test_synthetic_noise_is_band_limited_and_has_the_asked_size() -> None:
    noisy = synthetic_ecg(fs=500, duration=10, seed=2, noise_mv=0.02)
    clean = synthetic_ecg(fs=500, duration=10, seed=2, noise_mv=0.0)
    noise = noisy.lead("I") - clean.lead("I")  # lead I is the dipole's x axis
    assert noise.std() == pytest.approx(0.02, rel=0.05)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(noise.size, d=1 / 500)
    assert power[freqs > 60].sum() < 0.01 * power.sum()  # drawable: nothing near 250 Hz


def test_synthetic_limb_leads_obey_einthoven(example_record: Record) -> None:
    ii = example_record.lead("II")
    assert np.allclose(ii, example_record.lead("I") + example_record.lead("III"))
    assert np.allclose(example_record.lead("aVR"), -(example_record.lead("I") + ii) / 2)
    assert synthetic_ecg(seed=1) == synthetic_ecg(seed=1)
    assert synthetic_ecg(seed=1) != synthetic_ecg(seed=2)


def test_wfdb_round_trip_keeps_nan_labels_and_metadata(tmp_path: Path) -> None:
    sig = synthetic_ecg(fs=500, duration=2, seed=0).signal.copy()
    sig[100:300, 3] = np.nan
    rec = Record(sig, fs=500, leads=LEADS, name="r1", labels=["NORM", "CD"], age=61, sex="F")
    base = rec.to_wfdb(tmp_path / "r1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.dat", "r1.hea"]
    back = read_record(base)
    assert back.labels == ("NORM", "CD") and back.age == 61 and back.sex == "Female"
    assert np.array_equal(np.isnan(back.signal), np.isnan(sig))
    assert np.nanmax(np.abs(back.signal - sig)) <= 0.0005 + 1e-12  # µV quantisation
    assert "# Labels: NORM, CD" in (tmp_path / "r1.hea").read_text()


def test_wfdb_read_matches_wfdb_reference_tool(tmp_path: Path) -> None:
    import wfdb

    rec = synthetic_ecg(fs=250, duration=1, seed=5, name="ref")
    base = rec.to_wfdb(tmp_path / "ref")
    ref = wfdb.rdrecord(str(base))
    assert ref.sig_name == list(LEADS) and ref.fs == 250
    assert np.allclose(read_record(base).signal, ref.p_signal)


def test_truncated_and_missing_wfdb_files_are_named(tmp_path: Path) -> None:
    rec = synthetic_ecg(fs=100, duration=2, seed=0)
    base = rec.to_wfdb(tmp_path / "t")
    dat = tmp_path / "t.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(InputFileError, match=r"t'.*(truncated|corrupt)"):
        read_record(base)
    dat.unlink()
    with pytest.raises(FileNotFoundError, match="data file missing"):
        read_record(base)
    with pytest.raises(FileNotFoundError, match="nothere.hea"):
        read_record(tmp_path / "nothere")


def test_corrupt_header_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(InputFileError, match="bad"):
        read_record(tmp_path / "bad")


def test_csv_round_trip_and_units(tmp_path: Path) -> None:
    rec = synthetic_ecg(fs=500, duration=1, seed=2).with_leads(["I", "II", "V1"])
    path = rec.to_csv(tmp_path / "r.csv")
    assert path.read_text().splitlines()[0] == "time_s,I_mV,II_mV,V1_mV"
    back = read_record(path)
    assert back.fs == 500 and back.leads == ("I", "II", "V1")
    assert np.allclose(back.signal, rec.signal, atol=1e-4)
    (tmp_path / "uv.csv").write_text("I_uV,AVR_uV\n1000,-500\n2000,nan\n")
    uv = read_record(tmp_path / "uv.csv", fs=100)
    assert uv.leads == ("I", "aVR") and uv.signal[0].tolist() == [1.0, -0.5]


def test_csv_without_header_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "nohead.csv").write_text("0.1,0.2\n0.3,0.4\n")
    with pytest.raises(InputFileError, match="no header row"):
        read_record(tmp_path / "nohead.csv", fs=100)


def test_json_round_trip(tmp_path: Path, example_record: Record) -> None:
    sig = example_record.signal.copy()
    sig[:10, 0] = np.nan
    rec = example_record.with_signal(sig, labels=("AFIB/AFL",))
    back = read_record(rec.to_json(tmp_path / "r.json"))
    assert back == rec


def test_with_leads_fills_missing_with_nan(example_record: Record) -> None:
    sub = example_record.with_leads(["II", "V5"]).standard()
    assert sub.leads == LEADS
    assert sub.missing_leads == tuple(n for n in LEADS if n not in {"II", "V5"})


def test_resample_round_trip_is_accurate(example_record: Record) -> None:
    down = example_record.resample(100)
    assert down.fs == 100 and down.n_samples == 1000
    up = down.resample(500)
    # Compare away from the edges: a 100 Hz ECG holds everything below 50 Hz.
    ref = example_record.signal[100:-100]
    err = up.signal[100:-100] - ref
    snr = 10 * np.log10(np.sum(ref**2) / np.sum(err**2))
    assert snr > 20


def test_resample_keeps_nan_gaps_in_place() -> None:
    t = np.arange(1000) / 100
    sig = np.sin(2 * np.pi * t)[:, None].copy()
    sig[250:500] = np.nan
    out = Record(sig, fs=100, leads=["I"]).resample(500, n_samples=5000)
    nan = np.isnan(out.signal[:, 0])
    assert nan[1255:2495].all() and not nan[:1240].any() and not nan[2510:].any()
    assert out.n_samples == 5000
    assert np.allclose(out.signal[~nan, 0], np.sin(2 * np.pi * out.time[~nan]), atol=0.05)
