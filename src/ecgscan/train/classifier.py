"""Training of the signal classifiers (PyTorch; needs the ``train`` extra).

``ecgscan train classifier --model signal`` trains a model from the registry
(:mod:`ecgscan.classify._registry`) on PTB-XL, chooses per-class thresholds, exports ONNX with
its whole configuration in the ONNX metadata, and writes a model card.

Protocol (kept clean so that fold 9 is touched once, by the benchmark):

* training folds 1–7, with augmentation that imitates digitization
  (:func:`ecgscan.train._common.augment_batch`);
* fold 8 for the choice of epoch (best mean of the two macro AUROCs) and of the per-class
  thresholds (F1-optimal, or Youden's J);
* fold 9 only in ``benchmarks/classify.py``.

The network has two heads: the 11 Challenge labels and the 5 PTB-XL diagnostic superclasses
(``NORM``, ``MI``, ``STTC``, ``CD``, ``HYP``; from ``scp_statements.csv`` as in the PTB-XL
benchmark). The superclass loss is masked for records without any diagnostic statement.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn
from torch.nn import functional as F

from ..classify._registry import get_model_spec
from ..classify._signal import beat_samples, encoder
from ..classify._thresholds import choose_thresholds, per_class_auroc
from ..data.labels import CHALLENGE_LABELS
from ..data.record import LEADS
from ..errors import EcgscanError
from ._common import (
    SUPERCLASSES,
    AugmentConfig,
    augment_batch,
    load_signal_cache,
    save_onnx,
    set_threads,
    superclass_matrix,
)
from .beatnet import BeatNet

__all__ = [
    "SUPERCLASSES",
    "SignalResNet",
    "TrainConfig",
    "build_signal_resnet",
    "create_model",
    "export_onnx",
    "train_classifier",
]


LOSSES = ("bce", "weighted_bce", "focal", "asl")
ACTIVATIONS = ("sigmoid", "gev")
BLOCKS = ("residual", "inception")


# ================================================================================= model
def _shortcut(c_in: int, c_out: int, stride: int, *, dims: int = 1) -> nn.Sequential:
    """A residual block's shortcut: average pooling for a stride > 1, and a 1×1 convolution
    with batch norm when the width changes (identity otherwise)."""
    short: list[nn.Module] = []
    if stride != 1:
        short.append((nn.AvgPool1d if dims == 1 else nn.AvgPool2d)(stride, stride, ceil_mode=True))
    if c_in != c_out:
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        short += [conv(c_in, c_out, 1, bias=False),
                  (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(c_out)]  # fmt: skip
    return nn.Sequential(*short)


class _Block(nn.Module):
    """Residual block (conv-BN-ReLU-conv-BN + shortcut) over signals (``dims=1``) or pages
    (``dims=2``); a stride > 1 downsamples, the shortcut by average pooling."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, *, dims: int = 1, se: int = 0
    ) -> None:
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        pad = kernel // 2
        self.conv1 = conv(c_in, c_out, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = conv(c_out, c_out, kernel, padding=pad, bias=False)
        self.bn2 = norm(c_out)
        nn.init.zeros_(self.bn2.weight)  # start as identity (xresnet)
        self.short = _shortcut(c_in, c_out, stride, dims=dims)
        self.se = _SqueezeExcite(c_out, se) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        # odd kernels: the strided conv and the ceil-mode pooling give the same length
        return F.relu(y + self.short(x))


class _SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channels rescaled by a gate computed from
    their mean over the rest of the tensor (a bottleneck ``ratio`` times narrower)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        hidden = max(4, channels // ratio)
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(x.flatten(2).mean(dim=2)))
        return x * g.reshape(g.shape + (1,) * (x.dim() - 2))


class _InceptionBlock(nn.Module):
    """Residual pair of inception modules over signals (InceptionTime-like, Fawaz et al. 2020).

    Each module: a 1×1 bottleneck, parallel convolutions of several kernel sizes and a
    max-pool → 1×1 branch, concatenated, BN, ReLU. The first module carries the stride; the
    shortcut (average pooling, 1×1 conv when the width changes) spans both modules.
    """

    def __init__(self, c_in: int, c_out: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        n_branch = len(kernels) + 1
        if c_out % n_branch:
            raise EcgscanError(
                f"inception width {c_out} must be divisible by the number of branches "
                f"({n_branch}: kernels {list(kernels)} + pooling)"
            )
        second = _Inception(c_out, c_out, kernels, 1)
        nn.init.zeros_(second.bn.weight)  # start as identity (xresnet)
        self.mods = nn.ModuleList([_Inception(c_in, c_out, kernels, stride), second])
        self.short = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.mods[0](x))
        return F.relu(self.mods[1](y) + self.short(x))


class _Inception(nn.Module):
    """One inception module (without the final ReLU); odd kernels keep lengths aligned."""

    def __init__(self, c_in: int, c_out: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        width = c_out // (len(kernels) + 1)
        self.bottleneck = nn.Conv1d(c_in, width, 1, bias=False)
        self.branches = nn.ModuleList(
            nn.Conv1d(width, width, k, stride=stride, padding=k // 2, bias=False) for k in kernels
        )
        self.pool = nn.Sequential(
            nn.MaxPool1d(3, stride=stride, padding=1), nn.Conv1d(c_in, width, 1, bias=False)
        )
        self.bn = nn.BatchNorm1d(width * (len(kernels) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bottleneck(x)
        return self.bn(torch.cat([conv(b) for conv in self.branches] + [self.pool(x)], dim=1))


class GEV(nn.Module):
    """Generalised-extreme-value output activation with a learnable shape ξ per class.

    ``p = 1 - exp(-max(1 - ξ·s, ε)^(-1/ξ))`` (Wang & Dey 2010; used for imbalanced labels by
    Munkhdalai et al. 2020): asymmetric, with a heavier tail towards the rare positive class.
    """

    def __init__(self, n: int, xi: float = -0.25) -> None:
        super().__init__()
        self.xi = nn.Parameter(torch.full((n,), float(xi)))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        # keep ξ away from 0 (where the formula has a removable singularity) and bounded
        xi = torch.clamp(self.xi, -1.0, -0.05)
        u = torch.clamp(1.0 - xi * s, min=1e-4)
        return 1.0 - torch.exp(-torch.pow(u, -1.0 / xi))


class SignalResNet(nn.Module):
    """1-D residual CNN over ``2 × 12`` channels (signal + mask) of any length.

    Stem (stride-2 conv, two convs, max-pool: ×4 shorter), stages of residual blocks (each
    after the first halves the length), global average + max pooling, and one linear head per
    output group. ``block='inception'`` replaces each residual block by a residual pair of
    inception modules with parallel ``kernels`` (at a quarter of ``fs`` and less). ``rnn > 0``
    adds a bidirectional GRU of ``rnn`` units per direction over the last stage's sequence
    (a convolutional-recurrent network); the heads then read the mean and maximum over time of
    the GRU's outputs instead of the convolutional features. ``stem_kernel`` is the first
    convolution's kernel; ``se > 0`` adds squeeze-and-excitation (bottleneck ``se`` times
    narrower) to the residual blocks. ``statements > 0`` adds an auxiliary head
    ``'statements'`` (richer supervision: the PTB-XL SCP statements; trained, never exported:
    :attr:`heads` lists the exported heads only). ``window > 0`` makes a sliding-window model
    (the PTB-XL benchmark's recipe; train it on random crops of ``window`` samples): an input
    longer than ``window`` is cut into windows ``window_stride`` samples apart (default half a
    window; at most ``window_stride - 1`` samples at the end are left out), each classified
    alone, and the probabilities are averaged (the scores returned are their logits).
    :meth:`forward` returns scores (logits for ``'sigmoid'``); :meth:`probabilities` maps them
    to probabilities.
    """

    _eye: torch.Tensor  # the identity kernel that cuts windows (a non-persistent buffer)

    def __init__(
        self,
        *,
        in_channels: int = 2 * len(LEADS),
        heads: Mapping[str, int] | None = None,
        widths: Sequence[int] = (64, 128, 192),
        blocks: Sequence[int] = (2, 2, 2),
        stem: int = 32,
        kernel: int = 5,
        dropout: float = 0.3,
        activation: str = "sigmoid",
        block: str = "residual",
        kernels: Sequence[int] = (3, 9, 19),
        rnn: int = 0,
        stem_kernel: int = 7,
        se: int = 0,
        statements: int = 0,
        window: int = 0,
        window_stride: int = 0,
    ) -> None:
        super().__init__()
        if min(se, statements, window, window_stride) < 0:
            raise EcgscanError(
                "se, statements, window and window_stride must be >= 0 (0: off), got "
                f"{se}, {statements}, {window}, {window_stride}"
            )
        if stem_kernel < 1 or stem_kernel % 2 == 0:
            raise EcgscanError(f"stem_kernel must be odd and positive, got {stem_kernel}")
        if (window or statements) and activation != "sigmoid":
            raise EcgscanError(
                f"window and statements need activation='sigmoid', got activation={activation!r}"
            )
        if rnn < 0:
            raise EcgscanError(f"rnn (GRU units per direction) must be >= 0, got {rnn}")
        if block not in BLOCKS:
            raise EcgscanError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
        if any(k < 1 or k % 2 == 0 for k in kernels) or not kernels:
            raise EcgscanError(f"inception kernels must be odd and positive, got {list(kernels)}")
        if activation not in ACTIVATIONS:
            raise EcgscanError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        if len(widths) != len(blocks) or not widths:
            raise EcgscanError("widths and blocks must be non-empty and of the same length")
        heads = dict(heads or {"challenge": len(CHALLENGE_LABELS), "superclass": len(SUPERCLASSES)})
        self.heads = heads
        self.activation = activation
        self.window = window
        self.window_stride = window_stride or max(1, window // 2)
        # cuts the windows (not a parameter; not in the state dict)
        eye = torch.eye(window).reshape(window, 1, window) if window else torch.zeros(0)
        self.register_buffer("_eye", eye, persistent=False)
        self.stem = nn.Sequential(
            nn.Conv1d(
                in_channels, stem, stem_kernel, stride=2, padding=stem_kernel // 2, bias=False
            ),
            nn.BatchNorm1d(stem),
            nn.ReLU(inplace=True),
            nn.Conv1d(stem, stem, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(stem),
            nn.ReLU(inplace=True),
            nn.Conv1d(stem, widths[0], kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        layers: list[nn.Module] = []
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                if block == "inception":
                    layers.append(_InceptionBlock(c, w, kernels, stride))
                else:
                    k = kernel if i == 0 else max(3, kernel - 2)
                    layers.append(_Block(c, w, k, stride, se=se))
                c = w
        self.body = nn.Sequential(*layers)
        self.rnn = nn.GRU(c, rnn, batch_first=True, bidirectional=True) if rnn else None
        c = 2 * rnn if rnn else c
        self.dropout = nn.Dropout(dropout)
        every = {**heads, **({"statements": statements} if statements else {})}
        self.head = nn.ModuleDict({k: nn.Linear(2 * c, n) for k, n in every.items()})
        self.gev = (
            nn.ModuleDict({k: GEV(n) for k, n in heads.items()}) if activation == "gev" else None
        )

    def _scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(self.stem(x))
        if self.rnn is not None:  # (batch, channels, time) → (batch, 2 * rnn, time)
            h = self.rnn(h.transpose(1, 2))[0].transpose(1, 2)
        h = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        h = self.dropout(h)
        return {k: head(h) for k, head in self.head.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.window or x.shape[-1] <= self.window:
            return self._scores(x)
        # the windows, by a strided convolution with the identity (exported to ONNX for any
        # length): (batch × leads, 1, time) → (batch, leads, window, n) → (n × batch, leads, window)
        w, c = self.window, x.shape[1]
        cuts = F.conv1d(x.flatten(0, 1).unsqueeze(1), self._eye, stride=self.window_stride)
        cuts = cuts.reshape(x.shape[0], c, w, -1).permute(3, 0, 1, 2)
        scores = self._scores(cuts.reshape(-1, c, w))
        out = {}
        for k, v in scores.items():  # (n × batch, classes) → mean probability → its logit
            p = torch.sigmoid(v).reshape(cuts.shape[0], -1, v.shape[-1]).mean(dim=0)
            p = p.clamp(1e-7, 1 - 1e-7)
            out[k] = torch.log(p) - torch.log1p(-p)
        return out

    def probabilities(self, scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.gev is None:
            return {k: torch.sigmoid(v) for k, v in scores.items()}
        return {k: self.gev[k](v) for k, v in scores.items()}


def build_signal_resnet(**kwargs: Any) -> SignalResNet:
    """Factory registered as ``'signal'`` (see :mod:`ecgscan.classify._registry`)."""
    return SignalResNet(**kwargs)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name`` with its defaults updated by ``overrides``."""
    spec = get_model_spec(name)
    module_name, _, func = spec.builder.partition(":")
    factory: Callable[..., nn.Module] = getattr(importlib.import_module(module_name), func)
    kwargs = {**dict(spec.defaults), **overrides}
    return factory(**kwargs)


# ============================================================================ image model
class ImageResNet(nn.Module):
    """A small ResNet over grey page thumbnails (one channel, ink ≈ 1), two heads.

    Stem (stride-2 conv, max-pool, stride-2 conv: ×8 smaller), stages of 2-D residual blocks
    (each stage halves the size), global average + max pooling, one linear head per output
    group. The same interface as :class:`SignalResNet` (``forward`` → scores, ``probabilities``).
    """

    def __init__(
        self,
        *,
        heads: Mapping[str, int] | None = None,
        widths: Sequence[int] = (32, 64, 128, 192),
        blocks: Sequence[int] = (1, 1, 1, 1),
        stem: int = 16,
        dropout: float = 0.3,
        activation: str = "sigmoid",
        height: int = 240,
        width: int = 320,
    ) -> None:
        super().__init__()
        self.size = (int(height), int(width))  # the input size it is trained for (any works)
        if activation != "sigmoid":
            raise EcgscanError(
                f"the image model supports activation 'sigmoid' only, got {activation!r}"
            )
        if len(widths) != len(blocks) or not widths:
            raise EcgscanError("widths and blocks must be non-empty and of the same length")
        heads = dict(heads or {"challenge": len(CHALLENGE_LABELS), "superclass": len(SUPERCLASSES)})
        self.heads = heads
        self.activation = activation
        self.gev = None
        # cheap stem for large thin-line images: a stride-2 5×5 conv on the single channel, a
        # max-pool (keeps one-pixel traces), a stride-2 3×3 conv: ×8 smaller
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(stem, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        c = widths[0]
        for w, n in zip(widths, blocks, strict=True):
            for j in range(n):
                layers.append(_Block(c, w, 3, 2 if j == 0 else 1, dims=2))
                c = w
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.ModuleDict({k: nn.Linear(2 * c, n) for k, n in heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(self.stem(x))
        h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        h = self.dropout(h)
        return {k: head(h) for k, head in self.head.items()}

    def probabilities(self, scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.sigmoid(v) for k, v in scores.items()}


def build_image_resnet(**kwargs: Any) -> ImageResNet:
    """Factory registered as ``'image'`` (see :mod:`ecgscan.classify._registry`)."""
    return ImageResNet(**kwargs)


class _Exported(nn.Module):
    """What goes into ONNX: scores → probabilities, one output per head."""

    def __init__(self, model: SignalResNet | BeatNet | ImageResNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        scores = self.model(x)  # (auxiliary heads, if any, are left out)
        probs = self.model.probabilities({k: scores[k] for k in self.model.heads})
        return tuple(probs[k] for k in self.model.heads)


def export_onnx(
    model: SignalResNet | BeatNet | ImageResNet,
    path: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    n_samples: int = 1000,
    input_shape: Sequence[int] | None = None,
    input_name: str = "signal",
) -> Path:
    """Export ``model`` (eval mode) to ONNX with dynamic batch (and length, for signals).

    Signal models read ``signal`` ``(batch, 24, time)`` (``n_samples`` for the dummy input);
    image models ``image`` ``(batch, 1, H, W)`` with ``input_shape=(1, 1, H, W)``.

    ``config`` (labels, fs, normalisation, thresholds, training facts) is stored as JSON in the
    ONNX metadata under ``ecgscan_config``, so the file is all inference needs.
    """
    model = model.eval()
    shape = tuple(input_shape) if input_shape is not None else (1, 2 * len(LEADS), n_samples)
    in_axes = {0: "batch", 2: "time"} if input_name == "signal" else {0: "batch"}
    names = list(model.heads)
    return save_onnx(
        _Exported(model),
        torch.zeros(*shape),
        path,
        input_names=[input_name],
        output_names=names,
        dynamic_axes={input_name: in_axes, **{k: {0: "batch"} for k in names}},
        metadata={"ecgscan_config": json.dumps(config, sort_keys=True)},
    )


# ================================================================================== data
@dataclass
class _Split:
    ecg_ids: NDArray[np.int64]
    signals: NDArray[Any]  # (n, 12, n_samples) float32 mV, NaN unknown; image models: uint8 pages
    challenge: NDArray[np.float32]  # (n, 11)
    superclass: NDArray[np.float32]  # (n, 5)
    # (n, len(statements)): the PTB-XL SCP statements (any likelihood), for auxiliary heads
    statements: NDArray[np.float32] | None = None
    # digitized copies of some records (signal models): per row the index of its copy in
    # ``copy_signals`` or -1
    copies: NDArray[np.int64] | None = None
    copy_signals: NDArray[np.float32] | None = None

    def batch(
        self, idx: NDArray[np.int64], rng: np.random.Generator, *, p_copy: float = 0.0
    ) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """The signals of rows ``idx``, each replaced by its digitized copy with probability
        ``p_copy``; and which rows were."""
        sig = self.signals[idx]  # (indexing with an array copies: the rows are the batch's own)
        if self.copies is None or self.copy_signals is None or p_copy <= 0:
            return sig, np.zeros(len(idx), bool)
        which = self.copies[idx]
        use = (which >= 0) & (rng.random(len(idx)) < p_copy)
        if use.any():
            sig[use] = self.copy_signals[which[use]]
        return sig, use

    @property
    def has_superclass(self) -> NDArray[np.bool_]:
        return self.superclass.sum(axis=1) > 0


def load_ptbxl_splits(
    root: str | os.PathLike[str],
    *,
    folds: Mapping[str, Sequence[int]],
    fs: float,
    n_samples: int,
    ptbxl_plus: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    verbose: bool = False,
) -> dict[str, _Split]:
    """Signals and both label sets of PTB-XL records, split by fold.

    Challenge labels come from :class:`ecgscan.data.ptbxl.PTBXL` (``challenge_labels``), the
    superclasses from ``scp_codes`` and ``scp_statements.csv``. ``limit`` keeps only the first
    records of each split (for smoke tests).
    """
    from ..data.labels import labels_to_matrix
    from ..data.ptbxl import PTBXL

    db = PTBXL(root, ptbxl_plus=ptbxl_plus)
    ifs = int(fs) if fs in (100, 500) else 500
    challenge = db.challenge_labels
    wanted = {split: db.ecg_ids(folds=list(f), fs=ifs) for split, f in folds.items()}
    if limit is not None:
        wanted = {split: ids[:limit] for split, ids in wanted.items()}
        every = sorted({e for ids in wanted.values() for e in ids})
        cache = load_signal_cache(root, every, fs=fs, n_samples=n_samples, cache_dir=None)
    else:  # one cache of every available record, whatever the split
        every = db.ecg_ids(fs=ifs)
        cache = load_signal_cache(
            root, every, fs=fs, n_samples=n_samples, cache_dir=cache_dir, verbose=verbose
        )
    out: dict[str, _Split] = {}
    for split, ids in wanted.items():
        rows = cache.index(ids)
        ych = labels_to_matrix([challenge.loc[e] for e in ids])
        codes: list[Mapping[str, float]] = list(db.database.loc[ids, "scp_codes"])
        ysup = superclass_matrix(codes, db.scp_statements)
        yscp = statement_matrix(codes, db.scp_statements)
        out[split] = _Split(np.asarray(ids, dtype=np.int64), cache.signals[rows], ych, ysup, yscp)
    return out


def statement_matrix(
    scp_codes: Sequence[Mapping[str, float]], scp_statements: Any
) -> NDArray[np.float32]:
    """Multi-hot PTB-XL SCP statements (the rows of ``scp_statements.csv``, in its order: 71
    diagnostic, form and rhythm statements in PTB-XL 1.0.3) from ``scp_codes``, whatever the
    likelihood (as for the superclasses); codes not in the table are ignored."""
    index = {str(code): i for i, code in enumerate(scp_statements.index)}
    out = np.zeros((len(scp_codes), len(index)), dtype=np.float32)
    for r, codes in enumerate(scp_codes):
        for code in codes:
            if code in index:
                out[r, index[code]] = 1.0
    return out


# ================================================================================ losses
def _log_probs(
    model: nn.Module, scores: torch.Tensor, head: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p, log p, log(1 - p)), computed stably for the model's activation (its ``gev``
    modules per head, or None for the sigmoid)."""
    gev = getattr(model, "gev", None)
    if gev is None:
        return torch.sigmoid(scores), F.logsigmoid(scores), F.logsigmoid(-scores)
    p = gev[head](scores).clamp(1e-6, 1 - 1e-6)
    return p, torch.log(p), torch.log1p(-p)


def multilabel_loss(
    model: nn.Module,
    scores: torch.Tensor,
    target: torch.Tensor,
    head: str,
    *,
    loss: str = "bce",
    pos_weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    gamma: float = 2.0,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
) -> torch.Tensor:
    """Per-record-and-class loss averaged over the records in ``mask``.

    ``loss``: ``'bce'``; ``'weighted_bce'`` (positives weighted by ``pos_weight``);
    ``'focal'`` (Lin et al. 2017, ``gamma``); ``'asl'`` (asymmetric loss, Ridnik et al. 2021:
    ``gamma_neg``, ``gamma_pos`` and probability shift ``clip`` for negatives).
    """
    p, logp, log1mp = _log_probs(model, scores, head)
    if loss == "bce":
        elem = -(target * logp + (1 - target) * log1mp)
    elif loss == "weighted_bce":
        w = pos_weight if pos_weight is not None else torch.ones_like(scores[0])
        elem = -(w * target * logp + (1 - target) * log1mp)
    elif loss == "focal":
        elem = -(target * (1 - p) ** gamma * logp + (1 - target) * p**gamma * log1mp)
    elif loss == "asl":
        p_neg = (p - clip).clamp(min=0)
        log1m_neg = torch.log((1 - p_neg).clamp(min=1e-6))
        elem = -(target * (1 - p) ** gamma_pos * logp + (1 - target) * p_neg**gamma_neg * log1m_neg)
    else:
        raise EcgscanError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    per_record = elem.mean(dim=1)
    if mask is not None:
        if not bool(mask.any()):
            return per_record.sum() * 0.0
        return per_record[mask].mean()
    return per_record.mean()


# =============================================================================== training
@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in the checkpoint and the ONNX metadata)."""

    model: str = "signal"
    ptbxl: str = ""
    ptbxl_plus: str | None = None
    output: str = "runs/classifier/signal"
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    val_folds: tuple[int, ...] = (8,)
    # signal models without validation folds (trained on them too): the thresholds of this
    # model (.onnx), trained without them, are kept (cross-fitting) and so is the last epoch
    thresholds_from: str | None = None
    # fine-tuning: the run folder of a signal model of the same name (its checkpoint.pt and
    # exported .onnx); training starts from its best weights and keeps its input scaling and
    # architecture (and, without validation folds, its thresholds)
    finetune_from: str | None = None
    fs: float = 100.0
    n_samples: int = 1000
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    loss: str = "bce"
    activation: str | None = None  # None: the registry's default
    superclass_weight: float = 1.0
    # models with an auxiliary 'statements' head (architecture statements > 0): its loss weight
    statement_weight: float = 1.0
    threshold_method: str = "f1"
    augment: bool = True
    seed: int = 0
    threads: int = 1
    limit: int | None = None  # records per split (smoke tests)
    cache_dir: str | None = "runs/cache"
    checkpoint_minutes: float = 5.0
    max_minutes: float | None = None
    arch: dict[str, Any] = field(default_factory=dict)
    # image models: rendered pages (one per record) of the training / validation folds
    pages_train: int = 4500
    pages_val: int = 500
    render_minutes: float | None = None
    # the ensemble: its members (registry names or .onnx files)
    members: tuple[str, ...] = ()
    # signal models: a folder of digitized copies of training records (see
    # ecgscan.train._common.digitized_copies); a training record with a copy is replaced by it
    # (not further augmented) with probability p_digitized
    digitized: str | None = None
    p_digitized: float = 0.5
    # the ensemble: refit only the rate rule (and its labels' thresholds) of this ensemble.json,
    # keeping its members, calibration, weights and other thresholds
    refit_rate: str | None = None
    # the ensemble: fit beat trees on the training folds and their stacking onto this
    # ensemble.json on the validation folds, keeping everything else (ecgscan.train.beat_trees)
    fit_trees: str | None = None

    def check(self) -> None:
        get_model_spec(self.model)
        if self.loss not in LOSSES:
            raise EcgscanError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise EcgscanError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.threshold_method not in ("f1", "youden"):
            raise EcgscanError(
                f"threshold method must be 'f1' or 'youden', got {self.threshold_method!r}"
            )
        if set(self.train_folds) & set(self.val_folds):
            raise EcgscanError("train and validation folds overlap; choose disjoint folds")
        if self.finetune_from is not None:
            src = Path(self.finetune_from)
            if get_model_spec(self.model).input != "signal":
                raise EcgscanError("finetune_from: only signal models can be fine-tuned")
            if not (src / "checkpoint.pt").is_file() or not (src / f"{self.model}.onnx").is_file():
                raise EcgscanError(
                    f"finetune_from: {str(src)!r} is not a training run of {self.model!r}; give "
                    f"the output folder of its training (with checkpoint.pt and {self.model}.onnx)"
                )
            if self.thresholds_from is None and not self.val_folds:
                self.thresholds_from = str(src / f"{self.model}.onnx")
        if not self.val_folds and (
            self.thresholds_from is None or get_model_spec(self.model).input != "signal"
        ):
            raise EcgscanError(
                "no validation folds: give validation folds (--val-folds 8), or for a signal "
                "model a model trained without those folds whose thresholds it keeps: "
                "--finetune-from RUN_DIR or --thresholds-from MODEL.onnx (in Python "
                "finetune_from= / thresholds_from=)"
            )
        if self.thresholds_from is not None and not Path(self.thresholds_from).is_file():
            raise EcgscanError(
                f"thresholds_from: model file {self.thresholds_from!r} not found; give the "
                ".onnx file whose thresholds the new model keeps"
            )
        if not self.ptbxl or not (Path(self.ptbxl) / "ptbxl_database.csv").is_file():
            raise EcgscanError(
                f"PTB-XL folder {self.ptbxl!r} has no ptbxl_database.csv; give the unpacked "
                "PTB-XL folder with --ptbxl"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise EcgscanError("epochs and batch size must be at least 1")
        if self.digitized is not None:
            if get_model_spec(self.model).input != "signal":
                raise EcgscanError("digitized: only signal models train on digitized copies")
            if not any(Path(self.digitized).glob("digitized-*.ecg_ids.npy")):
                raise EcgscanError(
                    f"digitized: {self.digitized!r} holds no digitized copies; make them with "
                    "`ecgscan train copies -o FOLDER` or leave the option out"
                )
            if not 0.0 <= self.p_digitized <= 1.0:
                raise EcgscanError(f"p_digitized must be in [0, 1], got {self.p_digitized}")
        ensemble_files = (
            ("refit_rate", self.refit_rate, "whose rate rule is refitted"),
            ("fit_trees", self.fit_trees, "the beat trees are stacked onto"),
        )
        for option, path, role in ensemble_files:
            if path is None:
                continue
            if get_model_spec(self.model).input != "ensemble":
                raise EcgscanError(f"{option}: only an ensemble has a rate rule or beat trees")
            if not Path(path).is_file():
                raise EcgscanError(
                    f"{option}: ensemble file {path!r} not found; give the ensemble.json {role}"
                )
        if self.refit_rate is not None and self.fit_trees is not None:
            raise EcgscanError("give either --refit-rate or --fit-trees, not both")


@dataclass
class TrainResult:
    """What :func:`train_classifier` produced."""

    onnx: Path
    card: Path
    config: dict[str, Any]
    val_metrics: dict[str, Any]
    minutes: float


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _predict(
    model: SignalResNet | BeatNet | ImageResNet,
    encoded: NDArray[np.float32],
    batch_size: int = 256,
) -> dict[str, NDArray[np.float32]]:
    model.eval()
    outs: dict[str, list[NDArray[np.float32]]] = {k: [] for k in model.heads}
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            scores = model(torch.from_numpy(encoded[i : i + batch_size]))
            probs = model.probabilities({k: scores[k] for k in model.heads})
            for k, v in probs.items():
                outs[k].append(v.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def _nanmean(values: NDArray[np.float64]) -> float:
    """Mean of the finite values (NaN, without a warning, when there is none)."""
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _evaluate(probs: Mapping[str, NDArray[np.float32]], split: _Split) -> dict[str, Any]:
    has = split.has_superclass
    ch = per_class_auroc(split.challenge, probs["challenge"])
    sup = per_class_auroc(split.superclass[has], probs["superclass"][has])
    return {
        "challenge_auroc": _nanmean(ch),
        "superclass_auroc": _nanmean(sup),
        "challenge_auroc_per_class": dict(zip(CHALLENGE_LABELS, map(float, ch), strict=True)),
        "superclass_auroc_per_class": dict(zip(SUPERCLASSES, map(float, sup), strict=True)),
    }


def _f1_per_class(y: NDArray[np.float32], pred: NDArray[np.bool_]) -> NDArray[np.float64]:
    yb = y.astype(bool)
    tp = (yb & pred).sum(0)
    denom = yb.sum(0) + pred.sum(0)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def _start_run(config: TrainConfig) -> tuple[float, Path, Path]:
    """Threads, torch seed and output folder of a run: ``(start, output dir, checkpoint)``."""
    set_threads(config.threads)
    torch.manual_seed(config.seed)
    start = time.monotonic()
    out_dir = Path(config.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    return start, out_dir, out_dir / "checkpoint.pt"


def _head_config(
    config: TrainConfig,
    arch: Mapping[str, Any],
    thresholds: NDArray[np.float64],
    sup_thresholds: NDArray[np.float64],
) -> dict[str, Any]:
    """The heads, thresholds and architecture entries of an exported model's config."""
    return {
        "heads": {"challenge": list(CHALLENGE_LABELS), "superclass": list(SUPERCLASSES)},
        "thresholds": _rounded({"challenge": thresholds, "superclass": sup_thresholds}),
        "threshold_method": config.threshold_method,
        "architecture": arch,
    }


def _run_info(
    config: TrainConfig,
    history: Sequence[Mapping[str, Any]],
    best: Mapping[str, Any],
    minutes: float,
    n_params: int,
) -> dict[str, Any]:
    """The run's entries (epochs, loss, seed, commit, time, size) of the ``training`` config."""
    return {
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "loss": config.loss,
        "augment": config.augment,
        **(
            {}
            if config.digitized is None
            else {"digitized": {"folder": Path(config.digitized).name, "p": config.p_digitized}}
        ),
        "seed": config.seed,
        "commit": _git_commit(),
        "minutes": round(minutes, 1),
        "parameters": n_params,
    }


def _finish_run(
    onnx_path: Path,
    history: list[dict[str, Any]],
    val_metrics: dict[str, Any],
    onnx_config: dict[str, Any],
    minutes: float,
    config: TrainConfig,
    *,
    write_card: Callable[[Path, Mapping[str, Any], Mapping[str, Any], TrainConfig], Path],
    log: Callable[[str], None],
) -> TrainResult:
    """Write ``history.json`` and the model card next to the exported model; the result."""
    summary = {"history": history, "val": val_metrics, "config": onnx_config}
    (onnx_path.parent / "history.json").write_text(json.dumps(summary, indent=1))
    card = write_card(onnx_path.parent / "MODEL_CARD.md", onnx_config, val_metrics, config)
    log(f"wrote {onnx_path} and {card} ({minutes:.1f} min)")
    return TrainResult(onnx_path, card, onnx_config, val_metrics, minutes)


def heads_loss(
    model: nn.Module,
    scores: Mapping[str, torch.Tensor],
    split: _Split,
    idx: NDArray[np.int64],
    config: TrainConfig,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Both label heads' loss (:func:`multilabel_loss`) on the records ``idx`` of ``split``
    (the superclass head on the records that have a superclass), plus, for a model with an
    auxiliary ``'statements'`` head, ``config.statement_weight`` times its loss."""
    loss = multilabel_loss(model, scores["challenge"], torch.from_numpy(split.challenge[idx]),
                           "challenge", loss=config.loss, pos_weight=pos_weight)  # fmt: skip
    loss = loss + config.superclass_weight * multilabel_loss(
        model, scores["superclass"], torch.from_numpy(split.superclass[idx]), "superclass",
        loss=config.loss, mask=torch.from_numpy(split.has_superclass[idx]),
    )  # fmt: skip
    if "statements" in scores:
        if split.statements is None or split.statements.shape[1] != scores["statements"].shape[1]:
            raise EcgscanError(
                f"the model's statements head has {scores['statements'].shape[1]} outputs but "
                "the data has no statement labels of that size; set the architecture's "
                "statements to the number of rows of scp_statements.csv"
            )
        loss = loss + config.statement_weight * multilabel_loss(
            model, scores["statements"], torch.from_numpy(split.statements[idx]), "statements",
            loss=config.loss,
        )  # fmt: skip
    return loss


def _fit(
    model: nn.Module,
    train: _Split,
    config: TrainConfig,
    *,
    batch_input: Callable[[NDArray[np.int64], np.random.Generator], torch.Tensor] | None = None,
    batch_loss: Callable[
        [NDArray[np.int64], np.random.Generator], tuple[torch.Tensor, dict[str, float]]
    ]
    | None = None,
    evaluate: Callable[[], dict[str, Any]] | None,
    ckpt_path: Path,
    start: float,
    resume: bool,
    log: Callable[[str], None],
    pos_weight: torch.Tensor | None = None,
    log_no_checkpoint: bool = False,
    log_metrics: Sequence[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The training loop shared by the signal, image and multi-task models.

    AdamW with a one-cycle schedule over ``config.epochs``; ``batch_input(idx, rng)`` turns
    the rows ``idx`` of ``train`` (one batch) into the model's input (augmenting with ``rng``),
    whose loss is :func:`heads_loss`; or ``batch_loss(idx, rng)`` gives a batch's whole loss
    and further named parts of it to log (a multi-task model's trace loss). ``evaluate()``
    scores the model on the validation data (``None``: no validation data; the last epoch is
    kept); ``log_metrics`` names further validation metrics to log. Checkpoints go to
    ``ckpt_path`` every ``config.checkpoint_minutes`` and after every epoch; ``resume=True``
    continues from there (with another ``config.epochs``, the one-cycle schedule is re-planned
    to end there). The best epoch (mean of both heads' validation AUROC) is loaded
    into ``model`` at the end, which is left in eval mode.

    Returns
    -------
    best : dict
        ``score``, ``epoch``, ``metrics`` and ``state`` of the best epoch.
    history : list of dict
        Loss and validation AUROCs of every epoch.
    """
    steps_per_epoch = math.ceil(len(train.ecg_ids) / config.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.3
    )
    rng = np.random.default_rng(config.seed)
    epoch, step_in_epoch = 0, 0
    best: dict[str, Any] = {"score": -np.inf, "epoch": -1, "state": None, "metrics": None}
    history: list[dict[str, Any]] = []
    order = rng.permutation(len(train.ecg_ids))
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        plan = {k: sched.state_dict()[k] for k in ("total_steps", "_schedule_phases")}
        done_steps = ck["epoch"] * steps_per_epoch + ck["step"]
        if ck["sched"]["total_steps"] != plan["total_steps"]:
            # resumed with another number of epochs: the one-cycle schedule goes on from here
            # to the new end (e.g. a run that would not finish in time)
            if plan["total_steps"] <= done_steps:
                raise EcgscanError(
                    f"resume: epochs={config.epochs} but {done_steps / steps_per_epoch:.1f} "
                    "epochs are already done; give more epochs"
                )
            log(f"schedule re-planned from {ck['sched']['total_steps'] // steps_per_epoch} to "
                f"{config.epochs} epochs at step {done_steps}")  # fmt: skip
            sched.load_state_dict({**ck["sched"], **plan})
        else:
            sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        epoch, step_in_epoch, order = ck["epoch"], ck["step"], ck["order"]
        best, history = ck["best"], ck["history"]
        log(f"resumed from {ckpt_path} at epoch {epoch + 1}, step {step_in_epoch}")
    elif resume and log_no_checkpoint:
        log(f"no checkpoint at {ckpt_path}; starting afresh")

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "epoch": epoch, "step": step_in_epoch,
                    "order": order, "best": best, "history": history,
                    "config": dataclasses.asdict(config)}, tmp)  # fmt: skip
        tmp.replace(ckpt_path)

    last_ckpt = time.monotonic()
    stopped_early = False
    while epoch < config.epochs:
        model.train()
        t0, losses = time.monotonic(), []
        parts: dict[str, list[float]] = {}
        for step in range(step_in_epoch, steps_per_epoch):
            idx = np.sort(order[step * config.batch_size : (step + 1) * config.batch_size])
            if batch_loss is not None:
                loss, named = batch_loss(idx, rng)
                for k, v in named.items():
                    parts.setdefault(k, []).append(v)
            else:
                assert batch_input is not None
                scores = model(batch_input(idx, rng))
                loss = heads_loss(model, scores, train, idx, config, pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step_in_epoch = step + 1
            if time.monotonic() - last_ckpt > 60 * config.checkpoint_minutes:
                save_checkpoint()
                last_ckpt = time.monotonic()
            if config.max_minutes and time.monotonic() - start > 60 * config.max_minutes:
                stopped_early = True
                break
        if stopped_early:
            log(f"time limit of {config.max_minutes} min reached in epoch {epoch + 1}")
            break
        means = {k: float(np.mean(v)) for k, v in parts.items()}
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **means})
        done = "".join(f" ({k} {v:.4f})" for k, v in means.items())
        if evaluate is None:  # no validation data: the last epoch is the best
            score, metrics = float(epoch), None
        else:
            metrics = evaluate()
            score = 0.5 * (metrics["challenge_auroc"] + metrics["superclass_auroc"])
            history[-1].update({k: v for k, v in metrics.items() if not k.endswith("per_class")})
            done += (f", val AUROC challenge {metrics['challenge_auroc']:.4f}, "
                     f"superclass {metrics['superclass_auroc']:.4f}")  # fmt: skip
            done += "".join(f", {k} {metrics[k]:.3f}" for k in log_metrics)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f}{done} "
            f"({time.monotonic() - t0:.0f} s)")  # fmt: skip
        if score > best["score"]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = {"score": score, "epoch": epoch + 1, "metrics": metrics, "state": state}
        epoch, step_in_epoch = epoch + 1, 0
        order = rng.permutation(len(train.ecg_ids))
        save_checkpoint()
        last_ckpt = time.monotonic()

    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return best, history


def train_classifier(
    config: TrainConfig, *, resume: bool = False, log: Callable[[str], None] = print
) -> TrainResult:
    """Train ``config.model`` on PTB-XL, pick the epoch and thresholds on the validation folds,
    and export ONNX + a model card into ``config.output``.

    Checkpoints (model, optimiser, schedule, RNG, best state) are written to
    ``<output>/checkpoint.pt`` every ``checkpoint_minutes`` and at the end of every epoch;
    ``resume=True`` continues from there.
    """
    config.check()
    kind = get_model_spec(config.model).input
    if kind == "image":
        return _train_image(config, resume=resume, log=log)
    if kind == "ensemble":
        if config.refit_rate is not None:
            return refit_ensemble_rate(config, log=log)
        if config.fit_trees is not None:
            from .beat_trees import fit_ensemble_trees

            return fit_ensemble_trees(config, log=log)
        return fit_ensemble_model(config, log=log)
    start, out_dir, ckpt_path = _start_run(config)

    log(
        f"loading PTB-XL folds {list(config.train_folds)} (train) and "
        f"{list(config.val_folds)} (val)"
    )
    folds = {"train": config.train_folds, "val": config.val_folds}
    splits = load_ptbxl_splits(
        config.ptbxl,
        folds={k: v for k, v in folds.items() if v},
        fs=config.fs,
        n_samples=config.n_samples,
        ptbxl_plus=config.ptbxl_plus,
        cache_dir=config.cache_dir,
        limit=config.limit,
        verbose=True,
    )
    train, val = splits["train"], splits.get("val")
    log(f"  {len(train.ecg_ids)} training and {0 if val is None else len(val.ecg_ids)} "
        f"validation records ({time.monotonic() - start:.0f} s)")  # fmt: skip
    if config.digitized is not None:
        _attach_copies(train, config)
        n_copies = int((train.copies >= 0).sum()) if train.copies is not None else 0
        log(f"  {n_copies} of them with a digitized copy (used with probability "
            f"{config.p_digitized})")  # fmt: skip

    source = None if config.finetune_from is None else _finetune_source(config)
    if source is None:
        # per-lead standardisation from the training signals
        mean = np.nanmean(train.signals, axis=(0, 2)).astype(np.float64)
        std = np.nanstd(train.signals, axis=(0, 2)).astype(np.float64)
        std = np.where(std > 1e-6, std, 1.0)
        mean_l, std_l = [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
        spec = get_model_spec(config.model)
        arch = {**dict(spec.defaults), **config.arch}
        if config.activation is not None:
            arch["activation"] = config.activation
        for key in ("widths", "blocks"):
            if key in arch:
                arch[key] = list(arch[key])
        if arch.get("encoding") == "beats":  # the beats' length follows from fs
            arch["samples"] = beat_samples(config.fs)
    else:  # the fine-tuned model's input scaling and architecture
        mean_l, std_l = list(source[0]["mean"]), list(source[0]["std"])
        arch = dict(source[0]["architecture"])
        log(f"fine-tuning from {config.finetune_from} (trained on folds "
            f"{source[0]['training']['train_folds']}, best epoch "
            f"{source[0]['training']['best_epoch']})")  # fmt: skip
    model = create_model(config.model, **arch)
    assert isinstance(model, SignalResNet | BeatNet)
    if source is not None:
        model.load_state_dict(source[1])
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {config.model!r}: {n_params / 1e6:.2f} M parameters, {arch}")

    prevalence = train.challenge.mean(0)
    pos_weight = torch.tensor(
        np.clip(np.sqrt((1 - prevalence) / np.maximum(prevalence, 1e-4)), 1.0, 10.0),
        dtype=torch.float32,
    )
    aug_cfg = AugmentConfig()

    window = int(arch.get("window", 0) or 0)
    encoding = {"encoding": arch.get("encoding", "signals"), "fs": config.fs, "mean": mean_l,
                "std": std_l}  # fmt: skip
    encode = encoder(encoding)

    def batch_input(idx: NDArray[np.int64], rng: np.random.Generator) -> torch.Tensor:
        sig, copied = train.batch(idx, rng, p_copy=config.p_digitized)
        if config.augment and copied.any():  # digitized copies as they are: real errors
            sig[~copied] = augment_batch(sig[~copied], rng, fs=config.fs, config=aug_cfg)
        elif config.augment:
            sig = augment_batch(sig, rng, fs=config.fs, config=aug_cfg)
        if 0 < window < sig.shape[-1]:  # a sliding-window model: one random crop per record
            first = rng.integers(0, sig.shape[-1] - window + 1, size=len(sig))
            sig = sig[np.arange(len(sig))[:, None, None], np.arange(sig.shape[1])[None, :, None],
                      first[:, None, None] + np.arange(window)[None, None, :]]  # fmt: skip
        return torch.from_numpy(encode(sig))

    val_x = encode(val.signals if val is not None else train.signals[:8])  # [:8]: ONNX check
    best, history = _fit(
        model,
        train,
        config,
        batch_input=batch_input,
        evaluate=None if val is None else lambda: _evaluate(_predict(model, val_x), val),
        pos_weight=pos_weight,
        ckpt_path=ckpt_path,
        start=start,
        resume=resume,
        log=log,
        log_no_checkpoint=True,
    )
    if val is None:  # cross-fitting: the thresholds of a model trained without these folds
        from ..classify._predict import SignalClassifier

        kept = SignalClassifier(str(config.thresholds_from)).thresholds
        thresholds, sup_thresholds = kept["challenge"], kept["superclass"]
        val_metrics: dict[str, Any] = {"epoch": best["epoch"]}
    else:
        thresholds, sup_thresholds, val_metrics = _validate(
            model, val, val_x, best, config, encode=encode
        )
    minutes = (time.monotonic() - start) / 60
    onnx_config = {
        "format": 1,
        "model": config.model,
        "input": "signal",
        **({"encoding": "beats"} if encoding["encoding"] == "beats" else {}),
        "fs": config.fs,
        "duration": config.n_samples / config.fs,
        "leads": list(LEADS),
        "mean": mean_l,
        "std": std_l,
        **_head_config(config, arch, thresholds, sup_thresholds),
        "training": {
            "data": "PTB-XL 1.0.3 (100 Hz)",
            "train_folds": list(config.train_folds),
            "val_folds": list(config.val_folds),
            **_run_info(config, history, best, minutes, n_params),
        },
    }
    if train.copies is not None:
        onnx_config["training"]["digitized"]["copies"] = int((train.copies >= 0).sum())
    if config.thresholds_from is not None and val is None:
        onnx_config["training"]["thresholds_from"] = Path(config.thresholds_from).name
    if source is not None:
        onnx_config["training"]["finetuned_from"] = {
            k: source[0]["training"][k]
            for k in ("train_folds", "val_folds", "commit", "seed", "epochs_run", "best_epoch",
                      "minutes")
            if k in source[0]["training"]
        }  # fmt: skip
    onnx_path = export_onnx(model, out_dir / f"{config.model}.onnx", config=onnx_config,
                            input_shape=(1, *val_x.shape[1:]))  # fmt: skip
    _check_onnx(model, onnx_path, val_x[:8])
    return _finish_run(
        onnx_path,
        history,
        val_metrics,
        onnx_config,
        minutes,
        config,
        write_card=write_model_card,
        log=log,
    )


def _attach_copies(train: _Split, config: TrainConfig) -> None:
    """Give ``train`` the digitized copies of its records found in ``config.digitized``."""
    from ._common import load_digitized_copies

    assert config.digitized is not None
    rows, signals = load_digitized_copies(config.digitized, train.ecg_ids)
    if len(rows) and signals.shape[-1] != train.signals.shape[-1]:
        raise EcgscanError(
            f"digitized: the copies in {config.digitized!r} have {signals.shape[-1]} samples, "
            f"the model takes {train.signals.shape[-1]}; make copies at fs={config.fs} and "
            f"n_samples={config.n_samples}"
        )
    copies = np.full(len(train.ecg_ids), -1, np.int64)
    copies[rows] = np.arange(len(rows))
    train.copies, train.copy_signals = copies, signals


def _finetune_source(config: TrainConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The exported config and the best-epoch weights of the run ``config.finetune_from``."""
    from ..classify._predict import SignalClassifier

    src = Path(str(config.finetune_from))
    exported = SignalClassifier(str(src / f"{config.model}.onnx")).config
    ckpt = torch.load(src / "checkpoint.pt", map_location="cpu", weights_only=False)
    state = ckpt["best"]["state"]
    if state is None:
        raise EcgscanError(f"finetune_from: {str(src)!r} holds no finished epoch to start from")
    return exported, state


def _validate(
    model: SignalResNet | BeatNet,
    val: _Split,
    val_x: NDArray[np.float32],
    best: Mapping[str, Any],
    config: TrainConfig,
    *,
    encode: Callable[[NDArray[Any]], NDArray[np.float32]],
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Thresholds of both heads (on the validation signals, clean + one digitization-like
    copy) and the validation metrics of a trained signal model."""
    val_aug = augment_batch(
        val.signals, np.random.default_rng(12345), fs=config.fs, config=AugmentConfig()
    )
    p_clean = _predict(model, val_x)
    p_aug = _predict(model, encode(val_aug))
    y_both = np.concatenate([val.challenge, val.challenge])
    p_both = np.concatenate([p_clean["challenge"], p_aug["challenge"]])
    thresholds = choose_thresholds(y_both, p_both, method=config.threshold_method)
    has = np.concatenate([val.has_superclass, val.has_superclass])
    sup_thresholds = choose_thresholds(
        np.concatenate([val.superclass, val.superclass])[has],
        np.concatenate([p_clean["superclass"], p_aug["superclass"]])[has],
        method=config.threshold_method,
    )

    def f1(p: Mapping[str, NDArray[np.float32]]) -> dict[str, float]:
        per_class = _f1_per_class(val.challenge, p["challenge"] >= thresholds)
        return dict(zip(CHALLENGE_LABELS, map(float, per_class), strict=True))

    val_metrics = {
        "epoch": best["epoch"],
        "clean": _evaluate(p_clean, val),
        "augmented": _evaluate(p_aug, val),
        "challenge_f1_clean": f1(p_clean),
        "challenge_f1_augmented": f1(p_aug),
    }
    return thresholds, sup_thresholds, val_metrics


def _fold_text(folds: Sequence[int]) -> str:
    """Folds as the command line takes them: ``1-8`` for a range, else ``1,3,5``."""
    f = sorted(folds)
    if f and f == list(range(f[0], f[-1] + 1)) and len(f) > 1:
        return f"{f[0]}-{f[-1]}"
    return ",".join(map(str, f))


def _check_onnx(
    model: SignalResNet | BeatNet | ImageResNet,
    path: Path,
    x: NDArray[np.float32],
    *,
    input_name: str = "signal",
) -> None:
    """Raise if onnxruntime's output differs from torch's on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {input_name: x})
    want = _predict(model, x)
    for name, value in zip(model.heads, got, strict=True):
        err = float(np.max(np.abs(value - want[name])))
        if err > 1e-4:
            raise EcgscanError(f"ONNX export of head {name!r} differs from torch by {err:.2e}")


def _input_text(onnx_config: Mapping[str, Any]) -> str:
    """How long the inputs are in training and at inference (a model card's line)."""
    arch, fs = onnx_config.get("architecture", {}), float(onnx_config["fs"])
    window = int(arch.get("window", 0) or 0)
    if onnx_config.get("encoding") == "beats":
        return (
            f"{onnx_config['duration']:g} s in training, any length at inference; the network "
            f"reads each lead's median beat ({arch.get('samples', '?')} samples: 0.25 s before "
            "to 0.45 s after the QRS, see `ecgscan.data.beats`) with the leads' masks and six "
            "rhythm measures (`encode_beats`)"
        )
    if not window:
        return f"{onnx_config['duration']:g} s in training, any length at inference"
    stride = int(arch.get("window_stride", 0) or 0) or max(1, window // 2)
    return (
        f"random {window / fs:g}-s crops of the {onnx_config['duration']:g}-s records in "
        f"training; at inference any length (>= {window / fs:g} s), cut into {window / fs:g}-s "
        f"windows {stride / fs:g} s apart whose probabilities are averaged"
    )


def write_model_card(
    path: Path, onnx_config: Mapping[str, Any], val_metrics: Mapping[str, Any], config: TrainConfig
) -> Path:
    """A Markdown model card: data, command, commit, validation metrics, thresholds."""
    t = onnx_config["training"]
    kept = t.get("thresholds_from")
    tuned = t.get("finetuned_from")
    lines = [
        f"# ecgscan classifier `{config.model}`",
        "",
        get_model_spec(config.model).summary + ".",
        "",
        "## Training",
        "",
        f"- data: {t['data']}; training folds {t['train_folds']}, "
        + (
            f"validation (epoch choice and thresholds) folds {t['val_folds']}"
            if not kept
            else "no validation folds (the last epoch is kept)"
        )
        + "; fold 9 is reserved for `benchmarks/classify.py`",
        f"- command: `ecgscan train classifier --model {config.model} --ptbxl PTBXL_DIR "
        + ("--ptbxl-plus PTBXL_PLUS_DIR " if config.ptbxl_plus else "")
        + f"--epochs {config.epochs} --loss {config.loss}"
        + (f" --activation {config.activation}" if config.activation else "")
        + (f" --seed {config.seed}" if config.seed else "")
        + (f" --lr {config.lr:g}" if config.lr != TrainConfig.lr else "")
        + (f" --train-folds {_fold_text(config.train_folds)}" if kept else "")
        + (" --val-folds none" if kept else "")
        + (f" --finetune-from {config.finetune_from}" if config.finetune_from else "")
        + (f" --thresholds-from {config.thresholds_from}" if kept and not tuned else "")
        + (f" --digitized {config.digitized}" if config.digitized else "")
        + (
            f" --p-digitized {config.p_digitized:g}"
            if config.digitized and config.p_digitized != TrainConfig.p_digitized
            else ""
        )
        + "`",
        f"- commit: {t['commit']}; seed {t['seed']}; {t['parameters'] / 1e6:.2f} M parameters; "
        f"{t['epochs_run']} epochs in {t['minutes']} min on one CPU thread; "
        f"best epoch {t['best_epoch']}",
        *(
            [
                f"- fine-tuned from the model trained on folds {tuned['train_folds']} (validation "
                f"folds {tuned['val_folds']}, best epoch {tuned.get('best_epoch')}, commit "
                f"{tuned.get('commit')}): its weights, input scaling and architecture"
            ]
            if tuned
            else []
        ),
        f"- input: 12 leads at {onnx_config['fs']:g} Hz (+ 12 known-sample masks), "
        + _input_text(onnx_config),
        f"- augmentation imitating digitization: {'yes' if t['augment'] else 'no'}",
        *(
            [
                f"- digitized copies: {t['digitized'].get('copies', 0)} training records also "
                "as `ecgscan.digitize` reads them back from a page rendered in a random style "
                f"(`ecgscan train copies`), used in their place with probability "
                f"{t['digitized']['p']:g}"
            ]
            if "digitized" in t
            else []
        ),
        f"- thresholds: per class, {onnx_config['threshold_method']} on the validation folds "
        "(clean + augmented copy)"
        + (f", those of `{kept}` (trained without the folds above; cross-fitting)" if kept else ""),
        "",
    ]
    if "clean" not in val_metrics:  # no validation folds
        path.write_text("\n".join(lines))
        return path
    lines += [
        f"## Validation (folds {t['val_folds']}, best epoch)",
        "",
        "| label | AUROC clean | AUROC augmented | F1 clean | F1 augmented | threshold |",
        "|---|---|---|---|---|---|",
    ]
    clean, aug = val_metrics["clean"], val_metrics["augmented"]
    for i, name in enumerate(CHALLENGE_LABELS):
        lines.append(
            f"| {name} | {clean['challenge_auroc_per_class'][name]:.3f} | "
            f"{aug['challenge_auroc_per_class'][name]:.3f} | "
            f"{val_metrics['challenge_f1_clean'][name]:.3f} | "
            f"{val_metrics['challenge_f1_augmented'][name]:.3f} | "
            f"{onnx_config['thresholds']['challenge'][i]:.3f} |"
        )
    lines += [
        f"| **macro** | {clean['challenge_auroc']:.3f} | {aug['challenge_auroc']:.3f} | "
        f"{np.nanmean(list(val_metrics['challenge_f1_clean'].values())):.3f} | "
        f"{np.nanmean(list(val_metrics['challenge_f1_augmented'].values())):.3f} | |",
        "",
        f"PTB-XL superclass macro AUROC: clean {clean['superclass_auroc']:.3f}, augmented "
        f"{aug['superclass_auroc']:.3f}.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


# ========================================================================= image training
def _augment_pages(x: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Small random affine warps (scale, shift, rotation), contrast, brightness and noise."""
    import cv2

    out = np.empty_like(x)
    h, w = x.shape[1:]
    for i, img in enumerate(x):
        scale = rng.uniform(0.9, 1.1)
        angle = rng.uniform(-3.0, 3.0)
        m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale), dtype=np.float64)
        m[:, 2] += rng.uniform(-0.05, 0.05, 2) * np.array([w, h], dtype=np.float64)
        warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=255)  # fmt: skip
        f = warped.astype(np.float32)
        f = (f - 128.0) * rng.uniform(0.7, 1.3) + 128.0 + rng.uniform(-30, 30)
        f += rng.normal(0.0, rng.uniform(0.0, 8.0), f.shape).astype(np.float32)
        out[i] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def _page_records(config: TrainConfig) -> tuple[Any, NDArray[Any], NDArray[np.bool_]]:
    """The PTB-XL database and the records whose pages image models train on (``is_val``
    marks those of the validation folds)."""
    from ..data.ptbxl import PTBXL
    from ._common import page_ecg_ids

    db = PTBXL(config.ptbxl, ptbxl_plus=config.ptbxl_plus)
    ids, is_val = page_ecg_ids(
        db.ecg_ids(folds=list(config.train_folds), fs=100),
        db.ecg_ids(folds=list(config.val_folds), fs=100),
        n_train=config.pages_train if config.limit is None else config.limit,
        n_val=config.pages_val if config.limit is None else max(2, config.limit // 4),
    )
    return db, ids, is_val


def _page_splits(
    db: Any, ids: NDArray[Any], is_val: NDArray[np.bool_], pages: NDArray[np.uint8]
) -> dict[str, _Split]:
    """Pages (as ``_Split.signals``) with both label sets of their records, by split."""
    from ..data.labels import labels_to_matrix

    challenge = db.challenge_labels
    out: dict[str, _Split] = {}
    for split, sel in (("train", ~is_val), ("val", is_val)):
        sid = ids[sel]
        ych = labels_to_matrix([challenge.loc[int(e)] for e in sid])
        ysup = superclass_matrix(list(db.database.loc[sid, "scp_codes"]), db.scp_statements)
        out[split] = _Split(sid, pages[sel], ych, ysup)
    return out


def _load_page_splits(
    config: TrainConfig, size: tuple[int, int], log: Callable[[str], None]
) -> dict[str, _Split]:
    """Rendered-page thumbnails (as ``_Split.signals``) with both label sets, by split."""
    import cv2

    from ._common import render_page_cache

    db, ids, is_val = _page_records(config)
    pages, done = render_page_cache(
        config.ptbxl,
        ids,
        cache_dir=None if config.limit is not None else config.cache_dir,
        max_minutes=config.render_minutes,
        verbose=True,
    )
    if done < len(ids):
        log(f"  only {done} of {len(ids)} pages rendered (time limit); training on those")
    ids, is_val, pages = ids[:done], is_val[:done], pages[:done]
    if tuple(pages.shape[1:]) != size:
        pages = np.stack([cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                          for p in pages])  # fmt: skip
    return _page_splits(db, ids, is_val, pages)


def _train_image(config: TrainConfig, *, resume: bool, log: Callable[[str], None]) -> TrainResult:
    """:func:`train_classifier` for the image models (rendered pages instead of signals)."""
    from ..classify._image import encode_pages

    spec = get_model_spec(config.model)
    if spec.builder.startswith("ecgscan.train.multitask:"):  # pages + trace masks
        from .multitask import train_multitask

        result: TrainResult = train_multitask(config, resume=resume, log=log)
        return result
    start, out_dir, ckpt_path = _start_run(config)
    arch = {**dict(spec.defaults), **config.arch}
    size = (int(arch["height"]), int(arch["width"]))
    arch["widths"], arch["blocks"] = list(arch["widths"]), list(arch["blocks"])
    log(f"rendering/loading pages of folds {list(config.train_folds)} (train) and "
        f"{list(config.val_folds)} (val)")  # fmt: skip
    splits = _load_page_splits(config, size, log)
    train, val = splits["train"], splits["val"]
    log(f"  {len(train.ecg_ids)} training and {len(val.ecg_ids)} validation pages "
        f"({time.monotonic() - start:.0f} s)")  # fmt: skip
    model = create_model(config.model, **arch)
    assert isinstance(model, ImageResNet)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {config.model!r}: {n_params / 1e6:.2f} M parameters, {arch}, input {size}")
    val_x = encode_pages(val.signals)

    def batch_input(idx: NDArray[np.int64], rng: np.random.Generator) -> torch.Tensor:
        pages = train.signals[idx]
        if config.augment:
            pages = _augment_pages(pages, rng)
        return torch.from_numpy(encode_pages(pages))

    best, history = _fit(
        model,
        train,
        config,
        batch_input=batch_input,
        evaluate=lambda: _evaluate(_predict(model, val_x, batch_size=32), val),
        ckpt_path=ckpt_path,
        start=start,
        resume=resume,
        log=log,
    )
    p_val = _predict(model, val_x, batch_size=32)
    thresholds = choose_thresholds(
        val.challenge, p_val["challenge"], method=config.threshold_method
    )
    has = val.has_superclass
    sup_thresholds = choose_thresholds(val.superclass[has], p_val["superclass"][has],
                                       method=config.threshold_method)  # fmt: skip
    f1 = _f1_per_class(val.challenge, p_val["challenge"] >= thresholds)
    val_metrics = {
        "epoch": best["epoch"],
        "clean": _evaluate(p_val, val),
        "challenge_f1": dict(zip(CHALLENGE_LABELS, map(float, f1), strict=True)),
        "n_val": len(val.ecg_ids),
        "n_train": len(train.ecg_ids),
    }
    minutes = (time.monotonic() - start) / 60
    onnx_config = {
        "format": 1,
        "model": config.model,
        "input": "image",
        "size": list(size),
        **_head_config(config, arch, thresholds, sup_thresholds),
        "training": {
            "data": "pages rendered by ecgscan.render (style 'random', 72-96 DPI) of PTB-XL "
            "1.0.3 records (100 Hz)",
            "train_folds": list(config.train_folds),
            "val_folds": list(config.val_folds),
            "pages_train": len(train.ecg_ids),
            "pages_val": len(val.ecg_ids),
            **_run_info(config, history, best, minutes, n_params),
        },
    }
    onnx_path = export_onnx(model, out_dir / f"{config.model}.onnx", config=onnx_config,
                            input_shape=(1, 1, *size), input_name="image")  # fmt: skip
    _check_onnx(model, onnx_path, val_x[:4], input_name="image")
    return _finish_run(
        onnx_path,
        history,
        val_metrics,
        onnx_config,
        minutes,
        config,
        write_card=write_image_model_card,
        log=log,
    )


def write_image_model_card(
    path: Path, onnx_config: Mapping[str, Any], val_metrics: Mapping[str, Any], config: TrainConfig
) -> Path:
    """The Markdown model card of an image model."""
    t = onnx_config["training"]
    clean = val_metrics["clean"]
    lines = [
        f"# ecgscan classifier `{config.model}`",
        "",
        get_model_spec(config.model).summary + ".",
        "",
        "## Training",
        "",
        f"- data: {t['data']}; {t['pages_train']} pages of training folds {t['train_folds']}, "
        f"{t['pages_val']} pages of validation folds {t['val_folds']} (epoch choice and "
        "thresholds); fold 9 is reserved for `benchmarks/classify.py`",
        f"- command: `ecgscan train classifier --model {config.model} --ptbxl PTBXL_DIR "
        + ("--ptbxl-plus PTBXL_PLUS_DIR " if config.ptbxl_plus else "")
        + f"--epochs {config.epochs} --batch-size {config.batch_size} --lr {config.lr:g}"
        + (f" --max-minutes {config.max_minutes:g}" if config.max_minutes else "")
        + (f" --seed {config.seed}" if config.seed else "")
        + "`",
        f"- commit: {t['commit']}; seed {t['seed']}; {t['parameters'] / 1e6:.2f} M parameters; "
        f"{t['epochs_run']} epochs in {t['minutes']} min on one CPU thread; "
        f"best epoch {t['best_epoch']}",
        f"- input: the page in grey, stretched to {onnx_config['size'][0]} × "
        f"{onnx_config['size'][1]} px (area averaging), inverted to [0, 1]",
        "",
        f"## Validation ({t['pages_val']} rendered pages of folds {t['val_folds']}, best epoch)",
        "",
        "| label | AUROC | F1 | threshold |",
        "|---|---|---|---|",
    ]
    for i, name in enumerate(CHALLENGE_LABELS):
        lines.append(
            f"| {name} | {clean['challenge_auroc_per_class'][name]:.3f} | "
            f"{val_metrics['challenge_f1'][name]:.3f} | "
            f"{onnx_config['thresholds']['challenge'][i]:.3f} |"
        )
    lines += [
        f"| **macro** | {clean['challenge_auroc']:.3f} | "
        f"{np.nanmean(list(val_metrics['challenge_f1'].values())):.3f} | |",
        "",
        f"PTB-XL superclass macro AUROC: {clean['superclass_auroc']:.3f}.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


# ============================================================================== ensemble
#: The ensemble's member-weight grid (a further member's share of the running average).
_WEIGHT_GRID = tuple(float(w) for w in np.round(np.arange(0.0, 0.91, 0.05), 2))


def _rounded(values: Mapping[str, ArrayLike]) -> dict[str, list[float]]:
    """Head → thresholds (or coefficients) as JSON lists, to six places."""
    return {h: [round(float(t), 6) for t in np.ravel(v)] for h, v in values.items()}


def _head_thresholds(
    y: Mapping[str, NDArray[Any]], p: Mapping[str, NDArray[Any]], has: NDArray[np.bool_]
) -> dict[str, NDArray[np.float64]]:
    """F1-optimal thresholds of both heads (superclasses on the records that have one)."""
    return {
        "challenge": choose_thresholds(y["challenge"], p["challenge"]),
        "superclass": choose_thresholds(y["superclass"][has], p["superclass"][has]),
    }


def _member_sources(config: TrainConfig) -> list[tuple[str, Path]]:
    """``(registry name, ONNX file)`` of every ensemble member.

    ``config.members`` entries are ``NAME`` (the shipped file of that registered model) or
    ``NAME=PATH`` (a freshly trained file); by default the registry's member list.
    """
    from importlib import resources

    spec = get_model_spec(config.model)
    entries = list(config.members) or list(spec.members)
    out: list[tuple[str, Path]] = []
    for entry in entries:
        name, _, file = entry.partition("=")
        member = get_model_spec(name)
        if member.input == "ensemble":
            raise EcgscanError(f"ensemble member {name!r} is itself an ensemble")
        if file:
            path = Path(file)
        elif member.weights is not None:
            path = Path(str(resources.files("ecgscan") / "models" / "classifier" / member.weights))
        else:
            raise EcgscanError(
                f"ensemble member {name!r} ships no weights; give its file as {name}=PATH.onnx"
            )
        if not path.is_file():
            raise EcgscanError(f"ensemble member {name!r}: file {str(path)!r} not found")
        out.append((name, path))
    if not any(get_model_spec(n).input == "signal" for n, _ in out):
        raise EcgscanError("an ensemble needs at least one signal member")
    return out


def _aurocs(
    y: Mapping[str, NDArray[Any]], p: Mapping[str, NDArray[Any]], has: NDArray[np.bool_]
) -> dict[str, float]:
    """Macro AUROC of both heads (superclasses on the records that have one)."""
    return {
        "challenge_auroc": _nanmean(per_class_auroc(y["challenge"], p["challenge"])),
        "superclass_auroc": _nanmean(per_class_auroc(y["superclass"][has], p["superclass"][has])),
    }


def _macro_f(y: NDArray[Any], p: NDArray[Any], thr: NDArray[Any], exclusive: str | None) -> float:
    """Challenge macro F (classes with positives) of thresholded ``p``, optionally with the
    Acute MI / Old MI exclusivity decided by ``'probability'`` or ``'ratio'`` (to threshold)."""
    pred = p >= thr
    if exclusive is not None:
        i, j = CHALLENGE_LABELS.index("Acute MI"), CHALLENGE_LABELS.index("Old MI")
        si, sj = (
            (p[:, i], p[:, j])
            if exclusive == "probability"
            else (p[:, i] / thr[i], p[:, j] / thr[j])
        )
        both = pred[:, i] & pred[:, j]
        pred[both & (si >= sj), j] = False
        pred[both & (si < sj), i] = False
    f1 = _f1_per_class(y, pred)
    return float(np.nanmean(np.where(y.sum(0) > 0, f1, np.nan)))


def fit_ensemble_model(config: TrainConfig, *, log: Callable[[str], None] = print) -> TrainResult:
    """Fit the ensemble on the validation folds: Platt calibration per member and class, the
    image member's weight, thresholds per member set; write ``ensemble.json``, copies of the
    member files, and a model card into ``config.output``.

    Signal members are calibrated on the validation signals, clean and once distorted (the
    same copy the signal trainer uses for its thresholds); image members on the rendered
    validation pages (the page cache of ``--model image``). The weight of the image members and
    the ``'signal+image'`` thresholds are chosen on those pages' records, with the distorted
    signals standing in for the digitized pages.
    """
    import shutil

    from ..classify._ensemble import (
        EXCLUSIVE_LABELS,
        apply_platt,
        apply_rate_rule,
        choose_member_weight,
        combine,
        fit_platt,
    )
    from ..classify._image import page_thumbnail
    from ..classify._predict import ImageClassifier, SignalClassifier, _load_file
    from ..data.beats import heart_rates

    start = time.monotonic()
    out_dir = Path(config.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = _member_sources(config)
    members = [_load_file(path, name=name) for name, path in sources]
    log(f"members: {', '.join(f'{n} ({p})' for n, p in sources)}")
    sig_idx = [i for i, m in enumerate(members) if isinstance(m, SignalClassifier)]
    img_idx = [i for i, m in enumerate(members) if isinstance(m, ImageClassifier)]

    # validation signals: clean + one distorted copy
    splits = load_ptbxl_splits(config.ptbxl, folds={"val": config.val_folds}, fs=100.0,
                               n_samples=config.n_samples, ptbxl_plus=config.ptbxl_plus,
                               cache_dir=config.cache_dir, limit=config.limit)  # fmt: skip
    val = splits["val"]
    val_aug = augment_batch(val.signals, np.random.default_rng(12345), fs=100.0,
                            config=AugmentConfig())  # fmt: skip
    heads = ("challenge", "superclass")
    y = {"challenge": val.challenge, "superclass": val.superclass}
    has = val.has_superclass

    raw_clean = {i: _run_signal_member(members[i], val.signals) for i in sig_idx}
    raw_aug = {i: _run_signal_member(members[i], val_aug) for i in sig_idx}
    calibration: dict[int, dict[str, tuple[NDArray[Any], NDArray[Any]]]] = {}
    for i in sig_idx:
        calibration[i] = {}
        for h in heads:
            rows = np.ones(len(val.ecg_ids), bool) if h == "challenge" else has
            yy = np.concatenate([y[h][rows], y[h][rows]])
            pp = np.concatenate([raw_clean[i][h][rows], raw_aug[i][h][rows]])
            calibration[i][h] = fit_platt(yy, pp)

    # weights of the signal members: each further member's share of the running mix is chosen
    # on the validation signals (clean + distorted) by the mean macro AUROC of both heads
    cal_both = {
        i: {h: apply_platt(np.concatenate([raw_clean[i][h], raw_aug[i][h]]), *calibration[i][h])
            for h in heads}
        for i in sig_idx
    }  # fmt: skip
    has2 = np.concatenate([has, has])
    y2 = {h: np.concatenate([y[h], y[h]]) for h in heads}
    rows2 = {"challenge": np.ones(len(has2), bool), "superclass": has2}
    # one weight per head: a member may serve one head better than the other (the beat model's
    # superclasses are as good as the 10-s models', its rhythm labels are not)
    head_w = {h: {i: 0.0 for i in sig_idx} for h in heads}
    running = dict(cal_both[sig_idx[0]])
    for h in heads:
        head_w[h][sig_idx[0]] = 1.0
    for i in sig_idx[1:]:
        for h in heads:
            r = rows2[h]
            w_i, _ = choose_member_weight(
                [y2[h][r]], [running[h][r]], [cal_both[i][h][r]], grid=_WEIGHT_GRID
            )
            for k in head_w[h]:
                head_w[h][k] *= 1 - w_i
            head_w[h][i] = w_i
            running[h] = (1 - w_i) * running[h] + w_i * cal_both[i][h]
        log(
            f"  signal member {members[i].name!r}: weight "
            + ", ".join(f"{h} {head_w[h][i]:.2f}" for h in heads)
            + " of the signal average"
        )
    # a member runs when some head uses it
    weights = {i: max(head_w[h][i] for h in heads) for i in sig_idx}

    def signal_mix(raw: Mapping[int, Mapping[str, NDArray[Any]]]) -> dict[str, NDArray[Any]]:
        return {h: combine([apply_platt(raw[i][h], *calibration[i][h]) for i in sig_idx],
                           [head_w[h][i] for i in sig_idx]) for h in heads}  # fmt: skip

    ens_clean, ens_aug = signal_mix(raw_clean), signal_mix(raw_aug)
    report: dict[str, Any] = {"n_val_signals": len(val.ecg_ids)}
    hr_clean = heart_rates(val.signals, fs=100.0)
    rate, rate_thr, report["rate"] = _fit_rate_step(
        val.challenge, ens_clean["challenge"], hr_clean, log
    )
    ens_clean["challenge"] = apply_rate_rule(ens_clean["challenge"], hr_clean, rate,
                                             CHALLENGE_LABELS)  # fmt: skip
    ens_aug["challenge"] = apply_rate_rule(ens_aug["challenge"],
                                           heart_rates(val_aug, fs=100.0), rate,
                                           CHALLENGE_LABELS)  # fmt: skip
    thresholds: dict[str, dict[str, list[float]]] = {}
    both_p = {h: np.concatenate([ens_clean[h], ens_aug[h]]) for h in heads}
    thr_sig = _head_thresholds(y2, both_p, has2)
    for name, t in rate_thr.items():
        thr_sig["challenge"][CHALLENGE_LABELS.index(name)] = t
    thresholds["signal"] = _rounded(thr_sig)

    for name, mix in (("clean", ens_clean), ("augmented", ens_aug)):
        report[f"signal_{name}"] = _aurocs(y, mix, has)
        for rule in (None, "probability", "ratio"):
            f = _macro_f(y["challenge"], mix["challenge"], thr_sig["challenge"], rule)
            report[f"signal_{name}"][f"macro_f_{rule or 'none'}"] = f
    # exclusivity rule: the best of none / probability / ratio on clean + distorted validation
    rule_scores = {
        rule: report["signal_clean"][f"macro_f_{rule}"]
        + report["signal_augmented"][f"macro_f_{rule}"]
        for rule in ("none", "probability", "ratio")
    }
    exclusive_by = max(rule_scores, key=lambda k: (round(rule_scores[k], 6), k != "none"))
    log(
        f"  Acute MI / Old MI exclusivity: {exclusive_by} (validation macro F, clean + distorted: "
        + ", ".join(f"{k} {v / 2:.4f}" for k, v in rule_scores.items())
        + ")"
    )
    for i in sig_idx:
        report[f"member_{members[i].name}_clean"] = _aurocs(y, raw_clean[i], has)
    if img_idx:
        from ..data.ptbxl import PTBXL
        from ._common import page_ecg_ids, render_page_cache

        db = PTBXL(config.ptbxl, ptbxl_plus=config.ptbxl_plus)
        if config.limit is None:  # the image trainer's page cache (its validation pages)
            ids, is_val = page_ecg_ids(
                db.ecg_ids(folds=list(config.train_folds), fs=100),
                db.ecg_ids(folds=list(config.val_folds), fs=100),
                n_train=config.pages_train,
                n_val=config.pages_val,
            )
        else:  # smoke runs: a few pages of the loaded validation records
            ids, is_val = (
                val.ecg_ids[: config.limit],
                np.ones(min(config.limit, len(val.ecg_ids)), bool),
            )
        pages, done = render_page_cache(
            config.ptbxl, ids, cache_dir=None if config.limit is not None else config.cache_dir,
            max_minutes=config.render_minutes,
        )  # fmt: skip
        sel = np.flatnonzero(is_val[:done])
        pos = {int(e): k for k, e in enumerate(val.ecg_ids)}
        sel = np.asarray([k for k in sel if int(ids[k]) in pos], dtype=np.int64)
        rows = np.asarray([pos[int(ids[k])] for k in sel], dtype=np.int64)
        log(f"  {len(rows)} rendered validation pages for the image members")
        yp = {h: y[h][rows] for h in heads}
        hasp = has[rows]
        img_cal: dict[str, list[NDArray[Any]]] = {h: [] for h in heads}
        for i in img_idx:
            m = members[i]
            assert isinstance(m, ImageClassifier)
            raw = m.predict_proba([page_thumbnail(pages[k], size=m.size) for k in sel])
            calibration[i] = {}
            for h in heads:
                r = np.ones(len(rows), bool) if h == "challenge" else hasp
                calibration[i][h] = fit_platt(yp[h][r], raw[h][r])
                img_cal[h].append(apply_platt(raw[h], *calibration[i][h]))
            report[f"member_{m.name}_pages"] = _aurocs(yp, raw, hasp)
        img_mix = {h: combine(img_cal[h], [1.0] * len(img_idx)) for h in heads}
        base = {h: ens_aug[h][rows] for h in heads}
        w, scores = choose_member_weight(
            [yp["challenge"], yp["superclass"][hasp]],
            [base["challenge"], base["superclass"][hasp]],
            [img_mix["challenge"], img_mix["superclass"][hasp]],
            grid=_WEIGHT_GRID,
        )
        log(f"  image weight in the average: {w:.2f} (validation score {max(scores):.4f} vs "
            f"{scores[0]:.4f} without images)")  # fmt: skip
        total_img = w / (1 - w)  # the signal members' weights sum to 1 in each head
        for i in img_idx:
            weights[i] = round(total_img / len(img_idx), 6)
        mixed = {h: (1 - w) * base[h] + w * img_mix[h] for h in heads}
        # the image adds nothing (w = 0): same rule as signal alone
        thr_mix = _head_thresholds(yp, mixed, hasp) if w > 0 else thr_sig
        thresholds["signal+image"] = _rounded(thr_mix)
        thresholds["image"] = _rounded(_head_thresholds(yp, img_mix, hasp))
        grid = map(str, _WEIGHT_GRID)
        sig_a, mix_a = _aurocs(yp, base, hasp), _aurocs(yp, mixed, hasp)
        report["pages"] = {
            "n": len(rows),
            "image_weight": w,
            "weight_scores": dict(zip(grid, scores, strict=True)),
            "signal_distorted_challenge_auroc": sig_a["challenge_auroc"],
            "mixed_challenge_auroc": mix_a["challenge_auroc"],
            "signal_distorted_superclass_auroc": sig_a["superclass_auroc"],
            "mixed_superclass_auroc": mix_a["superclass_auroc"],
        }

    entries = []
    for i, (name, path) in enumerate(sources):
        file = get_model_spec(name).weights or path.name
        if path.resolve() != (out_dir / file).resolve():
            shutil.copyfile(path, out_dir / file)
        entries.append({
            "name": name,
            "file": file,
            "input": members[i].input,
            "weight": round(weights[i], 6),
            **({"head_weights": {h: round(head_w[h][i], 6) for h in heads}}
               if i in sig_idx else {}),
            "calibration": {h: _rounded({"a": a, "b": b})
                            for h, (a, b) in calibration[i].items()},
        })  # fmt: skip
    minutes = (time.monotonic() - start) / 60
    ens_config = {
        "format": 1,
        "model": config.model,
        "input": "ensemble",
        "heads": {"challenge": list(CHALLENGE_LABELS), "superclass": list(SUPERCLASSES)},
        "members": entries,
        "thresholds": thresholds,
        "exclusive": [] if exclusive_by == "none" else [list(g) for g in EXCLUSIVE_LABELS],
        "exclusive_by": "probability" if exclusive_by == "none" else exclusive_by,
        "rate": rate,
        "combination": "weighted mean of Platt-calibrated member probabilities",
        "training": {
            "val_folds": list(config.val_folds),
            "commit": _git_commit(),
            "minutes": round(minutes, 1),
        },
        "validation": report,
    }
    json_path = out_dir / (get_model_spec(config.model).weights or "ensemble.json")
    json_path.write_text(json.dumps(ens_config, indent=1))
    card = write_ensemble_card(out_dir / "MODEL_CARD_ensemble.md", ens_config)
    log(f"wrote {json_path} and {card} ({minutes:.1f} min)")
    return TrainResult(json_path, card, ens_config, report, minutes)


def _run_signal_member(m: Any, sig: NDArray[np.float32]) -> dict[str, NDArray[np.float64]]:
    """Raw outputs (head → (n, k)) of a 100-Hz signal member on encoded signals, in batches."""
    if m.fs != 100.0:
        raise EcgscanError(f"signal member {m.name!r} reads {m.fs:g} Hz; only 100 Hz is fitted")
    outs: dict[str, list[NDArray[Any]]] = {h: [] for h in m.outputs}
    for k in range(0, len(sig), 256):
        for h, v in zip(m.outputs, m._run(sig[k : k + 256]), strict=True):
            outs[h].append(v)
    return {h: np.concatenate(v).astype(np.float64) for h, v in outs.items()}


def _fit_rate_step(
    y: NDArray[Any],
    p: NDArray[np.float64],
    heart_rate: NDArray[np.float64],
    log: Callable[[str], None],
) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, dict[str, float]]]:
    """Fit the ensemble's rate rule on the clean validation signals' Challenge labels ``y``,
    ensemble probabilities ``p`` and heart rates.

    Clean signals only, thresholds included: the rule is about timing, and the distorted
    copies' time-scale error (up to 8 %) is far larger than a digitizer's, whose time axis
    comes from the grid. Returns the rule, the rate labels' F1-optimal thresholds, and per
    rate label the validation F1 before and after (each at its own best threshold).
    """
    from ..classify._ensemble import apply_rate_rule, fit_rate_rule

    rule = fit_rate_rule(y, p, heart_rate, CHALLENGE_LABELS)
    refined = apply_rate_rule(p, heart_rate, rule, CHALLENGE_LABELS)
    thresholds: dict[str, float] = {}
    report: dict[str, dict[str, float]] = {}
    for name, r in rule.items():
        c = CHALLENGE_LABELS.index(name)
        f1 = []
        for q in (p, refined):  # the last threshold, the refined one's, is the label's
            t = choose_thresholds(y[:, [c]], q[:, [c]])
            f1.append(float(_f1_per_class(y[:, [c]], q[:, [c]] >= t)[0]))
        thresholds[name] = round(float(t[0]), 6)
        report[name] = {"limit": float(r["limit"]), "f1_before": f1[0], "f1_after": f1[1]}
        log(f"  rate rule {name}: rate {r['side']} {r['limit']:g} bpm, (a, c, b) = "
            f"{tuple(r['coef'])}; validation F1 {f1[0]:.3f} -> {f1[1]:.3f}")  # fmt: skip
    return rule, thresholds, report


def refit_ensemble_rate(config: TrainConfig, *, log: Callable[[str], None] = print) -> TrainResult:
    """Refit only the rate rule of the ensemble ``config.refit_rate`` on the validation folds.

    Members, calibration, weights and the other labels' thresholds are kept; the rate labels'
    thresholds are chosen again on the refined probabilities of the clean validation signals
    (as :func:`fit_ensemble_model` does). For an ensemble whose members' held-out
    versions, on which it was fitted, are no longer at hand. Writes ``ensemble.json`` and a
    model card into ``config.output``.
    """
    import shutil

    from ..classify._ensemble import EnsembleClassifier
    from ..classify._predict import SignalClassifier
    from ..data.beats import heart_rates

    start = time.monotonic()
    assert config.refit_rate is not None
    ens = EnsembleClassifier(config.refit_rate)
    out_dir = Path(config.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = load_ptbxl_splits(config.ptbxl, folds={"val": config.val_folds}, fs=100.0,
                               n_samples=config.n_samples, ptbxl_plus=config.ptbxl_plus,
                               cache_dir=config.cache_dir, limit=config.limit)  # fmt: skip
    val = splits["val"]
    used = [i for i, m in enumerate(ens.members)
            if isinstance(m, SignalClassifier) and ens.weights[i] > 0]  # fmt: skip
    ens.rate = {}
    ens.trees = None  # the rule reads the average; beat trees (if any) are stacked after it
    raw = {i: _run_signal_member(ens.members[i], val.signals) for i in used}
    p = ens.combine_member_probabilities(raw)[0]["challenge"]
    hr = heart_rates(val.signals, fs=100.0)
    rule, rate_thr, rate_report = _fit_rate_step(val.challenge, p, hr, log)
    ens_config = copy.deepcopy(ens.config)
    for key, heads in ens_config["thresholds"].items():
        if "signal" in key.split("+"):
            for name, t in rate_thr.items():
                heads["challenge"][CHALLENGE_LABELS.index(name)] = t
    ens_config["rate"] = rule
    ens_config["validation"]["rate"] = rate_report
    if "trees" in ens_config:  # kept: the refitted ensemble's folder gets their file too
        src = ens.path.parent / ens_config["trees"]["file"]
        if src.resolve() != (out_dir / src.name).resolve():
            shutil.copy2(src, out_dir / src.name)
    ens_config["training"]["rate_refit"] = {
        "val_folds": list(config.val_folds),
        "commit": _git_commit(),
        "members": "as shipped in the ensemble file",
    }
    minutes = (time.monotonic() - start) / 60
    json_path = out_dir / (get_model_spec(config.model).weights or "ensemble.json")
    json_path.write_text(json.dumps(ens_config, indent=1))
    card = write_ensemble_card(out_dir / "MODEL_CARD_ensemble.md", ens_config)
    log(f"wrote {json_path} and {card} ({minutes:.1f} min)")
    return TrainResult(json_path, card, ens_config, rate_report, minutes)


def write_ensemble_card(path: Path, ens: Mapping[str, Any]) -> Path:
    """The ensemble's Markdown model card: members, weights, the rule, validation figures."""
    rep = ens["validation"]
    lines = [
        f"# ecgscan classifier `{ens['model']}`",
        "",
        get_model_spec(str(ens["model"])).summary + ".",
        "",
        "## Members",
        "",
        "| member | reads | weight: Challenge labels | weight: superclasses | file |",
        "|---|---|---|---|---|",
    ]
    for m in ens["members"]:
        hw = m.get("head_weights", {})
        w_ch, w_sup = (round(float(hw.get(h, m["weight"])), 3) for h in ("challenge", "superclass"))
        lines.append(f"| `{m['name']}` | {m['input']} | {w_ch:g} | {w_sup:g} | `{m['file']}` |")
    lines += [
        "",
        "## Rule",
        "",
        "1. each member's probability of each class (both heads) is calibrated by Platt scaling "
        "fitted on validation data: `p' = sigmoid(a * logit(p) + b)` (the `calibration` entries "
        "of `ensemble.json`);",
        "2. the ensemble probability is the weighted mean `sum(w_m p'_m) / sum(w_m)` over the "
        "members that apply to the input (signal members: a record, given or digitized from the "
        "page; image members: the page); each further signal member's share of the signal "
        "average is chosen per head (Challenge labels, superclasses) to maximise that head's "
        "macro AUROC on the validation signals, the image members' share (one for both heads) "
        "the mean of the two heads' macro AUROC on rendered validation pages;",
        "3. per-class thresholds, F1-optimal on validation data, one set per combination of "
        f"members ({', '.join(f'`{k}`' for k in ens['thresholds'])});",
        (
            "4. of Acute MI and Old MI at most one is predicted (decided by "
            f"{ens['exclusive_by']}; chosen on validation among none / probability / "
            "probability-to-threshold ratio)."
            if ens["exclusive"]
            else "4. Acute MI and Old MI are not made exclusive: neither rule (by probability, by "
            "probability-to-threshold ratio) helped on validation."
        ),
        *(
            [
                "5. rate rule: for "
                + ", ".join(
                    f"{n} (rate {r['side']} {r['limit']:g} bpm, (a, c, b) = {tuple(r['coef'])})"
                    for n, r in ens["rate"].items()
                )
                + ", `p'' = sigmoid(a * logit(p) + c * [measured heart rate beyond the limit] "
                "+ b)`, fitted on validation data before the thresholds; the heart rate is the "
                "median RR interval of the record (`ecgscan.classify.heart_rates`)."
            ]
            if ens.get("rate")
            else []
        ),
        *(
            [
                "6. beat trees (`beat_trees.npz`): gradient-boosted trees per label on "
                "measurements of the median beats (`ecgscan.data.beats.beat_features`: ST levels "
                "at the J point, contiguous-lead ST elevation, QRS extremes, levels along the "
                "beat, heart rate), fitted on PTB-XL folds "
                f"{ens['training']['trees']['train_folds']} (each record clean and once "
                "distorted), give `g`; for "
                + ", ".join(
                    f"{n} ((a, c, b) = {tuple(c)})" for n, c in ens["trees"]["stack"].items()
                )
                + ", `p''' = sigmoid(a * logit(p'') + c * logit(g) + b)`, fitted on folds "
                f"{ens['training']['trees']['val_folds']} (clean and distorted) after the rate "
                "rule; a label is stacked when that lowers its 5-fold cross-fitted log-loss, "
                "and its threshold is chosen again."
                + (
                    " The superclasses' own trees (fitted on the records with a superclass) are "
                    "stacked onto the superclass head in the same way: "
                    + ", ".join(
                        f"{n} ((a, c, b) = {tuple(c)})"
                        for n, c in ens["trees"]["superclass_stack"].items()
                    )
                    + "."
                    if ens["trees"].get("superclass_stack")
                    else ""
                )
            ]
            if ens.get("trees")
            else []
        ),
        "",
        f"## Validation (PTB-XL folds {ens['training']['val_folds']})",
        "",
        "| set | Challenge macro AUROC | superclass macro AUROC | macro F | F, MI excl. by "
        "probability | F, MI excl. by ratio |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("signal_clean", "signal_augmented"):
        r = rep[key]
        lines.append(f"| signal members, {key.split('_')[1]} | {r['challenge_auroc']:.3f} | "
                     f"{r['superclass_auroc']:.3f} | {r['macro_f_none']:.3f} | "
                     f"{r['macro_f_probability']:.3f} | {r['macro_f_ratio']:.3f} |")  # fmt: skip
    for key, r in rep.items():
        if key.startswith("member_"):
            name, _, where = key[7:].rpartition("_")
            lines.append(f"| `{name}` alone, {where} | {r['challenge_auroc']:.3f} | "
                         f"{r['superclass_auroc']:.3f} | | | |")  # fmt: skip
    if "pages" in rep:
        pg = rep["pages"]
        lines += [
            "",
            f"Image weight chosen on {pg['n']} rendered validation pages (with the distorted "
            "signals of the same records standing in for digitized pages): "
            f"{pg['image_weight']:.2f} of the average. Challenge macro AUROC "
            f"{pg['signal_distorted_challenge_auroc']:.3f} (signal) → "
            f"{pg['mixed_challenge_auroc']:.3f} (signal + image); superclass "
            f"{pg['signal_distorted_superclass_auroc']:.3f} → {pg['mixed_superclass_auroc']:.3f}.",
        ]
    if "trees" in rep:
        tr = rep["trees"]
        lines += [
            "",
            f"Beat trees, on folds {ens['training']['trees']['val_folds']}, the whole stacking "
            "(label choice, coefficients, thresholds) cross-fitted over five parts of the "
            "records: macro F "
            + "; ".join(
                f"{v} {tr[v]['macro_f_before']:.4f} -> {tr[v]['macro_f_cross_fitted']:.4f}"
                for v in ("clean", "distorted")
            )
            + " (the ensemble before, with its shipped thresholds -> with the trees).",
            "",
            "| label | F1 before | F1 with trees (cross-fitted) | F1 distorted before | "
            "F1 distorted with trees | log-loss before / after (cross-fitted) |",
            "|---|---|---|---|---|---|",
        ]
        for k, name in enumerate(ens["heads"]["challenge"]):
            c, d = tr["clean"], tr["distorted"]
            loss = tr["log_loss_cross_fitted"].get(name)
            loss_text = "no trees" if loss is None else f"{loss[0]:.1f} / {loss[1]:.1f}"
            lines.append(f"| {name} | {c['f1_before'][k]:.3f} | {c['f1_cross_fitted'][k]:.3f} | "
                         f"{d['f1_before'][k]:.3f} | {d['f1_cross_fitted'][k]:.3f} | "
                         f"{loss_text} |")  # fmt: skip
    lines.append("")
    path.write_text("\n".join(lines))
    return path
