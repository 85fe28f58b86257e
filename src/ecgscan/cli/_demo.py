"""``ecgscan demo``: run the whole pipeline on a built-in example and show what it does."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app


@app.command()
def demo(
    output: Path = typer.Option(
        Path("ecgscan-demo"), "-o", "--output", help="Folder for the demo's files."
    ),
) -> None:
    """Make a built-in example ECG and run every ecgscan stage on it."""
    from .._io import ensure_output_dir
    from ..data.synthetic import synthetic_ecg

    out = ensure_output_dir(output)
    record = synthetic_ecg(fs=500, duration=10, seed=7, name="example")
    base = record.to_wfdb(out / "example")
    typer.echo(f"example record: {base}.hea ({record.n_leads} leads, {record.fs:g} Hz, "
               f"{record.duration:g} s)")  # fmt: skip
