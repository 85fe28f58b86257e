"""Every registered model: build, forward/backward, save/load, ONNX export = torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgscan.classify import (
    ImageClassifier,
    SignalClassifier,
    available_models,
    get_model_spec,
    register_model,
)
from ecgscan.classify._registry import ModelSpec
from ecgscan.errors import EcgscanError

torch = pytest.importorskip("torch")


def test_unknown_model_lists_the_registered_ones() -> None:
    with pytest.raises(EcgscanError, match="expected one of signal"):
        get_model_spec("resnet9000")


def test_names_are_unique() -> None:
    spec = get_model_spec("signal")
    with pytest.raises(EcgscanError, match="already registered"):
        register_model(ModelSpec("signal", "signal", "dup", spec.builder))


NETWORKS = [n for n in available_models() if get_model_spec(n).input != "ensemble"]


def _input(spec: ModelSpec, n: int, length: int) -> torch.Tensor:
    if spec.defaults.get("encoding") == "beats":  # median beats: fixed length, + rhythm row
        return torch.randn(n, 25, 70)
    return (
        torch.randn(n, 24, length) if spec.input == "signal" else torch.rand(n, 1, 64, length // 4)
    )


@pytest.mark.parametrize("name", NETWORKS)
def test_forward_backward_save_load_and_onnx(name: str, tmp_path: Path) -> None:
    from ecgscan.train.classifier import create_model, export_onnx

    torch.manual_seed(0)
    spec = get_model_spec(name)
    model = create_model(name)
    x = _input(spec, 3, 300)
    out = model(x)
    assert {k: tuple(out[k].shape) for k in ("challenge", "superclass")} == {
        "challenge": (3, 11),
        "superclass": (3, 5),
    }
    # "multitask" also maps the traces; auxiliary heads ("statements") are trained, never exported
    assert set(out) <= {"challenge", "superclass", "trace", "statements"}
    sum(v.sum() for v in out.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)

    # save/load: config + weights are enough to rebuild the same function
    model.eval()
    torch.save({"arch": dict(spec.defaults), "state": model.state_dict()}, tmp_path / "m.pt")
    ck = torch.load(tmp_path / "m.pt", weights_only=False)
    clone = create_model(name, **ck["arch"])
    clone.load_state_dict(ck["state"])
    clone.eval()
    with torch.no_grad():
        want = model.probabilities(model(x))
        got = clone.probabilities(clone(x))
    for k in want:
        torch.testing.assert_close(got[k], want[k])

    # ONNX export carries its config; onnxruntime gives torch's probabilities at any length
    config = {
        "model": name, "fs": 100.0, "mean": [0.0] * 12, "std": [1.0] * 12,
        "heads": {"challenge": ["x"] * 11, "superclass": ["y"] * 5},
        "thresholds": {"challenge": [0.5] * 11, "superclass": [0.5] * 5},
        "input": spec.input, "size": [64, 75], "encoding": spec.defaults.get("encoding", "signals"),
    }  # fmt: skip
    clf: SignalClassifier | ImageClassifier
    if spec.input == "signal":
        x2 = _input(spec, 2, 517)
        path = export_onnx(model, tmp_path / f"{name}.onnx", config=config,
                           input_shape=(1, *x.shape[1:]))  # fmt: skip
        clf = SignalClassifier(path)
        assert clf.config["model"] == name and clf.fs == 100.0
    else:
        path = export_onnx(model, tmp_path / f"{name}.onnx", config=config,
                           input_shape=(1, 1, 64, 75), input_name="image")  # fmt: skip
        clf = ImageClassifier(path)
        assert clf.config["model"] == name and clf.size == (64, 75)
        x2 = torch.rand(2, 1, 64, 75)
    with torch.no_grad():
        want = model.probabilities(model(x2))
    got_onnx = clf.session.run(None, {spec.input: x2.numpy()})
    for k, v in zip(clf.outputs, got_onnx, strict=True):
        np.testing.assert_allclose(v, want[k].numpy(), atol=1e-5)


def test_gev_activation_gives_probabilities() -> None:
    from ecgscan.train.classifier import create_model, multilabel_loss

    model = create_model("signal-small", activation="gev")
    scores = model(torch.randn(4, 24, 250))
    scores = {k: v.detach() for k, v in scores.items()}
    with torch.no_grad():
        probs = model.probabilities(scores)
    assert all(float(p.min()) >= 0 and float(p.max()) <= 1 for p in probs.values())
    target = torch.zeros(4, 11)
    target[0, 2] = 1
    for loss in ("bce", "weighted_bce", "focal", "asl"):
        value = multilabel_loss(model, scores["challenge"], target, "challenge", loss=loss,
                                pos_weight=torch.full((11,), 3.0))  # fmt: skip
        assert bool(torch.isfinite(value)) and float(value.detach()) > 0
    with pytest.raises(EcgscanError, match="unknown loss"):
        multilabel_loss(model, scores["challenge"], target, "challenge", loss="hinge")


def test_every_registered_model_ships_its_weights() -> None:
    import json
    from importlib import resources

    folder = resources.files("ecgscan") / "models" / "classifier"
    # the models the package itself registers (tests may register untrained examples)
    for name in ("ensemble", *get_model_spec("ensemble").members):
        spec = get_model_spec(name)
        assert spec.weights is not None and (folder / spec.weights).is_file(), name
    # the shipped ensemble names only registered members, each with its file next to it
    ensemble = get_model_spec("ensemble")
    config = json.loads((folder / (ensemble.weights or "")).read_text())
    for entry in config["members"]:
        assert entry["name"] in ensemble.members
        assert (folder / entry["file"]).is_file(), entry["file"]


def test_inception_blocks_keep_lengths_and_check_their_arguments() -> None:
    from ecgscan.train.classifier import create_model

    model = create_model("signal-inception").eval()
    # each stride-2 stage rounds up like the shortcut's ceil-mode pooling, at any length
    for length in (250, 251, 999, 1000):
        with torch.no_grad():
            out = model(torch.randn(2, 24, length))
        assert out["challenge"].shape == (2, 11) and out["superclass"].shape == (2, 5)
    # the kernel sizes change the function (they are not ignored)
    other = create_model("signal-inception", kernels=(3, 5, 7))
    n_params = [sum(p.numel() for p in m.parameters()) for m in (model, other)]
    assert n_params[0] > n_params[1]
    with pytest.raises(EcgscanError, match="block must be one of residual, inception"):
        create_model("signal", block="dense")
    with pytest.raises(EcgscanError, match="must be odd"):
        create_model("signal-inception", kernels=(3, 8))
    with pytest.raises(EcgscanError, match="divisible by the number of branches"):
        create_model("signal-inception", widths=(62, 128, 192))


def test_recurrent_head_reads_any_length_and_exports(tmp_path: Path) -> None:
    from ecgscan.train.classifier import create_model, export_onnx

    torch.manual_seed(0)
    kw = {"widths": (16, 32), "blocks": (1, 1), "stem": 8}
    model = create_model("signal", rnn=12, **kw).eval()
    assert model.rnn is not None and model.rnn.bidirectional
    # the heads read the GRU's pooled outputs (2 directions × 12 units, mean and max)
    assert model.head["challenge"].in_features == 4 * 12
    x = torch.randn(2, 24, 1000)
    with torch.no_grad():
        out = model(x)
        # the GRU sees the whole sequence: a change at the start moves the pooled output
        # (the backward direction carries it), and the outputs depend on the GRU's weights
        x2 = x.clone()
        x2[:, :, :100] += 1.0
        assert not torch.allclose(model(x2)["challenge"], out["challenge"])
        plain = create_model("signal", rnn=0, **kw).eval()
        assert plain.rnn is None and plain.head["challenge"].in_features == 2 * 32
    path = export_onnx(model, tmp_path / "gru.onnx", n_samples=300, config={
        "model": "signal", "fs": 100.0, "mean": [0.0] * 12, "std": [1.0] * 12, "input": "signal",
        "heads": {"challenge": ["x"] * 11, "superclass": ["y"] * 5},
        "thresholds": {"challenge": [0.5] * 11, "superclass": [0.5] * 5}})  # fmt: skip
    clf = SignalClassifier(path)
    for length in (250, 1000, 1517):  # ONNX's GRU follows the input's length
        xs = torch.randn(3, 24, length)
        with torch.no_grad():
            want = model.probabilities(model(xs))
        got = clf.session.run(None, {"signal": xs.numpy()})
        for k, v in zip(clf.outputs, got, strict=True):
            np.testing.assert_allclose(v, want[k].numpy(), atol=1e-5)
    with pytest.raises(EcgscanError, match="rnn"):
        create_model("signal", rnn=-1)
