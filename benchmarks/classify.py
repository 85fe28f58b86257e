"""Accuracy and speed of a signal classifier on PTB-XL fold 9 (not a timed test).

Prints, for the shipped model (or ``--model FILE.onnx``), on the fold-9 true signals:

* the Challenge 2024 macro F-measure (:func:`ecgscan.metrics.challenge_f_measure`, over the
  classes present in the reference labels) with per-class F1 and AUROC;
* the PTB-XL diagnostic-superclass macro AUROC (NORM, MI, STTC, CD, HYP; records with at least
  one superclass, as in the PTB-XL benchmark);
* the same on a digitization-like distorted copy (3×4 page windows, noise, wander, gain and
  time-scale errors, dropped leads; fixed seed), to show robustness;
* the inference time per record (``classify`` on a Record, one CPU thread);
* with ``--eik-dev DIR``: the Challenge macro F on the ECG-Image-Kit pages of that folder
  (fold-9 records), digitized by :func:`ecgscan.digitize.digitize` and then classified — the
  end-to-end figure (slow: a few seconds per page).

Fold 9 is PTB-XL's validation fold; the shipped model never saw it (trained on folds 1–7, epoch
and thresholds chosen on fold 8), so these figures are held-out figures for this model.

    python benchmarks/classify.py --ptbxl ~/data/ptb-xl --ptbxl-plus ../shared/data/ptb-xl-plus
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ecgscan.classify import SignalClassifier, load_classifier
from ecgscan.data import Record
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import EcgscanError
from ecgscan.metrics import auroc, challenge_f_measure
from ecgscan.train._common import SUPERCLASSES, AugmentConfig, augment_batch, superclass_matrix

REPO = Path(__file__).resolve().parents[1]


def _table(title: str, y: np.ndarray, p: np.ndarray, thr: np.ndarray) -> dict[str, object]:
    true = [[n for n, v in zip(CHALLENGE_LABELS, row, strict=True) if v] for row in y]
    pred = [[n for n, v, t in zip(CHALLENGE_LABELS, row, thr, strict=True) if v >= t] for row in p]
    macro_f, f1 = challenge_f_measure(true, pred)
    auc = auroc(y, p, classes=CHALLENGE_LABELS)
    assert isinstance(auc, dict)
    print(f"\n{title}")
    print(f"{'label':<10} {'n':>5} {'F1':>6} {'AUROC':>6} {'thr':>6}")
    for i, name in enumerate(CHALLENGE_LABELS):
        print(f"{name:<10} {int(y[:, i].sum()):>5} {f1.get(name, float('nan')):>6.3f} "
              f"{auc[name]:>6.3f} {thr[i]:>6.3f}")  # fmt: skip
    macro_auc = float(np.nanmean(list(auc.values())))
    print(f"{'macro':<10} {len(y):>5} {macro_f:>6.3f} {macro_auc:>6.3f}")
    return {"challenge_macro_f": macro_f, "f1": f1, "auroc": auc, "macro_auroc": macro_auc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptbxl", default=os.environ.get("ECGSCAN_PTBXL", "/root/data/ptb-xl"))
    parser.add_argument("--ptbxl-plus", default=str(REPO.parent / "shared/data/ptb-xl-plus"))
    parser.add_argument("--model", default="signal", help="registered name or .onnx file")
    parser.add_argument("--fold", type=int, default=9)
    parser.add_argument("--limit", type=int, default=None, help="first N records only")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--eik-dev", type=Path, default=None, help="ECG-Image-Kit pages folder")
    args = parser.parse_args()

    clf = load_classifier(args.model)
    plus = args.ptbxl_plus if Path(args.ptbxl_plus).is_dir() else None
    db = PTBXL(args.ptbxl, ptbxl_plus=plus)
    ids = db.ecg_ids(folds=[args.fold], fs=100)[: args.limit]
    print(f"model {clf.name} ({clf.path.name}); PTB-XL fold {args.fold}: {len(ids)} records"
          f"{'' if plus else ' (no PTB-XL+: Acute MI cannot be scored)'}")  # fmt: skip
    records = [db.record(e, fs=100) for e in ids]
    y = np.stack([[float(n in r.labels) for n in CHALLENGE_LABELS] for r in records])
    ysup = superclass_matrix(list(db.database.loc[ids, "scp_codes"]), db.scp_statements)
    has_sup = ysup.sum(axis=1) > 0

    # clean signals, timed one record at a time through the public API
    times, p, psup = [], [], []
    for rec in records:
        t0 = time.perf_counter()
        pred = clf.predict(rec)
        times.append(time.perf_counter() - t0)
        p.append([pred.probabilities[n] for n in CHALLENGE_LABELS])
        psup.append([pred.superclass_probabilities[n] for n in SUPERCLASSES])
    p_arr, psup_arr = np.asarray(p), np.asarray(psup)
    thr = np.asarray([clf.thresholds["challenge"][i] for i in range(len(CHALLENGE_LABELS))])
    clean = _table(f"fold-{args.fold} true signals", y, p_arr, thr)
    sup_auc = auroc(ysup[has_sup], psup_arr[has_sup], classes=SUPERCLASSES)
    assert isinstance(sup_auc, dict)
    sup_macro = float(np.nanmean(list(sup_auc.values())))
    print("superclass AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in sup_auc.items())
          + f"; macro {sup_macro:.3f} (n={int(has_sup.sum())})")  # fmt: skip

    # digitization-like distortions (fixed seed)
    sig = np.stack([r.standard().signal[:1000].T for r in records]).astype(np.float32)
    dist = augment_batch(sig, np.random.default_rng(2024), fs=100, config=AugmentConfig(p=1.0))
    pd_, psd = [], []
    for rec, s in zip(records, dist, strict=True):
        pred = clf.predict(Record(s.T, fs=100, leads=rec.standard().leads, name=rec.name))
        pd_.append([pred.probabilities[n] for n in CHALLENGE_LABELS])
        psd.append([pred.superclass_probabilities[n] for n in SUPERCLASSES])
    distorted = _table(f"fold-{args.fold} distorted like digitized pages", y, np.asarray(pd_), thr)
    sup_d = auroc(ysup[has_sup], np.asarray(psd)[has_sup], classes=SUPERCLASSES)
    assert isinstance(sup_d, dict)
    sup_d_macro = float(np.nanmean(list(sup_d.values())))
    print(f"superclass macro AUROC (distorted): {sup_d_macro:.3f}")

    t = np.asarray(times)
    ms = t * 1e3
    print(f"\ninference per record: median {np.median(ms):.1f} ms, "
          f"95th percentile {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms")  # fmt: skip
    images = _images(args.eik_dev, clf, db) if args.eik_dev else None
    if args.json:
        out = {"model": clf.name, "fold": args.fold, "n": len(ids), "clean": clean,
               "superclass_auroc": sup_auc, "superclass_macro_auroc": sup_macro,
               "distorted": distorted, "superclass_macro_auroc_distorted": sup_d_macro,
               "ms_median": float(np.median(t) * 1e3),
               "ms_p95": float(np.percentile(t, 95) * 1e3), "images": images}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=1))


def _images(folder: Path, clf: SignalClassifier, db: PTBXL) -> dict[str, object]:
    import csv

    from ecgscan.classify import classify

    rows = list(csv.DictReader((folder / "manifest.csv").read_text().splitlines()))
    true, pred, ref_pred, cats, seconds = [], [], [], [], []
    for row in rows:
        t0 = time.perf_counter()
        try:
            p = classify(folder / row["image"], model=clf)
            labels: list[str] = list(p.labels)
        except EcgscanError as exc:
            print(f"  {row['image']}: {exc}")
            labels = []
        seconds.append(time.perf_counter() - t0)
        true.append(list(db.challenge_labels[int(row["ecg_id"])]))
        ref_pred.append(list(clf.predict(db.record(int(row["ecg_id"]), fs=100)).labels))
        pred.append(labels)
        cats.append(row["category"])
    macro_f, f1 = challenge_f_measure(true, pred)
    print(f"\nECG-Image-Kit pages ({len(rows)}), digitized then classified: Challenge macro F "
          f"{macro_f:.3f} ({np.mean(seconds):.1f} s per page)")  # fmt: skip
    ref_f, _ = challenge_f_measure(true, ref_pred)
    print(f"  the same records' true signals (100 Hz): Challenge macro F {ref_f:.3f}")
    out: dict[str, object] = {"challenge_macro_f": macro_f, "f1": f1, "n": len(rows),
                              "true_signal_macro_f": ref_f}  # fmt: skip
    for cat in sorted(set(cats)):
        idx = [i for i, c in enumerate(cats) if c == cat]
        f, _ = challenge_f_measure([true[i] for i in idx], [pred[i] for i in idx])
        print(f"  {cat:<12} n={len(idx):>2}  macro F {f:.3f}")
        out[cat] = f
    return out


if __name__ == "__main__":
    main()
