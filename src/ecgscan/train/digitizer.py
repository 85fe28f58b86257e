"""Train the digitizer's trace-segmentation network (a small U-Net) and export it to ONNX.

Pages are rendered on the fly by :func:`ecgscan.render.render_page` from PTB-XL records of the
training folds, in random styles, layouts and resolutions; each page is rescaled to the model's
working scale (``px_per_mm``, 4 px/mm by default, i.e. ~100 DPI) and cut into crops. The target
is the renderer's trace mask (any lead). CPU-only, one thread by default; checkpoints carry
their configuration and training resumes from the last one.

Run::

    python -m ecgscan.train.digitizer --ptbxl /root/data/ptb-xl -o runs/digitizer --minutes 45
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = ["TinyUNet", "TrainConfig", "export_onnx", "render_batch", "train"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint)."""

    ptbxl: str = "/root/data/ptb-xl"
    output: str = "runs/digitizer"
    folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    px_per_mm: float = 4.0
    crop: int = 128
    crops_per_page: int = 16
    pool: int = 24
    batch_size: int = 12
    width: int = 12
    lr: float = 3e-3
    minutes: float = 45.0
    threads: int = 1
    seed: int = 0


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class TinyUNet(nn.Module):
    """A four-level U-Net (≈ 0.2 M parameters at ``width=12``); input RGB in 0–1, output logits.

    Input height and width must be multiples of 8.
    """

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        w = width
        self.enc1 = _Block(3, w)
        self.enc2 = _Block(w, 2 * w)
        self.enc3 = _Block(2 * w, 4 * w)
        self.mid = _Block(4 * w, 6 * w)
        self.up3 = nn.ConvTranspose2d(6 * w, 4 * w, 2, stride=2)
        self.dec3 = _Block(8 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _Block(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = _Block(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        m = self.mid(self.pool(e3))
        d3 = self.dec3(torch.cat([self.up3(m), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


_LAYOUTS = ("3x4+II", "3x4+II", "3x4+II", "3x4", "3x4+II,V1,V5", "6x2", "6x2+II", "12x1")


def render_batch(
    record: Any, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Render one random page of ``record`` and cut ``cfg.crops_per_page`` crops (image, mask)."""
    import cv2

    from ..render import render_page

    page = render_page(
        record,
        layout=str(rng.choice(_LAYOUTS)),
        dpi=float(rng.uniform(90, 260)),
        style="random",
        seed=int(rng.integers(1 << 30)),
    )
    ppm = page.truth.get("px_per_mm", {})
    ppm_x = float(ppm.get("x", 0) if isinstance(ppm, dict) else ppm) or page.truth["dpi"] / 25.4
    scale = cfg.px_per_mm / ppm_x
    img = cv2.resize(page.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    full = (page.mask > 0).astype(np.float32)
    small = cv2.resize(full, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA)
    mask: NDArray[np.float32] = np.clip(small * 2.5, 0.0, 1.0).astype(np.float32)
    h, w = mask.shape
    c = cfg.crop
    if h < c or w < c:
        img = cv2.copyMakeBorder(img, 0, max(0, c - h), 0, max(0, c - w), cv2.BORDER_REFLECT)
        mask = np.asarray(
            cv2.copyMakeBorder(mask, 0, max(0, c - h), 0, max(0, c - w), cv2.BORDER_REFLECT),
            dtype=np.float32,
        )
        h, w = mask.shape
    ys, xs = np.nonzero(mask > 0.5)
    xs_out, ys_out = [], []
    for i in range(cfg.crops_per_page):
        if ys.size and i % 3 != 2:  # mostly crops centred on a trace pixel
            k = int(rng.integers(ys.size))
            y0 = int(np.clip(ys[k] - rng.integers(c), 0, h - c))
            x0 = int(np.clip(xs[k] - rng.integers(c), 0, w - c))
        else:
            y0, x0 = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
        xs_out.append(img[y0 : y0 + c, x0 : x0 + c].transpose(2, 0, 1).astype(np.float32) / 255)
        ys_out.append(mask[None, y0 : y0 + c, x0 : x0 + c])
    return np.stack(xs_out), np.stack(ys_out)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits, target, pos_weight=torch.tensor(3.0)
    )
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def export_onnx(model: TinyUNet, path: str | os.PathLike[str], cfg: TrainConfig) -> Path:
    """Export to ONNX (dynamic height/width) with ``px_per_mm`` in the model metadata."""
    import onnx

    model.eval()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 64, 64)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (dummy,),
        str(tmp),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {2: "h", 3: "w"}, "logits": {2: "h", 3: "w"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    for key, value in {"px_per_mm": str(cfg.px_per_mm), "width": str(cfg.width),
                       "config": json.dumps(asdict(cfg))}.items():  # fmt: skip
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    tmp.unlink(missing_ok=True)
    return out


def train(cfg: TrainConfig, *, resume: bool = True) -> Path:
    """Train for ``cfg.minutes`` of wall clock; returns the exported ONNX path."""
    from ..data.ptbxl import PTBXL

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    db = PTBXL(cfg.ptbxl)
    ids = list(db.ecg_ids(folds=list(cfg.folds), fs=100))
    rng = np.random.default_rng(cfg.seed)
    model = TinyUNet(cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ckpt = out / "checkpoint.pt"
    step, spent = 0, 0.0
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, spent = int(state["step"]), float(state["seconds"])
        rng = np.random.default_rng(cfg.seed + step)
    start = time.time() - spent
    last_save = time.time()
    losses: list[float] = []
    model.train()
    pool: list[tuple[NDArray[np.float32], NDArray[np.float32]]] = []
    while time.time() - start < cfg.minutes * 60:
        # a pool of rendered pages, one replaced per step (rendering costs more than a step)
        while True:
            rec = db.record(int(rng.choice(ids)), fs=100)
            try:
                page = render_batch(rec, cfg, rng)
            except Exception:  # a record the renderer refuses: take another one
                continue
            break
        if len(pool) < cfg.pool:
            pool.append(page)
        else:
            pool[int(rng.integers(cfg.pool))] = page
        pick = [(int(rng.integers(len(pool))), int(rng.integers(cfg.crops_per_page)))
                for _ in range(cfg.batch_size)]  # fmt: skip
        x_t = torch.from_numpy(np.stack([pool[i][0][k] for i, k in pick]))
        y_t = torch.from_numpy(np.stack([pool[i][1][k] for i, k in pick]))
        frac = (time.time() - start) / (cfg.minutes * 60)
        for group in opt.param_groups:  # cosine decay over the time budget
            group["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        loss = _loss(model(x_t), y_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            print(f"step {step} loss {np.mean(losses[-20:]):.4f} "
                  f"{(time.time() - start) / 60:.1f} min", flush=True)  # fmt: skip
        if time.time() - last_save > 180:
            _save(ckpt, model, opt, step, time.time() - start, cfg)
            last_save = time.time()
    _save(ckpt, model, opt, step, time.time() - start, cfg)
    return export_onnx(model, out / "digitizer.onnx", cfg)


def _save(
    path: Path, model: nn.Module, opt: Any, step: int, seconds: float, cfg: TrainConfig
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "seconds": seconds, "config": asdict(cfg)}, tmp)  # fmt: skip
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the digitizer's segmentation U-Net.")
    parser.add_argument("--ptbxl", default=TrainConfig.ptbxl)
    parser.add_argument("-o", "--output", default=TrainConfig.output)
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--width", type=int, default=TrainConfig.width)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        ptbxl=args.ptbxl, output=args.output, minutes=args.minutes, threads=args.threads,
        width=args.width, batch_size=args.batch_size,
    )  # fmt: skip
    print(train(cfg, resume=not args.no_resume))


if __name__ == "__main__":
    main()
