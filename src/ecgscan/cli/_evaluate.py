"""``ecgscan evaluate``: the Challenge 2024 metrics over folders of records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from ._app import app

_HELP = (
    "Score digitized records against reference records.\n\n"
    "Every WFDB record under --reference (sub-folders are groups) is scored against the estimate "
    "with the same relative path under --estimate (or, failing that, <name>-0, or <name> at the "
    "top of --estimate). Prints the PhysioNet Challenge 2024 SNR (official scoring and with the "
    "negative-lag correction), the Kaggle 2025 SNR and, when the headers carry '# Labels:', the "
    "Challenge macro F-measure, overall and per lead, group and record. A reference without an "
    "estimate is 'missing' and scores 0 dB on every lead, as in the Challenge."
)


def _fmt(value: float | None, width: int = 8) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return f"{value:{width}.3f}"


@app.command("evaluate", help=_HELP)
def evaluate(
    reference: Path = typer.Option(
        ..., "--reference", metavar="DIR", help="Folder of reference WFDB records."
    ),
    estimate: Path = typer.Option(
        ..., "--estimate", metavar="DIR", help="Folder of digitized (estimated) WFDB records."
    ),
    json_file: Path | None = typer.Option(
        None, "--json", metavar="FILE", help="Also write every score to this JSON file."
    ),
    records: bool = typer.Option(
        True, "--records/--no-records", help="Print the per-record table."
    ),
) -> None:
    """Score digitized records against reference records (see _HELP)."""
    from .._io import atomic_write_text
    from ..errors import EcgscanError
    from ..metrics import evaluate_folders

    if json_file is not None:
        if json_file.is_dir():
            raise EcgscanError(f"--json {str(json_file)!r} is a folder; give a file name")
        parent = json_file.parent if str(json_file.parent) else Path(".")
        if not parent.is_dir():
            raise EcgscanError(
                f"--json {str(json_file)!r}: folder {str(parent)!r} does not exist; create it first"
            )
    report = evaluate_folders(reference, estimate)
    echo = typer.echo
    echo(f"records: {len(report.records)} ({report.n_missing} missing)")
    echo(f"Challenge SNR (official):      {_fmt(report.snr).strip()} dB")
    echo(f"Challenge SNR (corrected lag): {_fmt(report.snr_corrected).strip()} dB")
    echo(f"Kaggle SNR:                    {_fmt(report.kaggle_snr).strip()} dB")
    if report.f_measure is not None:
        echo(f"Challenge macro F-measure:     {_fmt(report.f_measure).strip()}")
        echo("  " + "  ".join(f"{c}={_fmt(v, 0)}" for c, v in report.f_measure_per_class.items()))
    echo("")
    echo(f"{'lead':<8}{'snr':>10}{'corrected':>11}{'n':>6}")
    for lead, row in report.per_lead().items():
        echo(f"{lead:<8}{_fmt(row['snr'], 10)}{_fmt(row['snr_corrected'], 11)}{row['n']:>6.0f}")
    echo("")
    width = max([5, *(len(g) for g in report.per_group())]) + 2
    echo(
        f"{'group':<{width}}{'snr':>10}{'corrected':>11}{'kaggle':>10}{'records':>9}{'missing':>9}"
    )
    for group, row in report.per_group().items():
        echo(
            f"{group:<{width}}{_fmt(row['snr'], 10)}{_fmt(row['snr_corrected'], 11)}"
            f"{_fmt(row['kaggle_snr'], 10)}{row['n_records']:>9.0f}{row['n_missing']:>9.0f}"
        )
    if records:
        echo("")
        width = max([6, *(len(r.record) for r in report.records)]) + 2
        echo(f"{'record':<{width}}{'snr':>10}{'corrected':>11}{'kaggle':>10}  status")
        for r in report.records:
            echo(
                f"{r.record:<{width}}{_fmt(r.mean_snr, 10)}{_fmt(r.mean_snr_corrected, 11)}"
                f"{_fmt(r.kaggle_snr, 10)}  {r.status}"
            )
    if json_file is not None:
        atomic_write_text(json_file, json.dumps(report.to_dict(), indent=2, allow_nan=False))
        echo(f"\nscores written to {json_file}")
