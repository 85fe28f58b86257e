"""Inference: ``classify(record_or_image) -> Prediction`` with the shipped models.

A classifier file is one ONNX model whose metadata entry ``ecgscan_config`` (JSON) carries all
it needs: the labels of each output head, the input's description (sampling frequency and
per-lead standardisation for signal models, thumbnail size for image models) and the per-class
thresholds chosen on validation data. An ensemble is a JSON file naming its members with their
calibration and weights (:mod:`ecgscan.classify._ensemble`). Inference uses onnxruntime only.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ..data.record import Record, read_record
from ..errors import EcgscanError, InputFileError
from ._registry import DEFAULT_MODEL, available_models, get_model_spec
from ._signal import encoder, prepare_record

if TYPE_CHECKING:
    from ._ensemble import EnsembleClassifier

__all__ = [
    "IMAGE_SUFFIXES",
    "Classifier",
    "ImageClassifier",
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
    heart_rate : float or None
        Heart rate in bpm (median RR interval) measured by the ensemble for its rate rule;
        None for other models or when fewer than three beats were found.
    model : str
        The model's name.
    members : tuple of str
        For an ensemble, the members that classified this input (those that apply to it).
    """

    record: str
    labels: tuple[str, ...]
    probabilities: dict[str, float]
    thresholds: dict[str, float]
    superclasses: tuple[str, ...] = ()
    superclass_probabilities: dict[str, float] = field(default_factory=dict)
    missing_leads: tuple[str, ...] = ()
    resampled_from: float | None = None
    heart_rate: float | None = None
    model: str = ""
    members: tuple[str, ...] = ()

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
            "heart_rate": self.heart_rate,
            "model": self.model,
            "members": list(self.members),
        }


# ------------------------------------------------------------------------------ the model
def _open_onnx(path: Path) -> tuple[Any, dict[str, Any]]:
    """An onnxruntime session (one thread) and the file's ``ecgscan_config``."""
    import onnxruntime as ort

    if not path.is_file():
        raise FileNotFoundError(f"classifier model {str(path)!r} not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InputFileError(
            f"cannot load classifier model {str(path)!r}: {exc}; "
            "is it an ONNX file exported by ecgscan?"
        ) from None
    meta = session.get_modelmeta().custom_metadata_map
    if "ecgscan_config" not in meta:
        raise InputFileError(
            f"{str(path)!r} is an ONNX model without ecgscan configuration "
            "(metadata 'ecgscan_config'); export it with `ecgscan train classifier`"
        )
    return session, json.loads(meta["ecgscan_config"])


def override_thresholds(
    base: NDArray[np.float64], labels: Sequence[str], override: float | Mapping[str, float] | None
) -> NDArray[np.float64]:
    """``base`` thresholds with ``override`` applied: one value for all, or label → value."""
    thr = np.array(base, dtype=np.float64)
    if override is None:
        return thr
    if isinstance(override, Mapping):
        from ..data.labels import normalize_labels

        for key, value in override.items():
            (name,) = normalize_labels([key]) or (key,)
            if name not in labels:
                raise EcgscanError(
                    f"threshold given for unknown label {key!r}; expected one of "
                    f"{', '.join(labels)}"
                )
            thr[list(labels).index(name)] = _check_threshold(value, name)
        return thr
    return np.full(len(labels), _check_threshold(override, "thresholds"))


