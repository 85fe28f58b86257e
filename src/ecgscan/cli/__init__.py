"""The ``ecgscan`` command line: a thin layer over the Python API.

Each subcommand lives in its own module and calls the API function of the same name. User errors
(:class:`~ecgscan.errors.EcgscanError`, missing files, permissions) print one line on stderr and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from ..errors import EcgscanError
from . import (  # noqa: F401  (each module registers its commands)
    _classify,
    _demo,
    _digitize,
    _evaluate,
    _ptbxl,
    _render,
    _serve,
    _train,
)
from ._app import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used by the console script)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # Standalone mode: Typer handles usage errors (exit 2) and --help itself and ends with
        # SystemExit; anything else propagates to the handlers below.
        app(args=args, prog_name="ecgscan")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        typer.echo(str(code), err=True)
        return 1
    except (EcgscanError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError) as exc:  # fmt: skip
        typer.echo(f"error: {_message(exc)}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    return 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc):
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror and not exc.args[1:]:
        return str(exc.args[0]) if exc.args else str(exc)
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
