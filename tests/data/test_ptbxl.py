"""PTB-XL reading and the Challenge 2024 labels, against the real PTB-XL 1.0.3 / PTB-XL+ 1.0.1.

Expected labels of single records were checked by hand against their rows in
ptbxl_database.csv, scp_statements.csv and 12sl_statements.csv (quoted in the comments); the
counts are those of the official rule (physionetchallenges/python-example-2024,
prepare_ptbxl_data.py) on all 21,799 records.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _shared import shared_path
from ecgscan.cli import main
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import (
    PTBXL,
    PTBXLError,
    acute_mi_acronyms,
    challenge_labels,
    read_12sl_mapping,
)
from ecgscan.errors import InputFileError

N_RECORDS = 21799
# Counts of the official derivation (PTB-XL 1.0.3 + PTB-XL+ 1.0.1).
EXPECTED_COUNTS = {
    "NORM": 9514, "Acute MI": 209, "Old MI": 5310, "STTC": 5235, "CD": 4898, "HYP": 2649,
    "PAC": 398, "PVC": 1143, "AFIB/AFL": 1570, "TACHY": 867, "BRADY": 637,
}  # fmt: skip
N_WITHOUT_LABEL = 284
N_MI_SUPERCLASS = 5469  # = Old MI without PTB-XL+

# ecg_id -> (labels with PTB-XL+, labels without), verified by hand from the raw rows.
SPOT_CHECKS = {
    # scp {'AMI': 50, 'IRBBB': 100, 'SR': 0}; 12SL ['NSR', 'AIOHAI', 'STEMI', 'AB']
    77: (("Acute MI", "CD"), ("Old MI", "CD")),
    # scp {'LNGQT': 100, 'SR': 0} (LNGQT is STTC); 12SL ['SBRAD', ..., 'STEMI', 'AB']:
    # Acute MI without the MI superclass, and a 12SL-only SBRAD does not make BRADY
    320: (("Acute MI", "STTC"), ("STTC",)),
    # scp {'IMI': 35, 'ABQRS': 0, 'SR': 0}; 12SL without acute statement -> Old MI
    8: (("Old MI",), ("Old MI",)),
    # scp {'AFLT': 100, 'ABQRS': 0, 'AFIB': 0}
    17: (("AFIB/AFL",), ("AFIB/AFL",)),
    # scp {'PACE': 100}: no label at all
    144: ((), ()),
    # scp {'ASMI': 50, 'NST_': 0, 'STACH': 0}: likelihood 0 counts (NST_ -> STTC, STACH)
    263: (("Old MI", "STTC", "TACHY"), ("Old MI", "STTC", "TACHY")),
    # scp {'LVH': 50, 'ISC_': 50, 'EL': 100, 'PVC': 100, 'PAC': 0, ...}
    316: (("STTC", "HYP", "PAC", "PVC"), ("STTC", "HYP", "PAC", "PVC")),
    # scp {'PSVT': 100, 'NST_': 0, 'SVTAC': 0}
    1919: (("STTC", "TACHY"), ("STTC", "TACHY")),
    # scp {'NORM': 100, 'SBRAD': 0}
    2: (("NORM", "BRADY"), ("NORM", "BRADY")),
}


@pytest.fixture(scope="module")
def plus_dir() -> Path:
    return shared_path("data", "ptb-xl-plus")


@pytest.fixture(scope="module")
def ptbxl(ptbxl_dir: Path, plus_dir: Path) -> PTBXL:
    return PTBXL(ptbxl_dir, ptbxl_plus=plus_dir)


@pytest.fixture(scope="module")
def small_dir(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The metadata of ecg_id 1-400 without any signal file."""
    out = tmp_path_factory.mktemp("ptbxl-small")
    frame = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    frame.loc[:400].to_csv(out / "ptbxl_database.csv")
    shutil.copyfile(ptbxl_dir / "scp_statements.csv", out / "scp_statements.csv")
    return out


