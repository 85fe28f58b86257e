"""Rendering training sets from PTB-XL: many pages, several processes, resumable."""

from __future__ import annotations

import csv
import io
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, ensure_output_dir
from ..errors import EcgscanError

__all__ = ["RANDOM_LAYOUTS", "page_seed", "parse_folds", "plan_pages", "render_dataset"]

#: Layouts drawn for ``layout='random'`` with their weights (3×4+II dominates real printouts).
RANDOM_LAYOUTS: tuple[tuple[str, float], ...] = (
    ("3x4+II", 0.46),
    ("3x4", 0.08),
    ("3x4+II,V1,V5", 0.10),
    ("3x4+V1", 0.04),
    ("6x2", 0.10),
    ("6x2+II", 0.06),
    ("12x1", 0.06),
    ("cabrera:3x4+II", 0.05),
    ("cabrera:6x2", 0.05),
)
RANDOM_DPIS = (100, 150, 200, 200, 250, 300)


def page_seed(seed: int, name: str, k: int = 0) -> int:
    """A stable 31-bit seed for page ``k`` of record ``name`` under the run ``seed``."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(k)])
    return int(ss.generate_state(1)[0] & 0x7FFFFFFF)


def parse_folds(text: str | Iterable[int]) -> list[int]:
    """``'1-8'``, ``'9'``, ``'1,3,5-7'`` or an iterable of ints → sorted list of folds."""
    if not isinstance(text, str):
        return sorted({int(f) for f in text})
    folds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise EcgscanError(f"--folds {text!r} is not understood; expected e.g. 1-8, 9 or 1,3")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 1 <= lo <= hi <= 10:
            raise EcgscanError(f"--folds {text!r}: folds are 1 to 10 (low-high)")
        folds.update(range(lo, hi + 1))
    return sorted(folds)


def plan_pages(
    ecg_ids: Sequence[int],
    n: int,
    *,
    seed: int,
    layout: str = "random",
    dpi: int | str = "random",
    style: str = "random",
) -> list[dict[str, Any]]:
    """The deterministic list of pages to render: record, page number, seed and options."""
    if not ecg_ids:
        raise EcgscanError("no PTB-XL record available in the requested folds; check --folds/--fs")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xDA7A])
    order = rng.permutation(np.asarray(ecg_ids, dtype=np.int64))
    names, weights = zip(*RANDOM_LAYOUTS, strict=True)
    p = np.asarray(weights) / np.sum(weights)
    plan = []
    for i in range(n):
        ecg_id = int(order[i % len(order)])
        k = i // len(order)
        page_rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, ecg_id, k])
        lay = names[int(page_rng.choice(len(names), p=p))] if layout == "random" else layout
        d = int(page_rng.choice(RANDOM_DPIS)) if dpi == "random" else int(dpi)
        plan.append(
            {
                "ecg_id": ecg_id,
                "k": k,
                "layout": lay,
                "dpi": d,
                "style": style,
                "seed": int(page_rng.integers(2**31)),
            }
        )
    return plan


def _stem(name: str, k: int, several: bool) -> str:
    return f"{name}-{k}" if several else name


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)


_PTBXL_CACHE: dict[str, Any] = {}


def _render_one(args: tuple[str, str, int, bool, dict[str, Any]]) -> tuple[str, str]:
    import warnings

    from ..data.ptbxl import PTBXL
    from ._api import render_page
    from ._page import RenderWarning

    root, out, fs, several, item = args
    ptbxl = _PTBXL_CACHE.get(root)
    if ptbxl is None:
        ptbxl = _PTBXL_CACHE[root] = PTBXL(root)
    record = ptbxl.record(item["ecg_id"], fs=fs)
    stem = _stem(record.name, item["k"], several)
    if (Path(out) / f"{stem}.json").is_file():
        return stem, "skipped"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RenderWarning)
        page = render_page(
            record, layout=item["layout"], dpi=item["dpi"], style=item["style"], seed=item["seed"]
        )
    page.save(out, stem)
    return stem, "rendered"


def render_dataset(
    ptbxl_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    folds: Iterable[int] = range(1, 9),
    n: int,
    workers: int = 1,
    fs: int = 500,
    layout: str = "random",
    dpi: int | str = "random",
    style: str = "random",
    seed: int = 0,
    progress: bool = False,
) -> dict[str, int]:
    """Render ``n`` pages from PTB-XL records of ``folds`` into ``output``.

    Pages are planned deterministically from ``seed`` (records in a seeded order, cycled when
    ``n`` exceeds their number, each page with its own layout, DPI, style and seed), so a run
    interrupted and started again renders only the pages whose JSON is missing and produces the
    same files. ``manifest.csv`` lists every planned page.

    Returns
    -------
    dict
        ``{'rendered': ..., 'skipped': ..., 'total': n}``.
    """
    from ..data.ptbxl import PTBXL

    if n < 1:
        raise EcgscanError(f"n must be at least 1, got {n}")
    if workers < 1:
        raise EcgscanError(f"workers must be at least 1, got {workers}")
    out = ensure_output_dir(output)
    ptbxl = PTBXL(ptbxl_dir)
    ids = ptbxl.ecg_ids(folds=list(folds), fs=fs)
    plan = plan_pages(ids, n, seed=seed, layout=layout, dpi=dpi, style=style)
    several = n > len(ids)
    jobs = [(str(ptbxl_dir), str(out), fs, several, item) for item in plan]
    counts = {"rendered": 0, "skipped": 0, "total": n}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="page", desc="render", leave=True)
    try:
        if workers == 1:
            _worker_init()
            _PTBXL_CACHE[str(ptbxl_dir)] = ptbxl
            results: Iterable[tuple[str, str]] = map(_render_one, jobs)
            for _, status in results:
                counts[status] += 1
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
                for _, status in pool.map(_render_one, jobs, chunksize=4):
                    counts[status] += 1
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["stem", "ecg_id", "fold", "layout", "dpi", "style", "seed"])
    folds_of = ptbxl.database["strat_fold"]
    for item in plan:
        name = Path(str(ptbxl.record_path(item["ecg_id"], fs=fs))).name
        writer.writerow(
            [
                _stem(name, item["k"], several),
                item["ecg_id"],
                int(str(folds_of.at[item["ecg_id"]])),
                item["layout"],
                item["dpi"],
                item["style"],
                item["seed"],
            ]
        )
    atomic_write_text(out / "manifest.csv", buf.getvalue())
    return counts
