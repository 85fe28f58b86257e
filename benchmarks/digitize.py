"""Benchmark of the digitizer: accuracy per category, speed and memory.

Usage::

    python benchmarks/digitize.py [--shared ../shared] [--limit N] [--category A_clean]
                                  [--diagnose]

On ``images/eik-dev`` it prints, per category, the Challenge SNR (official and corrected
variants, mean and minimum over pages) and the Kaggle SNR; on ``images/real-scans`` whether
every page gives a record or a clear :class:`~ecgscan.DigitizationError`, and on 3×4 pages how
well the leads obey Einthoven's law (II vs I + III over the first column, dB). Then the median
seconds per page and the peak resident memory of the process.

``--diagnose`` decomposes each lead's error against its reference: the best sub-sample time
shift (``tau``, samples beyond digitize's 20-ms lead-in; negative = the estimate runs early),
the SNR at the nominal timing, after the best shift (both with the best vertical offset) and
after a least-squares gain too (``gain`` > 1: the estimate is too small), and the share of
the residual on the steepest tenth of the samples (QRS strokes); medians per page, means per
category.
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


_DIAG_KEYS = ("tau", "nominal", "shifted", "gain", "shifted+gain", "steep")


def _db(ref: np.ndarray, err: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(float(np.sum(err**2)), 1e-12)))


def diagnose_lead(
    ref: np.ndarray, est: np.ndarray, fs: float, lead_in: float = 0.02
) -> dict[str, float] | None:
    """Error decomposition of one lead (see the module docstring), None without overlap."""
    idx = np.flatnonzero(np.isfinite(ref))
    fin = np.flatnonzero(np.isfinite(est))
    if idx.size < 50 or fin.size < 50:
        return None
    r = ref[idx]
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None
    nominal = float("nan")
    for tau in np.round(np.arange(-6.0, 6.0001, 0.05), 2):
        e = np.interp(idx + lead_in * fs + tau, fin, est[fin], left=np.nan, right=np.nan)
        ok = np.isfinite(e)
        if ok.mean() < 0.9:
            continue
        rr, ee = r[ok], e[ok]
        snr = _db(rr, rr - ee - np.mean(rr - ee))
        if tau == 0.0:
            nominal = snr
        if best is None or snr > best[1]:
            best = (float(tau), snr, rr, ee)
    if best is None:
        return None
    tau, snr, rr, ee = best
    (g, b), *_ = np.linalg.lstsq(np.stack([ee, np.ones_like(ee)], 1), rr, rcond=None)
    res = rr - ee - np.mean(rr - ee)
    slope = np.abs(np.gradient(rr))
    steep = slope > np.percentile(slope, 90)
    steep_share = float(np.sum(res[steep] ** 2) / max(float(np.sum(res**2)), 1e-12))
    return {"tau": tau, "nominal": nominal, "shifted": snr, "gain": float(g),
            "shifted+gain": _db(rr, rr - g * ee - b), "steep": steep_share}  # fmt: skip


def _diagnose_page(ref: Record, est: Record | None) -> dict[str, float] | None:
    if est is None:
        return None
    per = [diagnose_lead(ref.signal[:, j], est.signal[:, est.leads.index(n)], ref.fs)
           for j, n in enumerate(ref.leads) if n in est.leads]  # fmt: skip
    leads = [d for d in per if d is not None]
    if not leads:
        return None
    return {k: float(np.median([d[k] for d in leads])) for k in _DIAG_KEYS}


def eik_dev(
    root: Path, *, limit: int | None, category: str | None, diagnose: bool = False
) -> list[float]:
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
        cat = per_cat.setdefault(r["category"], {"off": [], "cor": [], "pairs": [], "diag": []})
        cat["off"].append(off)
        cat["cor"].append(cor)
        cat["pairs"].append((ref, est))
        note = ""
        if diagnose and (d := _diagnose_page(ref, est)) is not None:
            cat["diag"].append(d)
            note = "  " + " ".join(f"{k} {d[k]:.2f}" for k in _DIAG_KEYS)
        print(f"  {r['image']:<32} official {off:6.2f} dB  corrected {cor:6.2f} dB  "
              f"{seconds[-1]:.2f} s{note}", file=sys.stderr)  # fmt: skip
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
    if diagnose:
        print("\nerror decomposition (means over pages of the per-lead medians)")
        print(f"{'category':<12} " + " ".join(f"{k:>12}" for k in _DIAG_KEYS))
        for name, cat in sorted(per_cat.items()):
            if cat["diag"]:
                means = [np.mean([d[k] for d in cat["diag"]]) for k in _DIAG_KEYS]
                print(f"{name:<12} " + " ".join(f"{m:>12.2f}" for m in means))
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
    parser.add_argument(
        "--diagnose", action="store_true", help="decompose each lead's error (timing, gain)"
    )
    args = parser.parse_args()
    images = args.shared / "images"
    if not images.is_dir():
        sys.exit(f"needs {images} (the project's ../shared data)")
    seconds = eik_dev(
        images / "eik-dev", limit=args.limit, category=args.category, diagnose=args.diagnose
    )
    if not args.skip_real:
        seconds += real_scans(images / "real-scans", limit=args.limit)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nspeed: median {statistics.median(seconds):.2f} s/page over {len(seconds)} pages; "
          f"peak memory {peak_mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