def make_prediction(
    name: str,
    heads: Mapping[str, Sequence[str]],
    probs: Mapping[str, NDArray[Any]],
    thresholds: Mapping[str, NDArray[np.float64]],
    *,
    exclusive: Sequence[Sequence[str]] = (),
    exclusive_by: str = "probability",
    **extra: Any,
) -> Prediction:
    """A :class:`Prediction` from one record's probabilities per head and the thresholds.

    ``exclusive``: groups of Challenge labels of which at most one is chosen among those above
    their thresholds: the most probable (``exclusive_by='probability'``) or the one furthest
    above its threshold (``'ratio'``: probability / threshold).
    """
    labels = list(heads["challenge"])
    p = np.asarray(probs["challenge"], dtype=np.float64).reshape(-1)
    thr = thresholds["challenge"]
    chosen = {n for n, v, t in zip(labels, p, thr, strict=True) if v >= t}
    for group in exclusive:
        hits = [n for n in group if n in chosen]
        if len(hits) > 1:
            if exclusive_by not in ("probability", "ratio"):
                raise EcgscanError(
                    f"exclusive_by must be 'probability' or 'ratio', got {exclusive_by!r}"
                )
            scale = {n: max(float(thr[labels.index(n)]), 1e-6) if exclusive_by == "ratio"
                     else 1.0 for n in hits}  # fmt: skip
            keep = max(hits, key=lambda n: p[labels.index(n)] / scale[n])
            chosen -= set(hits) - {keep}
    sup_names = list(heads.get("superclass", []))
    sup_p = (
        np.asarray(probs["superclass"], dtype=np.float64).reshape(-1)
        if "superclass" in probs
        else np.zeros(0)
    )
    sup_t = thresholds.get("superclass", np.full(len(sup_names), 0.5))
    return Prediction(
        labels=tuple(n for n in labels if n in chosen),
        probabilities={n: round(float(v), 6) for n, v in zip(labels, p, strict=True)},
        thresholds={n: round(float(t), 6) for n, t in zip(labels, thr, strict=True)},
        superclasses=tuple(n for n, v, t in zip(sup_names, sup_p, sup_t, strict=True) if v >= t),
        superclass_probabilities={
            n: round(float(v), 6) for n, v in zip(sup_names, sup_p, strict=True)
        },
        model=name,
        **extra,
    )


def with_threshold_override(
    thresholds: Mapping[str, NDArray[np.float64]],
    labels: Sequence[str],
    override: float | Mapping[str, float] | None,
) -> dict[str, NDArray[np.float64]]:
    """A copy of head → thresholds with the Challenge head's ``override`` applied."""
    out = dict(thresholds)
    out["challenge"] = override_thresholds(thresholds["challenge"], labels, override)
    return out


