"""``ecgscan classify PATH... [-o predictions.csv]``: the Challenge labels of records and images.

A thin layer over :func:`ecgscan.classify.classify`. Paths may be WFDB records (``.hea`` or
without suffix), ``.csv``/``.json`` records, page images (digitized first) or folders (every
WFDB record and image inside, recursively). The CSV has ``record,labels`` (labels joined by
``|``), one probability column per Challenge label, ``missing_leads`` and ``heart_rate`` (bpm,
as the ensemble measures it for BRADY and TACHY; empty for other models or without beats).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer

from ._app import app


def _expand(paths: list[Path]) -> list[Path]:
    from ..classify import IMAGE_SUFFIXES

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or p.suffix == ".hea")
            )
            if not found:
                raise FileNotFoundError(
                    f"folder {str(path)!r} holds no WFDB record (.hea) and no image "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            out.extend(p.with_suffix("") if p.suffix == ".hea" else p for p in found)
        elif path.exists() or path.with_name(path.name + ".hea").is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"input {str(path)!r} not found (a record, image or folder)")
    return out


@app.command("classify")
def classify_command(
    paths: list[Path] = typer.Argument(
        ..., help="WFDB records, .csv/.json records, ECG images, or folders of them."
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="CSV file to write (default: print the CSV)."
    ),
    model: str = typer.Option(
        "ensemble",
        "--model",
        "-m",
        help=(
            "Registered model (ensemble, signal, signal-inception, signal-gru, signal-beats, "
            "signal-beats-wide, signal-small, image, multitask) or an .onnx/.json file."
        ),
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="One threshold for every label instead of the model's own."
    ),
    skip_errors: bool = typer.Option(
        False, "--skip-errors", help="Report unreadable inputs on stderr and go on."
    ),
) -> None:
    """Classify ECGs into the 11 PhysioNet Challenge 2024 labels."""
    from .._io import atomic_write_text
    from ..classify import load_classifier
    from ..classify._predict import predict_one
    from ..data.labels import CHALLENGE_LABELS
    from ..errors import EcgscanError

    inputs = _expand(paths)
    if output is not None and output.is_dir():
        raise EcgscanError(f"output {str(output)!r} is a folder; give a .csv file name")
    clf = load_classifier(model)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EcgscanError(f"--threshold must be in [0, 1], got {threshold}")
    rows = []
    for path in inputs:
        try:
            pred = predict_one(clf, path, thresholds=threshold)
        except (EcgscanError, FileNotFoundError) as exc:
            if not skip_errors:
                raise type(exc)(f"{path}: {exc}") from None
            typer.echo(f"error: {path}: {exc}", err=True)
            continue
        if pred.missing_leads:
            typer.echo(f"{pred.record}: missing leads {', '.join(pred.missing_leads)}", err=True)
        rows.append(
            [pred.record, "|".join(pred.labels)]
            + [f"{pred.probabilities[name]:.4f}" for name in CHALLENGE_LABELS]
            + [" ".join(pred.missing_leads)]
            + ["" if pred.heart_rate is None else f"{pred.heart_rate:.1f}"]
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["record", "labels", *CHALLENGE_LABELS, "missing_leads", "heart_rate"])
    writer.writerows(rows)
    if output is None:
        typer.echo(buf.getvalue(), nl=False)
    else:
        atomic_write_text(output, buf.getvalue())
        typer.echo(f"wrote {output} ({len(rows)} record(s))", err=True)
