"""Train the digitizer's trace-segmentation network (a small U-Net) and export it to ONNX.

Pages are rendered on the fly by :func:`ecgscan.render.render_page` from PTB-XL records of the
training folds, in styles weighted toward scanner and camera degradations, random layouts and
resolutions; each page is rescaled to the model's input scale (``px_per_mm``, 4 px/mm by
default, i.e. ~100 DPI, with a little scale jitter) and cut into large crops (64 mm: a row of a
3×4 page and its neighbours, so the network sees which ink belongs to a trace). The target is
the renderer's trace mask (any lead) at the network's output scale (half the input's: a cell is
a trace cell when any trace pixel falls in it). The loss is class-balanced (traces cover < 2 %
of a page): binary cross-entropy with a positive weight plus a Tversky term that penalises
missed trace more than false alarms. CPU-only, one thread by default; checkpoints carry their
configuration and training resumes from the last one.

Run::

    python -m ecgscan.train.digitizer --ptbxl /root/data/ptb-xl -o runs/digitizer --minutes 60
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ._common import save_onnx

__all__ = [
    "SegUNet",
    "TrainConfig",
    "evaluate",
    "export_onnx",
    "render_example",
    "train",
]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint)."""

    ptbxl: str = "/root/data/ptb-xl"
    output: str = "runs/digitizer"
    folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    px_per_mm: float = 4.0
    crop: int = 256
    pool: int = 16
    steps_per_page: int = 2
    batch_size: int = 6
    width: int = 12
    lr: float = 3e-3
    minutes: float = 45.0
    threads: int = 1
    seed: int = 0
    pos_weight: float = 4.0
    tversky_beta: float = 0.7
    offset_weight: float = 2.0
    dpi_range: tuple[float, float] = (90.0, 260.0)
    thin_traces: float = 0.4
    styles: dict[str, float] = field(
        default_factory=lambda: {"clean": 0.1, "print": 0.2, "scan": 0.3, "photo": 0.4}
    )
    save_seconds: float = 180.0


class _Conv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, *, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(_Conv(c_in, c_out), _Conv(c_out, c_out))


