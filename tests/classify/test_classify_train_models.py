"""`ecgscan train classifier` for the image model and the ensemble, on a few real records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgscan.data.ptbxl import PTBXL


def test_page_ids_interleave_both_splits() -> None:
    from ecgscan.train._common import page_ecg_ids

    ids, is_val = page_ecg_ids(range(100), range(1000, 1020), n_train=40, n_val=10)
    assert len(ids) == 50 and is_val.sum() == 10
    assert set(ids[is_val]) <= set(range(1000, 1020)) and set(ids[~is_val]) <= set(range(100))
    # every prefix holds its share of validation records
    assert 1 <= is_val[:10].sum() <= 3


def test_tiny_image_training_and_ensemble_fit(ptbxl_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ecgscan.classify import EnsembleClassifier, ImageClassifier, classify, load_classifier
    from ecgscan.cli import main

    img_dir = tmp_path / "image"
    args = ["train", "classifier", "--model", "image", "--ptbxl", str(ptbxl_dir),
            "-o", str(img_dir), "--epochs", "1", "--limit", "4", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    onnx_file = img_dir / "image.onnx"
    assert onnx_file.is_file() and (img_dir / "MODEL_CARD.md").is_file()
    img = load_classifier(onnx_file)
    assert isinstance(img, ImageClassifier) and img.size == (240, 320)
    page = np.full((600, 800, 3), 255, np.uint8)
    page[300, :] = 0  # a flat trace
    pred = img.predict(page)
    assert all(0.0 <= v <= 1.0 for v in pred.probabilities.values())

    ens_dir = tmp_path / "ensemble"
    args = ["train", "classifier", "--model", "ensemble", "--ptbxl", str(ptbxl_dir),
            "-o", str(ens_dir), "--limit", "8", "--member", "signal",
            "--member", f"image={onnx_file}"]  # fmt: skip
    assert main(args) == 0
    config = json.loads((ens_dir / "ensemble.json").read_text())
    assert [m["name"] for m in config["members"]] == ["signal", "image"]
    assert (ens_dir / "image.onnx").is_file() and (ens_dir / "signal.onnx").is_file()
    assert {"signal", "signal+image", "image"} <= set(config["thresholds"])
    for m in config["members"]:
        assert len(m["calibration"]["challenge"]["a"]) == 11
    ens = load_classifier(ens_dir / "ensemble.json")
    assert isinstance(ens, EnsembleClassifier)
    db = PTBXL(ptbxl_dir)
    rec = db.record(db.ecg_ids(folds=[9])[0])
    assert classify(rec, model=ens).members == ("signal",)  # no image: signal members only
    if ens.weights[1] > 0:
        only = ens.predict(image=page)
        assert only.members == ("image",)
