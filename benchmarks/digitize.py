"""Benchmark of the digitizer: accuracy per category, speed and memory.

Usage::

    python benchmarks/digitize.py [--shared ../shared] [--limit N] [--category A_clean]

On ``images/eik-dev`` it prints, per category, the Challenge SNR (official and corrected
variants, mean and minimum over pages) and the Kaggle SNR; on ``images/real-scans`` whether
every page gives a record or a clear :class:`~ecgscan.DigitizationError`, and on 3×4 pages how
well the leads obey Einthoven's law (II vs I + III over the first column, dB). Then the median
seconds per page and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ecgscan.data import Record
from ecgscan.digitize import digitize
from ecgscan.errors import DigitizationError
from ecgscan.metrics import challenge_snr, kaggle_snr, mean_snr


def _einthoven_db(record: Record) -> float:
    i, ii, iii = (record.lead(n) for n in ("I", "II", "III"))
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    if ok.sum() < 100:
        return float("nan")
    a = ii[ok] - ii[ok].mean()
    d = a - ((i[ok] + iii[ok]) - (i[ok] + iii[ok]).mean())
    return float(10 * np.log10(np.sum(a**2) / max(np.sum(d**2), 1e-12)))


def eik_dev(root: Path, *, limit: int | None, category: str | None) -> list[float]:
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    if category:
        rows = [r for r in rows if r["category"] == category]
    per_cat: dict[str, dict[str, list]] = {}
    seconds: list[float] = []
    for r in rows[:limit]:
        ref = Record.from_wfdb(root / r["reference"])
        t0 = time.perf_counter()
        try:
            est = digitize(root / r["image"], fs=ref.fs).record
        except DigitizationError as exc:
            print(f"  {r['image']}: DigitizationError: {exc}", file=sys.stderr)
            est = None
        seconds.append(time.perf_counter() - t0)
        off = mean_snr(challenge_snr(ref, est))
        cor = mean_snr(challenge_snr(ref, est, corrected=True))
        cat = per_cat.setdefault(r["category"], {"off": [], "cor": [], "pairs": []})
        cat["off"].append(off)
        cat["cor"].append(cor)
        cat["pairs"].append((ref, est))
        print(f"  {r['image']:<32} official {off:6.2f} dB  corrected {cor:6.2f} dB  "
              f"{seconds[-1]:.2f} s", file=sys.stderr)  # fmt: skip
    print("\neik-dev: Challenge SNR (dB) per category")
    print(
        f"{'category':<12} {'pages':>5} {'official':>9} {'min':>7} {'corrected':>10} {'kaggle':>8}"
    )
    all_off, all_cor, all_pairs = [], [], []
    for name, cat in sorted(per_cat.items()):
        print(f"{name:<12} {len(cat['off']):>5} {np.mean(cat['off']):>9.2f} "
              f"{np.min(cat['off']):>7.2f} {np.mean(cat['cor']):>10.2f} "
              f"{kaggle_snr(cat['pairs']):>8.2f}")  # fmt: skip
        all_off += cat["off"]
        all_cor += cat["cor"]
        all_pairs += cat["pairs"]
    if all_off:
        print(f"{'all':<12} {len(all_off):>5} {np.mean(all_off):>9.2f} {np.min(all_off):>7.2f} "
              f"{np.mean(all_cor):>10.2f} {kaggle_snr(all_pairs):>8.2f}")  # fmt: skip
    return seconds


def real_scans(root: Path, *, limit: int | None) -> list[float]:
    files = sorted(
        p for p in root.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}
    )
    seconds, einthoven = [], []
    ok = failed = 0
    print("\nreal-scans")
    for path in files[:limit]:
        t0 = time.perf_counter()
        try:
            res = digitize(path)
            ok += 1
            e = _einthoven_db(res.record) if res.layout.name.startswith("3x4") else float("nan")
            if np.isfinite(e):
                einthoven.append(e)
            note = f"{res.layout.name:<14} Einthoven {e:6.2f} dB"
        except DigitizationError as exc:
            failed += 1
            note = f"DigitizationError: {exc}"
        seconds.append(time.perf_counter() - t0)
        print(f"  {path.name:<18} {note}")
    med = statistics.median(einthoven) if einthoven else float("nan")
    print(f"records {ok}, clear errors {failed}, Einthoven median on 3x4 pages {med:.2f} dB "
          f"({len(einthoven)} pages)")  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--category", default=None)
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    images = args.shared / "images"
    if not images.is_dir():
        sys.exit(f"needs {images} (the project's ../shared data)")
    seconds = eik_dev(images / "eik-dev", limit=args.limit, category=args.category)
    if not args.skip_real:
        seconds += real_scans(images / "real-scans", limit=args.limit)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nspeed: median {statistics.median(seconds):.2f} s/page over {len(seconds)} pages; "
          f"peak memory {peak_mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
