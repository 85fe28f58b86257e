"""Small file-system helpers shared by every stage: atomic writes and output folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import EcgscanError

__all__ = ["atomic_files", "atomic_write_bytes", "atomic_write_text", "ensure_output_dir"]


def ensure_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) and check that it is a writable folder.

    Raises :class:`EcgscanError` naming the folder and the problem, so that a job fails before
    doing any work rather than after.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise EcgscanError(f"output path {str(out)!r} exists and is not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EcgscanError(
            f"cannot create output folder {str(out)!r}: {exc.strerror or exc}; "
            "choose a folder you can write to"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise EcgscanError(
            f"output folder {str(out)!r} is not writable; choose a folder you can write to"
        )
    return out


@contextlib.contextmanager
def atomic_files(targets: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Write several files so that either all appear or none does.

    Yields temporary paths (same folders as ``targets``, same suffixes) to write to. On normal
    exit they are renamed onto ``targets`` in order (put the file that marks completion, e.g. a
    WFDB header, last); on error they are removed and the targets are left untouched.
    """
    final = [Path(t) for t in targets]
    tmpdirs: list[Path] = []
    temps: list[Path] = []
    try:
        for target in final:
            parent = target.parent if str(target.parent) else Path(".")
            tmpdir = Path(tempfile.mkdtemp(prefix=".ecgscan-", dir=parent))
            tmpdirs.append(tmpdir)
            temps.append(tmpdir / target.name)
        yield temps
        for tmp in temps:
            if not tmp.exists():
                raise RuntimeError(f"atomic_files: {tmp.name} was not written")
        for tmp, target in zip(temps, final, strict=True):
            os.replace(tmp, target)
    finally:
        for tmpdir in tmpdirs:
            shutil.rmtree(tmpdir, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_files([path]) as (tmp,):
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
