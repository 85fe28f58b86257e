"""The registry of classifier models: what each one reads, how it is built, what ships.

A :class:`ModelSpec` names a model, the kind of input it reads (``'signal'``: a 12-lead record;
``'image'``: a page image; ``'ensemble'``: whatever its members read), the dotted path of its
PyTorch factory (imported only by the trainer, so inference never needs torch), its default
architecture arguments, and the file name of the shipped model, if any: an ONNX export, or for
an ensemble a JSON file with its members' calibration, weights and thresholds.

The default model of :func:`ecgscan.classify.classify` is :data:`DEFAULT_MODEL` (the ensemble).

Examples
--------
>>> from ecgscan.classify import available_models, get_model_spec
>>> "signal" in available_models()
True
>>> get_model_spec("signal").input
'signal'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ..errors import EcgscanError

__all__ = ["DEFAULT_MODEL", "ModelSpec", "available_models", "get_model_spec", "register_model"]

InputKind = Literal["signal", "image", "ensemble"]

#: The model :func:`ecgscan.classify.classify` and ``ecgscan classify`` use by default.
DEFAULT_MODEL = "ensemble"


@dataclass(frozen=True)
class ModelSpec:
    """How to build, train and load one classifier.

    Attributes
    ----------
    name : str
        Registry key (``ecgscan train classifier --model NAME``).
    input : {'signal', 'image', 'ensemble'}
        What the model reads (an ensemble reads what its members read).
    summary : str
        One line for ``--help`` and the model card.
    builder : str
        ``'module:function'`` of the PyTorch factory, called with the architecture arguments
        (for an ensemble: the function that fits it).
    defaults : mapping
        Default architecture arguments (overridable at training time).
    weights : str or None
        File name of the shipped model in ``ecgscan/models/classifier/`` (ONNX; JSON for an
        ensemble).
    members : tuple of str
        For an ensemble: the registered models it combines.
    """

    name: str
    input: InputKind
    summary: str
    builder: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite an existing name)."""
    if spec.name in _REGISTRY and not replace:
        raise EcgscanError(f"a classifier named {spec.name!r} is already registered")
    if spec.input not in ("signal", "image", "ensemble"):
        raise EcgscanError(
            f"model input must be 'signal', 'image' or 'ensemble', got {spec.input!r}"
        )
    if spec.input == "ensemble" and not spec.members:
        raise EcgscanError(f"ensemble {spec.name!r} must list its members")
    _REGISTRY[spec.name] = spec
    return spec


