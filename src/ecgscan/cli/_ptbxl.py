"""``ecgscan ptbxl ...``: PTB-XL utilities."""

from __future__ import annotations

import typer

from ._app import app

ptbxl_app = typer.Typer(help="PTB-XL: records, folds and the Challenge 2024 labels.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(ptbxl_app, name="ptbxl")
