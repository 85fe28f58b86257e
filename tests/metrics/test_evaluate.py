"""evaluate_folders and ``ecgscan evaluate`` end to end on real WFDB folders."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from _shared import shared_path
from ecgscan.cli import main
from ecgscan.data import Record, read_record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.metrics import challenge_snr, evaluate_folders, kaggle_snr, mean_snr


def _shifted(rec: Record, k: int, sigma: float, seed: int, **changes: object) -> Record:
    rng = np.random.default_rng(seed)
    sig = np.roll(rec.signal, k, axis=0) + sigma * rng.standard_normal(rec.signal.shape)
    return rec.with_signal(sig, **changes)


def _write(rec: Record, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rec.to_wfdb(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Record]]:
    """Reference folder with groups A (2 records) and B (1), and estimates: noisy, early
    (named after the page image, <name>-0), and missing."""
    root = tmp_path_factory.mktemp("evaluate")
    ref_dir, est_dir = root / "ref", root / "est"
    refs = {
        "A/r1": synthetic_ecg(fs=100, duration=3, seed=1, name="r1").with_leads(
            ["I", "II", "V1", "V5"]
        ),
        "A/r2": synthetic_ecg(fs=100, duration=3, seed=2, name="r2").with_leads(
            ["I", "II", "V1", "V5"]
        ),
        "B/r3": synthetic_ecg(fs=100, duration=3, seed=3, name="r3").with_leads(
            ["I", "II", "V1", "V5"]
        ),
    }
    labels = {"A/r1": ("NORM",), "A/r2": ("MI", "STTC"), "B/r3": ("STTC",)}
    for name, rec in refs.items():
        refs[name] = rec.with_signal(rec.signal, labels=labels[name])
        _write(refs[name], ref_dir / name)
    _write(_shifted(refs["A/r1"], 0, 0.03, 1, labels=("NORM",)), est_dir / "A" / "r1")
    _write(_shifted(refs["A/r2"], -6, 0.03, 2, labels=("MI",)), est_dir / "A" / "r2-0")
    return ref_dir, est_dir, refs


def test_evaluate_folders_equals_the_per_record_scores(
    folders: tuple[Path, Path, dict[str, Record]],
) -> None:
    ref_dir, est_dir, refs = folders
    report = evaluate_folders(ref_dir, est_dir)
    assert [r.record for r in report.records] == ["A/r1", "A/r2", "B/r3"]
    assert [r.status for r in report.records] == ["ok", "ok", "missing"]
    # independent recomputation from the files, per record
    ests = {
        "A/r1": read_record(est_dir / "A" / "r1"),
        "A/r2": read_record(est_dir / "A" / "r2-0"),
        "B/r3": None,
    }
    stored_refs = {name: read_record(ref_dir / name) for name in refs}
    official = [v for n in refs for v in challenge_snr(stored_refs[n], ests[n]).values()]
    fixed = [
        v for n in refs for v in challenge_snr(stored_refs[n], ests[n], corrected=True).values()
    ]
    assert report.snr == pytest.approx(mean_snr(official), abs=1e-12)
    assert report.snr_corrected == pytest.approx(mean_snr(fixed), abs=1e-12)
    assert report.kaggle_snr == pytest.approx(
        kaggle_snr([(stored_refs[n], ests[n]) for n in refs]), abs=1e-12
    )
    missing = report.records[2]
    assert missing.snr == dict.fromkeys(missing.snr, 0.0)
    # the early estimate: official scoring collapses it, the correction does not
    early = report.records[1]
    assert early.mean_snr_corrected > early.mean_snr + 5
    # labels: NORM 1, MI 1, STTC 0 (r2 misses it, r3 has no estimate)
    assert report.f_measure == pytest.approx(2 / 3)
    groups = report.per_group()
    assert list(groups) == ["A", "B"] and groups["B"]["n_missing"] == 1
    assert groups["B"]["snr"] == 0.0


def test_cli_prints_tables_and_writes_json(
    folders: tuple[Path, Path, dict[str, Record]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref_dir, est_dir, _ = folders
    out = tmp_path / "scores.json"
    code = main(["evaluate", "--reference", str(ref_dir), "--estimate", str(est_dir),
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "Challenge SNR (official)" in text and "Kaggle SNR" in text
    assert "B/r3" in text and "missing" in text and "F-measure" in text
    data = json.loads(out.read_text())
    for key in ("snr", "snr_corrected", "kaggle_snr", "f_measure", "per_lead", "per_group",
                "per_record"):  # fmt: skip
        assert key in data
    assert data["per_record"][2]["status"] == "missing"
    assert data["per_record"][2]["snr"] == 0.0
    assert set(data["per_lead"]) == {"I", "II", "V1", "V5"}
    assert data["snr"] == pytest.approx(evaluate_folders(ref_dir, est_dir).snr)


def test_cli_bad_input_fails_cleanly(
    folders: tuple[Path, Path, dict[str, Record]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref_dir, est_dir, _ = folders
    broken = tmp_path / "est"
    shutil.copytree(est_dir, broken)
    dat = broken / "A" / "r1.dat"
    dat.write_bytes(dat.read_bytes()[:100])  # truncated data file
    out = tmp_path / "scores.json"
    code = main(["evaluate", "--reference", str(ref_dir), "--estimate", str(broken),
                 "--json", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "r1" in err and "Traceback" not in err
    assert not out.exists()

    code = main(["evaluate", "--reference", str(tmp_path / "nope"), "--estimate", str(est_dir)])
    assert code == 2 and "not found" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["evaluate", "--reference", str(empty), "--estimate", str(est_dir),
                 "--json", str(out)])  # fmt: skip
    assert code == 2 and "no WFDB record" in capsys.readouterr().err
    assert not out.exists()

    (broken / "A" / "r1.dat").unlink()  # header without data file
    code = main(["evaluate", "--reference", str(ref_dir), "--estimate", str(broken)])
    assert code == 2 and "r1" in capsys.readouterr().err


def test_fs_mismatch_names_the_estimate(
    folders: tuple[Path, Path, dict[str, Record]], tmp_path: Path
) -> None:
    ref_dir, _, refs = folders
    est = tmp_path / "est"
    _write(refs["A/r1"].resample(200), est / "A" / "r1")
    from ecgscan.errors import RecordError

    with pytest.raises(RecordError, match=r"r1.*200 Hz"):
        evaluate_folders(ref_dir, est)


def test_real_challenge_reference_against_a_flat_estimate_folder(tmp_path: Path) -> None:
    eik = shared_path("images", "eik-dev")
    ref_dir = tmp_path / "ref" / "A_clean"
    ref_dir.mkdir(parents=True)
    for suffix in (".hea", ".dat"):
        shutil.copy(eik / "A_clean" / f"00017_hr{suffix}", ref_dir)
    ref = read_record(ref_dir / "00017_hr")
    est = _shifted(ref, 3, 0.02, 9)  # a little late; printed segments keep their NaN gaps
    _write(est, tmp_path / "est" / "00017_hr-0")  # flat folder, named after the page image
    report = evaluate_folders(tmp_path / "ref", tmp_path / "est")
    (rec,) = report.records
    assert rec.status == "ok" and rec.estimate is not None and rec.estimate.endswith("-0")
    assert all(lag in (2, 3, 4) for lag in rec.lags.values())
    assert 10 < report.snr == report.snr_corrected
    assert math.isfinite(report.kaggle_snr) and report.kaggle_snr > 10
    assert report.f_measure is None  # eik-dev references carry no labels
