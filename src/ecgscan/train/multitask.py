"""The multi-task page model: one encoder shared by a trace-segmentation decoder and the label
heads (PyTorch; needs the ``train`` extra).

``ecgscan train classifier --model multitask`` trains :class:`MultiTaskNet` on pages rendered
by :mod:`ecgscan.render` (the same pages, styles and protocol as the ``image`` model: folds
1–7 for training, fold 8 for the epoch and the thresholds, fold 9 reserved for the benchmark),
with the renderer's trace mask as a second target: the loss is the label loss of the image
model plus ``trace_weight`` × (binary cross-entropy + soft Dice) of the trace map.

The exported ONNX reads the same input as the image model (``image``: the grey page, stretched
and inverted) and has three outputs: ``challenge`` and ``superclass`` probabilities (so
:class:`ecgscan.classify.ImageClassifier` and the ensemble use it like any image model) and
``trace``, the trace probability map at half the input resolution
(:func:`ecgscan.classify.trace_map` returns it at the page's size).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from ..classify._registry import get_model_spec
from ..classify._thresholds import choose_thresholds
from ..data.labels import CHALLENGE_LABELS
from ..errors import EcgscanError
from ._common import SUPERCLASSES, save_onnx

__all__ = ["MultiTaskNet", "build_multitask", "render_trace_cache", "train_multitask"]


# ================================================================================== model
def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """Upsample to the skip's size (bilinear), concatenate the skip, one 3×3 conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.conv = _conv(c_in + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class MultiTaskNet(nn.Module):
    """The image model's encoder and label heads plus a light U-Net decoder for the traces.

    The encoder is that of :class:`ecgscan.train.classifier.ImageResNet` (a stride-2 5×5 conv,
    a max-pool, a stride-2 3×3 conv, then one stage of 2-D residual blocks per width, each
    halving the size); the label heads read its global average + max pooled last stage, as in
    the image model. The decoder climbs back from the last stage to half the input size,
    concatenating each encoder stage's output (skip connections), and ends in a 1×1 conv: the
    trace logit map of shape ``(batch, H/2, W/2)``.

    ``forward`` returns the scores of the label heads and ``'trace'`` (logits);
    ``probabilities`` applies the sigmoid to all of them. ``heads`` lists the label heads only.
    """

    def __init__(
        self,
        *,
        heads: Mapping[str, int] | None = None,
        widths: Sequence[int] = (32, 64, 128, 192),
        blocks: Sequence[int] = (1, 1, 1, 1),
        stem: int = 16,
        decoder: Sequence[int] = (64, 48, 32, 24, 16, 16),
        dropout: float = 0.3,
        activation: str = "sigmoid",
        height: int = 240,
        width: int = 320,
        trace_weight: float = 1.0,
    ) -> None:
        from .classifier import _Block

        super().__init__()
        self.size = (int(height), int(width))
        self.trace_weight = float(trace_weight)  # the segmentation loss's weight (training)
        if activation != "sigmoid":
            raise EcgscanError(
                f"the multitask model supports activation 'sigmoid' only, got {activation!r}"
            )
        if len(widths) != len(blocks) or not widths:
            raise EcgscanError("widths and blocks must be non-empty and of the same length")
        if len(decoder) != len(widths) + 2:
            raise EcgscanError(
                f"decoder must give {len(widths) + 2} widths (one per encoder stage below the "
                f"last, plus the stem's three levels), got {len(decoder)}"
            )
        self.heads = dict(
            heads or {"challenge": len(CHALLENGE_LABELS), "superclass": len(SUPERCLASSES)}
        )
        self.activation = activation
        self.gev = None
        self.stem1 = _conv(1, stem, 5, stride=2)  # H/2
        self.pool = nn.MaxPool2d(2)  # H/4
        self.stem2 = _conv(stem, widths[0], 3, stride=2)  # H/8
        self.stages = nn.ModuleList()
        c = widths[0]
        for w, n in zip(widths, blocks, strict=True):
            layers = []
            for j in range(n):
                layers.append(_Block(c, w, 3, 2 if j == 0 else 1, dims=2))
                c = w
            self.stages.append(nn.Sequential(*layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.ModuleDict({k: nn.Linear(2 * c, n) for k, n in self.heads.items()})
        # decoder: from the last stage up through the other stages, the stem's H/8, H/4, H/2
        skips = [*reversed(list(widths[:-1])), widths[0], stem, stem]
        ups = []
        c_in = widths[-1]
        for c_skip, c_out in zip(skips, decoder, strict=True):
            ups.append(_Up(c_in, c_skip, int(c_out)))
            c_in = int(c_out)
        self.ups = nn.ModuleList(ups)
        self.trace_out = nn.Conv2d(c_in, 1, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        s1 = self.stem1(x)
        s2 = self.pool(s1)
        h = self.stem2(s2)
        feats = [s1, s2, h]
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        pooled = self.dropout(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))
        out = {k: head(pooled) for k, head in self.head.items()}
        d = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            d = up(d, skip)
        out["trace"] = self.trace_out(d)[:, 0]
        return out

    def probabilities(self, scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.sigmoid(v) for k, v in scores.items()}


def build_multitask(**kwargs: Any) -> MultiTaskNet:
    """Factory registered as ``'multitask'`` (see :mod:`ecgscan.classify._registry`)."""
    return MultiTaskNet(**kwargs)


class _Exported(nn.Module):
    """What goes into ONNX: the label heads' probabilities, then the trace probability map."""

    def __init__(self, model: MultiTaskNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        probs = self.model.probabilities(self.model(x))
        return (*(probs[k] for k in self.model.heads), probs["trace"])


def export_multitask_onnx(
    model: MultiTaskNet, path: str | os.PathLike[str], *, config: Mapping[str, Any]
) -> Path:
    """Export ``model`` (eval mode) with input ``image`` ``(batch, 1, H, W)`` and outputs
    ``challenge``, ``superclass`` and ``trace`` ``(batch, H/2, W/2)``; ``config`` goes into the
    metadata ``ecgscan_config``."""
    names = [*model.heads, "trace"]
    return save_onnx(
        _Exported(model.eval()),
        torch.zeros(1, 1, *model.size),
        path,
        input_names=["image"],
        output_names=names,
        dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in names}},
        metadata={"ecgscan_config": json.dumps(config, sort_keys=True)},
    )


# =================================================================================== data
def trace_target(mask: NDArray[Any], size: Sequence[int]) -> NDArray[np.uint8]:
    """A renderer's lead mask (H × W, 0 = background) → the share of trace pixels in each cell
    of a ``size = (h, w)`` grid, as uint8 (0–255, area averaging)."""
    import cv2

    cover = (np.asarray(mask) > 0).astype(np.float32)
    small = cv2.resize(cover, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


def render_trace_cache(
    ptbxl_root: str | os.PathLike[str],
    ecg_ids: Sequence[int] | NDArray[np.integer[Any]],
    *,
    size: Sequence[int] = (240, 320),
    dpi: tuple[float, float] = (72.0, 96.0),
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    max_minutes: float | None = None,
    verbose: bool = False,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], int]:
    """Rendered pages (grey thumbnails of ``size``) and their trace coverage at half that size.

    The pages are those of :func:`ecgscan.train._common.render_page_cache` (same layouts,
    resolutions and seeds per record, so the same pages as the image model's; see
    :func:`ecgscan.train._common.render_cached` for the cache), reduced straight to ``size``;
    the trace target is :func:`trace_target` of the renderer's mask at ``size / 2``.

    Returns
    -------
    pages : ndarray of uint8, shape (n, h, w)
    traces : ndarray of uint8, shape (n, h // 2, w // 2)
        Share of trace pixels per cell × 255.
    n_done : int
        How many pages (the first ones) are rendered; the others are zero.
    """
    from ..classify._image import page_thumbnail
    from ._common import render_cached

    h, w = int(size[0]), int(size[1])
    th, tw = h // 2, w // 2
    arrays, done = render_cached(
        ptbxl_root, ecg_ids,
        {"pages": ((h, w), lambda page: page_thumbnail(page.image, size=(h, w))),
         "traces": ((th, tw), lambda page: trace_target(page.mask, (th, tw)))},
        name=f"trace-pages-{h}x{w}", dpi=dpi, seed=seed, cache_dir=cache_dir,
        max_minutes=max_minutes, verbose=verbose,
    )  # fmt: skip
    return arrays["pages"], arrays["traces"], done


def _augment_pairs(
    pages: NDArray[np.uint8], traces: NDArray[np.uint8], rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The image model's augmentation (small affine warps, contrast, brightness, noise), with
    the same warp applied to the trace targets (nearest neighbour, at their own scale)."""
    import cv2

    out_p, out_t = np.empty_like(pages), np.empty_like(traces)
    h, w = pages.shape[1:]
    th, tw = traces.shape[1:]
    for i in range(len(pages)):
        scale = rng.uniform(0.9, 1.1)
        angle = rng.uniform(-3.0, 3.0)
        shift = rng.uniform(-0.05, 0.05, 2)
        m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale), dtype=np.float64)
        m[:, 2] += shift * np.array([w, h], dtype=np.float64)
        mt = np.asarray(cv2.getRotationMatrix2D((tw / 2, th / 2), angle, scale), np.float64)
        mt[:, 2] += shift * np.array([tw, th], dtype=np.float64)
        warped = cv2.warpAffine(pages[i], m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=255)  # fmt: skip
        out_t[i] = cv2.warpAffine(traces[i], mt, (tw, th), flags=cv2.INTER_NEAREST,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        f = warped.astype(np.float32)
        f = (f - 128.0) * rng.uniform(0.7, 1.3) + 128.0 + rng.uniform(-30, 30)
        f += rng.normal(0.0, rng.uniform(0.0, 8.0), f.shape).astype(np.float32)
        out_p[i] = np.clip(f, 0, 255).astype(np.uint8)
    return out_p, out_t


def _binary(traces: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Trace coverage (uint8) → the training target: 1 where a trace crosses the cell."""
    return (np.asarray(traces) > 0).astype(np.float32)


@dataclass
class _TraceData:
    split: Any  # ecgscan.train.classifier._Split (pages as .signals)
    traces: NDArray[np.uint8]


def _load_trace_splits(
    config: Any, size: tuple[int, int], log: Callable[[str], None]
) -> dict[str, _TraceData]:
    """Rendered pages, trace targets and both label sets of the training and validation folds
    (the records and labels of the image model's pages)."""
    from .classifier import _page_records, _page_splits

    db, ids, is_val = _page_records(config)
    pages, traces, done = render_trace_cache(
        config.ptbxl,
        ids,
        size=size,
        cache_dir=None if config.limit is not None else config.cache_dir,
        max_minutes=config.render_minutes,
        verbose=True,
    )
    if done < len(ids):
        log(f"  only {done} of {len(ids)} pages rendered (time limit); training on those")
    ids, is_val, pages, traces = ids[:done], is_val[:done], pages[:done], traces[:done]
    splits = _page_splits(db, ids, is_val, pages)
    return {
        "train": _TraceData(splits["train"], traces[~is_val]),
        "val": _TraceData(splits["val"], traces[is_val]),
    }


# ================================================================================ training
def trace_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice loss (per page, averaged) of a trace logit map."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + (1.0 - dice).mean()


def _predict_all(
    model: MultiTaskNet, x: NDArray[np.float32], batch_size: int = 32
) -> dict[str, NDArray[np.float32]]:
    """Probabilities of every output (label heads and ``trace``) for encoded pages ``x``."""
    model.eval()
    outs: dict[str, list[NDArray[np.float32]]] = {}
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            probs = model.probabilities(model(torch.from_numpy(x[i : i + batch_size])))
            for k, v in probs.items():
                outs.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def trace_scores(
    prob: NDArray[Any], target: NDArray[Any], *, threshold: float = 0.5
) -> dict[str, float]:
    """Dice and IoU of ``prob >= threshold`` against a binary ``target`` (pooled over all pages)
    and the mean per-page Dice."""
    pred = np.asarray(prob) >= threshold
    t = np.asarray(target) > 0.5
    inter = float((pred & t).sum())
    total = float(pred.sum() + t.sum())
    union = float((pred | t).sum())
    axes = tuple(range(1, pred.ndim))
    per_page = (2 * (pred & t).sum(axes) + 1e-9) / (pred.sum(axes) + t.sum(axes) + 1e-9)
    return {
        "dice": 2 * inter / total if total else float("nan"),
        "iou": inter / union if union else float("nan"),
        "dice_per_page": float(np.mean(per_page)),
    }


def _fit_multitask(
    model: MultiTaskNet,
    train: _TraceData,
    config: Any,
    *,
    evaluate: Callable[[], dict[str, Any]],
    ckpt_path: Path,
    start: float,
    resume: bool,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`ecgscan.train.classifier._fit` (AdamW, one-cycle, periodic checkpoints, resume,
    time limit, best epoch by the mean of both heads' validation AUROC) with the trace loss
    (:func:`trace_loss`, weighted by ``model.trace_weight``) added to the heads' loss; pages
    and their trace maps are augmented together."""
    from ..classify._image import encode_pages
    from .classifier import _fit, heads_loss

    split = train.split

    def batch_loss(
        idx: NDArray[np.int64], rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        pages, traces = split.signals[idx], train.traces[idx]
        if config.augment:
            pages, traces = _augment_pairs(pages, traces, rng)
        scores = model(torch.from_numpy(encode_pages(pages)))
        seg = trace_loss(scores["trace"], torch.from_numpy(_binary(traces)))
        loss = heads_loss(model, scores, split, idx, config) + model.trace_weight * seg
        return loss, {"trace_loss": seg.item()}

    return _fit(model, split, config, batch_loss=batch_loss, evaluate=evaluate,
                ckpt_path=ckpt_path, start=start, resume=resume, log=log,
                log_no_checkpoint=True, log_metrics=("trace_dice",))  # fmt: skip


def _check_onnx(model: MultiTaskNet, path: Path, x: NDArray[np.float32]) -> None:
    """Raise if onnxruntime's outputs differ from torch's on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x})
    want = _predict_all(model, x)
    for name, value in zip([*model.heads, "trace"], got, strict=True):
        err = float(np.max(np.abs(value - want[name])))
        if err > 1e-4:
            raise EcgscanError(f"ONNX export of output {name!r} differs from torch by {err:.2e}")


def train_multitask(
    config: Any, *, resume: bool = False, log: Callable[[str], None] = print
) -> Any:
    """:func:`ecgscan.train.classifier.train_classifier` for the multi-task model: renders (or
    loads) the pages with their trace masks, trains, picks the epoch and thresholds on the
    validation pages, exports ONNX and writes the model card. Returns a ``TrainResult``."""
    from ..classify._image import encode_pages
    from .classifier import (
        _evaluate,
        _f1_per_class,
        _finish_run,
        _head_config,
        _run_info,
        _start_run,
        create_model,
    )

    if config.loss != "bce":
        raise EcgscanError(f"the multitask model trains with loss 'bce' only, got {config.loss!r}")
    start, out_dir, ckpt_path = _start_run(config)
    spec = get_model_spec(config.model)
    arch = {**dict(spec.defaults), **config.arch}
    size = (int(arch["height"]), int(arch["width"]))
    for k in ("widths", "blocks", "decoder"):
        arch[k] = [int(v) for v in arch[k]]
    log(f"rendering/loading pages and trace masks of folds {list(config.train_folds)} (train) "
        f"and {list(config.val_folds)} (val)")  # fmt: skip
    data = _load_trace_splits(config, size, log)
    train, val = data["train"], data["val"]
    log(f"  {len(train.split.ecg_ids)} training and {len(val.split.ecg_ids)} validation pages "
        f"({time.monotonic() - start:.0f} s)")  # fmt: skip
    model = create_model(config.model, **arch)
    if not isinstance(model, MultiTaskNet):
        raise EcgscanError(f"model {config.model!r} is not a MultiTaskNet")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {config.model!r}: {n_params / 1e6:.2f} M parameters, {arch}, input {size}")
    val_x = encode_pages(val.split.signals)
    val_t = _binary(val.traces)

    def evaluate() -> dict[str, Any]:
        p = _predict_all(model, val_x)
        s = trace_scores(p["trace"], val_t)
        return {**_evaluate(p, val.split), "trace_dice": s["dice"], "trace_iou": s["iou"]}

    best, history = _fit_multitask(
        model, train, config, evaluate=evaluate, ckpt_path=ckpt_path, start=start,
        resume=resume, log=log,
    )  # fmt: skip
    p_val = _predict_all(model, val_x)
    vs = val.split
    thresholds = choose_thresholds(vs.challenge, p_val["challenge"], method=config.threshold_method)
    has = vs.has_superclass
    sup_thresholds = choose_thresholds(vs.superclass[has], p_val["superclass"][has],
                                       method=config.threshold_method)  # fmt: skip
    grid = [round(float(t), 2) for t in np.arange(0.2, 0.81, 0.05)]
    dices = [trace_scores(p_val["trace"], val_t, threshold=t)["dice"] for t in grid]
    trace_thr = grid[int(np.nanargmax(dices))] if np.isfinite(dices).any() else 0.5
    f1 = _f1_per_class(vs.challenge, p_val["challenge"] >= thresholds)
    val_metrics = {
        "epoch": best["epoch"],
        "clean": _evaluate(p_val, vs),
        "challenge_f1": dict(zip(CHALLENGE_LABELS, map(float, f1), strict=True)),
        "trace": trace_scores(p_val["trace"], val_t, threshold=trace_thr),
        "trace_at_0.5": trace_scores(p_val["trace"], val_t),
        "trace_coverage": float(val_t.mean()),
        "n_val": len(vs.ecg_ids),
        "n_train": len(train.split.ecg_ids),
    }
    minutes = (time.monotonic() - start) / 60
    onnx_config = {
        "format": 1,
        "model": config.model,
        "input": "image",
        "size": list(size),
        **_head_config(config, arch, thresholds, sup_thresholds),
        "trace": {
            "output": "trace",
            "size": [size[0] // 2, size[1] // 2],
            "threshold": trace_thr,
        },
        "training": {
            "data": "pages rendered by ecgscan.render (style 'random', 72-96 DPI) of PTB-XL "
            "1.0.3 records (100 Hz), with the renderer's trace masks",
            "train_folds": list(config.train_folds),
            "val_folds": list(config.val_folds),
            "pages_train": len(train.split.ecg_ids),
            "pages_val": len(vs.ecg_ids),
            "trace_weight": model.trace_weight,
            **_run_info(config, history, best, minutes, n_params),
        },
    }
    onnx_path = export_multitask_onnx(model, out_dir / f"{config.model}.onnx", config=onnx_config)
    _check_onnx(model, onnx_path, val_x[:4])
    return _finish_run(onnx_path, history, val_metrics, onnx_config, minutes, config,
                       write_card=write_multitask_card, log=log)  # fmt: skip


def write_multitask_card(
    path: Path, onnx_config: Mapping[str, Any], val_metrics: Mapping[str, Any], config: Any
) -> Path:
    """The Markdown model card of the multi-task model (the image model's, plus the traces)."""
    from .classifier import write_image_model_card

    write_image_model_card(path, onnx_config, val_metrics, config)
    tr, tr5 = val_metrics["trace"], val_metrics["trace_at_0.5"]
    t = onnx_config["trace"]
    extra = [
        f"Trace map (output `trace`, {t['size'][0]} × {t['size'][1]}, target: cells crossed by "
        f"a trace, {100 * val_metrics['trace_coverage']:.1f} % of the validation cells): "
        f"Dice {tr['dice']:.3f}, IoU {tr['iou']:.3f}, mean per-page Dice "
        f"{tr['dice_per_page']:.3f} at threshold {t['threshold']:.2f} (chosen on these pages; "
        f"at 0.5: Dice {tr5['dice']:.3f}, IoU {tr5['iou']:.3f}).",
        "",
    ]
    path.write_text(path.read_text() + "\n".join(extra))
    return path
