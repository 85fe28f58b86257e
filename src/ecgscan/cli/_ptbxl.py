"""``ecgscan ptbxl ...``: PTB-XL utilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._app import app, fail

ptbxl_app = typer.Typer(help="PTB-XL: records, folds and the Challenge 2024 labels.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(ptbxl_app, name="ptbxl")


_LABELS_HELP = (
    "Write the PhysioNet Challenge 2024 labels of every PTB-XL record.\n\n"
    "Reads only the metadata files (records need not be on disk) and writes a CSV with the "
    "columns ecg_id, strat_fold and labels for every record listed in ptbxl_database.csv; labels "
    "are joined by '|' in the order NORM, Acute MI, Old MI, STTC, CD, HYP, PAC, PVC, AFIB/AFL, "
    "TACHY, BRADY (empty when none applies). The rule is the Challenge's own "
    "(prepare_ptbxl_data.py of physionetchallenges/python-example-2024), documented in the "
    "module ecgscan.data.ptbxl.\n\n"
    "Acute MI comes from the PTB-XL+ 12SL statements, so pass --ptbxl-plus to get the "
    "Challenge's labels. Without it no record is Acute MI and every MI record becomes Old MI; a "
    "warning says so (--without-acute-mi acknowledges this and silences the warning)."
)


@ptbxl_app.command("labels", help=_LABELS_HELP)
def labels(
    ptbxl_dir: Path = typer.Argument(
        ...,
        metavar="PTBXL_DIR",
        help="PTB-XL folder (with ptbxl_database.csv and scp_statements.csv).",
    ),
    output: Path = typer.Option(..., "-o", "--output", metavar="FILE", help="CSV file to write."),
    ptbxl_plus: Path | None = typer.Option(
        None,
        "--ptbxl-plus",
        metavar="DIR",
        help="PTB-XL+ folder (with labels/12sl_statements.csv and "
        "labels/mapping/12slv23ToSNOMED.csv); needed for Acute MI.",
    ),
    without_acute_mi: bool = typer.Option(
        False,
        "--without-acute-mi",
        help="Acknowledge that without PTB-XL+ no record is Acute MI and every MI record "
        "becomes Old MI (not the Challenge's labels) and silence the warning.",
    ),
) -> None:
    """Write the PhysioNet Challenge 2024 labels of every PTB-XL record (see _LABELS_HELP)."""
    if not ptbxl_dir.is_dir():
        raise fail(f"PTB-XL folder {str(ptbxl_dir)!r} not found; give the folder that holds "
                   "ptbxl_database.csv and scp_statements.csv")  # fmt: skip
    if ptbxl_plus is not None and without_acute_mi:
        raise fail("--ptbxl-plus and --without-acute-mi exclude each other; pass one of them")
    if output.is_dir():
        raise fail(f"output {str(output)!r} is a folder; give a file name such as labels.csv")

    from .._io import atomic_write_text, ensure_output_dir
    from ..data.labels import CHALLENGE_LABELS
    from ..data.ptbxl import PTBXL

    dataset = PTBXL(ptbxl_dir, ptbxl_plus=ptbxl_plus)
    if not dataset.has_acute_mi and not without_acute_mi:
        typer.echo(
            "warning: without PTB-XL+ no record is Acute MI and every MI record is labelled "
            "Old MI; these are not the Challenge's labels",
            err=True,
        )
    table = dataset.challenge_labels
    folds = dataset.database["strat_fold"]
    lines = ["ecg_id,strat_fold,labels"]
    ids: list[Any] = table.index.tolist()
    fold_of: dict[Any, Any] = dict(zip(folds.index.tolist(), folds.tolist(), strict=True))
    rows = sorted(zip(ids, table.tolist(), strict=True))
    lines += [f"{e},{fold_of[e]},{'|'.join(names)}" for e, names in rows]
    ensure_output_dir(output.parent if str(output.parent) else Path("."))
    atomic_write_text(output, "\n".join(lines) + "\n")

    counts = {label: 0 for label in CHALLENGE_LABELS}
    for record_labels in table:
        for label in record_labels:
            counts[label] += 1
    none = sum(1 for record_labels in table if not record_labels)
    typer.echo(
        f"wrote {len(table)} records to {output} ("
        + ", ".join(f"{label} {n}" for label, n in counts.items())
        + f"; no label {none})"
    )
