"""Shared training helpers: the PTB-XL signal cache, augmentation that imitates digitization,
and small utilities (seeding, threads, timing) used by every trainer.

Nothing here imports torch at module level, so the cache and the augmentation can be used (and
tested) without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.record import LEADS
from ..errors import EcgscanError

__all__ = [
    "SUPERCLASSES",
    "AugmentConfig",
    "SignalCache",
    "augment_batch",
    "digitized_copies",
    "load_digitized_copies",
    "load_signal_cache",
    "set_threads",
    "superclass_matrix",
]


def set_threads(n: int = 1) -> None:
    """Limit numerical libraries (and torch, if imported) to ``n`` threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    import torch

    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # already set once in this process
        torch.set_num_interop_threads(n)


# ---------------------------------------------------------------------------------- cache
@dataclass(frozen=True)
class SignalCache:
    """All PTB-XL signals of some records at one sampling frequency, in memory.

    Attributes
    ----------
    ecg_ids : ndarray of int, shape (n,)
    signals : ndarray of float32, shape (n, 12, n_samples)
        Millivolts, standard lead order; NaN where a sample is unknown.
    fs : float
    """

    ecg_ids: NDArray[np.int64]
    signals: NDArray[np.float32]
    fs: float

    def index(self, ecg_ids: Sequence[int]) -> NDArray[np.int64]:
        """Row positions of ``ecg_ids`` in the cache (raises for ids that are not cached)."""
        pos = {int(e): i for i, e in enumerate(self.ecg_ids)}
        missing = [int(e) for e in ecg_ids if int(e) not in pos]
        if missing:
            raise EcgscanError(
                f"{len(missing)} ecg_id(s) are not in the signal cache (first: {missing[:5]}); "
                "rebuild it with the same record list"
            )
        return np.array([pos[int(e)] for e in ecg_ids], dtype=np.int64)


def load_signal_cache(
    ptbxl_root: str | os.PathLike[str],
    ecg_ids: Sequence[int],
    *,
    fs: float = 100,
    n_samples: int = 1000,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = False,
) -> SignalCache:
    """Read PTB-XL records into one array, caching it as ``.npy`` in ``cache_dir``.

    The cache file name is derived from the record list, ``fs`` and ``n_samples``, so a different
    selection never reads a stale cache. Records are read with
    the WFDB reader (file names from ``ptbxl_database.csv``; ``records100`` up to 100 Hz,
    ``records500`` above) and resampled to ``fs`` (NaN-aware) when needed.

    Parameters
    ----------
    ptbxl_root : path
        An unpacked PTB-XL folder.
    ecg_ids : sequence of int
        The records to load, in the order wanted.
    fs : float
        Sampling frequency of the cache (100 Hz reads ``records100`` directly).
    n_samples : int
        Samples per record (cropped or NaN-padded).
    cache_dir : path, optional
        Where to keep the ``.npy``; ``None`` disables the on-disk cache.
    """
    import pandas as pd

    from ..data.record import Record

    ids = np.asarray([int(e) for e in ecg_ids], dtype=np.int64)
    key = hashlib.sha1(
        json.dumps([str(Path(ptbxl_root).resolve()), float(fs), n_samples, ids.tolist()]).encode()
    ).hexdigest()[:16]
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"ptbxl-{fs:g}hz-{n_samples}-{len(ids)}-{key}.npy"
        if path.is_file():
            return SignalCache(ids, np.load(path, mmap_mode=None), float(fs))
    root = Path(ptbxl_root)
    column = "filename_lr" if fs <= 100 else "filename_hr"
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id", usecols=["ecg_id", column])
    out = np.full((len(ids), len(LEADS), n_samples), np.nan, dtype=np.float32)
    t0 = time.monotonic()
    for i, ecg_id in enumerate(ids):
        rec = Record.from_wfdb(root / str(db.at[int(ecg_id), column])).standard()
        if rec.fs != fs:
            rec = rec.resample(fs)
        n = min(n_samples, rec.n_samples)
        out[i, :, :n] = rec.signal[:n].T
        if verbose and (i + 1) % 2000 == 0:
            print(
                f"  cached {i + 1}/{len(ids)} records ({time.monotonic() - t0:.0f} s)", flush=True
            )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return SignalCache(ids, out, float(fs))


