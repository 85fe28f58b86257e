"""Accuracy and speed of the classifiers on PTB-XL fold 9 and on ECG-Image-Kit pages.

For the ensemble (``--model``, default ``ensemble``) and each of its members, on the fold-9
true signals:

* the Challenge 2024 macro F-measure (:func:`ecgscan.metrics.challenge_f_measure`, over the
  classes present in the reference labels) and the macro AUROC, with a per-class table for the
  model benchmarked;
* the PTB-XL diagnostic-superclass macro AUROC (NORM, MI, STTC, CD, HYP; records with at least
  one superclass, as in the PTB-XL benchmark);
* the same on a digitization-like distorted copy (3×4 page windows, noise, wander, gain and
  time-scale errors, dropped leads; fixed seed), to show robustness;
* the Challenge macro F with and without the Acute MI / Old MI exclusivity;
* the inference time per record (``classify`` on a Record, one CPU thread);
* with ``--eik-dev DIR``: the ECG-Image-Kit pages of that folder (fold-9 records) digitized by
  :func:`ecgscan.digitize.digitize` and classified: the signal members on the digitized record,
  the image members on the page, the ensemble on both, against the same records' true signals
  (the end-to-end figure and its ratio). Digitized records are cached with ``--cache DIR``;
* with ``--rendered N``: the same end to end on N fold-9 records drawn by
  :func:`ecgscan.render.render_page` in random styles, across the layouts and at 150–300 dpi
  (harder than ECG-Image-Kit's pages: 12x1, Cabrera, photos), then digitized; the signal
  members only, with the macro AUROC beside the macro F (less noisy on few pages).

Fold 9 is PTB-XL's validation fold; no shipped model saw it (trained on folds 1–7; epochs,
calibration, weights and thresholds chosen on fold 8), so these are held-out figures.

    python benchmarks/classify.py --ptbxl ~/data/ptb-xl --ptbxl-plus ../shared/data/ptb-xl-plus \\
        --eik-dev ../shared/images/eik-dev --cache runs/bench-classify
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgscan.classify import (
    EnsembleClassifier,
    ImageClassifier,
    SignalClassifier,
    load_classifier,
    prepare_record,
)
from ecgscan.data import Record, read_record
from ecgscan.data.beats import BEAT_FEATURES, beat_features
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import EcgscanError
from ecgscan.metrics import auroc, challenge_f_measure
from ecgscan.train._common import SUPERCLASSES, AugmentConfig, augment_batch, superclass_matrix

REPO = Path(__file__).resolve().parents[1]


def _labels(
    p: np.ndarray, thr: np.ndarray, exclusive: Sequence[Sequence[str]] = ()
) -> list[list[str]]:
    out = []
    for row in p:
        chosen = [n for n, v, t in zip(CHALLENGE_LABELS, row, thr, strict=True) if v >= t]
        for group in exclusive:
            hits = [n for n in group if n in chosen]
            if len(hits) > 1:
                keep = max(hits, key=lambda n: row[CHALLENGE_LABELS.index(n)])
                chosen = [n for n in chosen if n not in hits or n == keep]
        out.append(chosen)
    return out


def _scores(
    y: np.ndarray, p: np.ndarray, thr: np.ndarray, exclusive: Sequence[Sequence[str]] = ()
) -> dict[str, Any]:
    true = [[n for n, v in zip(CHALLENGE_LABELS, row, strict=True) if v] for row in y]
    macro_f, f1 = challenge_f_measure(true, _labels(p, thr, exclusive))
    auc = auroc(y, p, classes=CHALLENGE_LABELS)
    assert isinstance(auc, dict)
    return {"macro_f": macro_f, "f1": f1, "auroc": auc,
            "macro_auroc": float(np.nanmean(list(auc.values())))}  # fmt: skip


def _sup_auroc(ysup: np.ndarray, psup: np.ndarray) -> float:
    has = ysup.sum(axis=1) > 0
    auc = auroc(ysup[has], psup[has], classes=SUPERCLASSES)
    assert isinstance(auc, dict)
    return float(np.nanmean(list(auc.values())))


def _table(title: str, y: np.ndarray, s: Mapping[str, Any], thr: np.ndarray) -> None:
    print(f"\n{title}")
    print(f"{'label':<10} {'n':>5} {'F1':>6} {'AUROC':>6} {'thr':>6}")
    for i, name in enumerate(CHALLENGE_LABELS):
        print(f"{name:<10} {int(y[:, i].sum()):>5} {s['f1'].get(name, float('nan')):>6.3f} "
              f"{s['auroc'][name]:>6.3f} {thr[i]:>6.3f}")  # fmt: skip
    print(f"{'macro':<10} {len(y):>5} {s['macro_f']:>6.3f} {s['macro_auroc']:>6.3f}")


def _members(clf: Any) -> list[tuple[int, SignalClassifier | ImageClassifier]]:
    if isinstance(clf, EnsembleClassifier):
        return [(i, m) for i, m in enumerate(clf.members) if clf.weights[i] > 0]
    return [(0, clf)]


def _features(records: Sequence[Record | None]) -> np.ndarray:
    """Beat features of each record (a NaN row for None), as the ensemble measures them (its
    rate rule reads the heart rate among them, its beat trees all of them)."""
    rows = np.full((len(records), len(BEAT_FEATURES)), np.nan)
    for k, r in enumerate(records):
        if r is not None:
            rows[k] = beat_features(prepare_record(r, fs=100.0).signal[None], fs=100.0)[0]
    return rows


def _combine(
    clf: Any, raw: Mapping[int, Mapping[str, np.ndarray]], features: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, list[list[str]]]:
    """(probabilities per head, Challenge thresholds, exclusive groups) of ``clf`` from raw
    member outputs (and the records' beat features, for the ensemble's rate rule and trees)."""
    if isinstance(clf, EnsembleClassifier):
        probs, key = clf.combine_member_probabilities(raw, features=features)
        groups = [list(g) for g in clf.exclusive]
        return probs, clf.thresholds[key]["challenge"], groups
    (only,) = raw.values()
    return {k: np.asarray(v) for k, v in only.items()}, clf.thresholds["challenge"], []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptbxl", default=os.environ.get("ECGSCAN_PTBXL", "/root/data/ptb-xl"))
    parser.add_argument("--ptbxl-plus", default=str(REPO.parent / "shared/data/ptb-xl-plus"))
    parser.add_argument("--model", default="ensemble", help="registered name or .onnx/.json file")
    parser.add_argument("--fold", type=int, default=9)
    parser.add_argument("--limit", type=int, default=None, help="first N records only")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--eik-dev", type=Path, default=None, help="ECG-Image-Kit pages folder")
    parser.add_argument("--cache", type=Path, default=None, help="cache of digitized pages")
    parser.add_argument(
        "--rendered", type=int, default=0, metavar="N",
        help="also N fold-9 records rendered in random styles, end to end",
    )  # fmt: skip
    args = parser.parse_args()

    clf = load_classifier(args.model)
    plus = args.ptbxl_plus if Path(args.ptbxl_plus).is_dir() else None
    db = PTBXL(args.ptbxl, ptbxl_plus=plus)
    ids = db.ecg_ids(folds=[args.fold], fs=100)[: args.limit]
    print(f"model {clf!r}; PTB-XL fold {args.fold}: {len(ids)} records"
          f"{'' if plus else ' (no PTB-XL+: Acute MI cannot be scored)'}")  # fmt: skip
    records = [db.record(e, fs=100) for e in ids]
    y = np.stack([[float(n in r.labels) for n in CHALLENGE_LABELS] for r in records])
    ysup = superclass_matrix(list(db.database.loc[ids, "scp_codes"]), db.scp_statements)
    sig = np.stack([r.standard().signal[:1000].T for r in records]).astype(np.float32)
    dist = augment_batch(sig, np.random.default_rng(2024), fs=100, config=AugmentConfig(p=1.0))
    distorted = [Record(s.T, fs=100, leads=r.standard().leads, name=r.name)
                 for r, s in zip(records, dist, strict=True)]  # fmt: skip

    out: dict[str, Any] = {"model": clf.name, "fold": args.fold, "n": len(ids)}
    signal_members = [(i, m) for i, m in _members(clf) if isinstance(m, SignalClassifier)]
    for variant, recs in (("clean", records), ("distorted", distorted)):
        raw = {i: m.predict_proba(recs) for i, m in signal_members}
        rows = {}
        for i, m in signal_members:
            s = _scores(y, raw[i]["challenge"], m.thresholds["challenge"])
            rows[m.name] = {**s, "superclass_macro_auroc": _sup_auroc(ysup, raw[i]["superclass"])}
        if signal_members:
            probs, thr, groups = _combine(clf, raw, _features(recs))
            s = _scores(y, probs["challenge"], thr, groups)
            s_free = _scores(y, probs["challenge"], thr)
            s_excl = _scores(y, probs["challenge"], thr, [["Acute MI", "Old MI"]])
            rows[clf.name] = {**s, "superclass_macro_auroc": _sup_auroc(ysup, probs["superclass"]),
                              "macro_f_not_exclusive": s_free["macro_f"],
                              "macro_f_exclusive": s_excl["macro_f"]}  # fmt: skip
            _table(f"{clf.name}, fold-{args.fold} {variant} signals", y, s, thr)
        print(f"\nfold-{args.fold} {variant}: Challenge macro F / macro AUROC / superclass AUROC")
        for name, r in rows.items():
            print(f"  {name:<14} {r['macro_f']:.3f} / {r['macro_auroc']:.3f} / "
                  f"{r['superclass_macro_auroc']:.3f}")  # fmt: skip
        if clf.name in rows:
            r = rows[clf.name]
            print(f"  Acute MI / Old MI exclusive: macro F {r['macro_f_exclusive']:.3f} "
                  f"(not exclusive {r['macro_f_not_exclusive']:.3f}; the model's rule: "
                  f"{r['macro_f']:.3f})")  # fmt: skip
        out[variant] = rows

    if not isinstance(clf, ImageClassifier):
        times = []
        for rec in records[:200]:
            t0 = time.perf_counter()
            clf.predict(rec)
            times.append(time.perf_counter() - t0)
        ms = np.asarray(times) * 1e3
        print(f"\ninference per record: median {np.median(ms):.1f} ms, 95th percentile "
              f"{np.percentile(ms, 95):.1f} ms")  # fmt: skip
        out["ms_median"], out["ms_p95"] = float(np.median(ms)), float(np.percentile(ms, 95))
    if args.eik_dev:
        out["images"] = _images(args.eik_dev, clf, db, args.cache)
    if args.rendered > 0:
        out["rendered"] = _rendered(args.rendered, ids, clf, db, args.cache)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


def _digitized(path: Path, cache: Path | None) -> Record | None:
    from ecgscan.digitize import digitize

    stem = path.parent.name + "__" + path.stem
    if cache is not None and (cache / f"{stem}.json").is_file():
        rec = read_record(cache / f"{stem}.json")
        return None if rec.n_samples == 0 else rec
    try:
        rec = digitize(path, name=path.stem).record
    except EcgscanError as exc:
        print(f"  {path.name}: {exc}")
        return None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        rec.to_json(cache / f"{stem}.json")
    return rec


#: Layouts and resolutions the rendered end-to-end pages cycle through.
_RENDER_LAYOUTS = ("3x4+II", "3x4+II", "3x4", "6x2", "3x4+II,V1,V5", "12x1", "cabrera:3x4+II",
                   "6x2+II")  # fmt: skip
_RENDER_DPI = (150, 200, 200, 300)


def _rendered(n: int, ids: list[int], clf: Any, db: PTBXL, cache: Path | None) -> dict[str, Any]:
    """End to end on ``n`` fold-9 records rendered in random styles (see the module docstring)."""
    from ecgscan.digitize import digitize
    from ecgscan.render import render_page

    rng = np.random.default_rng(8)
    pick = [int(e) for e in rng.choice(ids, size=min(n, len(ids)), replace=False)]
    members = [(i, m) for i, m in _members(clf) if isinstance(m, SignalClassifier)]
    if not members:
        print("\nrendered pages: the model has no signal member; skipped")
        return {}
    refs, pages, failed = [], [], 0
    for k, e in enumerate(pick):
        ref = db.record(e, fs=100)
        file = None if cache is None else cache / f"rendered__{e}.json"
        if file is not None and file.is_file():
            rec: Record | None = read_record(file)
        else:
            layout = _RENDER_LAYOUTS[k % len(_RENDER_LAYOUTS)]
            dpi = _RENDER_DPI[k % len(_RENDER_DPI)]
            page = render_page(ref, layout=layout, dpi=dpi, style="random", seed=e)
            try:
                rec = digitize(page.image, name=str(e)).record
            except EcgscanError:
                rec = None  # not cached: tried again next time
            if file is not None and rec is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                rec.to_json(file)
        failed += rec is None
        refs.append(ref)
        pages.append(rec)
    true = [list(db.challenge_labels[e]) for e in pick]
    y = np.stack([[float(c in t) for c in CHALLENGE_LABELS] for t in true])
    ok = [r is not None for r in pages]
    figures: dict[str, Any] = {"n": len(pick), "digitization_failures": failed}
    for kind, recs in (("true signals", refs), ("digitized", [r for r in pages if r is not None])):
        raw = {i: m.predict_proba(recs) for i, m in members}
        probs, thr, groups = _combine(clf, raw, _features(recs))
        pred = _labels(probs["challenge"], thr, groups)
        if kind == "digitized":  # a page that failed: no label, probability 0
            it = iter(pred)
            pred = [next(it) if s else [] for s in ok]
            full = np.zeros((len(pick), probs["challenge"].shape[1]))
            full[np.asarray(ok)] = probs["challenge"]
            probs = {**probs, "challenge": full}
        figures[kind] = {
            "macro_f": challenge_f_measure(true, pred)[0],
            "macro_auroc": _scores(y, probs["challenge"], thr)["macro_auroc"],
        }
    t, d = figures["true signals"], figures["digitized"]
    print(f"\nrendered fold-9 pages ({len(pick)} records, random styles; {failed} not digitized): "
          "Challenge macro F / macro AUROC")  # fmt: skip
    print(f"  true signals   {t['macro_f']:.3f} / {t['macro_auroc']:.3f}")
    print(f"  digitized      {d['macro_f']:.3f} / {d['macro_auroc']:.3f}")
    print(f"  end-to-end / true signals: {d['macro_f'] / max(t['macro_f'], 1e-9):.2f}")
    return figures


def _images(folder: Path, clf: Any, db: PTBXL, cache: Path | None) -> dict[str, Any]:
    import csv

    from ecgscan.digitize._load import load_image

    rows = list(csv.DictReader((folder / "manifest.csv").read_text().splitlines()))
    members = _members(clf)
    true, cats = [], []
    raw_page: dict[int, dict[str, list[np.ndarray]]] = {
        i: {"challenge": [], "superclass": []} for i, _ in members
    }
    raw_true: dict[int, dict[str, list[np.ndarray]]] = {
        i: {"challenge": [], "superclass": []}
        for i, m in members
        if isinstance(m, SignalClassifier)
    }
    failed = 0
    digitized: list[Record | None] = []
    references: list[Record] = []
    t_dig: list[float] = []
    t_img: list[float] = []
    for row in rows:
        path = folder / row["image"]
        t0 = time.perf_counter()
        rec = _digitized(path, cache)
        t_dig.append(time.perf_counter() - t0)
        ref = db.record(int(row["ecg_id"]), fs=100)
        image = load_image(path)
        failed += rec is None
        digitized.append(rec)
        references.append(ref)
        for i, m in members:
            if isinstance(m, SignalClassifier):
                if rec is not None:
                    p = m.predict_proba([rec])
                else:
                    p = {h: np.full((1, len(m.heads[h])), np.nan) for h in m.heads}
                pt = m.predict_proba([ref])
                for h in ("challenge", "superclass"):
                    raw_true[i][h].append(pt[h][0])
            else:
                t0 = time.perf_counter()
                p = m.predict_proba([image])
                t_img.append(time.perf_counter() - t0)
            for h in ("challenge", "superclass"):
                raw_page[i][h].append(p[h][0])
        true.append(list(db.challenge_labels[int(row["ecg_id"])]))
        cats.append(row["category"])
    page = {i: {h: np.asarray(v) for h, v in d.items()} for i, d in raw_page.items()}
    ref_raw = {i: {h: np.asarray(v) for h, v in d.items()} for i, d in raw_true.items()}
    out: dict[str, Any] = {"n": len(rows), "digitization_failures": failed,
                           "digitize_s_mean": float(np.mean(t_dig))}  # fmt: skip
    ok = (
        ~np.isnan(page[members[0][0]]["challenge"][:, 0])
        if isinstance(members[0][1], SignalClassifier)
        else np.ones(len(rows), bool)
    )

    page_feats, ref_feats = _features(digitized), _features(references)

    def f_of(
        p: Mapping[int, Mapping[str, np.ndarray]], sel: np.ndarray, feats: np.ndarray
    ) -> float:
        probs, thr, groups = _combine(clf, p, feats)
        pred = _labels(probs["challenge"], thr, groups)
        pred = [pr if s else [] for pr, s in zip(pred, sel, strict=True)]  # a failed page: no label
        return challenge_f_measure(true, pred)[0]

    def fill(p: Mapping[int, Mapping[str, np.ndarray]]) -> dict[int, dict[str, np.ndarray]]:
        return {i: {h: np.nan_to_num(v, nan=0.0) for h, v in d.items()} for i, d in p.items()}

    sig_idx = [i for i, m in members if isinstance(m, SignalClassifier)]
    img_idx = [i for i, m in members if isinstance(m, ImageClassifier)]
    figures = {}
    if sig_idx:
        figures["true signals"] = f_of(ref_raw, np.ones(len(rows), bool), ref_feats)
        figures["digitized, signal members"] = f_of(
            fill({i: page[i] for i in sig_idx}), ok, page_feats
        )
    if img_idx:
        figures["page, image members"] = f_of(
            {i: page[i] for i in img_idx}, np.ones(len(rows), bool), page_feats
        )
    if sig_idx and img_idx:
        both = fill(page)
        figures["digitized + page (the ensemble)"] = f_of(both, ok, page_feats)
    hits = " incl. cache hits" if cache else ""
    print(f"\nECG-Image-Kit pages ({len(rows)}; {failed} not digitized; digitize "
          f"{np.mean(t_dig):.1f} s per page{hits}): Challenge macro F")  # fmt: skip
    for k, v in figures.items():
        print(f"  {k:<34} {v:.3f}")
    if t_img:
        ms = 1e3 * np.median(t_img)
        print(f"  image members: {ms:.0f} ms per page (median, page load excluded)")
        out["image_ms_median"] = float(1e3 * np.median(t_img))
    end_to_end = figures.get(
        "digitized + page (the ensemble)",
        figures.get("digitized, signal members", figures.get("page, image members")),
    )
    if "true signals" in figures and end_to_end is not None:
        ratio = end_to_end / figures["true signals"]
        print(f"  end-to-end / true signals: {ratio:.2f}")
        out["ratio"] = ratio
    out["end_to_end_macro_f"] = end_to_end
    out.update(figures)
    full = fill(page)
    probs, thr, groups = _combine(clf, full, page_feats)
    pred = [
        pr if s else [] for pr, s in zip(_labels(probs["challenge"], thr, groups), ok, strict=True)
    ]
    for cat in sorted(set(cats)):
        idx = [k for k, c in enumerate(cats) if c == cat]
        f, _ = challenge_f_measure([true[k] for k in idx], [pred[k] for k in idx])
        print(f"  {cat:<12} n={len(idx):>2}  macro F {f:.3f}")
        out[cat] = f
    return out


if __name__ == "__main__":
    main()
