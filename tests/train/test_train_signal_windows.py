"""Sliding-window signal models, squeeze-and-excitation and the auxiliary statements head
(the options of :class:`ecgscan.train.classifier.SignalResNet` behind 'signal-scp')."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ecgscan.errors import EcgscanError  # noqa: E402
from ecgscan.train.classifier import (  # noqa: E402
    SignalResNet,
    TrainConfig,
    create_model,
    export_onnx,
    statement_matrix,
    train_classifier,
)

#: A tiny windowed model: 100-sample windows 50 apart, SE, a 5-statement auxiliary head.
TINY = {"widths": (8, 16), "blocks": (1, 1), "stem": 8, "stem_kernel": 9, "kernel": 5,
        "se": 4, "statements": 5, "window": 100, "window_stride": 50}  # fmt: skip


def _tiny(**kw: object) -> SignalResNet:
    torch.manual_seed(0)
    return SignalResNet(**{**TINY, **kw}).eval()  # type: ignore[arg-type]


def test_windows_average_the_probabilities_of_each_window() -> None:
    model = _tiny()
    x = torch.randn(2, 24, 260)
    with torch.no_grad():
        got = model.probabilities(model(x))
        # windows at 0, 50, 100, 150 (the last 10 samples are left out)
        each = [model.probabilities(model(x[..., s : s + 100])) for s in (0, 50, 100, 150)]
    for head in ("challenge", "superclass", "statements"):
        want = torch.stack([e[head] for e in each]).mean(dim=0)
        torch.testing.assert_close(got[head], want, atol=1e-5, rtol=1e-4)
    # an input of one window is classified as it is (what training on crops sees)
    with torch.no_grad():
        one = model(x[..., :100])
    assert set(one) == {"challenge", "superclass", "statements"}
    assert one["statements"].shape == (2, 5)


def test_onnx_export_keeps_the_label_heads_and_follows_any_length(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = _tiny()
    path = export_onnx(model, tmp_path / "m.onnx", config={"model": "tiny"}, n_samples=400)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["challenge", "superclass"]
    rng = np.random.default_rng(0)
    for batch, n in [(1, 400), (3, 100), (2, 333), (1, 1000)]:
        x = rng.standard_normal((batch, 24, n)).astype(np.float32)
        got = sess.run(None, {"signal": x})
        with torch.no_grad():
            want = model.probabilities(model(torch.from_numpy(x)))
        for name, value in zip(("challenge", "superclass"), got, strict=True):
            np.testing.assert_allclose(value, want[name].numpy(), atol=1e-5)


def test_new_options_are_checked_and_off_by_default() -> None:
    with pytest.raises(EcgscanError, match="window"):
        SignalResNet(window=-1)
    with pytest.raises(EcgscanError, match="stem_kernel"):
        SignalResNet(stem_kernel=4)
    with pytest.raises(EcgscanError, match="sigmoid"):
        SignalResNet(window=250, activation="gev")
    # the existing members' architecture (and so their weights' layout) is unchanged
    keys = set(create_model("signal").state_dict())
    assert not any(".se." in k or "statements" in k or "_eye" in k for k in keys)
    model = create_model("signal-scp")
    assert isinstance(model, SignalResNet)
    assert list(model.heads) == ["challenge", "superclass"] and model.window == 250
    assert any(".se." in k for k in model.state_dict())


def test_statement_matrix_follows_scp_statements(ptbxl_dir: Path) -> None:
    from ecgscan.data.ptbxl import read_scp_statements

    stmts = read_scp_statements(ptbxl_dir / "scp_statements.csv")
    model = create_model("signal-scp")
    assert isinstance(model, SignalResNet)
    head = model.head["statements"]
    assert isinstance(head, torch.nn.Linear) and head.out_features == len(stmts)
    y = statement_matrix([{"NORM": 100.0, "SR": 0.0}, {"IMI": 15.0, "XYZ": 50.0}, {}], stmts)
    codes = [list(np.asarray(stmts.index)[row > 0]) for row in y]
    assert sorted(codes[0]) == ["NORM", "SR"] and codes[1] == ["IMI"] and codes[2] == []


def test_tiny_windowed_training_run(ptbxl_dir: Path, tmp_path: Path) -> None:
    from ecgscan.classify import SignalClassifier
    from ecgscan.data.ptbxl import PTBXL

    arch = {**TINY, "statements": 71, "window": 250, "window_stride": 125}
    config = TrainConfig(model="signal-scp", ptbxl=str(ptbxl_dir), output=str(tmp_path / "run"),
                         epochs=1, limit=8, batch_size=8, cache_dir=None, arch=arch)  # fmt: skip
    result = train_classifier(config, log=lambda _: None)
    clf = SignalClassifier(result.onnx)
    assert clf.config["architecture"]["window"] == 250
    assert clf.outputs == ["challenge", "superclass"]
    assert "random 2.5-s crops" in result.card.read_text()
    db = PTBXL(ptbxl_dir)
    rec = db.record(db.ecg_ids(folds=[9])[0])
    pred = clf.predict(rec)
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    # a record shorter than a window is padded to 2.5 s = one window
    short = clf.predict(rec.with_signal(rec.signal[: int(1.5 * rec.fs)]))
    assert set(short.probabilities) == set(clf.labels)
    # resumed with more epochs (a run that must end sooner or later): the schedule goes on
    logged: list[str] = []
    longer = train_classifier(dataclasses.replace(config, epochs=2), resume=True,
                              log=logged.append)  # fmt: skip
    assert any("re-planned from 1 to 2 epochs" in m for m in logged)
    assert longer.config["training"]["epochs_run"] == 2
    with pytest.raises(EcgscanError, match="already done"):
        train_classifier(dataclasses.replace(config, epochs=1), resume=True, log=logged.append)