class SegUNet(nn.Module):
    """A U-Net with a strided stem: RGB in 0–1 at ``px_per_mm`` in; out at half that scale
    (``output_stride = 2``) two channels: the trace logit, and on trace cells the vertical
    distance from the cell to the zero line of the lead it belongs to (mm / 10, positive
    downward), which tells the traces of neighbouring rows apart where they cross.

    Five scales (1/2 … 1/32 of the input; at 4 px/mm the deepest cells are 8 mm and the
    receptive field spans a row and its neighbours), ≈ 0.3 M parameters at ``width=12``. The
    full-resolution level is skipped on purpose: the digitizer needs *where* traces are to
    within 0.5 mm, and the stem keeps the cost near 4 k multiply-adds per input pixel. Input
    height and width must be multiples of 32.
    """

    output_stride = 2
    multiple = 32

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        c = [width, 2 * width, 3 * width, 4 * width, 6 * width]
        self.stem = nn.Sequential(_Conv(3, c[0], stride=2), _Conv(c[0], c[0]))
        self.enc = nn.ModuleList([_Block(c[i], c[i + 1]) for i in range(3)])
        self.mid = _Block(c[3], c[4])
        self.up = nn.ModuleList([nn.ConvTranspose2d(c[i + 1], c[i], 2, stride=2) for i in range(4)])
        self.dec = nn.ModuleList([_Block(2 * c[i], c[i]) for i in range(4)])
        self.head = nn.Conv2d(c[0], 2, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for enc in self.enc:
            skips.append(enc(self.pool(skips[-1])))
        y = self.mid(self.pool(skips[-1]))
        for i in (3, 2, 1, 0):
            y = self.dec[i](torch.cat([self.up[i](y), skips[i]], 1))
        return self.head(y)


_LAYOUTS = ("3x4+II", "3x4+II", "3x4+II", "3x4", "3x4+II,V1,V5", "6x2", "6x2+II", "12x1")


def render_example(
    record: Any,
    cfg: TrainConfig,
    rng: np.random.Generator,
    *,
    style: str | None = None,
    dpi: float | None = None,
    layout: str | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Render one page of ``record`` at the model's input scale: the RGB image (H×W×3 uint8)
    and the target at the output scale (2×H/2×W/2 float32): 1 where a trace crosses the
    cell, and there the distance to the zero line of its lead (mm / 10, see :class:`SegUNet`;
    the zero line is a robust straight-line fit through the lead's trace pixels).

    Unset ``style``, ``dpi`` and ``layout`` are drawn from ``rng`` (styles with the weights of
    ``cfg.styles``, DPI in ``cfg.dpi_range``, layouts mostly 3×4+II); the scale then gets
    ±10 % jitter, and a share ``cfg.thin_traces`` of the pages hairline grey traces.
    """
    import cv2

    from ..render import render_page

    names = list(cfg.styles)
    weights = np.asarray([cfg.styles[n] for n in names], dtype=float)
    jitter = style is None
    overrides: dict[str, Any] = {}
    if jitter and rng.random() < cfg.thin_traces:
        # hairline grey traces over a strong grid (ECG-Image-Kit's look at 200 DPI): at the
        # network's scale the trace is fainter than the grid's major lines
        grey = int(rng.integers(20, 120))
        overrides = {"trace_width": float(rng.uniform(0.06, 0.14)),
                     "trace_color": (grey, grey, grey),
                     "grid_major_width": float(rng.uniform(0.1, 0.3))}  # fmt: skip
    page = render_page(
        record,
        layout=layout or str(rng.choice(_LAYOUTS)),
        dpi=float(dpi if dpi is not None else rng.uniform(*cfg.dpi_range)),
        style=style or str(rng.choice(names, p=weights / weights.sum())),
        seed=int(rng.integers(1 << 30)),
        **overrides,
    )
    ppm = page.truth.get("image_px_per_mm") or page.truth.get("px_per_mm", {})
    ppm_x = float(ppm.get("x", 0) if isinstance(ppm, dict) else ppm) or page.truth["dpi"] / 25.4
    scale = cfg.px_per_mm / ppm_x * (float(rng.uniform(0.9, 1.1)) if jitter else 1.0)
    img = cv2.resize(page.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    full = (page.mask > 0).astype(np.float32)
    size = ((w + 1) // 2, (h + 1) // 2)
    half = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
    offset = _zero_line_offsets(page.mask, page.truth["leads"]) / (10.0 * ppm_x)
    off_half = cv2.resize(offset, size, interpolation=cv2.INTER_AREA) / np.maximum(half, 1e-6)
    on = half > 0.02
    target = np.stack([on, np.where(on, off_half, 0.0)]).astype(np.float32)
    return np.ascontiguousarray(img), target


def _zero_line_offsets(mask: NDArray[np.uint8], leads: list[dict[str, Any]]) -> NDArray[np.float32]:
    """Per trace pixel, ``zero line − y`` (pixels) of the printed lead segment it belongs to
    (the segment of its lead whose bounding box holds it); 0 off the traces. A segment's zero
    line is a robust straight-line fit through its trace polyline (so a tilted photo works)."""
    from ..data.record import LEADS

    out = np.zeros(mask.shape, np.float32)
    h, w = mask.shape
    for lead in leads:
        pts = np.asarray(lead.get("pixels") or [], dtype=np.float64).reshape(-1, 2)
        if lead.get("name") not in LEADS or len(pts) < 10:
            continue
        x, y = pts[:, 0], pts[:, 1]
        xm = float(x.mean())
        a, b = float(np.median(y)), 0.0
        for _ in range(3):  # straight line through the bulk of the trace (not its spikes)
            near = np.abs(y - (a + b * (x - xm))) < max(3.0, 0.5 * float(np.std(y)))
            if near.sum() < 10:
                break
            b, a = np.polyfit(x[near] - xm, y[near], 1)
        x0, y0, x1, y1 = (int(round(v)) for v in lead["bbox"])
        x0, y0, x1, y1 = max(0, x0 - 2), max(0, y0 - 2), min(w, x1 + 3), min(h, y1 + 3)
        sub = mask[y0:y1, x0:x1] == LEADS.index(lead["name"]) + 1
        yy, xx = np.nonzero(sub)
        out[yy + y0, xx + x0] = a + b * (xx + x0 - xm) - (yy + y0)
    return out


def _crops(
    pages: list[tuple[NDArray[np.uint8], NDArray[np.float32]]],
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of crops from the page pool, 2/3 of them around a trace, with colour jitter."""
    c, s = cfg.crop, cfg.crop // 2
    xs, ys = [], []
    for i in range(cfg.batch_size):
        img, mask = pages[int(rng.integers(len(pages)))]
        if img.shape[0] < c or img.shape[1] < c:  # tiny page: pad with paper-like reflection
            py, px = max(0, c - img.shape[0]), max(0, c - img.shape[1])
            img = np.pad(img, ((0, py), (0, px), (0, 0)), mode="reflect")
            mask = np.pad(mask, ((0, 0), (0, (py + 1) // 2), (0, (px + 1) // 2)))
        hh, ww = mask.shape[1:]
        on = np.flatnonzero(mask[0].ravel() > 0.5) if i % 3 != 2 else np.empty(0, np.int64)
        if on.size:  # a crop with a trace somewhere in it
            k = int(on[rng.integers(on.size)])
            y0 = int(np.clip(k // ww - rng.integers(s), 0, hh - s))
            x0 = int(np.clip(k % ww - rng.integers(s), 0, ww - s))
        else:
            y0, x0 = int(rng.integers(hh - s + 1)), int(rng.integers(ww - s + 1))
        y0, x0 = min(y0, (img.shape[0] - c) // 2), min(x0, (img.shape[1] - c) // 2)
        crop = img[2 * y0 : 2 * y0 + c, 2 * x0 : 2 * x0 + c].astype(np.float32) / 255.0
        # photometric jitter beyond the renderer's: channel gains, gamma, contrast
        crop = crop * rng.uniform(0.8, 1.1, size=3).astype(np.float32)
        crop = np.clip(crop, 0.0, 1.0) ** np.float32(rng.uniform(0.7, 1.4))
        if rng.random() < 0.2:
            crop = np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
        xs.append(crop.transpose(2, 0, 1))
        ys.append(mask[:, y0 : y0 + s, x0 : x0 + s])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _loss(logits: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """BCE with a positive weight plus a Tversky loss (missed trace costs ``tversky_beta``,
    false trace ``1 - tversky_beta``) over the whole batch (per crop, it would punish any
    trace called on a crop without one); plus a smooth-L1 loss
    of the zero-line offset on trace cells."""
    on = target[:, :1]
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits[:, :1], on, pos_weight=torch.tensor(cfg.pos_weight)
    )
    reg = nn.functional.smooth_l1_loss(logits[:, 1:], target[:, 1:], reduction="none", beta=0.1)
    reg = (reg * on).sum() / on.sum().clamp(min=1.0)
    p = torch.sigmoid(logits[:, :1]).flatten(1)
    t = on.flatten(1)
    tp = (p * t).sum()
    fn = ((1 - p) * t).sum()
    fp = (p * (1 - t)).sum()
    b = cfg.tversky_beta
    tversky = 1 - (tp + 1) / (tp + b * fn + (1 - b) * fp + 1)
    return bce + tversky + cfg.offset_weight * reg


def predict(model: nn.Module, image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Trace probability and zero-line offset (2×H/2×W/2) of a page at the model's input
    scale."""
    h, w = image.shape[:2]
    m = SegUNet.multiple
    x = np.pad(image, ((0, (-h) % m), (0, (-w) % m), (0, 0)), mode="edge")
    with torch.no_grad():
        t = torch.from_numpy(x.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        out = model(t)[0, :, : (h + 1) // 2, : (w + 1) // 2].numpy()
    out[0] = 1 / (1 + np.exp(-out[0]))
    return np.asarray(out, dtype=np.float32)


def evaluate(
    model: nn.Module, pages: list[tuple[str, NDArray[np.uint8], NDArray[np.float32]]]
) -> dict[str, dict[str, float]]:
    """Recall, precision and Dice of ``prob > 0.5`` against the target, and the share of
    true trace cells whose predicted zero line is within 2 mm of the truth (``offset_2mm``),
    per style (and ``'all'``), on ``(style, image, target)`` pages from
    :func:`render_example`."""
    model.eval()
    acc: dict[str, list[float]] = {}
    for style, img, target in pages:
        out = predict(model, img)
        pred, true = out[0] > 0.5, target[0] > 0.5
        good = np.abs(out[1] - target[1])[true] < 0.2
        counts = [float((pred & true).sum()), float(true.sum()), float(pred.sum()),
                  float(good.sum())]  # fmt: skip
        for key in (style, "all"):
            old = acc.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            acc[key] = [a + b for a, b in zip(old, counts, strict=True)]
    res = {}
    for key, (tp, n_true, n_pred, n_good) in acc.items():
        res[key] = {
            "offset_2mm": n_good / max(n_true, 1.0),
            "recall": tp / max(n_true, 1.0),
            "precision": tp / max(n_pred, 1.0),
            "dice": 2 * tp / max(n_true + n_pred, 1.0),
        }
    return res


def validation_pages(
    cfg: TrainConfig, *, n_per_style: int = 2, fold: int = 9
) -> list[tuple[str, NDArray[np.uint8], NDArray[np.float32]]]:
    """Fixed renders of ``fold`` (default 9, never trained on): ``n_per_style`` 3×4+II pages
    at 200 DPI per style, seeded."""
    from ..data.ptbxl import PTBXL

    db = PTBXL(cfg.ptbxl)
    ids = list(db.ecg_ids(folds=[fold], fs=100))
    rng = np.random.default_rng(12345)
    pages = []
    for style in ("clean", "print", "scan", "photo"):
        for _ in range(n_per_style):
            rec = db.record(int(rng.choice(ids)), fs=100)
            img, target = render_example(rec, cfg, rng, style=style, dpi=200, layout="3x4+II")
            pages.append((style, img, target))
    return pages


def export_onnx(model: SegUNet, path: str | os.PathLike[str], cfg: TrainConfig) -> Path:
    """Export to ONNX (dynamic height/width) with ``px_per_mm``, ``output_stride`` and
    ``multiple`` (the size the input is padded to) in the model metadata."""
    meta = {
        "px_per_mm": str(cfg.px_per_mm),
        "output_stride": str(SegUNet.output_stride),
        "multiple": str(SegUNet.multiple),
        "architecture": "SegUNet2",
        "width": str(cfg.width),
        "config": json.dumps(asdict(cfg)),
    }
    return save_onnx(
        model,
        torch.zeros(1, 3, 64, 64),
        path,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {2: "h", 3: "w"}, "logits": {2: "oh", 3: "ow"}},
        metadata=meta,
    )


def train(cfg: TrainConfig, *, resume: bool = True, max_steps: int | None = None) -> Path:
    """Train for ``cfg.minutes`` of wall clock in total (a resumed run continues the budget
    and the learning-rate schedule), or ``max_steps`` more steps; returns the ONNX path."""
    from ..data.ptbxl import PTBXL
    from ..errors import InputFileError

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    model = SegUNet(cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ckpt = out / "checkpoint.pt"
    step, spent = 0, 0.0
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state.get("architecture") != "SegUNet2" or state["config"]["width"] != cfg.width:
            raise InputFileError(
                f"checkpoint {ckpt} is of another network (architecture "
                f"{state.get('architecture', 'TinyUNet')!r}, width {state['config']['width']}); "
                "use another output folder (-o) or start afresh (--no-resume, resume=False)"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, spent = int(state["step"]), float(state["seconds"])
    db = PTBXL(cfg.ptbxl)
    ids = list(db.ecg_ids(folds=list(cfg.folds), fs=100))
    rng = np.random.default_rng(cfg.seed + step)
    start = time.time() - spent
    last_save = time.time()
    losses: list[float] = []
    pool: list[tuple[NDArray[np.uint8], NDArray[np.float32]]] = []
    first = step
    while time.time() - start < cfg.minutes * 60:
        if max_steps is not None and step - first >= max_steps:
            break
        # a pool of rendered pages, one replaced every few steps (rendering costs more)
        need = len(pool) < min(cfg.pool, 2) or step % cfg.steps_per_page == 0
        while need:
            rec = db.record(int(rng.choice(ids)), fs=100)
            try:
                page = render_example(rec, cfg, rng)
            except Exception:  # a record the renderer refuses: take another one
                continue
            if len(pool) < cfg.pool:
                pool.append(page)
            else:
                pool[int(rng.integers(cfg.pool))] = page
            need = len(pool) < min(cfg.pool, 2)
        model.train()
        x_t, y_t = _crops(pool, cfg, rng)
        frac = (time.time() - start) / (cfg.minutes * 60)
        for group in opt.param_groups:  # short warm-up, then cosine decay over the budget
            warm = min(1.0, (step + 1) / 50)
            group["lr"] = cfg.lr * warm * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        loss = _loss(model(x_t), y_t, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            print(f"step {step} loss {np.mean(losses[-20:]):.4f} "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)  # fmt: skip
        if time.time() - last_save > cfg.save_seconds:
            _save(ckpt, model, opt, step, time.time() - start, cfg)
            last_save = time.time()
    _save(ckpt, model, opt, step, time.time() - start, cfg)
    return export_onnx(model, out / "digitizer.onnx", cfg)


def _save(
    path: Path, model: nn.Module, opt: Any, step: int, seconds: float, cfg: TrainConfig
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "seconds": seconds, "config": asdict(cfg), "architecture": "SegUNet2"},
               tmp)  # fmt: skip
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the digitizer's segmentation U-Net.")
    parser.add_argument("--ptbxl", default=TrainConfig.ptbxl)
    parser.add_argument("-o", "--output", default=TrainConfig.output)
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--width", type=int, default=TrainConfig.width)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        ptbxl=args.ptbxl, output=args.output, minutes=args.minutes, threads=args.threads,
        width=args.width, batch_size=args.batch_size,
    )  # fmt: skip
    print(train(cfg, resume=not args.no_resume, max_steps=args.max_steps))


if __name__ == "__main__":
    main()
