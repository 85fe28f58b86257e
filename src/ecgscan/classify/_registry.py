"""The registry of classifier models: what each one reads, how it is built, what ships.

A :class:`ModelSpec` names a model, the kind of input it reads (``'signal'``: a 12-lead record;
``'image'``: a page image), the dotted path of its PyTorch factory (imported only by the trainer,
so inference never needs torch), its default architecture arguments, and the file name of the
shipped ONNX export, if any. Later models (image CNN, multi-task, ensemble) register here the
same way.

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

__all__ = ["ModelSpec", "available_models", "get_model_spec", "register_model"]

InputKind = Literal["signal", "image"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build, train and load one classifier.

    Attributes
    ----------
    name : str
        Registry key (``ecgscan train classifier --model NAME``).
    input : {'signal', 'image'}
        What the model reads.
    summary : str
        One line for ``--help`` and the model card.
    builder : str
        ``'module:function'`` of the PyTorch factory, called with the architecture arguments.
    defaults : mapping
        Default architecture arguments (overridable at training time).
    weights : str or None
        File name of the shipped ONNX model in ``ecgscan/models/classifier/``.
    """

    name: str
    input: InputKind
    summary: str
    builder: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite an existing name)."""
    if spec.name in _REGISTRY and not replace:
        raise EcgscanError(f"a classifier named {spec.name!r} is already registered")
    if spec.input not in ("signal", "image"):
        raise EcgscanError(f"model input must be 'signal' or 'image', got {spec.input!r}")
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
register_model(
    ModelSpec(
        name="signal",
        input="signal",
        summary=(
            "1-D residual CNN over the 12 leads at 100 Hz (signal + known-sample mask), two heads: "
            "the 11 Challenge labels and the 5 PTB-XL diagnostic superclasses"
        ),
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={
            "widths": (64, 128, 192),
            "blocks": (2, 2, 2),
            "stem": 32,
            "kernel": 5,
            "dropout": 0.3,
            "activation": "sigmoid",
        },
        weights="signal.onnx",
    )
)
register_model(
    ModelSpec(
        name="signal-small",
        input="signal",
        summary="a narrower, shallower variant of 'signal' (about 6x cheaper) for experiments",
        builder="ecgscan.train.classifier:build_signal_resnet",
        defaults={
            "widths": (32, 64, 96),
            "blocks": (1, 1, 1),
            "stem": 16,
            "kernel": 5,
            "dropout": 0.2,
            "activation": "sigmoid",
        },
        weights=None,
    )
)
