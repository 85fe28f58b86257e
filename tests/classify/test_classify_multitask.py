"""The multi-task page model: the shipped ONNX (labels + trace map) and a tiny training run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from ecgscan.classify import ImageClassifier, get_model_spec, load_classifier, trace_map
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import EcgscanError
from ecgscan.render import RenderedPage, render_page


def _page(ptbxl_dir: Path, ecg_id: int = 1, *, style: str = "clean", seed: int = 0) -> RenderedPage:
    rec = PTBXL(ptbxl_dir).record(ecg_id, fs=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the renderer's notes on short records
        return render_page(rec, layout="3x4+II", dpi=80, style=style, seed=seed)


def _dice(pred: np.ndarray, target: np.ndarray) -> float:
    return float(2 * (pred & target).sum() / max(pred.sum() + target.sum(), 1))


def test_registry_entry_is_an_image_model_outside_the_ensemble() -> None:
    spec = get_model_spec("multitask")
    assert spec.input == "image" and spec.weights == "multitask.onnx"
    assert "multitask" not in get_model_spec("ensemble").members


def test_shipped_model_classifies_a_rendered_page(ptbxl_dir: Path) -> None:
    clf = load_classifier("multitask")
    assert isinstance(clf, ImageClassifier) and clf.size == (240, 320)
    assert clf.outputs == ["challenge", "superclass"]  # the extra 'trace' output is not run
    page = _page(ptbxl_dir)
    pred = clf.predict(page.image)
    assert len(pred.probabilities) == 11 and len(pred.superclass_probabilities) == 5
    assert all(0.0 <= v <= 1.0 for v in pred.probabilities.values())
    probs = clf.predict_proba([page.image, page.image])
    assert set(probs) == {"challenge", "superclass"} and probs["challenge"].shape == (2, 11)
    assert np.allclose(probs["challenge"][0], probs["challenge"][1])


def test_shipped_trace_map_overlaps_the_rendered_traces(ptbxl_dir: Path) -> None:
    import cv2

    clf = load_classifier("multitask")
    assert isinstance(clf, ImageClassifier)
    thr = float(clf.config["trace"]["threshold"])
    page = _page(ptbxl_dir, 2, seed=3)
    image, mask = page.image, page.mask
    full = trace_map(image)
    assert full.shape == image.shape[:2] and full.dtype == np.float32
    assert full.min() >= 0.0 and full.max() <= 1.0
    small = trace_map(image, model=clf, full_size=False)
    h, w = clf.config["trace"]["size"]
    assert small.shape == (h, w)
    cover = cv2.resize((mask > 0).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    target = cover > 0
    dice = _dice(small >= thr, target)
    # a map with as many trace cells, placed at random, scores about the trace share
    chance = _dice(np.random.default_rng(0).random((h, w)) < target.mean(), target)
    assert chance < 0.2
    assert dice >= 0.85, f"trace Dice {dice:.3f} on a clean page (0.96 when shipped)"
    # at the page's size too: trace pixels have far higher probability than the background
    assert full[mask > 0].mean() > 5 * full[mask == 0].mean()


def test_trace_map_needs_a_multitask_model(ptbxl_dir: Path) -> None:
    page = _page(ptbxl_dir)
    with pytest.raises(EcgscanError, match="no trace output"):
        trace_map(page.image, model="image")


def test_tiny_multitask_training(ptbxl_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import onnxruntime as ort

    from ecgscan.cli import main

    out = tmp_path / "mt"
    args = ["train", "classifier", "--model", "multitask", "--ptbxl", str(ptbxl_dir),
            "-o", str(out), "--epochs", "1", "--limit", "4", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    onnx_file = out / "multitask.onnx"
    assert onnx_file.is_file() and (out / "MODEL_CARD.md").is_file()
    assert "Trace map" in (out / "MODEL_CARD.md").read_text()
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["challenge", "superclass", "trace"]
    config = json.loads(sess.get_modelmeta().custom_metadata_map["ecgscan_config"])
    assert config["model"] == "multitask" and config["trace"]["size"] == [120, 160]
    clf = load_classifier(onnx_file)
    assert isinstance(clf, ImageClassifier)
    page = _page(ptbxl_dir)
    pred = clf.predict(page.image)
    assert all(0.0 <= v <= 1.0 for v in pred.probabilities.values())
    assert trace_map(page.image, model=onnx_file).shape == page.image.shape[:2]


def test_multitask_training_rejects_other_losses(ptbxl_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ecgscan.cli import main

    out = tmp_path / "mt"
    args = ["train", "classifier", "--model", "multitask", "--ptbxl", str(ptbxl_dir),
            "-o", str(out), "--epochs", "1", "--limit", "4", "--loss", "asl"]  # fmt: skip
    assert main(args) == 2
    assert not (out / "multitask.onnx").exists()
