"""ecgscan.classify: the 11 PhysioNet Challenge 2024 labels from a record or an image.

>>> import ecgscan
>>> pred = ecgscan.classify(ecgscan.synthetic_ecg(fs=500, duration=10, seed=1))
>>> sorted(pred.probabilities)[:3]
['AFIB/AFL', 'Acute MI', 'BRADY']

The models live in a registry (:func:`available_models`, :func:`get_model_spec`); the shipped
ones are ONNX files run with onnxruntime (no torch needed). The default, ``'ensemble'``, is a
calibrated average of the signal models (on the record, or on the digitized page) and the
image model (on the page itself); see ``models/classifier/MODEL_CARD_ensemble.md``. Training is
in :mod:`ecgscan.train.classifier` (``ecgscan train classifier``).
"""

from .._callable import make_module_callable
from ..data.beats import heart_rates
from ._ensemble import EnsembleClassifier
from ._image import trace_map
from ._predict import (
    IMAGE_SUFFIXES,
    ImageClassifier,
    Prediction,
    SignalClassifier,
    classify,
    classify_many,
    load_classifier,
)
from ._registry import (
    DEFAULT_MODEL,
    ModelSpec,
    available_models,
    get_model_spec,
    register_model,
)
from ._signal import PreparedSignal, encode_signals, prepare_record
from ._thresholds import THRESHOLD_METHODS, choose_thresholds, macro_auroc, per_class_auroc

__all__ = [
    "DEFAULT_MODEL",
    "IMAGE_SUFFIXES",
    "THRESHOLD_METHODS",
    "EnsembleClassifier",
    "ImageClassifier",
    "ModelSpec",
    "Prediction",
    "PreparedSignal",
    "SignalClassifier",
    "available_models",
    "choose_thresholds",
    "classify",
    "classify_many",
    "encode_signals",
    "get_model_spec",
    "heart_rates",
    "load_classifier",
    "macro_auroc",
    "per_class_auroc",
    "prepare_record",
    "register_model",
    "trace_map",
]


make_module_callable(__name__, "classify")