def available_models() -> tuple[str, ...]:
    """Names of the registered classifiers, in registration order."""
    return tuple(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; unknown names list the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EcgscanError(
            f"unknown classifier model {name!r}; expected one of {', '.join(_REGISTRY)}"
        ) from None


# ------------------------------------------------------------------------ built-in models
#: The hyper-parameters of 'signal'; its variants below name what they change.
_SIGNAL: dict[str, Any] = {
    "widths": (64, 128, 192),
    "blocks": (2, 2, 2),
    "stem": 32,
    "kernel": 5,
    "dropout": 0.3,
    "activation": "sigmoid",
}
register_model(
    ModelSpec(
        name="signal",
        input="signal",
        summary=(
            "1-D residual CNN over the 12 leads at 100 Hz (signal + known-sample mask), two heads: "
            "the 11 Challenge labels and the 5 PTB-XL diagnostic superclasses"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults=dict(_SIGNAL),
        weights="signal.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-small",
        input="signal",
        summary=(
            "a narrower, shallower variant of 'signal' (about 6x cheaper), trained with another "
            "seed: a cheap stand-alone model"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={
            **_SIGNAL,
            "widths": (32, 64, 96),
            "blocks": (1, 1, 1),
            "stem": 16,
            "dropout": 0.2,
        },
        weights="signal_small.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-inception",
        input="signal",
        summary=(
            "the stem and heads of 'signal' with residual pairs of inception modules (parallel "
            "kernels of 3, 9 and 19 samples after the ×4 stem): a diverse ensemble member"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={**_SIGNAL, "blocks": (1, 1, 1), "block": "inception", "kernels": (3, 9, 19)},
        weights="signal_inception.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-gru",
        input="signal",
        summary=(
            "the stem of 'signal', one residual block per stage (widths 64, 128, 192), then a "
            "bidirectional GRU (128 units per direction) over the 16x shorter sequence, its "
            "outputs pooled over time: a convolutional-recurrent ensemble member"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={**_SIGNAL, "blocks": (1, 1, 1), "rnn": 128},
        weights="signal_gru.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-scp",
        input="signal",
        summary=(
            "a squeeze-and-excitation ResNet with wide kernels (stem 15, blocks 9 and 7 samples) "
            "trained on random 2.5-s crops with an auxiliary head over the 71 PTB-XL SCP "
            "statements, classifying 2.5-s windows 1.25 s apart and averaging them: an "
            "experimental ensemble member (no shipped weights: weight 0 when fitted on fold 8)"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={
            **_SIGNAL,
            "widths": (64, 128, 256),
            "blocks": (2, 2, 2),
            "stem_kernel": 15,
            "kernel": 9,
            "se": 8,
            "statements": 71,
            "window": 250,
            "window_stride": 125,
        },
    )
)
register_model(
    ModelSpec(
        name="signal-beats",
        input="signal",
        summary=(
            "each lead's median beat (0.25 s before to 0.45 s after the QRS, PR level at 0) and "
            "six rate and regularity measures, through convolutions flattened into the heads: "
            "another view of the record, a diverse ensemble member"
        ),
        builder="ecgscan.train.beatnet:build_beat_net",
        defaults={
            "encoding": "beats",
            "width": 64,
            "hidden": 256,
            "dropout": 0.4,
            "activation": "sigmoid",
        },
        weights="signal_beats.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-beats-wide",
        input="signal",
        summary=(
            "'signal-beats' with 1.5x wider convolutions and hidden layer, trained with another "
            "seed: a second beat model for the ensemble"
        ),
        builder="ecgscan.train.beatnet:build_beat_net",
        defaults={
            "encoding": "beats",
            "width": 96,
            "hidden": 384,
            "dropout": 0.5,
            "activation": "sigmoid",
        },
        weights="signal_beats_wide.onnx",
    )
)
register_model(
    ModelSpec(
        name="image",
        input="image",
        summary=(
            "small 2-D ResNet over the whole page in grey at low resolution, trained from "
            "scratch on pages rendered by ecgscan.render in random styles; two heads as 'signal'"
        ),
        builder="ecgscan.train.classifier:build_image_resnet",
        defaults={
            "widths": (32, 64, 128, 192),
            "blocks": (1, 1, 1, 1),
            "stem": 16,
            "dropout": 0.3,
            "activation": "sigmoid",
            "height": 240,
            "width": 320,
        },
        weights="image.onnx",
    )
)
register_model(
    ModelSpec(
        name="multitask",
        input="image",
        summary=(
            "the encoder and label heads of 'image' shared with a light U-Net decoder that maps "
            "the traces (trained on the renderer's trace masks; extra ONNX output 'trace', see "
            "ecgscan.classify.trace_map): an option, not an ensemble member"
        ),
        builder="ecgscan.train.multitask:build_multitask",
        defaults={
            "widths": (32, 64, 128, 192),
            "blocks": (1, 1, 1, 1),
            "stem": 16,
            "decoder": (64, 48, 32, 24, 16, 16),
            "dropout": 0.3,
            "activation": "sigmoid",
            "height": 240,
            "width": 320,
            "trace_weight": 1.0,
        },
        weights="multitask.onnx",
    )
)
register_model(
    ModelSpec(
        name="ensemble",
        input="ensemble",
        summary=(
            "calibrated weighted average of the signal members and the image member (Platt "
            "scaling per member and class on validation data; members that do not apply to the "
            "input are left out)"
        ),
        builder="ecgscan.classify._ensemble:fit_ensemble",
        members=(
            "signal",
            "signal-inception",
            "signal-gru",
            "signal-beats",
            "signal-beats-wide",
            "image",
        ),
        weights="ensemble.json",
    )
)
