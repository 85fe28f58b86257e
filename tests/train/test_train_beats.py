"""The beat model (`signal-beats`): trained, exported and used like every signal model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecgscan.data.ptbxl import PTBXL

torch = pytest.importorskip("torch")


def test_beat_model_reads_only_the_beats_and_the_rhythm() -> None:
    from ecgscan.train.classifier import create_model

    model = create_model("signal-beats").eval()
    x = torch.randn(2, 25, 70)
    with torch.no_grad():
        base = model.probabilities(model(x))
        # the mask channels are constant along the beat; the rhythm row ends after 6 values
        y = x.clone()
        y[:, 24, 6:] = 5.0
        same = model.probabilities(model(y))
        z = x.clone()
        z[:, 24, 0] += 1.0  # another heart rate
        other = model.probabilities(model(z))
    torch.testing.assert_close(same["challenge"], base["challenge"])
    assert not torch.allclose(other["challenge"], base["challenge"])


def test_tiny_beat_model_training_run(ptbxl_dir: Path, tmp_path: Path) -> None:
    from ecgscan.classify import SignalClassifier
    from ecgscan.cli import main

    out = tmp_path / "run"
    args = ["train", "classifier", "--model", "signal-beats", "--ptbxl", str(ptbxl_dir),
            "-o", str(out), "--epochs", "1", "--limit", "24", "--batch-size", "12",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    clf = SignalClassifier(out / "signal-beats.onnx")
    assert clf.config["encoding"] == "beats" and clf.config["architecture"]["samples"] == 70
    card = (out / "MODEL_CARD.md").read_text()
    assert "median beat" in card
    db = PTBXL(ptbxl_dir)
    rec = db.record(db.ecg_ids(folds=[9])[0])  # 500 Hz if present: resampled to 100 Hz
    full = clf.predict(rec).probabilities
    # a record with a lead missing and the others known for 5 s only is still classified
    sig = rec.signal.copy()
    sig[len(sig) // 2 :] = np.nan
    sig[:, rec.leads.index("V3")] = np.nan
    part = clf.predict(replace(rec, signal=sig))
    assert part.missing_leads == ("V3",)
    assert set(part.probabilities) == set(full)
    assert all(0.0 <= p <= 1.0 for p in part.probabilities.values())
    assert part.probabilities != full