# --------------------------------------------------------------------------- the label rule
def test_counts_match_the_official_derivation(ptbxl: PTBXL) -> None:
    labels = ptbxl.challenge_labels
    assert len(labels) == N_RECORDS and ptbxl.has_acute_mi
    counts = Counter(label for record_labels in labels for label in record_labels)
    assert dict(counts) == EXPECTED_COUNTS
    assert sum(1 for record_labels in labels if not record_labels) == N_WITHOUT_LABEL
    # every tuple is in canonical order, without duplicates
    order = {name: i for i, name in enumerate(CHALLENGE_LABELS)}
    assert all(list(t) == sorted(set(t), key=order.__getitem__) for t in labels)


@pytest.mark.parametrize("ecg_id", sorted(SPOT_CHECKS))
def test_spot_checks(ptbxl: PTBXL, ecg_id: int) -> None:
    assert ptbxl.challenge_labels[ecg_id] == SPOT_CHECKS[ecg_id][0]


def test_without_ptbxl_plus_every_mi_is_old_mi(ptbxl: PTBXL) -> None:
    labels = challenge_labels(ptbxl.database, ptbxl.scp_statements)
    counts = Counter(label for record_labels in labels for label in record_labels)
    assert counts["Acute MI"] == 0 and counts["Old MI"] == N_MI_SUPERCLASS
    assert counts["NORM"] == EXPECTED_COUNTS["NORM"]
    for ecg_id, (_, without) in SPOT_CHECKS.items():
        assert labels[ecg_id] == without, ecg_id


def test_acute_mi_acronyms_of_the_v23_mapping(plus_dir: Path) -> None:
    mapping = read_12sl_mapping(plus_dir / "labels" / "mapping" / "12slv23ToSNOMED.csv")
    # 822, 823, 827, 829, 904 and 968 are not in the mapping and are ignored, as officially
    assert acute_mi_acronyms(mapping) == {
        "STEMI", "SERYR1", "SERYR2", "IIOHAI", "AIOHAI", "LIOHAI", "ALIHAI", "ILIHAI",
    }  # fmt: skip


def test_rule_on_hand_made_tables() -> None:
    scp = pd.DataFrame(
        {
            "diagnostic": [1.0, 1.0, 1.0, np.nan, 1.0],
            "diagnostic_class": ["NORM", "MI", "STTC", None, None],
        },
        index=["NORM", "IMI", "NDT", "SBRAD", "ODD"],
    )
    database = pd.DataFrame(
        {"scp_codes": [
            {"IMI": 0.0},  # MI at likelihood 0, 12SL acute -> Acute MI only
            "{'IMI': 100.0, 'SBRAD': 0.0}",  # text as distributed; not in the 12SL table
            {"NDT": 50.0, "ODD": 100.0},  # diagnostic row without class: no superclass
            {"NORM": 100.0},  # 12SL 'XSTEMIX' contains STEMI: the official substring test
            {"NORM": 100.0},  # parsed 12SL list: token test
        ]},
        index=pd.Index([1, 2, 3, 4, 5], name="ecg_id"),
    )  # fmt: skip
    sl = pd.DataFrame(
        {"statements": ["['NSR', 'STEMI']", "['NSR']", "['XSTEMIX']", ["XSTEMIX"]]},
        index=[1, 3, 4, 5],
    )
    mapping = pd.DataFrame({"StatementNumber": [821, 22], "Acronym": ["STEMI", "NSR"]})
    labels = challenge_labels(database, scp, sl, mapping)
    assert labels.to_dict() == {
        1: ("Acute MI",),
        2: ("Old MI", "BRADY"),
        3: ("STTC",),
        4: ("NORM", "Acute MI"),
        5: ("NORM",),
    }
    with pytest.raises(PTBXLError, match="go together"):
        challenge_labels(database, scp, sl)


