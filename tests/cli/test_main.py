from __future__ import annotations

import re
from pathlib import Path

import pytest

import ecgscan
from ecgscan.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ecgscan {ecgscan.__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_demo_writes_the_example_and_digitizes_it_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "-o", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "example.hea").is_file()
    out = capsys.readouterr().out
    snr = float(re.search(r"Challenge SNR .*: (-?[0-9.]+) dB mean over 12 leads", out)[1])
    assert snr >= 20.0  # a clean 200-DPI page: the digitizer, not the example, sets the figure


def test_unwritable_output_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output path") and "Traceback" not in err


def test_console_script_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "ecgscan", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "demo" in proc.stdout