# --------------------------------------------------------------------------- superclasses
#: The PTB-XL diagnostic superclasses (the second head of the signal models).
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")


def superclass_matrix(
    scp_codes: Sequence[Mapping[str, float]], scp_statements: Any
) -> NDArray[np.float32]:
    """Multi-hot diagnostic superclasses (order :data:`SUPERCLASSES`) from PTB-XL ``scp_codes``.

    As in the PTB-XL benchmark (Strodthoff et al. 2021) and the Challenge's rule: every statement
    of a record that is diagnostic in ``scp_statements.csv`` contributes its ``diagnostic_class``,
    whatever its likelihood.
    """
    from ..data.ptbxl import superclass_map

    mapping = superclass_map(scp_statements)
    index = {name: i for i, name in enumerate(SUPERCLASSES)}
    out = np.zeros((len(scp_codes), len(SUPERCLASSES)), dtype=np.float32)
    for r, codes in enumerate(scp_codes):
        for code in codes:
            cls = mapping.get(code)
            if cls in index:
                out[r, index[cls]] = 1.0
    return out


# ---------------------------------------------------------------------------- augmentation
#: Lead groups of the two common printed layouts: lead indices per column.
_LAYOUT_3X4 = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11))
_LAYOUT_6X2 = ((0, 1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11))
_RHYTHM_LEADS = (1, 6, 10)  # II, V1, V5


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths of the digitization-like augmentations.

    See :func:`augment_batch`; mV for amplitudes, relative for gain and time scale, samples for
    jitter.
    """

    p: float = 0.8
    noise_mv: float = 0.05
    wander_mv: float = 0.3
    gain: float = 0.2
    time_scale: float = 0.08
    jitter_samples: float = 0.6
    p_layout: float = 0.5
    p_drop: float = 0.2
    p_gap: float = 0.15
    p_quantize: float = 0.3

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def augment_batch(
    x: NDArray[np.float32],
    rng: np.random.Generator,
    *,
    fs: float,
    config: AugmentConfig | None = None,
) -> NDArray[np.float32]:
    """Distort a batch of clean signals the way digitizing a paper ECG does.

    Each record is, with probability ``config.p``, given: Gaussian noise, baseline wander
    (sum of slow sinusoids), per-lead and global gain errors, a time-scale error (resampling by
    up to ±``time_scale``), sample jitter (a smooth random time warp) and amplitude quantisation
    (pixel steps). Independently, leads are cut to their windows of a 3×4 or 6×2 page (one full
    rhythm lead kept), whole leads are dropped, and NaN gaps are inserted. Unknown samples become
    NaN, exactly as the digitizer reports them.

    Parameters
    ----------
    x : ndarray, shape (batch, 12, n_samples)
        Signals in mV (NaN allowed); not modified.
    rng : numpy Generator
    fs : float
        Sampling frequency in Hz (sets the time scales of wander and windows).
    config : AugmentConfig, optional
    """
    cfg = config or AugmentConfig()
    out = np.array(x, dtype=np.float32, copy=True)
    b, n_leads, n = out.shape
    t = np.arange(n, dtype=np.float32) / fs
    base = np.arange(n, dtype=np.float64)
    for i in range(b):
        if rng.random() >= cfg.p:
            continue
        sig = out[i]
        # time-scale error and jitter: one smooth random warp of the time axis about a random
        # centre; samples that fall outside the record become unknown (NaN)
        scale = 1.0 + rng.uniform(-cfg.time_scale, cfg.time_scale)
        centre = rng.uniform(0.3, 0.7) * n
        knots = rng.normal(0.0, cfg.jitter_samples, size=8)
        warp = np.interp(base, np.linspace(0, n - 1, 8), knots)
        src = (base - centre) * scale + centre + warp
        sig = np.stack([np.interp(src, base, lead, left=np.nan, right=np.nan) for lead in sig])
        sig = sig.astype(np.float32)
        # gains
        sig *= np.float32(1.0 + rng.uniform(-cfg.gain, cfg.gain) * 0.5)
        sig *= (1.0 + rng.uniform(-cfg.gain, cfg.gain, size=(n_leads, 1)) * 0.5).astype(np.float32)
        # baseline wander
        amp = rng.uniform(0, cfg.wander_mv)
        freq = rng.uniform(0.05, 0.6, size=(n_leads, 2))
        phase = rng.uniform(0, 2 * np.pi, size=(n_leads, 2))
        w = np.sin(2 * np.pi * freq[:, :, None] * t[None, None, :] + phase[:, :, None]).sum(1)
        sig += (amp * 0.5 * w).astype(np.float32)
        # noise and quantisation
        sig += rng.normal(0.0, rng.uniform(0, cfg.noise_mv), size=sig.shape).astype(np.float32)
        if rng.random() < cfg.p_quantize:
            step = np.float32(rng.uniform(0.005, 0.04))
            sig = np.round(sig / step) * step
        out[i] = sig
    # missing data: page layouts, dropped leads, gaps (independent of the distortions above)
    for i in range(b):
        if rng.random() < cfg.p_layout:
            layout = _LAYOUT_3X4 if rng.random() < 0.75 else _LAYOUT_6X2
            width = n // len(layout)
            keep = np.zeros((n_leads, n), dtype=bool)
            for col, leads in enumerate(layout):
                keep[list(leads), col * width : (col + 1) * width] = True
            n_rhythm = rng.choice([0, 1, 1, 1, 3])
            for lead in rng.permutation(_RHYTHM_LEADS)[:n_rhythm]:
                keep[lead] = True
            out[i][~keep] = np.nan
        if rng.random() < cfg.p_drop:
            k = rng.integers(1, 4)
            out[i, rng.choice(n_leads, size=k, replace=False)] = np.nan
        if rng.random() < cfg.p_gap:
            for _ in range(rng.integers(1, 4)):
                lead = rng.integers(n_leads)
                start = rng.integers(n)
                out[i, lead, start : start + rng.integers(int(0.1 * fs), int(1.5 * fs))] = np.nan
    return out


# ---------------------------------------------------------------------------- ONNX export
def save_onnx(
    model: Any,
    dummy: Any,
    path: str | os.PathLike[str],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    metadata: Mapping[str, str],
) -> Path:
    """Export a PyTorch ``model`` (eval mode) on the input ``dummy`` to ONNX at ``path``, with
    ``metadata`` as the file's metadata properties; checked, and written through a temporary
    file so ``path`` is never left half written."""
    import warnings

    import onnx
    import torch

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    # The TorchScript exporter handles these plain CNNs exactly and needs no extra dependency
    # (the dynamo exporter needs onnxscript); silence its deprecation notice, and the tracer's
    # notes on nn.GRU's input-size checks (the GRU is exported as one ONNX GRU node, whose
    # length and batch follow the input: the tests compare it with torch at other lengths).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # (exported at batch 1, as that note asks; other batch sizes are tested)
        warnings.filterwarnings("ignore", message=".*variable length with GRU.*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            model.eval(),
            (dummy,),
            str(tmp),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    return out


# ----------------------------------------------------------------------------- page cache
#: Printed layouts of the rendered training pages and how often each is drawn.
PAGE_LAYOUTS: tuple[tuple[str, float], ...] = (
    ("3x4+II", 0.55),
    ("6x2", 0.2),
    ("3x4", 0.1),
    ("3x4+II,V1,V5", 0.1),
    ("12x1", 0.05),
)


def render_page_cache(
    ptbxl_root: str | os.PathLike[str],
    ecg_ids: Sequence[int] | NDArray[np.integer[Any]],
    *,
    size: Sequence[int] = (384, 512),
    dpi: tuple[float, float] = (72.0, 96.0),
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    max_minutes: float | None = None,
    verbose: bool = False,
) -> tuple[NDArray[np.uint8], int]:
    """Render one page per record (random style and layout) as grey thumbnails, cached.

    Pages come from :func:`ecgscan.render.render_page` with ``style='random'``, a layout drawn
    from :data:`PAGE_LAYOUTS` and a resolution drawn in ``dpi`` (see :func:`render_cached`);
    each page is reduced with :func:`ecgscan.classify._image.page_thumbnail`.

    Returns
    -------
    thumbnails : ndarray of uint8, shape (n, height, width)
        Zero for the pages not rendered yet.
    n_done : int
        How many pages (the first ones) are rendered.
    """
    from ..classify._image import page_thumbnail

    h, w = int(size[0]), int(size[1])

    def thumbnail(page: Any) -> NDArray[np.uint8]:
        return page_thumbnail(page.image, size=(h, w))

    arrays, done = render_cached(
        ptbxl_root, ecg_ids, {"pages": ((h, w), thumbnail)}, name=f"pages-{h}x{w}", dpi=dpi,
        seed=seed, cache_dir=cache_dir, max_minutes=max_minutes, verbose=verbose,
    )  # fmt: skip
    return arrays["pages"], done


def digitized_copies(
    ptbxl_root: str | os.PathLike[str],
    ecg_ids: Sequence[int] | NDArray[np.integer[Any]],
    *,
    fs: float = 100.0,
    n_samples: int = 1000,
    dpi: tuple[float, float] = (120.0, 300.0),
    seed: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    max_minutes: float | None = None,
    verbose: bool = False,
) -> tuple[NDArray[np.float32], int]:
    """Records as the digitizer returns them from their rendered pages, cached.

    Each record is drawn on one page (random style and layout, a resolution in ``dpi``; see
    :func:`render_cached`) and read back by :func:`ecgscan.digitize.digitize` at ``fs`` and
    ``n_samples``: the real errors of the whole pipeline (timing, gain, baseline, traces lost
    or confused, leads known only in their printed windows), for training the signal models on
    them next to the synthetic distortions of :func:`augment_batch`. A page the digitizer
    rejects gives an all-NaN record. The cache (``digitized-<n>-<key>.signals.npy`` and its
    ``.ecg_ids.npy``) is read by :func:`load_digitized_copies`.

    Returns
    -------
    signals : ndarray of float32, shape (n, 12, n_samples)
        mV, NaN where unknown; the records not digitized yet are zero.
    n_done : int
        How many records (the first ones) are done.
    """
    from ..digitize import digitize
    from ..errors import EcgscanError

    def read_back(page: Any) -> NDArray[np.float32]:
        try:
            rec = digitize(page.image, fs=fs, samples=n_samples).record.standard()
        except EcgscanError:
            return np.full((len(LEADS), n_samples), np.nan, np.float32)
        return np.asarray(rec.signal.T, dtype=np.float32)

    arrays, done = render_cached(
        ptbxl_root, ecg_ids, {"signals": ((len(LEADS), n_samples), read_back)},
        name="digitized", dpi=dpi, seed=seed, cache_dir=cache_dir, max_minutes=max_minutes,
        dtype=np.float32, verbose=verbose,
    )  # fmt: skip
    return arrays["signals"], done


def load_digitized_copies(
    folder: str | os.PathLike[str], ecg_ids: Sequence[int] | NDArray[np.integer[Any]]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The digitized copies (:func:`digitized_copies`) of some records, from every cache in
    ``folder``.

    Returns
    -------
    rows : ndarray of int, shape (m,)
        Positions in ``ecg_ids`` of the records that have a copy (one copy per record: the
        first found; copies the digitizer rejected are left out).
    signals : ndarray of float32, shape (m, 12, n_samples)
    """
    files = sorted(Path(folder).glob("digitized-*.ecg_ids.npy"))
    if not files:
        raise EcgscanError(
            f"no digitized copies in {str(folder)!r}; make them with "
            "ecgscan.train._common.digitized_copies (cache_dir=that folder)"
        )
    where = {int(e): i for i, e in enumerate(ecg_ids)}
    rows: list[int] = []
    seen: set[int] = set()
    chunks: list[NDArray[np.float32]] = []
    for file in files:
        base = file.name[: -len(".ecg_ids.npy")]
        progress = file.with_name(base + ".json")
        if not progress.is_file():
            continue
        done = int(json.loads(progress.read_text())["done"])
        ids = np.load(file)[:done]
        signals = np.load(file.with_name(base + ".signals.npy"), mmap_mode="r")
        for k, e in enumerate(ids):
            i = where.get(int(e))
            if i is None or i in seen or np.isnan(signals[k]).all():
                continue
            seen.add(i)
            rows.append(i)
            chunks.append(np.asarray(signals[k]))
    if not chunks:
        return np.zeros(0, np.int64), np.zeros((0, len(LEADS), 0), np.float32)
    return np.asarray(rows, np.int64), np.stack(chunks)


