"""An on-the-fly PyTorch dataset of rendered pages (torch is imported only when items are built).

>>> from ecgscan.render import RenderDataset                      # doctest: +SKIP
>>> ds = RenderDataset("~/data/ptb-xl", folds=range(1, 9), size=(512, 704), length=10000)
>>> image, mask, truth = ds[0]    # float32 3×512×704 in [0, 1], int64 512×704, dict
>>> loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2,
...                                      collate_fn=RenderDataset.collate)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.record import Record
from ..errors import EcgscanError
from ._degrade import CropPad, Resize, apply_chain
from ._generate import RANDOM_DPIS, RANDOM_LAYOUTS, page_seed

__all__ = ["RenderDataset"]

_FITS = ("letterbox", "crop", "none")
_WORKER_READY: list[bool] = []


class RenderDataset:
    """Pages rendered on the fly from records, one fixed page per index.

    Item ``i`` renders record ``i % n_records`` with a seed derived from (``seed``, record name,
    ``i // n_records``), so the same index always gives the same page, in any worker process,
    and ``length`` larger than the number of records gives new pages of the same records.

    Parameters
    ----------
    records : sequence of Record, or a PTB-XL folder
        The signals. With a folder, records of ``folds`` at ``fs`` Hz are read lazily through
        :class:`ecgscan.data.ptbxl.PTBXL`.
    folds : iterable of int, optional
        PTB-XL folds (folder input only); default all.
    fs : int
        PTB-XL sampling frequency to read (100 or 500).
    length : int, optional
        Number of items (default: the number of records).
    size : (height, width), optional
        Output size in pixels; ``None`` keeps the rendered page size (then batches need the same
        DPI and paper, or ``batch_size=1``).
    fit : {'letterbox', 'crop', 'none'}
        How a page reaches ``size``: scaled to fit and padded with paper colour
        (``'letterbox'``), or a random window at the rendered resolution (``'crop'``).
    layout, dpi, style : str or int
        Passed to :func:`render_page`; ``'random'`` draws a layout (:data:`RANDOM_LAYOUTS`), a DPI
        (100–300) or a style per page.
    seed : int
        Seed of the whole dataset.
    return_truth : bool
        Yield ``(image, mask, truth)`` (default) or ``(image, mask)``.
    overrides : dict, optional
        Extra keyword arguments for :func:`render_page`.
    """

    def __init__(
        self,
        records: Sequence[Record] | str | os.PathLike[str],
        *,
        folds: Iterable[int] | None = None,
        fs: int = 500,
        length: int | None = None,
        size: tuple[int, int] | None = (512, 704),
        fit: str = "letterbox",
        layout: str = "random",
        dpi: int | str = "random",
        style: str = "random",
        seed: int = 0,
        return_truth: bool = True,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        if fit not in _FITS:
            raise EcgscanError(f"fit must be one of {', '.join(map(repr, _FITS))}, got {fit!r}")
        if size is not None and (len(size) != 2 or min(size) < 16):
            raise EcgscanError(f"size must be (height, width) of at least 16 px, got {size!r}")
        self._root: str | None = None
        self._records: list[Record] | None = None
        self._ids: list[int] = []
        ptbxl: Any = None
        if isinstance(records, str | os.PathLike):
            from ..data.ptbxl import PTBXL

            self._root = str(Path(records).expanduser())
            ptbxl = PTBXL(self._root)
            self._ids = ptbxl.ecg_ids(folds=None if folds is None else list(folds), fs=fs)
            n = len(self._ids)
        else:
            self._records = list(records)
            n = len(self._records)
        if n == 0:
            raise EcgscanError("RenderDataset has no record; give records or a PTB-XL folder")
        self.n_records = n
        self.fs = fs
        self.length = int(length) if length is not None else n
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.fit = fit if size is not None else "none"
        self.layout, self.dpi, self.style = layout, dpi, style
        self.seed = int(seed)
        self.return_truth = return_truth
        self.overrides = dict(overrides or {})
        self._ptbxl: Any = ptbxl if self._root is not None else None

    def __len__(self) -> int:
        return self.length

    def _record(self, j: int) -> Record:
        if self._records is not None:
            return self._records[j]
        if self._ptbxl is None:
            from ..data.ptbxl import PTBXL

            self._ptbxl = PTBXL(self._root or "")
        record: Record = self._ptbxl.record(self._ids[j], fs=self.fs)
        return record

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Item ``index`` as numpy arrays (H×W×3 uint8 image, H×W uint8 mask) and its truth."""
        import warnings

        from ._api import render_page
        from ._page import RenderWarning

        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        index %= self.length
        record = self._record(index % self.n_records)
        s = page_seed(self.seed, record.name, index // self.n_records)
        rng = np.random.default_rng([s, 0xDA7A5E7])
        layout = self.layout
        if layout == "random":
            names = [n for n, _ in RANDOM_LAYOUTS]
            p = np.asarray([w for _, w in RANDOM_LAYOUTS])
            layout = names[int(rng.choice(len(names), p=p / p.sum()))]
        dpi = int(rng.choice(RANDOM_DPIS)) if self.dpi == "random" else int(self.dpi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RenderWarning)
            page = render_page(
                record,
                layout=layout,
                dpi=dpi,
                style=self.style,
                seed=s,
                **copy.deepcopy(self.overrides),
            )
        image, mask, truth = page.image, page.mask, page.truth
        if self.size is not None and self.fit != "none":
            th, tw = self.size
            h, w = image.shape[:2]
            if self.fit == "letterbox":
                factor = min(tw / w, th / h)
                rw, rh = max(int(round(w * factor)), 1), max(int(round(h * factor)), 1)
                left, top = (tw - rw) // 2, (th - rh) // 2
                r, g, b = (int(c) for c in np.median(image[:8].reshape(-1, 3), axis=0))
                chain = [
                    Resize(factor),
                    CropPad(left, top, tw - rw - left, th - rh - top, fill=(r, g, b)),
                ]
            else:
                x0 = int(rng.integers(0, max(w - tw, 0) + 1))
                y0 = int(rng.integers(0, max(h - th, 0) + 1))
                chain = [CropPad(-x0, -y0, tw - (w - x0), th - (h - y0))]
            image, mask, truth, _ = apply_chain(image, mask, truth, chain, rng)
        truth["dataset"] = {"index": index, "fit": self.fit, "size": self.size}
        return image, mask, truth

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        import torch

        if torch.utils.data.get_worker_info() is not None and not _WORKER_READY:
            # DataLoader workers: one OpenCV thread each (the workers are the parallelism, and
            # OpenCV's pool does not survive fork() reliably)
            import cv2

            cv2.setNumThreads(1)
            _WORKER_READY.append(True)
        image, mask, truth = self.render(index)
        img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
        msk = torch.from_numpy(mask.astype(np.int64))
        return (img, msk, truth) if self.return_truth else (img, msk)

    @staticmethod
    def collate(batch: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
        """Stack images and masks; truths stay a list (use as a DataLoader ``collate_fn``)."""
        import torch

        images = torch.stack([b[0] for b in batch])
        masks = torch.stack([b[1] for b in batch])
        if len(batch[0]) == 3:
            return images, masks, [b[2] for b in batch]
        return images, masks
