"""Inference: ``classify(record_or_image) -> Prediction`` with the shipped ONNX models.

A classifier file is one ONNX model whose metadata entry ``ecgscan_config`` (JSON) carries all
it needs: the labels of each output head, the sampling frequency, the per-lead standardisation
and the per-class thresholds chosen on validation data. Inference uses onnxruntime only.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.record import Record, read_record
from ..errors import EcgscanError, InputFileError
from ._registry import available_models, get_model_spec
from ._signal import encode_signals, prepare_record

__all__ = [
    "IMAGE_SUFFIXES",
    "Prediction",
    "SignalClassifier",
    "classify",
    "classify_many",
    "load_classifier",
]

#: File suffixes read as page images (digitized before classification).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf"})


@dataclass(frozen=True)
class Prediction:
    """The classification of one record.

    Attributes
    ----------
    record : str
        The record's name.
    labels : tuple of str
        Chosen Challenge labels (probability ≥ threshold), in Challenge order.
    probabilities : dict of str to float
        Probability of each of the 11 Challenge labels.
    thresholds : dict of str to float
        The threshold used for each label.
    superclasses : tuple of str
        Chosen PTB-XL diagnostic superclasses (second head), if the model has that head.
    superclass_probabilities : dict of str to float
    missing_leads : tuple of str
        Standard leads absent or entirely NaN in the input (the model still classified it).
    resampled_from : float or None
        The input's sampling frequency when it was resampled to the model's.
    model : str
        The model's name.
    """

    record: str
    labels: tuple[str, ...]
    probabilities: dict[str, float]
    thresholds: dict[str, float]
    superclasses: tuple[str, ...] = ()
    superclass_probabilities: dict[str, float] = field(default_factory=dict)
    missing_leads: tuple[str, ...] = ()
    resampled_from: float | None = None
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "record": self.record,
            "labels": list(self.labels),
            "probabilities": dict(self.probabilities),
            "thresholds": dict(self.thresholds),
            "superclasses": list(self.superclasses),
            "superclass_probabilities": dict(self.superclass_probabilities),
            "missing_leads": list(self.missing_leads),
            "resampled_from": self.resampled_from,
            "model": self.model,
        }


# ------------------------------------------------------------------------------ the model
class SignalClassifier:
    """A signal classifier loaded from its ONNX file.

    Parameters
    ----------
    path : path
        ONNX file exported by ``ecgscan train classifier``.
    name : str, optional
        Name reported in predictions (default: the model name stored in the file).
    """

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"classifier model {str(self.path)!r} not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputFileError(
                f"cannot load classifier model {str(self.path)!r}: {exc}; "
                "is it an ONNX file exported by ecgscan?"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "ecgscan_config" not in meta:
            raise InputFileError(
                f"{str(self.path)!r} is an ONNX model without ecgscan configuration "
                "(metadata 'ecgscan_config'); export it with `ecgscan train classifier`"
            )
        self.config: dict[str, Any] = json.loads(meta["ecgscan_config"])
        self.name = name or str(self.config.get("model", self.path.stem))
        self.fs = float(self.config["fs"])
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in self.config["heads"].items()}
        self.thresholds: dict[str, NDArray[np.float64]] = {
            k: np.asarray(v, dtype=np.float64) for k, v in self.config["thresholds"].items()
        }
        self.outputs = [o.name for o in self.session.get_outputs()]
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SignalClassifier({self.name!r}, fs={self.fs:g}, path={str(self.path)!r})"

    @property
    def labels(self) -> tuple[str, ...]:
        """The Challenge labels of the first head, in output order."""
        return tuple(self.heads["challenge"])

    def predict_proba(self, records: Sequence[Record]) -> dict[str, NDArray[np.float32]]:
        """Probabilities of every head for ``records``: head → array (n_records, n_labels)."""
        out: dict[str, list[NDArray[np.float32]]] = {k: [] for k in self.outputs}
        for record in records:
            prepared = prepare_record(record, fs=self.fs)
            for name, value in zip(self.outputs, self._run(prepared.signal), strict=True):
                out[name].append(value[0])
        return {k: np.stack(v) if v else np.zeros((0, len(self.heads[k])), np.float32)
                for k, v in out.items()}  # fmt: skip

    def _run(self, signal: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        x = encode_signals(signal, mean=self.config["mean"], std=self.config["std"])
        with self._lock:  # onnxruntime sessions are thread-safe, but keep one core busy at most
            return list(self.session.run(None, {"signal": x}))

    def predict(
        self,
        record: Record,
        *,
        thresholds: float | Mapping[str, float] | None = None,
    ) -> Prediction:
        """Classify one record.

        Parameters
        ----------
        record : Record
            Any leads (missing ones are reported), any ``fs`` (resampled), NaN allowed.
        thresholds : float or mapping, optional
            Override the model's per-label thresholds: one value for every label, or
            label → value for some labels.
        """
        prepared = prepare_record(record, fs=self.fs)
        probs = dict(zip(self.outputs, self._run(prepared.signal), strict=True))
        labels = self.heads["challenge"]
        thr = self._thresholds("challenge", thresholds)
        p = probs["challenge"][0].astype(np.float64)
        chosen = tuple(name for name, v, t in zip(labels, p, thr, strict=True) if v >= t)
        sup_names = self.heads.get("superclass", [])
        sup_p = probs["superclass"][0].astype(np.float64) if "superclass" in probs else np.zeros(0)
        sup_t = self.thresholds.get("superclass", np.full(len(sup_names), 0.5))
        return Prediction(
            record=record.name,
            labels=chosen,
            probabilities={n: round(float(v), 6) for n, v in zip(labels, p, strict=True)},
            thresholds={n: round(float(t), 6) for n, t in zip(labels, thr, strict=True)},
            superclasses=tuple(
                n for n, v, t in zip(sup_names, sup_p, sup_t, strict=True) if v >= t
            ),
            superclass_probabilities={
                n: round(float(v), 6) for n, v in zip(sup_names, sup_p, strict=True)
            },
            missing_leads=prepared.missing_leads,
            resampled_from=prepared.resampled_from,
            model=self.name,
        )

    def _thresholds(
        self, head: str, override: float | Mapping[str, float] | None
    ) -> NDArray[np.float64]:
        thr = self.thresholds[head].copy()
        if override is None:
            return thr
        labels = self.heads[head]
        if isinstance(override, Mapping):
            from ..data.labels import normalize_labels

            for key, value in override.items():
                (name,) = normalize_labels([key]) or (key,)
                thr[labels.index(name)] = _check_threshold(value, name)
            return thr
        return np.full(len(labels), _check_threshold(override, "thresholds"))


def _check_threshold(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0.0 <= v <= 1.0:
        raise EcgscanError(f"threshold for {what} must be a number in [0, 1], got {value!r}")
    return v


_CACHE: dict[str, SignalClassifier] = {}
_CACHE_LOCK = threading.Lock()


def load_classifier(model: str | os.PathLike[str] = "signal") -> SignalClassifier:
    """Load a classifier by registry name (the shipped model) or from an ONNX file path.

    Loaded models are cached, so repeated calls are cheap.
    """
    key = str(model)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if isinstance(model, str) and model in available_models():
            spec = get_model_spec(model)
            if spec.weights is None:
                raise EcgscanError(
                    f"classifier {model!r} ships no trained weights; train it with "
                    f"`ecgscan train classifier --model {model}` and pass the ONNX file"
                )
            if spec.input != "signal":
                raise EcgscanError(f"classifier {model!r} reads {spec.input}s; not supported here")
            path = Path(str(resources.files("ecgscan") / "models" / "classifier" / spec.weights))
            if not path.is_file():
                raise EcgscanError(
                    f"the shipped weights of classifier {model!r} ({path}) are missing; "
                    "reinstall ecgscan"
                )
            clf = SignalClassifier(path, name=model)
        else:
            path = Path(model)
            if not path.suffix == ".onnx" and not path.exists():
                raise EcgscanError(
                    f"unknown classifier {key!r}: neither a registered model "
                    f"({', '.join(available_models())}) nor an existing .onnx file"
                )
            clf = SignalClassifier(path)
        _CACHE[key] = clf
        return clf


# ---------------------------------------------------------------------------- entry point
def _to_record(obj: Any) -> Record:
    """A Record from a Record, a digitization result, or a path to a record or an image."""
    if isinstance(obj, Record):
        return obj
    inner = getattr(obj, "record", None)
    if isinstance(inner, Record):  # DigitizationResult and friends
        return inner
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _digitize(path)
        return read_record(path)
    raise TypeError(
        "classify() takes a Record, a digitization result, or the path of a record (WFDB, CSV, "
        f"JSON) or of an ECG image; got {type(obj).__name__}"
    )


def _digitize(path: Path) -> Record:
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} not found")
    from importlib import import_module

    digitize = getattr(import_module("ecgscan.digitize"), "digitize", None)
    if digitize is None:
        raise EcgscanError(
            f"cannot classify image {str(path)!r}: the digitizer is not available in this "
            "installation; digitize it first and classify the record"
        )
    # DigitizationError (not an ECG, unreadable page) propagates unchanged
    result = digitize(path, name=path.stem)
    record = getattr(result, "record", result)
    if not isinstance(record, Record):
        raise EcgscanError(f"digitizing {str(path)!r} gave no record")
    return record


def classify(
    record_or_image: Any,
    *,
    model: str | os.PathLike[str] | SignalClassifier = "signal",
    thresholds: float | Mapping[str, float] | None = None,
) -> Prediction:
    """Classify one ECG into the 11 PhysioNet Challenge 2024 labels.

    Parameters
    ----------
    record_or_image : Record, DigitizationResult or path
        A record (any leads, any ``fs``, NaN allowed), a digitizer result, or the path of a
        WFDB record (``.hea`` or without suffix), a ``.csv``/``.json`` record, or a page image
        (``.png``, ``.jpg``, ``.pdf``, ...; digitized first).
    model : str, path or SignalClassifier, keyword-only
        A registered model name (default ``'signal'``, the shipped model), an ONNX file, or a
        loaded classifier.
    thresholds : float or mapping, keyword-only
        Override the model's per-label thresholds (one value, or label → value).

    Returns
    -------
    Prediction
        Probabilities, chosen labels, the thresholds used and the leads that were missing.

    Raises
    ------
    DigitizationError
        If an image cannot be read as an ECG (from the digitizer, unchanged).
    RecordError
        If the record has no usable lead.

    Examples
    --------
    >>> import ecgscan
    >>> pred = ecgscan.classify(ecgscan.synthetic_ecg(fs=500, duration=10, seed=1))
    >>> len(pred.probabilities)
    11
    """
    clf = model if isinstance(model, SignalClassifier) else load_classifier(model)
    return clf.predict(_to_record(record_or_image), thresholds=thresholds)


def classify_many(
    items: Iterable[Any],
    *,
    model: str | os.PathLike[str] | SignalClassifier = "signal",
    thresholds: float | Mapping[str, float] | None = None,
) -> list[Prediction]:
    """:func:`classify` over several inputs with one loaded model."""
    clf = model if isinstance(model, SignalClassifier) else load_classifier(model)
    return [clf.predict(_to_record(item), thresholds=thresholds) for item in items]
