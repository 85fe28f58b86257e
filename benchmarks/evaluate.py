"""Speed and behaviour of ``evaluate_folders`` on the eik-dev references (not a timed test).

Writes perturbed copies of the ECG-Image-Kit references of ../shared/images/eik-dev into a
temporary estimate folder — noisy, late, early, partly NaN, one left out — scores them with
:func:`ecgscan.metrics.evaluate_folders` and prints the overall, per-group and per-record scores
and the time per record. Shows the effect of the official negative-lag scoring: the early copies
score near 0 dB officially and at their noise level with the correction.

    python benchmarks/evaluate.py [--eik ../shared/images/eik-dev] [--limit 14]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgscan.data import Record, read_record
from ecgscan.metrics import evaluate_folders

REPO = Path(__file__).resolve().parents[1]


def _perturb(ref: Record, kind: str, rng: np.random.Generator) -> Record | None:
    sig = ref.signal + 0.03 * rng.standard_normal(ref.signal.shape)
    k = int(0.03 * ref.fs)
    if kind == "late":
        sig = np.vstack([np.full((k, ref.n_leads), np.nan), sig[:-k]])
    elif kind == "early":
        sig = np.vstack([sig[k:], np.full((k, ref.n_leads), np.nan)])
    elif kind == "partly-nan":
        sig[: ref.n_samples // 3] = np.nan
    elif kind == "missing":
        return None
    return ref.with_signal(sig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eik", type=Path, default=REPO.parent / "shared/images/eik-dev")
    parser.add_argument("--limit", type=int, default=14, help="number of references to use")
    args = parser.parse_args()
    kinds = ["noisy", "late", "early", "partly-nan", "missing"]
    rng = np.random.default_rng(0)
    heads = sorted(args.eik.glob("*/*.hea"))[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, est_dir = Path(tmp) / "ref", Path(tmp) / "est"
        for i, hea in enumerate(heads):
            rel = hea.relative_to(args.eik).with_suffix("")
            ref = read_record(hea.with_suffix(""))
            (ref_dir / rel.parent).mkdir(parents=True, exist_ok=True)
            ref.to_wfdb(ref_dir / rel)
            est = _perturb(ref, kinds[i % len(kinds)], rng)
            if est is not None:
                (est_dir / rel.parent).mkdir(parents=True, exist_ok=True)
                est.to_wfdb(est_dir / rel)
        t0 = time.perf_counter()
        report = evaluate_folders(ref_dir, est_dir)
        elapsed = time.perf_counter() - t0
    print(f"{len(report.records)} records in {elapsed:.1f} s "
          f"({elapsed / len(report.records):.2f} s per record, one process)")  # fmt: skip
    print(f"Challenge SNR official {report.snr:.3f} dB, corrected {report.snr_corrected:.3f} dB, "
          f"Kaggle {report.kaggle_snr:.3f} dB")  # fmt: skip
    for i, r in enumerate(report.records):
        print(f"{r.record:<24} {kinds[i % len(kinds)]:<11} {r.mean_snr:8.3f} "
              f"{r.mean_snr_corrected:8.3f} {r.kaggle_snr:8.3f}  {r.status}")  # fmt: skip


if __name__ == "__main__":
    main()