# --------------------------------------------------------------------------- the dataset
def test_database_and_folds(ptbxl: PTBXL, ptbxl_dir: Path) -> None:
    db = ptbxl.database
    assert len(db) == N_RECORDS and db.index.name == "ecg_id"
    assert db.loc[1, "scp_codes"] == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert len(ptbxl) == N_RECORDS
    assert ptbxl.record_path(1) == ptbxl_dir / "records100" / "00000" / "00001_lr"
    assert ptbxl.record_path(21837, fs=500) == ptbxl_dir / "records500/21000/21837_hr"
    # our copy has folds 1-9 at 100 Hz: fold 10 is listed but absent, counted, not fatal
    missing = ptbxl.missing()
    assert len(missing) == 2198
    assert set(db.loc[missing, "strat_fold"]) == {10}
    assert len(ptbxl.ecg_ids()) == N_RECORDS - 2198
    assert ptbxl.ecg_ids(folds=[10]) == []
    assert len(ptbxl.ecg_ids(folds=[10], available_only=False)) == 2198
    nine = ptbxl.ecg_ids(folds=np.array([9]))
    assert nine == sorted(nine) and set(db.loc[nine, "strat_fold"]) == {9}
    assert len(ptbxl.ecg_ids(fs=500)) == 422  # ecg_id 1-500 outside fold 10
    assert max(ptbxl.ecg_ids(fs=500)) <= 500
    assert len(ptbxl.missing(500)) == N_RECORDS - 422


def test_record(ptbxl: PTBXL) -> None:
    rec = ptbxl.record(1)
    assert rec.name == "00001_lr" and rec.fs == 100 and rec.signal.shape == (1000, 12)
    assert rec.labels == ("NORM",) and rec.sex == "Female" and rec.age == 56
    assert rec.metadata["ecg_id"] == 1 and rec.metadata["patient_id"] == 15709
    assert rec.metadata["strat_fold"] == 3 and rec.metadata["scp_codes"]["NORM"] == 100.0
    hr = ptbxl.record(77, fs=500)
    assert hr.name == "00077_hr" and hr.fs == 500 and hr.signal.shape == (5000, 12)
    assert hr.labels == ("Acute MI", "CD") and hr.sex == "Male"
    assert np.isfinite(hr.signal).all()


def test_absent_and_unknown_records(ptbxl: PTBXL) -> None:
    with pytest.raises(FileNotFoundError, match=r"record 9 \(fold 10\) is listed"):
        ptbxl.record(9)
    with pytest.raises(FileNotFoundError, match="00501_hr"):
        ptbxl.record(501, fs=500)
    with pytest.raises(PTBXLError, match="not listed"):
        ptbxl.record(137)  # ecg_id 137 does not exist in PTB-XL
    with pytest.raises(PTBXLError, match="must be an integer"):
        ptbxl.record("1")  # type: ignore[arg-type]
    with pytest.raises(PTBXLError, match="fs must be 100 or 500"):
        ptbxl.ecg_ids(fs=250)
    with pytest.raises(PTBXLError, match="iterable of ints"):
        ptbxl.ecg_ids(folds=9)  # type: ignore[arg-type]


