"""Speed of the renderer against its targets (not a timed test).

Prints, on one CPU core (OpenCV and BLAS limited to one thread), the time to render a page with
all its ground truth (image, mask, truth dict, reference record) for:

* a clean 200-DPI 3×4+II page (target ≤ 0.15 s, ≥ 10× ECG-Image-Kit's 1.6 s on this machine);
* the full photo chain at 200 DPI (every photo degradation forced on; target ≤ 0.5 s);
* each style (clean, print, scan, photo) as sampled, and each degradation on its own;
* writing a page to disk (PNG/JPEG + mask + JSON + WFDB), reported separately.

Times are medians over ``--repeat`` runs with different seeds, after one warm-up: wall time,
and in brackets the CPU time of the process (the cost on one core when the machine is shared).

    python benchmarks/render.py --record /root/data/ptb-xl/records500/00000/00017_hr
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

from ecgscan.data import Record, read_record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.render import render_page
from ecgscan.render._degrade import DEGRADATIONS, apply_chain, make_degradation

EIK_CLEAN_S = 1.6  # ECG-Image-Kit on this machine (issue #3), clean 200-DPI page
EIK_ARTEFACTS_S = (3.0, 5.5)
# Every step of the photo style (``_degrade.sample_chain('photo')``), all switched on.
PHOTO_CHAIN = [
    "creases",
    "stains",
    "handwriting",
    "stamp",
    "texture",
    "wrinkles",
    "table",
    "curl",
    "perspective",
    "rotate",
    "lens",
    "crop_pad",
    "resize",
    "lighting",
    "shadow",
    "moire",
    "blur",
    "noise",
    "color_cast",
    "jpeg",
]


def _time(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median wall time and median CPU time of this process (one thread: the CPU time is what
    the work costs on one core even when other processes share the machine)."""
    fn(0)
    wall, cpu = [], []
    for i in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn(i + 1)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", type=Path, help="WFDB record (default: synthetic 500 Hz)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dpi", type=int, default=200)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    record: Record = (
        read_record(args.record)
        if args.record
        else synthetic_ecg(fs=500, duration=10, seed=1, name="synthetic")
    )
    r = args.repeat
    print(
        f"record {record.name}: {record.fs:g} Hz, {record.duration:g} s; {args.dpi} DPI, "
        f"one thread; median wall time (CPU time) of {r} runs; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    wall, cpu = _time(lambda s: render_page(record, dpi=args.dpi, style="clean", seed=s), r)
    ok = "OK" if cpu <= 0.15 else "MISSED"  # CPU time: the cost on one core
    print(
        f"\nclean 3x4+II page + ground truth : {wall:6.3f} s ({cpu:.3f})  target ≤ 0.15 s "
        f"[{ok}]  {EIK_CLEAN_S / cpu:5.1f}× ECG-Image-Kit ({EIK_CLEAN_S} s)"
    )
    wall, cpu = _time(
        lambda s: render_page(
            record, dpi=args.dpi, style="print", seed=s, degradations=PHOTO_CHAIN
        ),
        r,
    )
    ok = "OK" if cpu <= 0.5 else "MISSED"
    print(
        f"full photo chain ({len(PHOTO_CHAIN)} steps)     : {wall:6.3f} s ({cpu:.3f})  "
        f"target ≤ 0.5 s [{ok}]  {EIK_ARTEFACTS_S[0] / cpu:4.1f}–{EIK_ARTEFACTS_S[1] / cpu:.1f}× "
        "ECG-Image-Kit with artefacts"
    )

    print("\nstyles (as sampled)")
    for style in ("clean", "print", "scan", "photo", "random"):
        wall, cpu = _time(
            lambda s, st=style: render_page(record, dpi=args.dpi, style=st, seed=s), r
        )
        print(f"  {style:<8} {wall:6.3f} s ({cpu:.3f})")

    print("\neach degradation alone (on a rendered clean page)")
    page = render_page(record, dpi=args.dpi)
    size = (page.truth["width"], page.truth["height"])
    for name in DEGRADATIONS:

        def one(s: int, name: str = name) -> None:
            rng = np.random.default_rng(s)
            truth = {
                **page.truth,
                "leads": [dict(x) for x in page.truth["leads"]],
                "degradations": [],
            }
            apply_chain(page.image, page.mask, truth, [make_degradation(name, rng, size)], rng)

        wall, cpu = _time(one, r)
        print(f"  {name:<12} {wall * 1000:6.0f} ms ({cpu * 1000:.0f})")

    with tempfile.TemporaryDirectory() as tmp:
        for style in ("clean", "photo"):
            p = render_page(record, dpi=args.dpi, style=style, seed=1)
            wall, cpu = _time(lambda s, p=p: p.save(tmp, f"p{s}"), r)
            print(
                f"\nsave ({p.image_format}, mask, json, wfdb) {style:<6}: {wall:6.3f} s ({cpu:.3f})"
            )


if __name__ == "__main__":
    main()
