"""Resumable archive jobs: manifest, atomic commits, resume after SIGKILL, local and Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from service_helpers import HashPage

from ecgscan.data import LEADS, Record
from ecgscan.errors import EcgscanError
from ecgscan.service import (
    JOB_DIR,
    DigitizePage,
    digitize_job_cli,
    expand_inputs,
    read_job_state,
    run_digitize_job,
    run_job,
)


def ledger_entries(out: Path) -> list[dict]:
    lines = (out / JOB_DIR / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def comparable(name: str, data: bytes) -> bytes:
    """A page file as bytes, less the stage timings of a JSON summary (they vary by run)."""
    if not name.endswith(".json"):
        return data
    summary = json.loads(data)
    summary.pop("timings", None)
    return json.dumps(summary, sort_keys=True).encode()


def output_files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): comparable(p.name, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file() and JOB_DIR not in p.parts
    }


@pytest.fixture
def small_archive(tmp_path: Path) -> Path:
    folder = tmp_path / "archive"
    (folder / "ward 3").mkdir(parents=True)
    (folder / "p1.png").write_bytes(b"page one")
    (folder / "p2.jpg").write_bytes(b"page two")
    (folder / "ward 3" / "p1.png").write_bytes(b"page three")
    (folder / "broken.png").write_bytes(b"bad page")
    return folder


def test_expand_inputs_pages_stems_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "a.JPG", "sub/a.png", ".hidden.png", "notes.txt"):
        (folder / name).write_bytes(b"x")
    Image.new("RGB", (300, 200), "white").save(
        folder / "doc.pdf", save_all=True, append_images=[Image.new("RGB", (300, 200))]
    )
    tasks = expand_inputs([folder])
    assert [t.stem for t in tasks] == ["a_jpg", "a_png", "doc-p1", "doc-p2", "sub/a"]
    assert [t.page for t in tasks] == [0, 0, 0, 1, 0]
    assert [t.index for t in tasks] == list(range(5))
    assert all(Path(t.source).is_absolute() for t in tasks)
    assert [t.stem for t in expand_inputs([folder], recursive=False)][-1] == "doc-p2"
    # a file named directly is taken whatever its suffix; stems stay unique
    direct = expand_inputs([folder / "notes.txt", folder / "sub" / "a.png", folder / "a.png"])
    assert [t.stem for t in direct] == ["notes", "a", "a_2"]
    with pytest.raises(FileNotFoundError, match="missing"):
        expand_inputs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EcgscanError, match="no image or PDF files"):
        expand_inputs([tmp_path / "empty"])


def test_job_commits_pages_records_failures_and_resume_skips(
    small_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    report = run_job([small_archive], out, process_page=HashPage(), workers=2, progress=True)
    bar = capsys.readouterr().err  # the progress bar: count, rate, ETA, failures
    assert "4/4" in bar and "page/s" in bar and "<" in bar and "failed=1" in bar
    assert (report.total, report.processed, report.skipped) == (4, 3, 0)
    assert [f.stem for f in report.failed] == ["broken"]
    assert "not a page" in report.failed[0].error
    assert report.complete and report.pages_per_second > 0
    files = output_files(out)
    assert sorted(files) == ["p1.meta.json", "p1.txt", "p2.meta.json", "p2.txt",
                             "ward 3/p1.meta.json", "ward 3/p1.txt"]  # fmt: skip
    state = read_job_state(out)
    assert (state["total"], state["done"], state["failed"], state["pending"]) == (4, 3, 1, 0)
    assert state["outputs"]["ward 3/p1"] == ["ward 3/p1.txt", "ward 3/p1.meta.json"]
    # every committed file is in the ledger with its checksum
    import hashlib

    done = [e for e in ledger_entries(out) if e["event"] == "done"]
    for entry in done:
        for f in entry["files"]:
            assert hashlib.sha256(files[f["name"]]).hexdigest() == f["sha256"]

    with pytest.raises(EcgscanError, match="already holds a job"):
        run_job([small_archive], out, process_page=HashPage(), progress=False)
    ledger_before = (out / JOB_DIR / "ledger.jsonl").read_bytes()
    again = run_job([small_archive], out, process_page=HashPage(), resume=True, progress=False)
    assert (again.processed, again.skipped, again.failed) == (0, 4, ())
    assert (out / JOB_DIR / "ledger.jsonl").read_bytes() == ledger_before
    retry = run_job([small_archive], out, process_page=HashPage(), resume=True,
                    retry_failed=True, progress=False)  # fmt: skip
    assert (retry.processed, retry.skipped, len(retry.failed)) == (0, 3, 1)
    assert output_files(out) == files


def test_resume_refuses_other_inputs_or_settings(small_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_job([small_archive], out, process_page=HashPage(), settings={"fs": 500}, progress=False)
    (small_archive / "p9.png").write_bytes(b"page nine")
    with pytest.raises(EcgscanError, match=r"inputs differ .*1 new file"):
        run_job([small_archive], out, process_page=HashPage(), settings={"fs": 500},
                resume=True, progress=False)  # fmt: skip
    (small_archive / "p9.png").unlink()
    with pytest.raises(EcgscanError, match="settings"):
        run_job([small_archive], out, process_page=HashPage(), settings={"fs": 250},
                resume=True, progress=False)  # fmt: skip


def test_resume_recovers_a_page_cut_short(small_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_job([small_archive], out, process_page=HashPage(), progress=False)
    reference = output_files(out)
    # the state a kill leaves between renaming a page's files and its 'done' line: the last
    # 'done' missing, half a line written, one output half-replaced, temporary files around
    ledger = out / JOB_DIR / "ledger.jsonl"
    lines = ledger.read_bytes().splitlines(keepends=True)
    last_done = max(i for i, line in enumerate(lines) if b'"done"' in line)
    cut = json.loads(lines[last_done])
    kept = lines[:last_done] + lines[last_done + 1 :]
    ledger.write_bytes(b"".join(kept) + b'{"event": "done", "fi')
    victim = out / cut["files"][0]["name"]
    victim.write_bytes(b"half-written garbage")
    (out / JOB_DIR / "tmp").mkdir()
    (out / JOB_DIR / "tmp" / "7-0.part").write_bytes(b"partial")
    (out / ".ecgscan-leftover").mkdir()

    report = run_job([small_archive], out, process_page=HashPage(), resume=True, progress=False)
    assert (report.processed, report.skipped, report.recovered) == (1, 3, 1)
    assert output_files(out) == reference
    assert not (out / JOB_DIR / "tmp").exists() and not (out / ".ecgscan-leftover").exists()
    entries = ledger_entries(out)  # every line parses again
    done = [e["i"] for e in entries if e["event"] == "done"]
    assert sorted(done) == sorted(set(done)) and len(done) == 3


def test_page_function_bugs_are_recorded_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "1.png").write_bytes(b"bug here")
    (folder / "2.png").write_bytes(b"evil page")
    (folder / "3.png").write_bytes(b"fine page")
    report = run_job([folder], tmp_path / "out", process_page=HashPage(), progress=False)
    errors = {f.stem: f.error for f in report.failed}
    assert "ZeroDivisionError" in errors["1"]
    assert "suffix" in errors["2"]
    assert report.processed == 1
    assert not (tmp_path / "escape.txt").exists()


def test_run_job_checks_its_arguments(small_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(EcgscanError, match="unknown backend 'spark'"):
        run_job([small_archive], out, process_page=HashPage(), backend="spark")
    with pytest.raises(EcgscanError, match="workers must be a positive integer"):
        run_job([small_archive], out, process_page=HashPage(), workers=0)
    with pytest.raises(EcgscanError, match="only used with backend 'ray'"):
        run_job([small_archive], out, process_page=HashPage(), address="auto")
    with pytest.raises(TypeError, match="picklable"):
        run_job([small_archive], out, process_page=lambda task: {".txt": b""})
    with pytest.raises(EcgscanError, match="unknown output format"):
        run_digitize_job([small_archive], out, formats=("wfdb", "tiff"))
    assert not out.exists() or not (out / JOB_DIR).exists()


_KILLABLE = """
import sys
from ecgscan.service import run_digitize_job
run_digitize_job([sys.argv[1]], sys.argv[2], workers=1, progress=False, pdf_dpi=150)
"""


@pytest.fixture(scope="module")
def killed_and_resumed(pages: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real digitization job SIGKILLed after two committed pages, then resumed."""
    out = tmp_path_factory.mktemp("killed")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(pages), str(out)], env=env,
                            start_new_session=True)  # fmt: skip
    ledger = out / JOB_DIR / "ledger.jsonl"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.is_file() and ledger.read_bytes().count(b'"event": "done"') >= 2:
                break
            time.sleep(0.05)
        finished_early = proc.poll() is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the job and its worker processes
        proc.wait()
    before = read_job_state(out)
    report = run_digitize_job([pages], out, workers=2, resume=True, progress=False,
                              pdf_dpi=150)  # fmt: skip
    return {"out": out, "before": before, "report": report, "finished_early": finished_early}


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(
    killed_and_resumed: dict, pages: Path
) -> None:
    out, before, report = (killed_and_resumed[k] for k in ("out", "before", "report"))
    assert not killed_and_resumed["finished_early"], "the job ended before it could be killed"
    assert before["total"] == 4 and 2 <= before["done"] < 4
    assert report.skipped == before["done"]
    assert report.processed == 4 - before["done"] and report.failed == ()
    done = sorted(e["i"] for e in ledger_entries(out) if e["event"] == "done")
    assert done == [0, 1, 2, 3]  # each page committed exactly once
    files = output_files(out)
    assert sorted(files) == sorted(
        f"{stem}{suffix}"
        for stem in ("a", "b", "c-p1", "c-p2")
        for suffix in (".hea", ".dat", ".json")
    )
    assert not (out / JOB_DIR / "tmp").exists()
    # a page the resumed run committed is byte-identical to digitizing it afresh
    tasks = {t.stem: t for t in expand_inputs([pages])}
    resumed = [stem for stem, names in read_job_state(out)["outputs"].items()
               if stem not in before["outputs"]]  # fmt: skip
    stem = resumed[-1]
    fresh = DigitizePage(pdf_dpi=150)(tasks[stem])
    assert {stem + k: comparable(stem + k, v) for k, v in fresh.items()} == {
        k: v for k, v in files.items() if k.startswith(stem + ".")
    }
    record = Record.from_wfdb(out / stem)
    assert record.leads == LEADS and record.fs == 500 and record.n_samples == 5000


def test_ray_backend_runs_the_same_job(
    killed_and_resumed: dict, pages: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the cluster extra (pip install ray)")
    out = tmp_path / "ray"
    report = run_digitize_job([pages], out, workers=2, backend="ray", progress=False,
                              pdf_dpi=150)  # fmt: skip
    assert (report.processed, report.backend, report.failed) == (4, "ray", ())
    # uninterrupted on a local Ray cluster == killed and resumed on local processes
    assert output_files(out) == output_files(killed_and_resumed["out"])


def test_digitize_job_cli_reports_and_returns_the_status(
    killed_and_resumed: dict, pages: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = killed_and_resumed["out"]
    status = digitize_job_cli([pages], out, pdf_dpi=150, resume=True, progress=False)
    assert status == 0
    assert "digitized 4 of 4 page(s)" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    status = digitize_job_cli([broken], tmp_path / "out", progress=False)
    err = capsys.readouterr().err
    assert status == 1
    assert "error: " in err and "scan.png" in err and "1 failed" in err
    with pytest.raises(EcgscanError, match="settings"):  # other options than the job's
        digitize_job_cli([pages], out, fs=250, pdf_dpi=150, resume=True, progress=False)
