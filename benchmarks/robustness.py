"""Robustness benchmark of the digitizer on pages rendered by :func:`ecgscan.render.render_page`.

Usage::

    python benchmarks/robustness.py [--quick] [--ptbxl /root/data/ptb-xl] [--layout 6x2]
                                    [--dpi 100] [--style clean] [--records 3]

Renders a matrix of pages — layouts (3x4, 3x4+II, 3x4 with three rhythm strips, 6x2, 6x2+II,
12x1, Cabrera 3x4+II) × resolutions (100, 150, 200, 300 DPI) × styles (clean, print, scan,
photo) — from PTB-XL fold-9 records (100 Hz; synthetic ECGs when PTB-XL is absent), digitizes
each page and prints, per page and then per layout, per DPI and per style:

* the official PhysioNet Challenge SNR (dB) against the page's NaN-masked reference;
* whether the layout was found: the digitized rows carry the rendered leads in the rendered
  order (``ok``), or not (``LAYOUT``: the rendered and the found row-by-row lead names follow);
* the rows found against the rows printed (``rows``), which tells a missed or split row from
  a misread layout;
* the scale the digitizer read (its px/mm along x over the rendered image's), and from what
  (``g`` grid, ``p`` calibration pulse, ``w`` page width): a grid misread at a multiple of
  its period shows as 2 or 3, a page straightened to another size as a steady offset;
* failures (:class:`~ecgscan.DigitizationError`, with its message) and their stage.

``--quick`` renders the clean style only (28 pages, about a minute on one core); the full
matrix (112 pages) runs in about four minutes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgscan.data import Record
from ecgscan.digitize import digitize
from ecgscan.errors import DigitizationError
from ecgscan.metrics import challenge_snr, mean_snr
from ecgscan.render import render_page
from ecgscan.render._layout import parse_layout

LAYOUTS = ("3x4", "3x4+II", "3x4+II,V1,V5", "6x2", "6x2+II", "12x1", "cabrera:3x4+II")
DPIS = (100, 150, 200, 300)
STYLES = ("clean", "print", "scan", "photo")


@dataclass
class Outcome:
    layout: str
    dpi: int
    style: str
    record: str
    snr: float
    layout_ok: bool
    found: str
    error: str
    seconds: float
    rows: str = "-"
    scale: str = "-"


def load_records(ptbxl: Path | None, n: int) -> list[Record]:
    """``n`` PTB-XL fold-9 records (100 Hz), or synthetic ECGs when PTB-XL is absent."""
    if ptbxl is not None and (ptbxl / "ptbxl_database.csv").is_file():
        from ecgscan.data.ptbxl import PTBXL

        db = PTBXL(ptbxl)
        ids = db.database.index[db.database["strat_fold"] == 9]
        out = []
        for ecg_id in ids:
            try:
                out.append(db.record(int(ecg_id), fs=100))
            except (FileNotFoundError, OSError):
                continue
            if len(out) == n:
                return out
    from ecgscan.data.synthetic import synthetic_ecg

    print("PTB-XL not found: synthetic records", file=sys.stderr)
    return [synthetic_ecg(fs=100, duration=10, seed=s) for s in range(n)]


def _row_names(rows: object) -> list[tuple[str, ...]]:
    return [tuple(str(n).lstrip("-") for n in r) for r in rows]  # type: ignore[attr-defined]


def expected_rows(layout: str) -> list[tuple[str, ...]]:
    """Lead names per printed row, top to bottom, of a rendered layout."""
    return _row_names([s.lead for s in row] for row in parse_layout(layout).rows)


def run_page(record: Record, layout: str, dpi: int, style: str, seed: int) -> Outcome:
    page = render_page(record, layout=layout, dpi=dpi, style=style, seed=seed)
    t0 = time.perf_counter()
    snr, ok, found, error, rows, scale = float("nan"), False, "-", "", "-", "-"
    printed = len(expected_rows(layout))
    try:
        res = digitize(page.image, fs=page.reference.fs)
        snr = mean_snr(challenge_snr(page.reference, res.record))
        got = _row_names(r.leads for r in res.layout.rows)
        rows = f"{len(got)}/{printed}"
        truth = page.truth.get("image_px_per_mm") or page.truth["px_per_mm"]
        source = "g" if res.grid.found else ("p" if res.grid.source == "pulse" else "w")
        scale = f"{res.grid.px_per_mm_x / float(truth['x']):.2f}{source}"
        ok = got == expected_rows(layout)
        found = res.layout.name if ok else f"{res.layout.name} {got}"
    except DigitizationError as exc:
        snr = mean_snr(challenge_snr(page.reference, None))
        error = str(exc).splitlines()[0][:110]
    return Outcome(layout, dpi, style, str(record.name), snr, ok, found, error,
                   time.perf_counter() - t0, rows, scale)  # fmt: skip


def summary(outcomes: list[Outcome], key: str) -> None:
    groups: dict[object, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(getattr(o, key), []).append(o)
    print(f"\nper {key}")
    print(f"{key:<16} {'pages':>5} {'SNR':>7} {'min':>7} {'layout ok':>9} {'failed':>6}")
    for name, g in groups.items():
        s = [o.snr for o in g]
        ok, failed = sum(o.layout_ok for o in g), sum(bool(o.error) for o in g)
        print(f"{name!s:<16} {len(g):>5} {np.nanmean(s):>7.2f} {np.nanmin(s):>7.2f} "
              f"{ok:>5}/{len(g):<3} {failed:>6}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="clean style only (28 pages)")
    parser.add_argument("--ptbxl", type=Path, default=Path(os.environ.get("ECGSCAN_PTBXL",
                        "/root/data/ptb-xl")))  # fmt: skip
    parser.add_argument("--layout", action="append", help="only this layout (repeatable)")
    parser.add_argument("--dpi", type=int, action="append", help="only this DPI (repeatable)")
    parser.add_argument("--style", action="append", help="only this style (repeatable)")
    parser.add_argument("--records", type=int, default=3, help="records cycled over the pages")
    args = parser.parse_args()
    layouts = tuple(args.layout or LAYOUTS)
    dpis = tuple(args.dpi or DPIS)
    styles = tuple(args.style or (("clean",) if args.quick else STYLES))
    records = load_records(args.ptbxl, args.records)
    outcomes: list[Outcome] = []
    print(
        f"{'layout':<15} {'dpi':>4} {'style':<6} {'record':<8} {'SNR':>7} {'s':>5} {'rows':>5} "
        f"{'scale':>6}  layout/error"
    )
    for i, (lay, dpi, style) in enumerate(itertools.product(layouts, dpis, styles)):
        o = run_page(records[i % len(records)], lay, dpi, style, seed=i)
        outcomes.append(o)
        note = ("ok" if o.layout_ok else "LAYOUT " + o.found) if not o.error else "FAIL " + o.error
        print(f"{lay:<15} {dpi:>4} {style:<6} {o.record[:8]:<8} {o.snr:>7.2f} "
              f"{o.seconds:>5.2f} {o.rows:>5} {o.scale:>6}  {note}", flush=True)  # fmt: skip
    for key in ("layout", "dpi", "style"):
        summary(outcomes, key)
    s = [o.snr for o in outcomes]
    ok, failed = sum(o.layout_ok for o in outcomes), sum(bool(o.error) for o in outcomes)
    print(f"\nall: {len(outcomes)} pages, SNR {np.nanmean(s):.2f} dB, layout ok {ok}, "
          f"failed {failed}")  # fmt: skip


if __name__ == "__main__":
    main()
