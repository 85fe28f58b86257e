"""Stage 6: trace segmentation — the probability that each pixel belongs to an ECG trace,
and which row's trace it is.

Methods
-------
``'darkness'``
    Classical: the trace is the darkest, least coloured ink on the page (blue ink counts as
    dark on pages whose ink is blue, :func:`blue_ink`). Darkness relative to
    the local paper brightness, thresholded between the trace's ink level and the darkest
    background's (:func:`ink_levels`, robust to 1-15 % ink coverage).
``'rows'`` (``'auto'`` when the network is installed)
    The darkness map, and a small U-Net trained on our renders (:mod:`ecgscan.train.digitizer`,
    run with ONNX Runtime at 4 px/mm) tells the rows apart where traces cross: for each trace
    pixel it predicts the distance to the zero line of the lead it belongs to, and each row's
    band loses the ink of its neighbours (:func:`own_row`). The network runs only on pages
    where ink crosses between rows.
``'unet'`` (experimental)
    As ``'rows'``, and the darkness map is gated to the ink the network calls trace (removing
    grid, text and noise). Worse than ``'rows'`` on ECG-Image-Kit pages, whose hairline traces
    the network misses in places (see its model card).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SEGMENTATION_METHODS",
    "TraceMaps",
    "blue_ink",
    "faint_stroke_tiers",
    "faint_strokes",
    "gate",
    "ink_levels",
    "model_path",
    "own_row",
    "segment_traces",
    "trace_maps",
    "unet_gate",
    "unet_maps",
    "unet_probability",
]


def blue_ink(image: NDArray[np.uint8], px_per_mm: float, *, min_share: float = 0.2) -> bool:
    """Whether the page's dark ink is blue (a blue pen's traces), not black.

    The ink is what is dark in red and green against the local paper (under 0.4 × the
    brightest red/green within 2 mm: scanner beds, photo backgrounds and the page's tint are
    their own paper); it is blue when at least ``min_share`` of it is brighter in blue than
    in red and green by a quarter of the paper's level. Black traces and text give 0-2 %,
    navy traces 30-50 % (with much black text, a black or blue grid) and more.
    """
    import cv2

    step = max(1, int(round(px_per_mm / 3.0)))  # about 3 px/mm: enough for 0.3-mm strokes
    small = image[::step, ::step]
    rg = np.ascontiguousarray(np.maximum(small[:, :, 0], small[:, :, 1]))
    blue = np.ascontiguousarray(small[:, :, 2])
    k = max(3, int(round(2.0 * px_per_mm / step)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    paper_rg = cv2.dilate(rg, kernel)
    dark = rg.astype(np.float32) < 0.4 * paper_rg
    if dark.sum() < 100:
        return False
    paper_b = cv2.dilate(blue, kernel)[dark].astype(np.float32)
    bluer = (blue[dark] / np.maximum(paper_b, 1.0)
             - rg[dark] / np.maximum(paper_rg[dark].astype(np.float32), 1.0)) > 0.25  # fmt: skip
    return float(np.mean(bluer)) >= min_share


def _dark_map(
    image: NDArray[np.uint8], px_per_mm: float
) -> tuple[NDArray[np.float32], NDArray[np.bool_], float, float]:
    """Darkness relative to the local paper (0 paper … 1 black), the sheet mask, and the ink
    levels of the trace and of the darkest background (see :func:`ink_levels`)."""
    import cv2

    # coloured grid lines stay bright in the HSV value channel (max of R, G, B); a blue pen's
    # trace would too (navy ink is as light there as a dark grid line): on pages whose ink is
    # blue the blue channel is left out (red, pink, orange and green grids stay bright)
    rg = np.maximum(image[:, :, 0], image[:, :, 1])
    value = rg if blue_ink(image, px_per_mm) else np.maximum(rg, image[:, :, 2])
    # light smoothing against sensor and JPEG noise (a trace is wider than 0.2 mm), only on
    # noisy pages: it costs sharpness on clean ones
    sub = value[:: max(1, value.shape[0] // 400), :: max(1, value.shape[1] // 400)]
    noise = float(np.median(np.abs(sub.astype(np.int16) - cv2.medianBlur(sub, 3))))
    if noise >= 2.0 and 0.08 * px_per_mm >= 0.4:
        value = cv2.GaussianBlur(value, (0, 0), 0.08 * px_per_mm)
    k = max(3, int(round(px_per_mm * 2.0)) | 1)
    paper = cv2.dilate(value, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.blur(paper, (k, k)).astype(np.float32)
    norm = value.astype(np.float32) / np.maximum(paper, 1.0)
    dark = (1.0 - np.clip(norm, 0.0, 1.0)).astype(np.float32)  # 0 on paper, ~1 on black ink
    # the sheet itself: bright on average over a few millimetres (thin ink does not darken
    # that much); margins, scanner beds and the fill of a rotation do
    kb = max(3, int(round(px_per_mm * 4.0)) | 1)
    mean = cv2.blur(value, (kb, kb)).astype(np.float32)
    sheet = mean > 0.45 * float(np.percentile(value, 90))
    ke = max(3, int(round(px_per_mm * 1.5)) | 1)  # and not the ragged edge of the margin
    sheet = cv2.erode(sheet.astype(np.uint8), np.ones((ke, ke), np.uint8)).astype(bool)
    if sheet.mean() <= 0.3:
        sheet = np.ones_like(sheet)
    trace, background = ink_levels(dark, sheet, px_per_mm=px_per_mm)
    return dark, sheet, trace, background


def ink_levels(
    dark: NDArray[np.float32], sheet: NDArray[np.bool_], *, px_per_mm: float
) -> tuple[float, float]:
    """The darkness of the traces' ink and of the darkest background (grid lines, paper
    texture), measured so that dense pages (traces covering up to ~15 % of the sheet) keep
    their traces.

    Parameters
    ----------
    dark : ndarray, float32, H×W
        Darkness relative to the local paper (0 paper … 1 black).
    sheet : ndarray, bool, H×W
        The page's own area (margins and scanner beds excluded).
    px_per_mm : float
        Page scale.

    Returns
    -------
    trace : float
        The 99.7th percentile of the sheet (the darkest ink), unless the traces are clearly
        lighter than that (faded traces beside black text): every column of a page crosses
        its traces, and a trace is a horizontal run of ink, so the median over the sheet's
        columns of each column's darkest 3-pixel horizontal run (isolated noise and vertical
        grid lines do not make one) is the traces' level; it is used when below 0.75 × the
        99.7th percentile and less than a tenth of the sheet is 0.8 × that dark.
    background : float
        The darkness the darkest few per cent of the sheet reach besides the traces: the 96th
        percentile of the sheet (grid lines, or the blurred halo of thin traces on a photo).
        It lies inside the traces' own ink once they cover more than about 4 % of the page
        (12×1 pages, dense pages at 100 DPI); then the 98th percentile of the sheet more than
        0.5 mm from ink at least 0.8 × ``trace`` dark takes its place (the grid's darkest
        lines whatever the ink coverage): fully when the 96th percentile is 0.9 × ``trace``
        or more, in proportion from 0.8 × ``trace`` up (a dark printed grid can reach 0.75 ×).
        That far level is at least the darkness of the grid's darkest lines as the columns
        show them (the 98th percentile of the columns' median darkness: a vertical grid
        line is dark over most of its column, a trace over none): a dark grid's lines at
        0.8 × ``trace`` or more fall in the traces' core and were left out of it too.
    """
    import cv2

    inside = dark[sheet]
    if inside.size == 0:
        return 1.0, 0.0
    p96, top = (float(v) for v in np.percentile(inside, [96.0, 99.7]))
    runs = cv2.erode(np.where(sheet, dark, np.float32(0.0)), np.ones((1, 3), np.uint8))
    cols = sheet.mean(axis=0) > 0.5
    runs_level = float(np.median(runs.max(axis=0)[cols])) if cols.any() else top
    # (trusted only when ink that dark is sparse, as traces are: not on noise)
    sparse = float(np.mean(inside >= 0.8 * runs_level)) < 0.1
    trace = runs_level if runs_level < 0.75 * top and sparse else top
    share = float(np.clip((p96 / max(trace, 1e-6) - 0.8) / 0.1, 0.0, 1.0))
    if share == 0.0:
        return trace, p96
    k = max(3, int(round(px_per_mm)) | 1)
    core = cv2.dilate((dark >= 0.8 * trace).astype(np.uint8), np.ones((k, k), np.uint8))
    rest = dark[sheet & ~core.astype(bool)]
    far = float(np.percentile(rest, 98.0)) if rest.size >= 100 else 0.0
    # a dark grid's major lines are 0.8 × the trace's darkness or more too, and fall in the
    # core left out above: they are found as the columns dark over most of their length
    # (no trace is), the 98th percentile of the columns' median darkness
    # (on rows about 1/3 mm apart, each column contiguous: a median over the full page
    # costs more than the rest of the map)
    step = max(1, int(round(px_per_mm / 3.0)))
    cols = sheet.mean(axis=0) > 0.5
    if cols.sum() >= 50:
        by_col = np.ascontiguousarray(np.where(sheet[::step], dark[::step], np.float32(0.0)).T)
        half = by_col.shape[1] // 2
        lines = np.partition(by_col[cols], half, axis=1)[:, half]
        far = max(far, float(np.percentile(lines, 98.0)))
    return trace, min(trace, (1.0 - share) * p96 + share * far)


def faint_strokes(
    dark: NDArray[np.float32],
    sheet: NDArray[np.bool_],
    *,
    trace: float,
    background: float,
    px_per_mm: float,
    contrast: float = 0.3,
    grid_span: float = 20.0,
    tail: float = 0.5,
) -> NDArray[np.bool_]:
    """The pixels of thin steep strokes too faint for the darkness threshold, joined to the
    trace's confident ink.

    A steep stroke (the sides of a QRS complex) drawn with a thin pen on a low-resolution
    scan or a blurred photo covers only part of each pixel it crosses, so it is lighter
    than the flat parts of the same trace and breaks into fragments at the threshold; the
    trace would then be followed along the baseline and its R waves lost. A pixel is taken
    as such a stroke's when it is

    * at least as dark as the background level (the grid's darkest lines stay out),
    * a vertical ridge: darker than the mean of the valleys on either side (on each side
      the lighter of the pixels one and two columns away, so that the other stroke of a
      narrow spike two columns away is no valley) by ``contrast`` × (``trace`` −
      ``background``) (flat traces, their blurred halo and horizontal grid lines are not),
    * not the faint fringe of a darker horizontal neighbour (under 0.6 × its darkness) nor
      beside confident ink in its row (the edge of a wider stroke, which needs no help),
    * not on a vertical grid line (where ridges at least 0.8 × the background's darkness
      cover 60 % or more of ``grid_span`` mm of the column: a QRS stroke leaves its column
      sooner), and
    * connected (8-neighbourhood, through other such pixels) to ink above the darkness
      threshold (hysteresis): isolated specks and grid lines away from the traces are left
      out, and
    * not the end of a solid stroke or bar (a run of such pixels in a column, up to ``tail``
      mm long, with confident ink right above or below it and none beyond): a stroke's
      anti-aliased end is not lengthened.

    Parameters
    ----------
    dark : ndarray, float32, H×W
        Darkness relative to the local paper (0 paper … 1 black).
    sheet : ndarray, bool, H×W
        The page's own area.
    trace, background : float
        Ink levels of the traces and of the darkest background (:func:`ink_levels`).
    px_per_mm : float
        Page scale.
    contrast : float
        The ridge's least depth, as a fraction of ``trace - background``.
    grid_span : float
        Length (mm) over which a column's ridges are counted to find vertical grid lines.
    tail : float
        Longest anti-aliased end (mm) of a solid stroke that is left out.

    Returns
    -------
    ndarray, bool, H×W
        The stroke pixels below the darkness threshold (the confident ink is not included).
    """
    return faint_stroke_tiers(dark, sheet, trace=trace, background=background,
                              px_per_mm=px_per_mm, contrast=contrast, grid_span=grid_span,
                              tail=tail, weak=None)[0]  # fmt: skip


def faint_stroke_tiers(
    dark: NDArray[np.float32],
    sheet: NDArray[np.bool_],
    *,
    trace: float,
    background: float,
    px_per_mm: float,
    contrast: float = 0.3,
    grid_span: float = 20.0,
    tail: float = 0.5,
    weak: float | None = 0.6,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """:func:`faint_strokes`, and the same strokes down to ``weak`` × the background's
    darkness (None: none).

    The weak tier is what a thin QRS stroke leaves on a scan whose grid is as dark as the
    stroke: its pixels pass every test of :func:`faint_strokes` but the first (its darkness
    is 0.2-0.35 where the background level is 0.29 and the grid's lines 0.1-0.2 on
    real-scan ecg00013, whose R waves' up- and downstrokes fall apart into a tip and a
    foot). They are too faint to count as ink; the map marks them as a trace of ink (a
    small probability, :func:`_darkness`) so that the tracker takes the rows they cover in
    a gap between a stroke's fragments, or between a fragment and the trace at its foot,
    as no gap (:func:`~ecgscan.digitize._extract.trace_runs`). Vertical grid lines are left
    out as in :func:`faint_strokes`, counting ridges down to 0.8 × the weak level.

    Returns
    -------
    strong, weak : ndarray, bool, H×W
        :func:`faint_strokes`' pixels, and the weak tier's (a superset of them; all False
        when ``weak`` is None).
    """
    import cv2

    span = max(trace - background, 0.05)
    thr = _ink_threshold(trace, background)
    h, w = dark.shape
    if w < 5 or h < 3:
        return np.zeros(dark.shape, dtype=bool), np.zeros(dark.shape, dtype=bool)
    high = dark >= thr
    # depth below the mean of the valleys either side: on each side the lighter of the pixels
    # one and two columns away (the up- and downstroke of a narrow QRS spike stand two
    # columns apart at 3-4 px/mm: the other stroke is no valley)
    # (pair: the lighter of each pixel and the next; the valleys are the pairs from two
    # columns before and from the next column on)
    pair = cv2.erode(dark, np.ones((1, 2), np.uint8), anchor=(0, 0),
                     borderType=cv2.BORDER_REPLICATE)  # fmt: skip
    valleys = np.array([[0.5, 0.0, 0.0, 0.5]], np.float32)
    ridge = dark - cv2.filter2D(pair, -1, valleys, anchor=(2, 0),
                                borderType=cv2.BORDER_REPLICATE) >= contrast * span  # fmt: skip
    # the darkest of each pixel and its two horizontal neighbours: a pixel under 0.6 × that
    # is a fringe, and one beside confident ink is the edge of a wider stroke (its row is
    # covered already)
    beside = cv2.dilate(dark, np.ones((1, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    lone = ridge & (beside < thr)
    high_y, high_x = np.nonzero(high)  # (the tiers' hysteresis looks their labels up)
    step = max(1, int(round(px_per_mm)))
    n_blocks = max(1, h // step)
    reach = max(1, int(round(grid_span * px_per_mm / step)) | 1)

    def strokes(least: float) -> NDArray[np.bool_]:
        cand = lone & (dark >= least)
        found = cv2.findNonZero(cand.view(np.uint8))
        if found is None:
            return cand
        xs, ys = found.reshape(-1, 2).T.astype(np.intp)
        fringe = (dark[ys, xs] < 0.6 * beside[ys, xs]) | ~sheet[ys, xs]
        cand[ys[fringe], xs[fringe]] = False
        ys, xs = ys[~fringe], xs[~fringe]
        # the darkest vertical grid lines are such ridges too, but over most of their
        # column: the share of ridges in each column, by 1-mm blocks of rows, over
        # ``grid_span`` mm
        lines = (ridge & (dark >= 0.8 * least))[: n_blocks * step]
        share = lines.reshape(n_blocks, -1, w).mean(axis=1, dtype=np.float32)
        share = cv2.blur(share, (1, reach), borderType=cv2.BORDER_REFLECT)
        lined = share[np.minimum(ys // step, n_blocks - 1), xs] >= 0.6
        cand[ys[lined], xs[lined]] = False
        # hysteresis: only what connects to confident ink
        n, labels = cv2.connectedComponents((cand | high).view(np.uint8), connectivity=8)
        joined = np.zeros(n, dtype=bool)
        joined[labels[high_y, high_x]] = True
        joined[0] = False
        ys, xs = ys[~lined], xs[~lined]
        keep = joined[labels[ys, xs]]
        ys, xs = ys[keep], xs[keep]
        added = np.zeros(dark.shape, dtype=bool)
        if ys.size == 0:
            return added
        added[ys, xs] = True
        # the anti-aliased end of a solid stroke or bar: a short run of such pixels in a
        # column (up to ``tail`` mm) with confident ink right above or below it and nothing
        # beyond
        order = np.lexsort((ys, xs))
        ys, xs = ys[order], xs[order]
        starts = np.flatnonzero(np.r_[True, (np.diff(xs) != 0) | (np.diff(ys) != 1)])
        ends = np.r_[starts[1:], ys.size] - 1
        top, bot, col = ys[starts], ys[ends], xs[starts]
        up, down = np.maximum(top - 1, 0), np.minimum(bot + 1, h - 1)
        beyond_up = np.zeros(col.size, dtype=bool)
        beyond_down = np.zeros(col.size, dtype=bool)
        for c in (np.maximum(col - 1, 0), col, np.minimum(col + 1, w - 1)):
            beyond_up |= added[up, c] | high[up, c]
            beyond_down |= added[down, c] | high[down, c]
        short = bot - top + 1 <= max(1, int(round(tail * px_per_mm)))
        rim = short & ((high[up, col] & ~beyond_down) | (high[down, col] & ~beyond_up))
        for i in np.flatnonzero(rim):
            added[top[i] : bot[i] + 1, col[i]] = False
        return added

    strong = strokes(background)
    if weak is None:
        return strong, np.zeros(dark.shape, dtype=bool)
    return strong, strokes(weak * background) | strong


#: The probability of a weak faint stroke's pixels (:func:`faint_stroke_tiers`): above 0, so
#: the tracker counts them as ink in a gap, far under 0.5, so they make no run of ink, and
#: small against a run's anti-aliased fringe in its edges (``_extract.run_edges``).
_WEAK_INK = 0.05


def _ink_threshold(trace: float, background: float) -> float:
    """The darkness that separates the traces' ink from the background's (:func:`ink_levels`)."""
    return background + 0.45 * max(trace - background, 0.05)


def _darkness(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    dark, sheet, trace, background = _dark_map(image, px_per_mm)
    # threshold between the trace's ink and the background's, with a soft ramp for the
    # centroid: 0.6 of the ink's contrast wide, so that the partly covered pixels at a
    # stroke's edges keep fractional values (a ramp a quarter as wide made the map nearly
    # binary, 80 % of the inked pixels 0 or 1 on the 1200-px phone photos: the run edges and
    # the centroids lost their sub-pixel information, worst on steep QRS strokes a pixel
    # or two wide)
    thr = _ink_threshold(trace, background)
    width = max(0.05, 0.6 * (trace - background))
    prob = np.clip((dark - (thr - width / 2)) / width, 0.0, 1.0)
    # thin steep strokes lighter than the threshold count as whole ink (see faint_strokes)
    strong, weak = faint_stroke_tiers(dark, sheet, trace=trace, background=background,
                                      px_per_mm=px_per_mm)  # fmt: skip
    prob[strong] = 1.0
    # and a trace of ink where they fade to the grid's level, so that the tracker climbs
    # a stroke's fragments across them (see faint_stroke_tiers)
    prob[weak & (prob < _WEAK_INK)] = _WEAK_INK
    prob[~sheet] = 0.0
    return prob.astype(np.float32)


def model_path() -> str | None:
    """Path of the segmentation model (ONNX): ``$ECGSCAN_DIGITIZER_MODEL`` or the shipped one;
    None when neither exists."""
    env = os.environ.get("ECGSCAN_DIGITIZER_MODEL")
    if env:
        return env
    shipped = Path(__file__).resolve().parents[1] / "models" / "digitizer" / "digitizer.onnx"
    return str(shipped) if shipped.is_file() else None


@functools.lru_cache(maxsize=2)
def _session(path: str) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("ECGSCAN_THREADS", "2"))
    opts.inter_op_num_threads = 1
    # idle threads sleep instead of spinning: a quarter less CPU time for the same run on
    # 2 threads, and no core held busy between calls on a shared machine
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def unet_maps(
    image: NDArray[np.uint8], px_per_mm: float
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """The network's maps at the page's size: trace probability (0–1) and, for models that
    predict it, the vertical distance (page pixels, positive downward) from each trace pixel
    to the zero line of the lead it belongs to (None otherwise).

    The page is resized to the model's input scale (``px_per_mm`` in its metadata, 4 px/mm
    for the shipped model), padded to a multiple of its ``multiple``, and the output (at
    1/``output_stride`` of the input scale) is resized back.
    """
    import cv2

    from ..errors import DigitizationError

    path = model_path()
    if path is None:
        raise DigitizationError(
            "segmentation method 'unet' needs the model digitizer.onnx, which is not "
            "installed; reinstall ecgscan or use segmentation='darkness'"
        )
    sess = _session(path)
    meta = sess.get_modelmeta().custom_metadata_map
    net_ppm = float(meta.get("px_per_mm", 4.0))
    stride = int(meta.get("output_stride", 1))
    multiple = int(meta.get("multiple", 8))
    scale = net_ppm / px_per_mm
    h, w = image.shape[:2]
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    small = cv2.copyMakeBorder(
        small, 0, (-sh) % multiple, 0, (-sw) % multiple, cv2.BORDER_REPLICATE
    )
    # channels first, contiguous (as the runtime takes it), scaled in place
    x = np.ascontiguousarray(small.transpose(2, 0, 1)).astype(np.float32)[None]
    x /= 255.0
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
    oh, ow = -(-sh // stride), -(-sw // stride)
    # output cell i covers input rows [i·stride, (i+1)·stride): map the cell grid onto the page
    fy, fx = h / (sh / stride), w / (sw / stride)
    warp = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]], np.float32)

    def back(a: NDArray[np.float32]) -> NDArray[np.float32]:
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return np.asarray(
            cv2.warpAffine(np.ascontiguousarray(a[:oh, :ow], dtype=np.float32), warp, (w, h),
                           flags=flags, borderMode=cv2.BORDER_REPLICATE),
            dtype=np.float32,
        )  # fmt: skip

    prob = back((1.0 / (1.0 + np.exp(-out[0]))).astype(np.float32))
    if out.shape[0] < 2:
        return prob, None
    # the offset is trained in units of 10 mm at the network's scale
    offset = back(out[1].astype(np.float32)) * np.float32(10.0 * px_per_mm)
    return prob, offset


def unet_probability(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    """The network's trace probability, computed at its working scale and resized back."""
    return unet_maps(image, px_per_mm)[0]