def test_missing_files_and_corrupt_csv(small_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        PTBXL(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="ptbxl_database.csv is missing"):
        PTBXL(tmp_path)
    shutil.copyfile(small_dir / "ptbxl_database.csv", tmp_path / "ptbxl_database.csv")
    with pytest.raises(FileNotFoundError, match="scp_statements.csv is missing"):
        PTBXL(tmp_path)
    shutil.copyfile(small_dir / "scp_statements.csv", tmp_path / "scp_statements.csv")
    small = PTBXL(tmp_path)
    assert len(small) == 393 and not small.has_acute_mi  # 7 ids of 1-400 do not exist
    assert small.ecg_ids() == [] and len(small.missing()) == len(small)
    with pytest.raises(FileNotFoundError, match="labels/12sl_statements.csv"):
        PTBXL(tmp_path, ptbxl_plus=tmp_path)
    text = (tmp_path / "ptbxl_database.csv").read_text(encoding="utf-8")
    (tmp_path / "ptbxl_database.csv").write_text(
        text.replace("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}", "{'NORM': 100.0, 'LV"),
        encoding="utf-8",
    )
    with pytest.raises(InputFileError, match=r"ptbxl_database.csv'?: scp_codes of ecg_id 1"):
        PTBXL(tmp_path)
    (tmp_path / "scp_statements.csv").write_text("code,description\nNORM,normal\n")
    shutil.copyfile(small_dir / "ptbxl_database.csv", tmp_path / "ptbxl_database.csv")
    with pytest.raises(InputFileError, match="scp_statements.csv' lacks the column"):
        PTBXL(tmp_path)


# --------------------------------------------------------------------------- command line
def test_cli_labels(
    ptbxl: PTBXL, ptbxl_dir: Path, plus_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "sub" / "labels.csv"
    args = ["ptbxl", "labels", str(ptbxl_dir), "--ptbxl-plus", str(plus_dir), "-o", str(out)]
    assert main(args) == 0
    assert "wrote 21799 records" in capsys.readouterr().out
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "ecg_id,strat_fold,labels" and len(lines) == N_RECORDS + 1
    assert lines[1:3] == ["1,3,NORM", "2,2,NORM|BRADY"]
    rows = {int(line.split(",")[0]): line for line in lines[1:]}
    assert list(rows) == sorted(rows) == sorted(ptbxl.database.index)
    assert rows[77] == "77,6,Acute MI|CD" and rows[144] == "144,9,"
    assert rows[17] == "17,9,AFIB/AFL" and rows[263] == "263,5,Old MI|STTC|TACHY"
    for ecg_id, line in rows.items():
        _, fold, labels = line.split(",")
        assert tuple(x for x in labels.split("|") if x) == ptbxl.challenge_labels[ecg_id]
        assert int(fold) == ptbxl.database.at[ecg_id, "strat_fold"]


def test_cli_warns_without_ptbxl_plus(
    small_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels.csv"
    assert main(["ptbxl", "labels", str(small_dir), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: without PTB-XL+" in err and "Old MI" in err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 393 and "77,6,Old MI|CD" in lines
    out.unlink()
    args = ["ptbxl", "labels", str(small_dir), "--without-acute-mi", "-o", str(out)]
    assert main([*args, "--ptbxl-plus", str(small_dir)]) == 2
    assert "exclude each other" in capsys.readouterr().err and not out.exists()
    assert main(args) == 0
    assert "warning" not in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").splitlines() == lines


def test_cli_missing_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels.csv"
    assert main(["ptbxl", "labels", str(tmp_path / "nope"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "PTB-XL folder" in err and "nope" in err and not out.exists()


def test_cli_bad_input_exits_2_naming_the_file(
    small_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels.csv"
    bad = tmp_path / "bad"
    bad.mkdir()
    args = ["ptbxl", "labels", str(bad), "--without-acute-mi", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ptbxl_database.csv is missing" in err
    assert "Traceback" not in err and not out.exists()

    shutil.copyfile(small_dir / "scp_statements.csv", bad / "scp_statements.csv")
    (bad / "ptbxl_database.csv").write_bytes(b"ecg_id,scp_codes,strat_fold\n1,\"{'NORM\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ptbxl_database.csv" in err and not out.exists()

    (bad / "ptbxl_database.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "ptbxl_database.csv" in err and "Traceback" not in err and not out.exists()
    assert not list(tmp_path.glob(".ecgscan-*"))  # no temporary left behind

    plus = ["ptbxl", "labels", str(small_dir), "--ptbxl-plus", str(bad), "-o", str(out)]
    assert main(plus) == 2
    assert "12sl_statements.csv" in capsys.readouterr().err and not out.exists()
