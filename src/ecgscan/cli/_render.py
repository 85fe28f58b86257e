"""``ecgscan render``: synthetic ECG paper pages with exact ground truth (see ecgscan.render).

``ecgscan render RECORD... -o DIR`` renders records; ``ecgscan render dataset ...`` renders a
PTB-XL training set with several worker processes (resumable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

from ._app import app


class _DefaultToPages(TyperGroup):
    """``render X ...`` runs the ``pages`` command unless ``X`` names a subcommand."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["pages", *args]
        return super().parse_args(ctx, args)


render_app = typer.Typer(
    cls=_DefaultToPages,
    help=(
        "Render ECG records onto synthetic paper pages with exact ground truth.\n\n"
        "ecgscan render RECORD... -o DIR renders WFDB records (paths without suffix); "
        "ecgscan render dataset --ptbxl DIR ... renders a training set."
    ),
    no_args_is_help=True,
)
app.add_typer(render_app, name="render")


@render_app.command("pages")
def pages(
    records: list[Path] = typer.Argument(
        ..., metavar="RECORD...", help="WFDB record paths (without .hea/.dat)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the pages."),
    layout: str = typer.Option(
        "3x4+II", "--layout", "-l", help="3x4, 3x4+II, 3x4+II,V1,V5, 6x2, 12x1, cabrera:3x4+II..."
    ),
    dpi: int = typer.Option(200, "--dpi", help="Resolution, 72-600."),
    style: str = typer.Option("clean", "--style", "-s", help="clean, print, scan, photo, random."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice."),
    n_pages: int = typer.Option(1, "--pages", "-k", min=1, help="Pages per record."),
    settings: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Any page option, e.g. --set paper_speed=50 --set paper=a4 --set grid_color=green "
        "--set overflow=clip (values are read as JSON, else as text).",
    ),
) -> None:
    """Render each RECORD into <name>.png|.jpg, .json, -mask.png and .hea/.dat."""
    import warnings

    from .._io import ensure_output_dir
    from ..data.record import read_record
    from ..errors import EcgscanError
    from ..render import STYLES, RenderWarning, parse_layout, render_page
    from ..render._generate import page_seed

    overrides = _parse_settings(settings)
    parse_layout(layout)  # bad options fail before any folder or file is made
    if style not in STYLES:
        raise EcgscanError(f"--style {style!r} is unknown; expected one of {', '.join(STYLES)}")
    if not 72 <= dpi <= 600:
        raise EcgscanError(f"--dpi must be between 72 and 600, got {dpi}")
    out = ensure_output_dir(output)
    for path in records:
        record = read_record(path)
        for k in range(n_pages):
            stem = record.name if n_pages == 1 else f"{record.name}-{k}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RenderWarning)
                page = render_page(
                    record,
                    layout=layout,
                    dpi=dpi,
                    style=style,
                    seed=page_seed(seed, record.name, k),
                    **overrides,
                )
            for w in caught:
                typer.echo(f"note: {w.message}", err=True)
            written = page.save(out, stem)
            typer.echo(f"{written[0]}")


def _parse_settings(settings: list[str]) -> dict[str, Any]:
    import json

    from ..errors import EcgscanError

    out: dict[str, Any] = {}
    for item in settings:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise EcgscanError(f"--set {item!r} is not KEY=VALUE; e.g. --set paper_speed=50")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


@render_app.command("dataset")
def dataset(
    ptbxl: Path = typer.Option(..., "--ptbxl", help="PTB-XL folder (with ptbxl_database.csv)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the pages."),
    folds: str = typer.Option("1-8", "--folds", help="Folds to draw records from, e.g. 1-8 or 9."),
    n: int = typer.Option(..., "-n", min=1, help="Number of pages to render."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes."),
    fs: int = typer.Option(500, "--fs", help="Record sampling frequency to use (100 or 500)."),
    layout: str = typer.Option("random", "--layout", "-l", help="Layout, or 'random'."),
    dpi: str = typer.Option("random", "--dpi", help="DPI, or 'random' (100-300)."),
    style: str = typer.Option("random", "--style", "-s", help="Style, or 'random'."),
    seed: int = typer.Option(0, "--seed", help="Seed of the whole dataset."),
) -> None:
    """Render N pages from PTB-XL records of the given folds (resumable; skips done pages)."""
    from ..render._generate import parse_folds, render_dataset

    kwargs: dict[str, Any] = {}
    summary = render_dataset(
        ptbxl,
        output,
        folds=parse_folds(folds),
        n=n,
        workers=workers,
        fs=fs,
        layout=layout,
        dpi=dpi if dpi == "random" else int(dpi),
        style=style,
        seed=seed,
        progress=True,
        **kwargs,
    )
    typer.echo(
        f"{summary['rendered']} page(s) rendered, {summary['skipped']} already present, in {output}"
    )
