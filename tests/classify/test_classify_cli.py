"""`ecgscan classify` on real WFDB records: the CSV format and the error paths."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ecgscan.cli import main
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL


@pytest.fixture(scope="module")
def ptbxl_db(ptbxl_dir: Path) -> PTBXL:
    """The PTB-XL folder, parsed once per module."""
    return PTBXL(ptbxl_dir)


@pytest.fixture
def records(ptbxl_db: PTBXL, tmp_path: Path) -> Path:
    db = ptbxl_db
    folder = tmp_path / "in"
    folder.mkdir()
    ids = db.ecg_ids(folds=[9])[:3]
    for e in ids:
        rec = db.record(e)
        if e == ids[0]:
            rec = rec.with_leads(["I", "II", "V1", "V2"])
        rec.to_wfdb(folder / rec.name)
    return folder


def test_csv_has_one_row_per_record_and_one_column_per_label(
    records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    assert main(["classify", str(records), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "missing leads III, aVR" in err
    rows = list(csv.DictReader(out.read_text().splitlines()))
    header = list(rows[0])
    assert header == ["record", "labels", *CHALLENGE_LABELS, "missing_leads", "heart_rate"]
    assert [r["record"] for r in rows] == sorted(p.stem for p in records.glob("*.hea"))
    for row in rows:
        labels = [x for x in row["labels"].split("|") if x]
        assert set(labels) <= set(CHALLENGE_LABELS)
        assert all(0.0 <= float(row[n]) <= 1.0 for n in CHALLENGE_LABELS)
    assert rows[0]["missing_leads"].split() == ["III", "aVR", "aVL", "aVF", "V3", "V4", "V5", "V6"]
    assert all(30 < float(row["heart_rate"]) < 200 for row in rows)  # real PTB-XL records


def test_without_output_the_csv_goes_to_stdout(
    records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = sorted(records.glob("*.hea"))[1]
    assert main(["classify", str(one), "--threshold", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].split(",")[1] == "|".join(CHALLENGE_LABELS)


def test_errors_are_one_line_and_leave_no_file(
    records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    assert main(["classify", str(records), str(tmp_path / "nope"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input") and "nope" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["classify", str(records), "--model", "resnet9000"]) == 2
    assert "unknown classifier" in capsys.readouterr().err
    assert main(["classify", str(records), "--threshold", "3"]) == 2