def render_cached(
    ptbxl_root: str | os.PathLike[str],
    ecg_ids: Sequence[int] | NDArray[np.integer[Any]],
    outputs: Mapping[str, tuple[tuple[int, int], Callable[[Any], NDArray[Any]]]],
    *,
    name: str,
    dpi: tuple[float, float] = (72.0, 96.0),
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    max_minutes: float | None = None,
    dtype: type[np.generic] = np.uint8,
    verbose: bool = False,
) -> tuple[dict[str, NDArray[Any]], int]:
    """Render one page per record and keep what ``outputs`` take from it, cached.

    Each record's page is drawn with its own generator (``seed`` and the ``ecg_id``): a layout
    from :data:`PAGE_LAYOUTS` (3x4+II where the style's paper cannot hold it), a resolution in
    ``dpi``, ``style='random'``; so every caller gets the same page for a record. ``outputs``
    maps a name to the shape of its array per page and the function that computes it from the
    :class:`~ecgscan.render.RenderedPage`. With ``cache_dir`` the arrays are ``.npy`` memory
    maps ``<name>-<n>-<key>.<output>.npy`` written as the pages are rendered, and an
    interrupted run resumes where it stopped (the progress count is in a ``.json`` next to
    them, the records' ids in ``<name>-<n>-<key>.ecg_ids.npy``); ``max_minutes`` stops
    rendering after that time. ``dtype`` is the arrays' type.

    Returns
    -------
    arrays : dict of ndarray of ``dtype``, shape (n, *shape)
        Per output; zero for the pages not rendered yet.
    n_done : int
        How many pages (the first ones) are rendered.
    """
    import warnings

    import pandas as pd

    from ..data.record import Record
    from ..errors import LayoutError
    from ..render import render_page

    ids = np.asarray([int(e) for e in ecg_ids], dtype=np.int64)
    shapes = {k: (int(v[0][0]), int(v[0][1])) for k, v in outputs.items()}
    key = hashlib.sha1(
        json.dumps(
            [str(Path(ptbxl_root).resolve()), shapes, list(dpi), seed, ids.tolist()]
            + ([] if dtype is np.uint8 else [np.dtype(dtype).str])
        ).encode()
    ).hexdigest()[:16]
    done = 0
    progress = None
    arrays: dict[str, NDArray[Any]] = {}
    if cache_dir is None:
        arrays = {k: np.zeros((len(ids), *shape), dtype) for k, shape in shapes.items()}
    else:
        base = Path(cache_dir) / f"{name}-{len(ids)}-{key}"
        paths = {k: base.with_name(f"{base.name}.{k}.npy") for k in shapes}
        progress = base.with_name(base.name + ".json")
        base.parent.mkdir(parents=True, exist_ok=True)
        if progress.is_file() and all(p.is_file() for p in paths.values()):
            done = int(json.loads(progress.read_text())["done"])
            arrays = {k: np.load(p, mmap_mode="r+") for k, p in paths.items()}
        else:
            arrays = {k: np.lib.format.open_memmap(p, mode="w+", dtype=dtype,
                                                   shape=(len(ids), *shapes[k]))
                      for k, p in paths.items()}  # fmt: skip
            np.save(base.with_name(base.name + ".ecg_ids.npy"), ids)
        if done >= len(ids):
            return {k: np.asarray(a) for k, a in arrays.items()}, done
    root = Path(ptbxl_root)
    db = pd.read_csv(
        root / "ptbxl_database.csv", index_col="ecg_id", usecols=["ecg_id", "filename_lr"]
    )
    names = [layout for layout, _ in PAGE_LAYOUTS]
    weights = np.asarray([p for _, p in PAGE_LAYOUTS])
    weights = weights / weights.sum()
    t0 = time.monotonic()

    def flush() -> None:
        if progress is not None:
            for a in arrays.values():
                assert isinstance(a, np.memmap)
                a.flush()
            progress.write_text(json.dumps({"done": done}))

    for i in range(done, len(ids)):
        if max_minutes is not None and time.monotonic() - t0 > 60 * max_minutes:
            break
        rng = np.random.default_rng([seed, int(ids[i])])
        rec = Record.from_wfdb(root / str(db.at[int(ids[i]), "filename_lr"]))
        layout = names[int(rng.choice(len(names), p=weights))]
        page_dpi, page_seed = float(rng.uniform(*dpi)), int(rng.integers(2**31))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                page = render_page(rec, layout=layout, dpi=page_dpi, style="random", seed=page_seed)
            except LayoutError:  # e.g. 12 rows on a style's small paper: the common layout
                page = render_page(rec, layout="3x4+II", dpi=page_dpi, style="random",
                                   seed=page_seed)  # fmt: skip
        for k, (_, make) in outputs.items():
            arrays[k][i] = make(page)
        done = i + 1
        if done % 50 == 0:
            flush()
        if verbose and done % 250 == 0:
            print(f"  rendered {done}/{len(ids)} pages ({time.monotonic() - t0:.0f} s)", flush=True)
    flush()
    return {k: np.asarray(a) for k, a in arrays.items()}, done


def page_ecg_ids(
    ecg_ids_train: Sequence[int],
    ecg_ids_val: Sequence[int],
    *,
    n_train: int,
    n_val: int,
    seed: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The records to render pages of: random subsets of both splits, interleaved.

    The two subsets are merged evenly (every prefix of the list holds the same share of
    validation records), so a page cache cut short still has both splits.

    Returns
    -------
    ecg_ids : ndarray of int
    is_val : ndarray of bool
        True for the validation records.
    """
    rng = np.random.default_rng(seed)
    va = rng.permutation(np.asarray(ecg_ids_val, dtype=np.int64))[:n_val]
    tr = rng.permutation(np.asarray(ecg_ids_train, dtype=np.int64))[:n_train]
    key = np.concatenate([(np.arange(len(va)) + 0.5) / max(len(va), 1),
                          (np.arange(len(tr)) + 0.5) / max(len(tr), 1)])  # fmt: skip
    order = np.argsort(key, kind="stable")
    ids = np.concatenate([va, tr])[order]
    is_val = np.concatenate([np.ones(len(va), bool), np.zeros(len(tr), bool)])[order]
    return ids, is_val
