"""Training code: augmentation, superclass labels, and a tiny real `ecgscan train classifier`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ecgscan.data import LEADS
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import EcgscanError
from ecgscan.train._common import AugmentConfig, augment_batch


@pytest.fixture(scope="module")
def ptbxl_db(ptbxl_dir: Path) -> PTBXL:
    """The PTB-XL folder, parsed once per module."""
    return PTBXL(ptbxl_dir)


def _batch(n: int = 6) -> np.ndarray:
    t = np.arange(1000) / 100
    x = np.sin(2 * np.pi * 1.2 * t)[None, None, :] * np.linspace(0.5, 1.5, 12)[None, :, None]
    return np.repeat(x, n, axis=0).astype(np.float32)


def test_augmentation_distorts_but_keeps_shape_and_input() -> None:
    x = _batch()
    before = x.copy()
    y = augment_batch(x, np.random.default_rng(0), fs=100, config=AugmentConfig(p=1.0))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)  # input untouched
    finite = np.isfinite(y)
    assert finite.any()
    assert np.abs(y[finite] - np.broadcast_to(x, y.shape)[finite]).mean() > 0.01


def test_page_layout_leaves_leads_in_their_windows() -> None:
    cfg = AugmentConfig(p=0.0, p_layout=1.0, p_drop=0.0, p_gap=0.0)
    y = augment_batch(_batch(40), np.random.default_rng(1), fs=100, config=cfg)
    known = np.isfinite(y)
    # every record: each lead is known in at least its 2.5 s (3×4) or 5 s (6×2) window
    per_lead = known.sum(axis=2)
    assert per_lead.min() >= 250
    # and most leads are not known over the whole 10 s (only rhythm leads are)
    full = (per_lead == 1000).sum(axis=1)
    assert np.all(full <= 3)
    # 3×4: V1 (column 3) is unknown during the first 2.5 s whenever it is not a rhythm strip
    v1 = LEADS.index("V1")
    assert np.any(~known[:, v1, :250])


def test_dropped_leads_are_all_nan() -> None:
    cfg = AugmentConfig(p=0.0, p_layout=0.0, p_drop=1.0, p_gap=0.0)
    y = augment_batch(_batch(20), np.random.default_rng(2), fs=100, config=cfg)
    dropped = np.isnan(y).all(axis=2).sum(axis=1)
    assert dropped.min() >= 1 and dropped.max() <= 3


def test_superclasses_follow_scp_statements(ptbxl_dir: Path) -> None:
    from ecgscan.data.ptbxl import read_scp_statements
    from ecgscan.train._common import SUPERCLASSES, superclass_matrix

    stmts = read_scp_statements(ptbxl_dir / "scp_statements.csv")
    y = superclass_matrix([{"NORM": 100.0, "SR": 0.0}, {"IMI": 15.0, "LVH": 0.0}, {"SR": 0}], stmts)
    names = [tuple(np.array(SUPERCLASSES)[row > 0]) for row in y]
    assert names == [("NORM",), ("MI", "HYP"), ()]


def test_tiny_training_run_writes_a_usable_model(
    ptbxl_dir: Path, ptbxl_db: PTBXL, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from ecgscan.classify import SignalClassifier
    from ecgscan.cli import main

    out = tmp_path / "run"
    args = ["train", "classifier", "--model", "signal-small", "--ptbxl", str(ptbxl_dir),
            "-o", str(out), "--epochs", "1", "--limit", "24", "--batch-size", "12",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    onnx_file = out / "signal-small.onnx"
    assert onnx_file.is_file() and (out / "MODEL_CARD.md").is_file()
    assert (out / "checkpoint.pt").is_file()
    clf = SignalClassifier(onnx_file)
    assert clf.config["training"]["train_folds"] == [1, 2, 3, 4, 5, 6, 7]
    assert len(clf.config["thresholds"]["challenge"]) == 11
    rec = ptbxl_db.record(ptbxl_db.ecg_ids(folds=[9])[0])
    pred = clf.predict(rec)
    assert set(pred.probabilities) == set(clf.labels)
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    # resuming a finished run only re-exports
    assert main([*args, "--resume"]) == 0
    # fine-tuning it on the validation fold too: its weights, scaling and thresholds go on
    tuned = tmp_path / "tuned"
    tune = ["train", "classifier", "--model", "signal-small", "--ptbxl", str(ptbxl_dir),
            "-o", str(tuned), "--epochs", "1", "--limit", "24", "--batch-size", "12",
            "--cache-dir", str(tmp_path / "cache"), "--train-folds", "1-8",
            "--val-folds", "none", "--finetune-from", str(out), "--lr", "1e-4"]  # fmt: skip
    assert main(tune) == 0
    after = SignalClassifier(tuned / "signal-small.onnx")
    training = after.config["training"]
    assert training["train_folds"] == list(range(1, 9)) and training["val_folds"] == []
    assert training["finetuned_from"]["train_folds"] == [1, 2, 3, 4, 5, 6, 7]
    assert after.config["mean"] == clf.config["mean"] and after.config["std"] == clf.config["std"]
    for head in ("challenge", "superclass"):
        np.testing.assert_allclose(after.thresholds[head], clf.thresholds[head], atol=1e-6)
    moved = [abs(after.predict(rec).probabilities[k] - pred.probabilities[k]) for k in clf.labels]
    assert 0.0 < max(moved) < 0.5  # trained on from where it was, not from scratch
    card = (tuned / "MODEL_CARD.md").read_text()
    assert "--finetune-from" in card and "fine-tuned from the model trained on folds" in card
    # a folder that is not a run of this model is refused with the fix
    code = main(["train", "classifier", "--model", "signal", "--ptbxl", str(ptbxl_dir),
                 "-o", str(tmp_path / "x"), "--finetune-from", str(out)])  # fmt: skip
    assert code == 2


def test_overlapping_folds_are_refused(ptbxl_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from ecgscan.cli import main

    code = main(["train", "classifier", "--ptbxl", str(ptbxl_dir), "--train-folds", "1-8",
                 "--val-folds", "8"])  # fmt: skip
    assert code == 2
    assert "overlap" in capsys.readouterr().err


def test_training_on_the_validation_folds_keeps_given_thresholds(
    ptbxl_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from ecgscan.classify import SignalClassifier, load_classifier
    from ecgscan.errors import EcgscanError
    from ecgscan.train.classifier import TrainConfig, train_classifier

    shipped = load_classifier("signal-small")
    assert isinstance(shipped, SignalClassifier)
    folds = (1, 2, 3, 4, 5, 6, 7, 8)

    def config(**kw: Any) -> TrainConfig:
        return TrainConfig(model="signal-small", ptbxl=str(ptbxl_dir), train_folds=folds,
                           val_folds=(), **kw)  # fmt: skip

    with pytest.raises(EcgscanError, match="thresholds_from"):
        config().check()
    result = train_classifier(
        config(output=str(tmp_path / "run"), epochs=1, limit=12, batch_size=12, cache_dir=None,
               thresholds_from=str(shipped.path)),
        log=lambda _: None,
    )  # fmt: skip
    clf = SignalClassifier(result.onnx)
    training = clf.config["training"]
    assert training["train_folds"] == list(folds) and training["val_folds"] == []
    assert training["thresholds_from"] == "signal_small.onnx" and training["best_epoch"] == 1
    for head in ("challenge", "superclass"):  # cross-fitting: the other model's thresholds
        np.testing.assert_allclose(clf.thresholds[head], shipped.thresholds[head], atol=1e-6)
    assert "cross-fitting" in result.card.read_text()


def test_training_on_digitized_copies(
    ptbxl_dir: Path, ptbxl_db: PTBXL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from ecgscan.classify import SignalClassifier
    from ecgscan.cli import main
    from ecgscan.train._common import digitized_copies, load_digitized_copies
    from ecgscan.train.classifier import TrainConfig, train_classifier

    first = ptbxl_db.ecg_ids(folds=[1, 2, 3, 4, 5, 6, 7], fs=100)[:12]
    copies = tmp_path / "copies"
    signals, done = digitized_copies(ptbxl_dir, first[:3], cache_dir=copies)
    assert done == 3 and signals.shape == (3, 12, 1000)
    # the copies are the records read back from their pages: close to them, not equal
    true = np.stack([ptbxl_db.record(e, fs=100).standard().signal.T for e in first[:3]])
    known = np.isfinite(signals)
    assert known.mean() > 0.25  # a 3x4 page knows each lead in its 2.5-s window at least
    err = np.abs(signals[known] - true[known])
    assert 0.0 < np.median(err) < 0.1
    # found again by record, in any order; a record without a copy has none
    rows, found = load_digitized_copies(copies, [int(first[2]), 999999, int(first[0])])
    assert sorted(rows.tolist()) == [0, 2]
    np.testing.assert_array_equal(found[rows.tolist().index(0)], signals[2])

    config = TrainConfig(model="signal-small", ptbxl=str(ptbxl_dir), output=str(tmp_path / "run"),
                         epochs=1, limit=12, batch_size=12, cache_dir=None,
                         digitized=str(copies), p_digitized=1.0)  # fmt: skip
    result = train_classifier(config, log=lambda _: None)
    training = SignalClassifier(result.onnx).config["training"]
    assert training["digitized"] == {"folder": "copies", "p": 1.0, "copies": 3}
    card = result.card.read_text()
    assert "--digitized" in card and "3 training records also as" in card
    # a folder without copies, and a malformed shard, are refused with the fix
    bad = TrainConfig(model="signal-small", ptbxl=str(ptbxl_dir), digitized=str(tmp_path))
    with pytest.raises(EcgscanError, match="ecgscan train copies"):
        bad.check()
    assert main(["train", "copies", "--ptbxl", str(ptbxl_dir), "--shard", "2/2"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_a_batch_takes_digitized_copies_with_their_probability() -> None:
    from ecgscan.train.classifier import _Split

    x = _batch(8)
    split = _Split(np.arange(8), x, np.zeros((8, 11), np.float32), np.zeros((8, 5), np.float32))
    split.copies = np.array([0, -1, 1, -1, -1, -1, -1, -1])
    split.copy_signals = np.full((2, 12, 1000), 7.0, np.float32)
    rng = np.random.default_rng(0)
    sig, used = split.batch(np.arange(8), rng, p_copy=1.0)
    assert used.tolist() == [True, False, True] + [False] * 5
    assert np.all(sig[[0, 2]] == 7.0) and np.array_equal(sig[1], x[1])
    np.testing.assert_array_equal(split.signals, x)  # the split itself is untouched
    assert not split.batch(np.arange(8), rng, p_copy=0.0)[1].any()


def test_refitting_the_ensemble_s_rate_rule_keeps_everything_else(
    ptbxl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    import json

    from ecgscan.classify import EnsembleClassifier, load_classifier
    from ecgscan.cli import main

    shipped = load_classifier("ensemble")
    assert isinstance(shipped, EnsembleClassifier)
    out = tmp_path / "ens"
    args = ["train", "classifier", "--model", "ensemble", "--ptbxl", str(ptbxl_dir),
            "--refit-rate", str(shipped.path), "-o", str(out), "--limit", "400",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    new = json.loads((out / "ensemble.json").read_text())
    old = shipped.config
    assert set(new["rate"]) == {"BRADY", "TACHY"}  # 400 records hold both
    assert new["members"] == old["members"] and new["exclusive"] == old["exclusive"]
    rate_cols = {CHALLENGE_LABELS.index(n) for n in new["rate"]}
    for key, heads in new["thresholds"].items():
        for c, (t_new, t_old) in enumerate(
            zip(heads["challenge"], old["thresholds"][key]["challenge"], strict=True)
        ):
            if c not in rate_cols or key == "image":
                assert t_new == t_old
        assert heads["superclass"] == old["thresholds"][key]["superclass"]
    assert new["training"]["rate_refit"]["val_folds"] == [8]
    assert "rate rule" in (out / "MODEL_CARD_ensemble.md").read_text()
    refitted = EnsembleClassifier(out / "ensemble.json")  # loads, members from the registry
    assert refitted.rate == new["rate"]
    # a missing ensemble file or a model that has no rate rule: usage errors, nothing written
    capsys.readouterr()
    bad = tmp_path / "bad"

    def refit(model: str, file: Path) -> int:
        return main(["train", "classifier", "--model", model, "--ptbxl", str(ptbxl_dir),
                     "--refit-rate", str(file), "-o", str(bad)])  # fmt: skip

    assert refit("ensemble", tmp_path / "nope.json") == 2
    assert "not found" in capsys.readouterr().err
    assert refit("signal", shipped.path) == 2
    assert "only an ensemble" in capsys.readouterr().err
    assert not bad.exists()


def test_fitting_beat_trees_onto_the_ensemble_keeps_its_members(
    ptbxl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import json

    from ecgscan.classify import EnsembleClassifier, load_classifier
    from ecgscan.classify._trees import BeatTrees
    from ecgscan.cli import main

    shipped = load_classifier("ensemble")
    assert isinstance(shipped, EnsembleClassifier)
    out = tmp_path / "ens"
    args = ["train", "classifier", "--model", "ensemble", "--ptbxl", str(ptbxl_dir),
            "--train-folds", "1-8", "--val-folds", "9", "--fit-trees", str(shipped.path),
            "-o", str(out), "--limit", "300", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    new = json.loads((out / "ensemble.json").read_text())
    old = shipped.config
    assert new["members"] == old["members"] and new["rate"] == old["rate"]
    trees = BeatTrees(out / new["trees"]["file"])
    assert set(new["trees"]["stack"]) <= set(trees.labels)
    stacked = {CHALLENGE_LABELS.index(n) for n in new["trees"]["stack"]}
    # refitting starts from the thresholds before the old stacking, and keeps them
    before = old["trees"]["thresholds_before"]
    assert new["trees"]["thresholds_before"] == before
    for key, heads in new["thresholds"].items():  # only the stacked labels' thresholds move
        for c, (t_new, t_old) in enumerate(
            zip(heads["challenge"], before[key]["challenge"], strict=True)
        ):
            if c not in stacked or key == "image":
                assert t_new == t_old
    # the superclasses' own trees, stacked only where they help, their thresholds re-chosen
    assert set(trees.labels) >= {f"superclass:{n}" for n in new["trees"]["superclass_stack"]}
    sup_stacked = {shipped.heads["superclass"].index(n) for n in new["trees"]["superclass_stack"]}
    for key, heads in new["thresholds"].items():
        for c, (t_new, t_old) in enumerate(
            zip(heads["superclass"], before[key]["superclass"], strict=True)
        ):
            if c not in sup_stacked or key == "image":
                assert t_new == t_old
    report = new["validation"]["trees"]
    assert 0 < report["clean"]["macro_f_cross_fitted"] <= 1
    assert 0.5 < report["superclass"]["clean"]["macro_auroc_cross_fitted"] <= 1
    assert "beat trees" in (out / "MODEL_CARD_ensemble.md").read_text()
    fitted = EnsembleClassifier(out / "ensemble.json")
    assert fitted.trees is not None and fitted.tree_stack == new["trees"]["stack"]
    assert fitted.tree_stacks["superclass"] == new["trees"]["superclass_stack"]
    # a missing ensemble file, or both refits at once: usage errors, nothing written
    capsys.readouterr()
    bad = tmp_path / "bad"
    base = ["train", "classifier", "--model", "ensemble", "--ptbxl", str(ptbxl_dir),
            "--val-folds", "9", "-o", str(bad)]  # fmt: skip
    assert main([*base, "--fit-trees", str(tmp_path / "nope.json")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([*base, "--fit-trees", str(shipped.path), "--refit-rate", str(shipped.path)]) == 2
    assert "not both" in capsys.readouterr().err
    assert not bad.exists()
    # an ensemble whose trees lack the thresholds from before their stacking cannot be refitted
    stale = tmp_path / "stale"
    stale.mkdir()
    for f in shipped.path.parent.iterdir():
        if f.name != "ensemble.json":
            (stale / f.name).symlink_to(f)
    config = {**old, "trees": {k: v for k, v in old["trees"].items() if k != "thresholds_before"}}
    (stale / "ensemble.json").write_text(json.dumps(config))
    assert main([*base, "--fit-trees", str(stale / "ensemble.json")]) != 0
    assert "thresholds_before" in capsys.readouterr().err
    assert not bad.exists()