class _OnnxClassifier:
    """Loading and running of a single-model ONNX classifier (base of the signal and image
    classifiers): config, heads, thresholds, output names and a lock around the session."""

    input = ""
    _wrong_input = ""  # error message when the file holds another kind of model

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        self.path = Path(path)
        self.session, self.config = _open_onnx(self.path)
        if self.config.get("input", "signal") != self.input:
            raise InputFileError(self._wrong_input.format(path=str(self.path)))
        self.name = name or str(self.config.get("model", self.path.stem))
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in self.config["heads"].items()}
        self.thresholds: dict[str, NDArray[np.float64]] = {
            k: np.asarray(v, dtype=np.float64) for k, v in self.config["thresholds"].items()
        }
        # the label heads' outputs (a multi-task model's extra outputs, e.g. 'trace', are
        # not run here)
        self.outputs = [o.name for o in self.session.get_outputs() if o.name in self.heads]
        self._lock = threading.Lock()

    @property
    def labels(self) -> tuple[str, ...]:
        """The Challenge labels of the first head, in output order."""
        return tuple(self.heads["challenge"])

    def _run_session(self, x: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        with self._lock:  # onnxruntime sessions are thread-safe, but keep one core busy at most
            return list(self.session.run(self.outputs, {self.input: x}))

    def _proba(self, inputs: Iterable[NDArray[np.float32]]) -> dict[str, NDArray[np.float32]]:
        """Head → stacked probabilities of the encoded ``inputs`` (one record each)."""
        out: dict[str, list[NDArray[np.float32]]] = {k: [] for k in self.outputs}
        for x in inputs:
            for name, value in zip(self.outputs, self._run_session(x), strict=True):
                out[name].append(value[0])
        return {k: np.stack(v) if v else np.zeros((0, len(self.heads[k])), np.float32)
                for k, v in out.items()}  # fmt: skip


class SignalClassifier(_OnnxClassifier):
    """A signal classifier loaded from its ONNX file.

    Parameters
    ----------
    path : path
        ONNX file exported by ``ecgscan train classifier``.
    name : str, optional
        Name reported in predictions (default: the model name stored in the file).
    """

    input = "signal"
    _wrong_input = (
        "{path!r} is an image classifier; load it with ImageClassifier or load_classifier"
    )

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        self.fs = float(self.config["fs"])
        self._encode = encoder(self.config)

    def __repr__(self) -> str:
        return f"SignalClassifier({self.name!r}, fs={self.fs:g}, path={str(self.path)!r})"

    def predict_proba(self, records: Sequence[Record]) -> dict[str, NDArray[np.float32]]:
        """Probabilities of every head for ``records``: head → array (n_records, n_labels)."""
        return self._proba(self._encode(prepare_record(r, fs=self.fs).signal) for r in records)

    def _run(self, signal: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        return self._run_session(self._encode(signal))

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
        return make_prediction(
            self.name,
            self.heads,
            {k: v[0] for k, v in probs.items()},
            with_threshold_override(self.thresholds, self.heads["challenge"], thresholds),
            record=record.name,
            missing_leads=prepared.missing_leads,
            resampled_from=prepared.resampled_from,
        )


class ImageClassifier(_OnnxClassifier):
    """An image classifier (reads the page itself) loaded from its ONNX file.

    Parameters
    ----------
    path : path
        ONNX file exported by ``ecgscan train classifier --model image``.
    name : str, optional
        Name reported in predictions (default: the model name stored in the file).
    """

    input = "image"
    _wrong_input = "{path!r} is not an image classifier; load it with load_classifier"

    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        super().__init__(path, name=name)
        self.size = (int(self.config["size"][0]), int(self.config["size"][1]))

    def __repr__(self) -> str:
        return f"ImageClassifier({self.name!r}, size={self.size}, path={str(self.path)!r})"

    def predict_proba(self, images: Sequence[Any]) -> dict[str, NDArray[np.float32]]:
        """Probabilities of every head for page ``images`` (arrays or paths)."""
        from ._image import encode_pages, page_thumbnail

        return self._proba(encode_pages(page_thumbnail(im, size=self.size)) for im in images)

    def predict(
        self,
        image: Any,
        *,
        thresholds: float | Mapping[str, float] | None = None,
        name: str = "",
    ) -> Prediction:
        """Classify one page image (array or path); ``name`` is reported as the record."""
        if not name and isinstance(image, str | os.PathLike):
            name = Path(image).stem
        probs = self.predict_proba([image])
        thr = with_threshold_override(self.thresholds, self.heads["challenge"], thresholds)
        return make_prediction(
            self.name, self.heads, {k: v[0] for k, v in probs.items()}, thr, record=name
        )


def _check_threshold(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not 0.0 <= v <= 1.0:
        raise EcgscanError(f"threshold for {what} must be a number in [0, 1], got {value!r}")
    return v


Classifier: TypeAlias = "SignalClassifier | ImageClassifier | EnsembleClassifier"

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


def _load_file(path: Path, name: str | None = None) -> Any:
    if path.suffix.lower() == ".json":
        from ._ensemble import EnsembleClassifier

        return EnsembleClassifier(path, name=name)
    _, config = _open_onnx(path)
    if config.get("input") == "image":
        return ImageClassifier(path, name=name)
    return SignalClassifier(path, name=name)


def load_classifier(model: str | os.PathLike[str] = DEFAULT_MODEL) -> Classifier:
    """Load a classifier by registry name (the shipped model) or from a file.

    Parameters
    ----------
    model : str or path
        A registered name (:func:`available_models`; default ``'ensemble'``), an ONNX file
        exported by ``ecgscan train classifier`` (signal or image model) or an ensemble's JSON
        file.

    Returns
    -------
    SignalClassifier, ImageClassifier or EnsembleClassifier
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
        path = Path(str(resources.files("ecgscan") / "models" / "classifier" / spec.weights))
        if not path.is_file():
            raise EcgscanError(
                f"the shipped weights of classifier {model!r} ({path}) are missing; "
                "reinstall ecgscan"
            )
        clf = _load_file(path, name=model)
    else:
        path = Path(model)
        if path.suffix.lower() not in (".onnx", ".json") and not path.exists():
            raise EcgscanError(
                f"unknown classifier {key!r}: neither a registered model "
                f"({', '.join(available_models())}) nor an existing .onnx/.json file"
            )
        clf = _load_file(path)
    with _CACHE_LOCK:
        return _CACHE.setdefault(key, clf)


# ---------------------------------------------------------------------------- entry point
@dataclass
class _Inputs:
    name: str
    record: Record | None = None
    image: Any = None


def _gather(obj: Any, *, signal: bool, image: bool) -> _Inputs:
    """What a classifier needs of ``obj``: the record (digitized if ``obj`` is a page) and/or the
    page image (only for pages)."""
    if isinstance(obj, Record):
        return _Inputs(obj.name, record=obj)
    inner = getattr(obj, "record", None)
    if isinstance(inner, Record):  # DigitizationResult and friends
        return _Inputs(inner.name, record=inner)
    if isinstance(obj, np.ndarray):
        return _Inputs(
            "image",
            record=_digitize(obj, "image") if signal else None,
            image=obj if image else None,
        )
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if not path.is_file():
                raise FileNotFoundError(f"image {str(path)!r} not found")
            out = _Inputs(path.stem)
            if signal:
                out.record = _digitize(path, path.stem)
            if image:
                from ..digitize._load import load_image

                out.image = load_image(path)
            return out
        rec = read_record(path)
        return _Inputs(rec.name, record=rec)
    raise TypeError(
        "classify() takes a Record, a digitization result, a page image (array), or the path "
        f"of a record (WFDB, CSV, JSON) or of an ECG image; got {type(obj).__name__}"
    )


def _to_record(obj: Any) -> Record:
    """A Record from a Record, a digitization result, or a path to a record or an image."""
    rec = _gather(obj, signal=True, image=False).record
    assert rec is not None
    return rec


def _digitize(image: Any, name: str) -> Record:
    from importlib import import_module

    digitize = getattr(import_module("ecgscan.digitize"), "digitize", None)
    if digitize is None:
        raise EcgscanError(
            f"cannot classify image {name!r}: the digitizer is not available in this "
            "installation; digitize it first and classify the record"
        )
    # DigitizationError (not an ECG, unreadable page) propagates unchanged
    result = digitize(image, name=name)
    record = getattr(result, "record", result)
    if not isinstance(record, Record):
        raise EcgscanError(f"digitizing {name!r} gave no record")
    return record


def _resolve(model: Any) -> Classifier:
    from ._ensemble import EnsembleClassifier

    if isinstance(model, SignalClassifier | ImageClassifier | EnsembleClassifier):
        return model
    return load_classifier(model)


def predict_one(
    clf: Classifier, obj: Any, *, thresholds: float | Mapping[str, float] | None = None
) -> Prediction:
    """Classify ``obj`` (anything :func:`classify` takes) with a loaded classifier."""
    from ._ensemble import EnsembleClassifier

    if isinstance(clf, SignalClassifier):
        return clf.predict(_to_record(obj), thresholds=thresholds)
    if isinstance(clf, ImageClassifier):
        inputs = _gather(obj, signal=False, image=True)
        if inputs.image is None:
            raise EcgscanError(
                f"classifier {clf.name!r} reads page images, but {inputs.name!r} is a record; "
                "use a signal model or the ensemble"
            )
        return clf.predict(inputs.image, thresholds=thresholds, name=inputs.name)
    assert isinstance(clf, EnsembleClassifier)
    inputs = _gather(obj, signal="signal" in clf.inputs, image="image" in clf.inputs)
    return clf.predict(
        record=inputs.record, image=inputs.image, thresholds=thresholds, name=inputs.name
    )


def classify(
    record_or_image: Any,
    *,
    model: str | os.PathLike[str] | Classifier = DEFAULT_MODEL,
    thresholds: float | Mapping[str, float] | None = None,
) -> Prediction:
    """Classify one ECG into the 11 PhysioNet Challenge 2024 labels.

    Parameters
    ----------
    record_or_image : Record, DigitizationResult, array or path
        A record (any leads, any ``fs``, NaN allowed), a digitizer result, a page image as an
        array, or the path of a WFDB record (``.hea`` or without suffix), a ``.csv``/``.json``
        record, or a page image (``.png``, ``.jpg``, ``.pdf``, ...).
    model : str, path or loaded classifier, keyword-only
        A registered model name, an ONNX/JSON file, or a loaded classifier. The default,
        ``'ensemble'``, averages the calibrated probabilities of the signal models (on the
        record, or on the digitized page) and of the image model (on the page itself, when
        there is one); see its model card.
    thresholds : float or mapping, keyword-only
        Override the model's per-label thresholds (one value, or label → value).

    Returns
    -------
    Prediction
        Probabilities, chosen labels, the thresholds used, the leads that were missing and,
        for the ensemble, the members used.

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
    return predict_one(_resolve(model), record_or_image, thresholds=thresholds)


def classify_many(
    items: Iterable[Any],
    *,
    model: str | os.PathLike[str] | Classifier = DEFAULT_MODEL,
    thresholds: float | Mapping[str, float] | None = None,
) -> list[Prediction]:
    """:func:`classify` over several inputs with one loaded model."""
    clf = _resolve(model)
    return [predict_one(clf, item, thresholds=thresholds) for item in items]