def gate(
    prob: NDArray[np.float32], net: NDArray[np.float32], px_per_mm: float
) -> NDArray[np.float32]:
    """Keep only the ink of ``prob`` within 0.5 mm of what the network calls trace (its
    probability ``net`` > 0.4)."""
    import cv2

    k = max(3, int(round(px_per_mm)) | 1)
    near = cv2.dilate((net > 0.4).astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    out = prob.copy()
    out[~near] = 0.0
    return out


def unet_gate(
    prob: NDArray[np.float32], image: NDArray[np.uint8], px_per_mm: float
) -> NDArray[np.float32]:
    """Keep only the ink of ``prob`` within 0.5 mm of what the network calls trace."""
    return gate(prob, unet_probability(image, px_per_mm), px_per_mm)


def own_row(
    prob: NDArray[np.float32],
    offset: NDArray[np.float32] | None,
    *,
    y_lo: int,
    y_hi: int,
    center: float,
    centers: list[float],
    net: NDArray[np.float32] | None = None,
    reach: float = 0.2,
) -> NDArray[np.float32]:
    """The band ``prob[y_lo:y_hi]`` of one row without the ink of its neighbours' traces.

    A trace pixel's zero line is its image row plus the network's ``offset``; pixels whose
    zero line is clearly another row's (within ``reach`` times the distance between the two
    rows' ``centers``, and where ``net``, the network's trace probability, exceeds 0.3) are erased,
    so a deep S wave or a tall R wave that crosses into this row's band is not followed.
    Without an offset map the band is returned unchanged (a view).
    """
    band = prob[y_lo:y_hi]
    others = [c for c in centers if abs(c - center) > 1e-6]
    if offset is None or not others:
        return band
    # only ink can be erased: the maps are read at the band's nonzero pixels alone
    at = np.flatnonzero(band > 0)  # (flat indices into the band)
    if at.size == 0:
        return band
    w = band.shape[1]
    zero = np.ravel(offset[y_lo:y_hi])[at] + (at // w + y_lo).astype(np.float32)
    foreign = np.zeros(zero.shape, dtype=bool)
    for c in others:  # zero line clearly the neighbour's
        foreign |= np.abs(zero - np.float32(c)) < np.float32(reach * abs(c - center))
    if net is not None:
        foreign &= np.ravel(net[y_lo:y_hi])[at] > 0.3
    if not foreign.any():
        return band
    out = np.array(band, order="C")  # (C-ordered: the flat indices hold)
    out.reshape(-1)[at[foreign]] = 0.0
    return out


def _unet(image: NDArray[np.uint8], px_per_mm: float) -> NDArray[np.float32]:
    """The network decides *where* traces are (not grid, text or noise); the full-resolution
    darkness keeps their sub-pixel profile for the centroid."""
    return unet_gate(_darkness(image, px_per_mm), image, px_per_mm)


@dataclass(eq=False)
class TraceMaps:
    """What the extraction follows traces on (from :func:`trace_maps`).

    Attributes
    ----------
    prob : ndarray, float32, H×W
        Trace probability: the darkness map, gated by the network for ``'unet'``.
    method : str
        ``'darkness'``, ``'rows'`` (the darkness map; the network tells neighbouring rows
        apart where traces cross) or ``'unet'`` (``'rows'`` on the gated map).
    image : ndarray or None
        The page, for running the network when a band first needs it (``'rows'``).
    px_per_mm : float
        Grid scale of ``image``.
    net, offset : ndarray or None
        The network's trace probability and zero-line offsets (see :func:`unet_maps`); None
        until the network has run (``'rows'`` runs it only on pages where traces cross).
    """

    prob: NDArray[np.float32]
    method: str
    image: NDArray[np.uint8] | None = field(default=None, repr=False)
    px_per_mm: float = 0.0
    net: NDArray[np.float32] | None = field(default=None, repr=False)
    offset: NDArray[np.float32] | None = field(default=None, repr=False)

    def band(
        self,
        prob: NDArray[np.float32],
        y_lo: int,
        y_hi: int,
        *,
        center: float,
        centers: list[float],
    ) -> NDArray[np.float32]:
        """The band ``[y_lo, y_hi)`` of ``prob`` (``self.prob`` or an edited copy) without
        the ink of the neighbouring rows' traces (see :func:`own_row`).

        The network is run (once per page) only when ink crosses the middle fifth of the gap
        between this row and a neighbour; otherwise the band is a plain slice.
        """
        if self.method == "darkness":
            return prob[y_lo:y_hi]
        if self.offset is None:
            if self.image is None or not _crossing(prob, y_lo, y_hi, center, centers):
                return prob[y_lo:y_hi]
            self.net, self.offset = unet_maps(self.image, self.px_per_mm)
        return own_row(prob, self.offset, y_lo=y_lo, y_hi=y_hi, center=center,
                       centers=centers, net=self.net)  # fmt: skip


def _crossing(
    prob: NDArray[np.float32], y_lo: int, y_hi: int, center: float, centers: list[float]
) -> bool:
    """Whether ink lies within ±10 % of the midpoint between ``center`` and the nearest row
    above or below, inside the band (where only a trace that crosses between rows goes)."""
    above = [c for c in centers if c < center - 1e-6]
    below = [c for c in centers if c > center + 1e-6]
    for c in ([max(above)] if above else []) + ([min(below)] if below else []):
        gap = c - center
        mid = center + 0.5 * gap
        a = int(max(y_lo, round(mid - 0.1 * abs(gap))))
        b = int(min(y_hi, round(mid + 0.1 * abs(gap)) + 1))
        if b > a and bool((prob[a:b] > 0.5).any()):
            return True
    return False


def trace_maps(
    image: NDArray[np.uint8],
    prob: NDArray[np.float32],
    *,
    px_per_mm: float,
    method: str = "auto",
) -> TraceMaps:
    """The maps traces are followed on, for a segmentation ``method``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        The straightened page.
    prob : ndarray, shape (H, W), float32
        Its darkness map (:func:`segment_traces` with ``method='darkness'``).
    px_per_mm : float
        Grid scale.
    method : {'auto', 'darkness', 'rows', 'unet'}
        ``'darkness'``: the darkness map alone. ``'rows'``: the darkness map, with the network's
        zero-line offsets keeping each row's band to its own trace where traces cross (the
        network runs only on such pages). ``'unet'``: the darkness map gated to the ink the
        network calls trace, and rows kept apart as for ``'rows'``. ``'auto'``: ``'rows'``
        when the network is installed, else ``'darkness'``.
    """
    if method == "auto":
        method = "rows" if model_path() is not None else "darkness"
    method = resolve_method(method)
    if method == "darkness":
        return TraceMaps(prob, "darkness")
    if method == "rows":
        return TraceMaps(prob, "rows", image=image, px_per_mm=px_per_mm)
    net, offset = unet_maps(image, px_per_mm)
    return TraceMaps(gate(prob, net, px_per_mm), "unet", image=image, px_per_mm=px_per_mm,
                     net=net, offset=offset)  # fmt: skip


SEGMENTATION_METHODS = {"darkness": _darkness, "rows": _darkness, "unet": _unet}


def resolve_method(method: str) -> str:
    """Check a method name; ``'auto'`` → ``'darkness'`` (the map rows, pulses and separators
    are found on; :func:`trace_maps` decides what ``'auto'`` follows traces on)."""
    if method == "auto":
        return "darkness"
    if method not in SEGMENTATION_METHODS:
        raise ValueError(
            f"unknown segmentation method {method!r}; expected one of: "
            f"'auto', {', '.join(repr(m) for m in SEGMENTATION_METHODS)}"
        )
    return method


def segment_traces(
    image: NDArray[np.uint8], *, px_per_mm: float, method: str = "auto"
) -> tuple[NDArray[np.float32], str]:
    """Per-pixel trace probability (H×W float32 in 0–1) and the method used.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        The straightened page.
    px_per_mm : float
        Grid scale, used to size filters and to resize for the network.
    method : {'auto', 'darkness', 'rows', 'unet'}
        ``'auto'``, ``'darkness'`` and ``'rows'`` give the darkness map (``'rows'`` differs
        in how row bands are cut, see :func:`trace_maps`); ``'unet'`` the darkness map gated
        by the network.
    """
    method = resolve_method(method)
    try:
        fn = SEGMENTATION_METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown segmentation method {method!r}; expected one of: "
            f"'auto', {', '.join(repr(m) for m in SEGMENTATION_METHODS)}"
        ) from None
    return fn(image, px_per_mm), method
