"""Benchmark of the digitizer: accuracy per category, speed and memory.

Usage::

    python benchmarks/digitize.py [--shared ../shared] [--limit N] [--category A_clean]
                                  [--diagnose] [--skip-real | --real-only]

On ``images/eik-dev`` it prints, per category, the Challenge SNR (official and corrected
variants, mean and minimum over pages) and the Kaggle SNR; on ``images/real-scans`` whether
every page gives a record or a clear :class:`~ecgscan.DigitizationError`, and on 3×4 pages
(and 15-lead 3×5 pages) how well the leads obey Einthoven's law (II vs I + III over the first
column, dB; as a diagnostic also after the whole-sample lags of I and III against II that fit
best, which are 0 when the rows are on one time axis). Then the median
seconds per page and the peak resident memory of the process.

``--diagnose`` decomposes each lead's error against its reference: the best sub-sample time
shift (``tau``, samples beyond digitize's 20-ms lead-in; negative = the estimate runs early),
the SNR at the nominal timing, after the best shift (both with the best vertical offset) and
after a least-squares gain too (``gain`` > 1: the estimate is too small), and the share of
the residual on the steepest tenth of the samples (QRS strokes); medians per page, means per
category; on the real scans it prints the best lags of I and III beat by beat along the first
column (a lag that drifts along the row is a time offset that changes along x, which one offset
per row cannot follow).
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgscan.data import Record
from ecgscan.data.record import normalize_lead_name
from ecgscan.digitize import digitize
from ecgscan.errors import DigitizationError
from ecgscan.metrics import challenge_snr, kaggle_snr, mean_snr


def _einthoven_db(record: Record) -> float:
    return _einthoven(*(record.lead(n) for n in ("I", "II", "III")))


def _einthoven(i: np.ndarray, ii: np.ndarray, iii: np.ndarray) -> float:
    """II against I + III (means removed) over the samples all three have, dB; NaN under 100."""
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    if ok.sum() < 100:
        return float("nan")
    a = ii[ok] - ii[ok].mean()
    d = a - ((i[ok] + iii[ok]) - (i[ok] + iii[ok]).mean())
    return float(10 * np.log10(np.sum(a**2) / max(np.sum(d**2), 1e-12)))


def _einthoven_lagged(
    record: Record, max_lag: int = 10, window: np.ndarray | None = None
) -> tuple[float, int, int]:
    """Diagnostic: :func:`_einthoven_db` after shifting I and III against II by the whole
    samples (within ``max_lag``) that fit best, and those lags (negative: the lead runs late
    against II). Rows printed simultaneously and placed on one time axis give (0, 0).
    ``window``: a boolean mask of the samples compared (default: all)."""
    i, ii, iii = (record.lead(n) for n in ("I", "II", "III"))
    n = ii.size
    if window is not None:
        ii = np.where(window, ii, np.nan)

    def shifted(x: np.ndarray, k: int) -> np.ndarray:
        out = np.full(n, np.nan)
        if k >= 0:
            out[k:] = x[: n - k]
        else:
            out[:k] = x[-k:]
        return out

    best = (float("nan"), 0, 0)
    lags = range(-max_lag, max_lag + 1)
    iiis = {b: shifted(iii, b) for b in lags}
    for a in lags:
        x = shifted(i, a)
        for b in lags:
            db = _einthoven(x, ii, iiis[b])
            if np.isfinite(db) and not db <= best[0]:
                best = (db, a, b)
    return best


def _beat_lags(
    record: Record, max_lag: int = 8, half: float = 0.15
) -> list[tuple[float, int, int]]:
    """Diagnostic: the best lags of I and III (as :func:`_einthoven_lagged`) beat by beat, over
    ``half`` s either side of each QRS complex of the first column (II's steepest strokes,
    0.3 s apart at least): (time in s, lag of I, lag of III) per beat. Lags that drift along
    the row say a row's time offset changes along x (a photo's bend the dewarp left), which
    one offset per row cannot follow; lags that stay put say the row is offset as a whole."""
    i, ii, iii = (record.lead(n) for n in ("I", "II", "III"))
    fs = record.fs
    ok = np.isfinite(i) & np.isfinite(ii) & np.isfinite(iii)
    if ok.sum() < 100:
        return []
    slope = np.where(ok, np.abs(np.gradient(np.nan_to_num(ii))), 0.0)
    peaks: list[int] = []
    for k in np.argsort(-slope):
        if not ok[k] or (peaks and slope[k] < 0.3 * slope[peaks[0]]):
            break  # (descending: the rest are weaker strokes, or outside the column)
        if all(abs(int(k) - p) > 0.3 * fs for p in peaks):
            peaks.append(int(k))
    out = []
    for p in sorted(peaks):
        window = np.zeros(ii.size, dtype=bool)
        window[max(0, p - int(half * fs)) : p + int(half * fs)] = True
        db, a, b = _einthoven_lagged(record, max_lag, window=window & ok)
        if np.isfinite(db):  # (a stroke at the column's start: too few samples to compare)
            out.append((p / fs, a, b))
    return out


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


# ---------------------------------------------------------------------------------------------
# pixel-level diagnosis against ECG-Image-Kit's own ground truth (``<rec>-0.json.xz``)

_PIX_KEYS = ("extract", "+timing", "+calib", "+resample", "record")


def _truth_leads(path: Path) -> list[dict]:
    """ECG-Image-Kit's per-lead truth: name, first sample, and each sample's (x, y) in pixels.

    Its ``plotted_pixels`` are ``[row, column]`` in Matplotlib's convention (pixel ``i`` covers
    ``[i, i + 1)``), so a sample's position in pixel-index coordinates is that minus 0.5.
    """
    import json
    import lzma

    with lzma.open(path) as fh:
        data = json.load(fh)
    # the pixels are those of the figure before its padding (``pad_inches``) was added
    pad = float(data.get("pad_inches") or 0) * float(data.get("resolution") or 0)
    out = []
    for lead in data["leads"]:
        pix = np.asarray(lead["plotted_pixels"], dtype=np.float64)
        if pix.size == 0:
            continue
        out.append({"name": lead["lead_name"], "k0": int(lead["start_sample"]),
                    "x": pix[:, 1] - 0.5 + pad, "y": pix[:, 0] - 0.5 + pad})  # fmt: skip
    return out


def _capture_segments(image: Path, fs: float) -> tuple[Any, list[dict]]:
    """Digitize ``image`` and record every call of the pipeline's ``sample_trace``."""
    from ecgscan.digitize import _pipeline

    calls: list[dict] = []
    fitted = _pipeline.sample_trace

    def spy(*args: Any, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        t, v = fitted(*args, **kw)
        # the traced curve: the polyline through the samples (in pixels)
        ok = np.isfinite(v)
        x = kw["x_origin"] + t[ok] * kw["px_per_s"]
        y = kw["zero_y"] - v[ok] * kw["px_per_mv"]
        calls.append({"x": x, "y": y, "t": t, "v": v, **kw})
        return t, v

    _pipeline.sample_trace = spy
    try:
        result = digitize(image, fs=fs)
    finally:
        _pipeline.sample_trace = fitted
    return result, calls


def _match(lead: dict, calls: list[dict], fs: float) -> dict | None:
    """The traced segment that covers ``lead``'s printed pixels (x overlap, then y distance)."""
    best, score = None, -np.inf
    xa, xb, ym = lead["x"].min(), lead["x"].max(), float(np.median(lead["y"]))
    for c in calls:
        lo = c["x_origin"] + c["t_start"] * c["px_per_s"]
        hi = c["x_origin"] + c["t_end"] * c["px_per_s"]
        overlap = min(hi, xb) - max(lo, xa)
        if overlap < 0.8 * (xb - xa) or abs(c["zero_y"] - ym) > 40 * c["px_per_mv"] / 10:
            continue
        s = overlap - abs(c["zero_y"] - ym)
        if s > score:
            best, score = c, s
    return best


def _offset_free_db(ref: np.ndarray, est: np.ndarray) -> float:
    ok = np.isfinite(ref) & np.isfinite(est)
    if ok.sum() < 10:
        return float("nan")
    r, e = ref[ok], est[ok]
    d = r - e
    return _db(r - r.mean(), d - d.mean())


def pixel_lead(lead: dict, seg: dict, ref: np.ndarray, rec: np.ndarray, fs: float,
               lead_in: float = 0.02) -> dict[str, float]:  # fmt: skip
    """Split one lead's error into extraction, timing, calibration and resampling.

    Cumulative SNRs (dB, offset-free, over the lead's printed samples): ``extract`` the traced
    curve read at each sample's true pixel x with the true zero line and scale; ``+timing``
    read where the digitizer puts the sample (its origin and px/s); ``+calib`` with its zero
    line and px/mV too; ``+resample`` the values it output for the segment; ``record`` the
    record's samples (segments merged). Pixel figures: RMS of the curve's y error at the
    true x (all / steepest tenth of samples), mean and spread of the x error (digitizer's
    position of a sample less the truth; > 0 = late), zero-line error (px) and the ratio of
    true to estimated px/mV.
    """
    n = lead["x"].size
    k = lead["k0"] + np.arange(n)
    r = ref[k]
    ok = np.isfinite(r)
    # the truth's own scale: x = x0 + t px_per_s, y = zero - mV px_per_mv (least squares)
    t = k / fs
    A = np.stack([np.ones(ok.sum()), t[ok]], 1)
    (_x0, pps_true), *_ = np.linalg.lstsq(A, lead["x"][ok], rcond=None)
    B = np.stack([np.ones(ok.sum()), -r[ok]], 1)
    (zero_true, ppmv_true), *_ = np.linalg.lstsq(B, lead["y"][ok], rcond=None)
    order = np.argsort(seg["x"], kind="stable")
    sx, sy = seg["x"][order], seg["y"][order]

    def curve(x: np.ndarray) -> np.ndarray:
        v = np.interp(x, sx, sy)
        v[(x < sx[0] - 1) | (x > sx[-1] + 1)] = np.nan
        return v

    x_est = seg["x_origin"] + t * seg["px_per_s"]
    y_true_x = curve(lead["x"])
    v_a = (zero_true - y_true_x) / ppmv_true
    v_b = (zero_true - curve(x_est)) / ppmv_true
    v_c = (seg["zero_y"] - curve(x_est)) / seg["px_per_mv"]
    ki = np.round(t * fs).astype(int)
    ks = np.round(seg["t"] * fs).astype(int)
    pos = np.searchsorted(ks, ki)
    hit = (pos < ks.size) & (ks[np.minimum(pos, ks.size - 1)] == ki)
    v_d = np.full(n, np.nan)
    v_d[hit] = seg["v"][pos[hit]]
    li = int(round(lead_in * fs))
    v_e = np.full(n, np.nan)
    inside = (k + li) < rec.size
    v_e[inside] = rec[k[inside] + li]
    slope = np.abs(np.gradient(lead["y"]))
    steep = slope >= np.percentile(slope, 90)
    dy = y_true_x - lead["y"]
    dx = x_est - lead["x"]
    fin = np.isfinite(dy)
    return {
        "extract": _offset_free_db(r, v_a), "+timing": _offset_free_db(r, v_b),
        "+calib": _offset_free_db(r, v_c), "+resample": _offset_free_db(r, v_d),
        "record": _offset_free_db(r, v_e),
        "dy_rms": float(np.sqrt(np.mean(dy[fin] ** 2))),
        "dy_steep": float(np.sqrt(np.mean(dy[fin & steep] ** 2))),
        "dy_flat": float(np.sqrt(np.mean(dy[fin & ~steep] ** 2))),
        "dx_mean": float(np.mean(dx)), "dx_sd": float(np.std(dx)),
        "dx_scale": float(seg["px_per_s"] / pps_true - 1.0) * 1e3,
        "dzero": float(seg["zero_y"] - zero_true),
        "gain": float(ppmv_true / seg["px_per_mv"]),
    }  # fmt: skip


_PIX_ALL = (*_PIX_KEYS, "dy_rms", "dy_steep", "dy_flat", "dx_mean", "dx_sd", "dx_scale",
            "dzero", "gain")  # fmt: skip


def pixel_diagnosis(root: Path, *, limit: int | None, category: str | None) -> None:
    """Per category and reference fs: where the error arises, against the pixel truth."""
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    if category:
        rows = [r for r in rows if r["category"] == category]
    groups: dict[tuple[str, int], list[dict[str, float]]] = {}
    skipped = []
    for r in rows[:limit]:
        truth = root / (r["reference"] + "-0.json.xz")
        if not truth.exists():
            continue
        ref = Record.from_wfdb(root / r["reference"])
        try:
            result, calls = _capture_segments(root / r["image"], ref.fs)
        except DigitizationError:
            skipped.append(r["image"] + " (error)")
            continue
        g = result.geometry
        if (
            g.quarter_turns
            or abs(g.rotation) > 0.01
            or g.perspective is not None
            or g.dewarp > 0.25
        ):
            skipped.append(r["image"] + " (straightened)")
            continue
        per = []
        for lead in _truth_leads(truth):
            seg = _match(lead, calls, ref.fs)
            name = normalize_lead_name(lead["name"])
            if seg is None or name not in ref.leads:
                continue
            j = ref.leads.index(name)
            per.append(pixel_lead(lead, seg, ref.signal[:, j],
                                  result.record.signal[:, result.record.leads.index(name)],
                                  ref.fs))  # fmt: skip
        if not per:
            continue
        page = {key: float(np.nanmedian([p[key] for p in per])) for key in _PIX_ALL}
        groups.setdefault((r["category"], int(float(r["fs"]))), []).append(page)
        print(f"  {r['image']:<32} " + " ".join(f"{k} {page[k]:.2f}" for k in _PIX_ALL),
              file=sys.stderr)  # fmt: skip
    print("\npixel diagnosis (means over pages of per-lead medians; dB cumulative, px)")
    print(f"{'category':<11}{'fs':>4}{'n':>3} " + " ".join(f"{k:>9}" for k in _PIX_ALL))
    for (cat, fs), pages in sorted(groups.items()):
        means = [float(np.mean([p[k] for p in pages])) for k in _PIX_ALL]
        print(f"{cat:<11}{fs:>4}{len(pages):>3} " + " ".join(f"{m:>9.2f}" for m in means))
    if skipped:
        print("not compared: " + ", ".join(skipped))


def real_scans(root: Path, *, limit: int | None, diagnose: bool = False) -> list[float]:
    files = sorted(
        p for p in root.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}
    )
    seconds, einthoven, lagged = [], [], []
    ok = failed = 0
    print("\nreal-scans")
    for path in files[:limit]:
        t0 = time.perf_counter()
        try:
            res = digitize(path)
            ok += 1
            # I, II and III printed side by side in the first column (3x4, 15-lead 3x5 pages)
            first_column = res.layout.name.startswith(("3x4", "3x5"))
            e = _einthoven_db(res.record) if first_column else float("nan")
            note = f"{res.layout.name:<14} Einthoven {e:6.2f} dB"
            if np.isfinite(e):
                einthoven.append(e)
                # diagnostic: how much of the gap is the rows' time alignment
                best, lag_i, lag_iii = _einthoven_lagged(res.record)
                lagged.append(best)
                note += f"  (best lag {best:6.2f} dB at I {lag_i:+d}, III {lag_iii:+d})"
                if diagnose:
                    beats = [f"{t:.2f} s I {a:+d} III {b:+d}" for t, a, b in _beat_lags(res.record)]
                    note += "\n" + 21 * " " + "per beat: " + "  ".join(beats)
        except DigitizationError as exc:
            failed += 1
            note = f"DigitizationError: {exc}"
        seconds.append(time.perf_counter() - t0)
        print(f"  {path.name:<18} {note}")
    med = statistics.median(einthoven) if einthoven else float("nan")
    med_lag = statistics.median(lagged) if lagged else float("nan")
    print(f"records {ok}, clear errors {failed}, Einthoven median on 3x4/3x5 pages {med:.2f} dB "
          f"({len(einthoven)} pages; {med_lag:.2f} dB at the best lags of I and III)")  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--category", default=None)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-real", action="store_true", help="only the eik-dev pages")
    which.add_argument("--real-only", action="store_true", help="only the real scans")
    parser.add_argument(
        "--diagnose", action="store_true", help="decompose each lead's error (timing, gain)"
    )
    parser.add_argument(
        "--pixels",
        action="store_true",
        help="split each lead's error into extraction, timing, calibration and resampling "
        "against ECG-Image-Kit's pixel truth (pages the digitizer did not straighten)",
    )
    args = parser.parse_args()
    images = args.shared / "images"
    if not images.is_dir():
        sys.exit(f"needs {images} (the project's ../shared data)")
    if args.pixels:
        pixel_diagnosis(images / "eik-dev", limit=args.limit, category=args.category)
        return
    seconds: list[float] = []
    if not args.real_only:
        seconds += eik_dev(
            images / "eik-dev", limit=args.limit, category=args.category, diagnose=args.diagnose
        )
    if not args.skip_real:
        seconds += real_scans(images / "real-scans", limit=args.limit, diagnose=args.diagnose)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nspeed: median {statistics.median(seconds):.2f} s/page over {len(seconds)} pages; "
          f"peak memory {peak_mb:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
