"""Degradations: composable transforms of a rendered page that keep its ground truth exact.

Each degradation is a small frozen dataclass with its parameters (all explicit, drawn from a
seeded generator by ``sample``) and a ``name`` from :data:`DEGRADATIONS`.

*Geometric* ones (rotate, perspective, curl, lens, wrinkles, crop/pad, resize) are warps that
know their inverse map (output pixel → input position, used to resample the image and mask) and
their forward map (used to move every ground-truth point). Homographies are exact both ways;
dense warps are written as a smooth inverse displacement and their forward map is solved by
fixed-point iteration to 1e-3 px. Consecutive warps are composed into a single ``cv2.remap``
(maps computed on a 4-px lattice and interpolated), so a photo chain resamples the page once.

*Photometric* ones (lighting, shadow, blur, noise, JPEG, colour cast, stains, ink strokes,
stamps, moiré, paper texture, grey levels, creases' shading) change colours only; the mask and
the ground truth are unchanged. Ink strokes and stamps may cover the trace, as on real paper.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import EcgscanError
from ._page import draw_mask

__all__ = ["DEGRADATIONS", "Degradation", "apply_chain", "make_degradation", "sample_chain"]

FArray = NDArray[np.float64]
Img = NDArray[Any]  # images and fields as OpenCV returns them
_LATTICE = 4
_FIELD_ONE = 128.0  # fixed-point scale of multiplicative shading fields


class Degradation:
    """Base class: a named transform with explicit parameters."""

    name: ClassVar[str] = ""
    geometric: ClassVar[bool] = False

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Degradation:
        """Draw parameters from ``rng`` for a page of ``size`` = (width, height) px."""
        return cls()

    def params(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


class Warp(Degradation):
    """A geometric degradation."""

    geometric = True

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size

    def inverse(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        """Output coordinates → input coordinates (``size`` is the input size)."""
        raise NotImplementedError

    def forward(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        """Input coordinates → output coordinates, by fixed-point iteration on ``inverse``."""
        qx, qy = x.copy(), y.copy()
        for _ in range(100):
            ix, iy = self.inverse(qx, qy, size)
            rx, ry = ix - x, iy - y
            qx -= rx
            qy -= ry
            if max(np.abs(rx).max(initial=0.0), np.abs(ry).max(initial=0.0)) < 1e-3:
                break
        return qx, qy


class _Homography(Warp):
    def matrix(self, size: tuple[int, int]) -> NDArray[np.float64]:
        raise NotImplementedError

    def inverse(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        inv = np.asarray(np.linalg.inv(self.matrix(size)), np.float64)
        return _apply_h(inv, x, y)

    def forward(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        return _apply_h(self.matrix(size), x, y)


def _apply_h(h: NDArray[np.float64], x: FArray, y: FArray) -> tuple[FArray, FArray]:
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w


def _center(size: tuple[int, int]) -> tuple[float, float]:
    return (size[0] - 1) / 2.0, (size[1] - 1) / 2.0


_BANK: list[NDArray[np.int16]] = []
_BANK_SCALE = 16.0  # the bank holds N(0, 16²) integers
_BANK_OFFSETS = 1 << 20


def _gaussian_bank(n: int, rng: np.random.Generator) -> NDArray[np.int16]:
    """``n`` N(0, 16²) int16 samples: a window, at a seeded random offset, of a process-wide
    bank drawn once (drawing tens of millions of normals per page would dominate the time).

    The offset's range is fixed and the bank only ever grows by appending to the same seeded
    stream, so the samples returned depend on ``n`` and ``rng`` alone, never on what the process
    rendered before."""
    offset = int(rng.integers(0, _BANK_OFFSETS))
    if not _BANK or _BANK[0].size < offset + n:
        size = max(1 << 23, int(1.1 * (_BANK_OFFSETS + n)))
        bank = np.random.default_rng(0x5EED).standard_normal(size, dtype=np.float32)
        _BANK[:] = [np.clip(np.rint(bank * _BANK_SCALE), -32767, 32767).astype(np.int16)]
    return _BANK[0][offset : offset + n]


def _smooth_field(size: tuple[int, int], step: int, fn: Callable[[FArray, FArray], FArray]) -> Img:
    """Evaluate a smooth field ``fn(x, y)`` on a ``step``-px lattice, interpolate to ``size``."""
    w, h = size
    wc, hc = -(-w // step) + 1, -(-h // step) + 1
    xs = (np.arange(wc) + 0.5) * step - 0.5
    ys = (np.arange(hc) + 0.5) * step - 0.5
    gx, gy = np.meshgrid(xs, ys)
    small = np.asarray(fn(gx, gy), np.float32)
    return cv2.resize(small, (wc * step, hc * step), interpolation=cv2.INTER_LINEAR)[:h, :w]


# ---------------------------------------------------------------------------- geometric


@dataclass(frozen=True)
class Rotate(_Homography):
    """Rotation by ``angle`` degrees (counter-clockwise) about the page centre, same size."""

    name: ClassVar[str] = "rotate"
    angle: float = 2.0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Rotate:
        return cls(float(np.round(rng.normal(0, 1.8), 3)))

    def matrix(self, size: tuple[int, int]) -> NDArray[np.float64]:
        cx, cy = _center(size)
        m = cv2.getRotationMatrix2D((cx, cy), self.angle, 1.0)
        return np.vstack([m, [0, 0, 1]])


@dataclass(frozen=True)
class Perspective(_Homography):
    """Camera tilt: the four corners move by ``offsets`` (fractions of width/height)."""

    name: ClassVar[str] = "perspective"
    offsets: tuple[float, ...] = (0.02, 0.01, -0.01, 0.02, 0.0, -0.02, 0.01, 0.0)

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Perspective:
        s = float(rng.uniform(0.01, 0.05))
        return cls(tuple(float(v) for v in np.round(rng.uniform(-s, s, 8), 4)))

    def matrix(self, size: tuple[int, int]) -> NDArray[np.float64]:
        w, h = size
        src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
        d = np.asarray(self.offsets, np.float64).reshape(4, 2) * [w, h]
        m = cv2.getPerspectiveTransform(src.astype(np.float32), (src + d).astype(np.float32))
        return np.asarray(m, np.float64)


@dataclass(frozen=True)
class CropPad(_Homography):
    """Crop (negative) or pad (positive) each side by a number of pixels; ``fill`` is applied
    by :class:`apply_chain` to the new margins (scanner lid, table, black border)."""

    name: ClassVar[str] = "crop_pad"
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0
    fill: tuple[int, int, int] = (255, 255, 255)

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> CropPad:
        w, h = size
        lo, hi = int(-0.03 * min(w, h)), int(0.06 * min(w, h))
        left, top, right, bottom = (int(v) for v in rng.integers(lo, hi, 4))
        fill = [(255, 255, 255), (20, 20, 20), (70, 70, 75), (235, 235, 230)][int(rng.integers(4))]
        return cls(left, top, right, bottom, fill=fill)

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        out = (w + self.left + self.right, h + self.top + self.bottom)
        if min(out) < 16:
            raise EcgscanError(f"crop_pad leaves a {out[0]}×{out[1]} px page; crop less")
        return out

    def matrix(self, size: tuple[int, int]) -> NDArray[np.float64]:
        return np.array([[1, 0, self.left], [0, 1, self.top], [0, 0, 1]], np.float64)


@dataclass(frozen=True)
class Table(CropPad):
    """The surface around a photographed page: padding on every side in a table colour."""

    name: ClassVar[str] = "table"

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Table:
        w, h = size
        lo, hi = int(0.02 * min(w, h)), int(0.12 * min(w, h)) + 1
        left, top, right, bottom = (int(v) for v in rng.integers(lo, hi, 4))
        tables = [
            (120, 90, 60),
            (90, 60, 120),
            (60, 60, 65),
            (200, 195, 185),
            (140, 150, 160),
            (35, 35, 40),
            (170, 120, 80),
            (230, 230, 225),
        ]
        base = np.asarray(tables[int(rng.integers(len(tables)))]) + rng.integers(-15, 16, 3)
        r, g, b = (int(np.clip(c, 0, 255)) for c in base)
        return cls(left, top, right, bottom, fill=(r, g, b))


@dataclass(frozen=True)
class Resize(_Homography):
    """Scale by ``factor`` (a photo at another resolution)."""

    name: ClassVar[str] = "resize"
    factor: float = 0.75

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Resize:
        return cls(float(np.round(rng.uniform(0.6, 1.1), 3)))

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return max(int(round(size[0] * self.factor)), 16), max(
            int(round(size[1] * self.factor)), 16
        )

    def matrix(self, size: tuple[int, int]) -> NDArray[np.float64]:
        w, h = size
        ow, oh = self.out_size(size)
        sx, sy = ow / w, oh / h  # pixel-area scaling, centres at integers
        return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


@dataclass(frozen=True)
class Curl(Warp):
    """Page curl / bow: the page bends by up to ``amplitude`` px, stronger towards ``edge``."""

    name: ClassVar[str] = "curl"
    amplitude: float = 12.0
    edge: str = "right"  # 'left', 'right', 'top', 'bottom'
    reach: float = 0.35  # fraction of the page that curls
    bow: float = 4.0  # px of overall bow (sagging paper)

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Curl:
        scale = min(size) / 1000.0
        return cls(
            amplitude=float(np.round(rng.uniform(4, 18) * scale, 2)),
            edge=str(("left", "right", "top", "bottom")[int(rng.integers(4))]),
            reach=float(np.round(rng.uniform(0.2, 0.5), 3)),
            bow=float(np.round(rng.uniform(-8, 8) * scale, 2)),
        )

    def inverse(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        w, h = size
        u, v = x / max(w - 1, 1), y / max(h - 1, 1)
        if self.edge in ("left", "right"):
            t = (u if self.edge == "right" else 1 - u) - (1 - self.reach)
            t = np.clip(t / self.reach, 0, None)
            dy = self.amplitude * t**2 * (2 * v - 1) + self.bow * np.sin(np.pi * u)
            dx = -0.5 * self.amplitude * t**2 * (1 if self.edge == "right" else -1)
            return x + dx, y + dy
        t = (v if self.edge == "bottom" else 1 - v) - (1 - self.reach)
        t = np.clip(t / self.reach, 0, None)
        dx = self.amplitude * t**2 * (2 * u - 1) + self.bow * np.sin(np.pi * v)
        dy = -0.5 * self.amplitude * t**2 * (1 if self.edge == "bottom" else -1)
        return x + dx, y + dy


@dataclass(frozen=True)
class Lens(Warp):
    """Radial lens distortion ``r' = r (1 + k r²)`` (r relative to the half-diagonal)."""

    name: ClassVar[str] = "lens"
    k: float = 0.02

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Lens:
        return cls(float(np.round(rng.uniform(-0.04, 0.04), 4)))

    def inverse(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        cx, cy = _center(size)
        r0 = math.hypot(cx, cy)
        dx, dy = (x - cx) / r0, (y - cy) / r0
        f = 1 + self.k * (dx * dx + dy * dy)
        return cx + dx * f * r0, cy + dy * f * r0


@dataclass(frozen=True)
class Wrinkles(Warp):
    """Crumpled paper: smooth random displacement (``amplitude`` px) from a few bumps, and the
    shading of the crumples: ``facets`` flat pieces of paper facing the light at random angles
    (contrast ``shade``), with the bumps' own soft shading."""

    name: ClassVar[str] = "wrinkles"
    amplitude: float = 2.0
    bumps: tuple[float, ...] = ()  # (cx, cy, sigma, ax, ay, shade) × n, in page fractions
    seed: int = 0
    shade: float = 0.12
    facets: int = 24

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Wrinkles:
        n = int(rng.integers(4, 12))
        bumps = []
        for _ in range(n):
            bumps += [
                rng.uniform(0, 1),
                rng.uniform(0, 1),
                rng.uniform(0.04, 0.2),
                rng.uniform(-1, 1),
                rng.uniform(-1, 1),
                rng.uniform(-1, 1),
            ]
        amp = float(rng.uniform(0.5, 3.0) * min(size) / 1000.0)
        return cls(
            float(np.round(amp, 3)),
            tuple(float(np.round(b, 4)) for b in bumps),
            int(rng.integers(2**31)),
            float(np.round(rng.uniform(0.04, 0.22), 3)),
            int(rng.integers(8, 48)),
        )

    def _field(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray, FArray]:
        w, h = size
        s = float(max(w, h))
        dx = np.zeros_like(x)
        dy = np.zeros_like(y)
        shade = np.zeros_like(x)
        b = np.asarray(self.bumps, np.float64).reshape(-1, 6)
        for cx, cy, sig, ax, ay, sh in b:
            g = np.exp(-(((x - cx * w) / (sig * s)) ** 2 + ((y - cy * h) / (sig * s)) ** 2) / 2)
            dx += ax * g
            dy += ay * g
            shade += sh * g * (x - cx * w) / (sig * s)  # light from one side of each bump
        return dx * self.amplitude, dy * self.amplitude, shade

    def _coarse(self, size: tuple[int, int]) -> tuple[NDArray[np.float64], float]:
        """The displacement on a coarse lattice (bumps are ≥ 80 px wide), cached per size."""
        cache: dict[tuple[int, int], tuple[NDArray[np.float64], float]]
        cache = self.__dict__.setdefault("_cache", {})
        if size not in cache:
            step = max(min(size) / 64.0, 4.0)
            xs = np.arange(int(np.ceil((size[0] - 1) / step)) + 2) * step
            ys = np.arange(int(np.ceil((size[1] - 1) / step)) + 2) * step
            gx, gy = np.meshgrid(xs, ys)
            dx, dy, _ = self._field(gx, gy, size)
            cache[size] = (np.ascontiguousarray(np.dstack([dx, dy])), step)
        return cache[size]

    def inverse(self, x: FArray, y: FArray, size: tuple[int, int]) -> tuple[FArray, FArray]:
        # bilinear interpolation of the coarse displacement: smooth, cheap, and the same
        # function for the image (through the maps) and the ground truth (forward iteration)
        field, step = self._coarse(size)
        gh, gw = field.shape[:2]
        u = np.clip(np.asarray(x, np.float64) / step, 0, gw - 1.000001)
        v = np.clip(np.asarray(y, np.float64) / step, 0, gh - 1.000001)
        i, j = u.astype(np.intp), v.astype(np.intp)
        fu, fv = u - i, v - j
        k = j * gw + i
        out = []
        for c in (0, 1):
            flat = field[:, :, c].ravel()
            top = flat[k] * (1 - fu) + flat[k + 1] * fu
            bottom = flat[k + gw] * (1 - fu) + flat[k + gw + 1] * fu
            out.append(top * (1 - fv) + bottom * fv)
        return x + out[0], y + out[1]

    def shading(self, size: tuple[int, int]) -> Img:
        w, h = size
        g = np.random.default_rng(self.seed)
        n = max(self.facets, 1)
        seeds = (g.uniform(0, 1, (n, 2)) * [w, h]).astype(np.float32)
        light = g.uniform(-1, 1, n).astype(np.float32)
        step = 8
        wc, hc = -(-w // step) + 1, -(-h // step) + 1
        xs = ((np.arange(wc) + 0.5) * step - 0.5).astype(np.float32)
        ys = ((np.arange(hc) + 0.5) * step - 0.5).astype(np.float32)
        gx, gy = np.meshgrid(xs, ys)
        best = np.full(gx.shape, np.inf, np.float32)
        facet: Img = np.zeros(gx.shape, np.float32)
        for (sx, sy), value in zip(seeds, light, strict=True):  # nearest seed = the facet
            d2 = (gx - sx) ** 2 + (gy - sy) ** 2
            closer = d2 < best
            best = np.where(closer, d2, best)
            facet[closer] = value
        facet = cv2.GaussianBlur(facet, (5, 5), 0)  # soft folds between facets
        bumps = self._field(gx.astype(np.float64), gy.astype(np.float64), size)[2]
        small = (1.0 + self.shade * facet + 0.06 * bumps).astype(np.float32)
        return cv2.resize(small, (wc * step, hc * step), interpolation=cv2.INTER_LINEAR)[:h, :w]


# ---------------------------------------------------------------------------- photometric


@dataclass(frozen=True)
class Lighting(Degradation):
    """Uneven lighting: a linear gradient (``strength`` at ``angle``) and a vignette."""

    name: ClassVar[str] = "lighting"
    strength: float = 0.25
    angle: float = 30.0
    vignette: float = 0.2
    brightness: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Lighting:
        return cls(
            float(np.round(rng.uniform(0.05, 0.35), 3)),
            float(np.round(rng.uniform(0, 360), 1)),
            float(np.round(rng.uniform(0, 0.35), 3)),
            float(np.round(rng.uniform(0.85, 1.08), 3)),
        )

    def field(self, size: tuple[int, int]) -> Img:
        w, h = size
        a = math.radians(self.angle)

        def fn(x: FArray, y: FArray) -> FArray:
            u, v = 2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1
            ramp = (u * math.cos(a) + v * math.sin(a)) * 0.5
            vig = 1 - self.vignette * 0.5 * (u * u + v * v)
            return self.brightness * (1 - self.strength * (ramp + 0.5)) * vig

        return _smooth_field(size, 8, fn)


@dataclass(frozen=True)
class Shadow(Degradation):
    """A soft shadow (hand, phone) over a polygon: darkened by ``darkness``."""

    name: ClassVar[str] = "shadow"
    polygon: tuple[float, ...] = (0.0, 0.6, 0.4, 1.0, 0.0, 1.0)  # x, y in page fractions
    darkness: float = 0.35
    softness: float = 0.05

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Shadow:
        side = int(rng.integers(4))
        a, b = sorted(rng.uniform(0, 1, 2))
        depth = rng.uniform(0.1, 0.5)
        pts = {
            0: [(0, a), (depth, (a + b) / 2), (0, b)],
            1: [(1, a), (1 - depth, (a + b) / 2), (1, b)],
            2: [(a, 0), ((a + b) / 2, depth), (b, 0)],
            3: [(a, 1), ((a + b) / 2, 1 - depth), (b, 1)],
        }[side]
        flat = tuple(float(np.round(c, 4)) for p in pts for c in p)
        return cls(
            flat,
            float(np.round(rng.uniform(0.15, 0.5), 3)),
            float(np.round(rng.uniform(0.02, 0.1), 3)),
        )

    def field(self, size: tuple[int, int]) -> Img:
        w, h = size
        step = 8
        wc, hc = -(-w // step) + 1, -(-h // step) + 1
        scale = np.array([(w - 1) / step, (h - 1) / step])
        pts = np.rint(np.asarray(self.polygon).reshape(-1, 2) * scale * 16).astype(np.int32)
        m: Img = np.zeros((hc, wc), np.float32)
        cv2.fillPoly(m, [pts], 1.0, cv2.LINE_AA, 4)
        k = max(int(self.softness * min(w, h) / step) | 1, 3)
        m = cv2.GaussianBlur(m, (k, k), 0)
        m = cv2.resize(m, (wc * step, hc * step), interpolation=cv2.INTER_LINEAR)[:h, :w]
        return 1.0 - self.darkness * m


@dataclass(frozen=True)
class Blur(Degradation):
    """Defocus (disk of ``size`` px), motion (line of ``size`` px at ``angle``) or gaussian."""

    name: ClassVar[str] = "blur"
    kind: str = "defocus"
    size: float = 3.0
    angle: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Blur:
        kind = str(("defocus", "motion", "gaussian")[int(rng.integers(3))])
        scale = min(size) / 1700.0
        return cls(
            kind,
            float(np.round(rng.uniform(0.5, 2.0) * scale + 0.3, 2)),
            float(np.round(rng.uniform(0, 180), 1)),
        )

    def kernel(self) -> Img:
        r = max(self.size, 0.5)
        n = int(math.ceil(r)) * 2 + 1
        c = n // 2
        if self.kind == "gaussian":
            g = cv2.getGaussianKernel(n * 2 + 1, r / 2)
            return (g @ g.T).astype(np.float32)
        k = np.zeros((n * 4, n * 4), np.float32)  # supersampled for sub-pixel sizes
        if self.kind == "defocus":
            cv2.circle(k, (c * 4 + 2, c * 4 + 2), int(round(r * 2)), 1.0, -1, cv2.LINE_AA)
        elif self.kind == "motion":
            a = math.radians(self.angle)
            dx, dy = math.cos(a) * r * 2, math.sin(a) * r * 2
            p0 = (int(round(c * 4 + 2 - dx)), int(round(c * 4 + 2 - dy)))
            p1 = (int(round(c * 4 + 2 + dx)), int(round(c * 4 + 2 + dy)))
            cv2.line(k, p0, p1, 1.0, 2, cv2.LINE_AA)
        else:
            raise EcgscanError(
                f"blur kind must be 'defocus', 'motion' or 'gaussian', got {self.kind!r}"
            )
        small = cv2.resize(k, (n, n), interpolation=cv2.INTER_AREA)
        return small / small.sum()


@dataclass(frozen=True)
class Noise(Degradation):
    """Sensor noise: gaussian of ``sigma`` (0–255 scale), optionally colour-correlated."""

    name: ClassVar[str] = "noise"
    sigma: float = 6.0
    color: bool = True
    seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Noise:
        return cls(
            float(np.round(rng.uniform(2, 12), 2)),
            bool(rng.random() < 0.5),
            int(rng.integers(2**31)),
        )


@dataclass(frozen=True)
class Jpeg(Degradation):
    """JPEG compression at ``quality``."""

    name: ClassVar[str] = "jpeg"
    quality: int = 70

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Jpeg:
        return cls(int(rng.integers(35, 95)))


@dataclass(frozen=True)
class ColorCast(Degradation):
    """White balance and tone: per-channel ``gains``, ``gamma``, ``contrast``."""

    name: ClassVar[str] = "color_cast"
    gains: tuple[float, float, float] = (1.0, 0.97, 0.9)
    gamma: float = 1.0
    contrast: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> ColorCast:
        g = np.round(1 + rng.normal(0, 0.05, 3), 3)
        return cls(
            (float(g[0]), float(g[1]), float(g[2])),
            float(np.round(rng.uniform(0.8, 1.25), 3)),
            float(np.round(rng.uniform(0.8, 1.1), 3)),
        )


@dataclass(frozen=True)
class Stains(Degradation):
    """Coffee rings and blots: ``n`` soft stains of a brownish colour."""

    name: ClassVar[str] = "stains"
    n: int = 2
    seed: int = 0
    opacity: float = 0.3

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Stains:
        return cls(
            int(rng.integers(1, 4)),
            int(rng.integers(2**31)),
            float(np.round(rng.uniform(0.15, 0.45), 3)),
        )

    def apply(self, image: Img) -> Img:
        """Darken ``image`` (a copy) under each stain, working in the stain's box only."""
        h, w = image.shape[:2]
        out = image.copy()
        g = np.random.default_rng(self.seed)
        tint = np.array([0.25, 0.45, 0.75], np.float32)  # brown: absorbs blue most
        for _ in range(self.n):
            cx, cy = g.uniform(0, w), g.uniform(0, h)
            r = max(g.uniform(0.03, 0.12) * min(w, h), 4.0)
            ring = bool(g.random() < 0.5)
            ratio, angle = float(g.uniform(0.4, 1.0)), float(g.uniform(0, 180))
            x0, y0 = max(int(cx - 1.2 * r), 0), max(int(cy - 1.2 * r), 0)
            x1, y1 = min(int(cx + 1.2 * r) + 1, w), min(int(cy + 1.2 * r) + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            layer = np.zeros((y1 - y0, x1 - x0), np.float32)
            c = (int(round((cx - x0) * 16)), int(round((cy - y0) * 16)))
            rr = int(round(r * 16))
            if ring:  # coffee ring: dark rim, light inside
                cv2.circle(layer, c, rr, 1.0, max(int(r / 10), 1), cv2.LINE_AA, 4)
                cv2.circle(layer, c, rr, 0.25, -1, cv2.LINE_AA, 4)
            else:
                axes = (rr, max(int(rr * ratio), 16))
                cv2.ellipse(layer, c, axes, angle, 0, 360, 0.7, -1, cv2.LINE_AA, 4)
            k = max(int(r / 12) | 1, 3)
            layer = cv2.GaussianBlur(layer, (k, k), 0) * self.opacity
            f = 1.0 - layer[:, :, None] * tint[None, None, :]
            out[y0:y1, x0:x1] = cv2.multiply(out[y0:y1, x0:x1], f, dtype=cv2.CV_8U)
        return out


@dataclass(frozen=True)
class Handwriting(Degradation):
    """Handwritten-like pen strokes and words (``n`` items) in an ink colour."""

    name: ClassVar[str] = "handwriting"
    n: int = 4
    seed: int = 0
    ink: tuple[int, int, int] = (20, 40, 140)

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Handwriting:
        inks = [(20, 40, 140), (15, 15, 20), (150, 20, 30), (30, 90, 40)]
        return cls(int(rng.integers(1, 7)), int(rng.integers(2**31)), inks[int(rng.integers(4))])


@dataclass(frozen=True)
class Stamp(Degradation):
    """An ink stamp (round or rectangular, with text) at a page position."""

    name: ClassVar[str] = "stamp"
    x: float = 0.8
    y: float = 0.15
    radius: float = 0.07
    shape: str = "circle"
    ink: tuple[int, int, int] = (170, 30, 50)
    text: str = "RECEIVED"
    seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Stamp:
        inks = [(170, 30, 50), (40, 60, 160), (60, 60, 60)]
        words = ["RECEIVED", "REVIEWED", "COPY", "CONFIDENTIAL", "VERIFIED", "SCANNED"]
        return cls(
            float(np.round(rng.uniform(0.1, 0.9), 3)),
            float(np.round(rng.uniform(0.1, 0.9), 3)),
            float(np.round(rng.uniform(0.04, 0.09), 3)),
            str(("circle", "rectangle")[int(rng.integers(2))]),
            inks[int(rng.integers(3))],
            words[int(rng.integers(len(words)))],
            int(rng.integers(2**31)),
        )


@dataclass(frozen=True)
class Moire(Degradation):
    """Screen-photo moiré: interference fringes of ``period`` px at ``angle``, with colour."""

    name: ClassVar[str] = "moire"
    period: float = 9.0
    angle: float = 20.0
    amplitude: float = 0.08
    curvature: float = 0.3

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Moire:
        return cls(
            float(np.round(rng.uniform(4, 20), 2)),
            float(np.round(rng.uniform(0, 180), 1)),
            float(np.round(rng.uniform(0.03, 0.12), 3)),
            float(np.round(rng.uniform(0, 1), 3)),
        )

    def field(self, size: tuple[int, int]) -> Img:
        """Per-channel gain as uint8 fixed point (``_FIELD_ONE`` = 1)."""
        # phase = A(u) + B(v) is separable, so sin(phase) = sin A cos B + cos A sin B
        w, h = size
        u = np.arange(w, dtype=np.float64)
        v = np.arange(h, dtype=np.float64)
        a = math.radians(self.angle)
        pa = 2 * np.pi * (u * math.cos(a) / self.period + self.curvature * 20 * (u / w - 0.5) ** 2)
        pb = 2 * np.pi * (v * math.sin(a) / self.period + self.curvature * 20 * (v / h - 0.5) ** 2)
        # one wave W = sin(A + B) (rank-2 product), each channel 1 - k_c (1 + W): colour
        # fringes as a camera's colour filter array gives them
        left = np.stack([np.cos(pb), np.sin(pb)], axis=1).astype(np.float32)
        right = np.stack([np.sin(pa), np.cos(pa)]).astype(np.float32)
        wave = left @ right
        chans = []
        for gain in (1.0, 0.6, 1.3):
            k = 0.5 * self.amplitude * gain
            chans.append(
                cv2.convertScaleAbs(wave, alpha=-k * _FIELD_ONE, beta=(1 - k) * _FIELD_ONE)
            )
        return cv2.merge(chans)


@dataclass(frozen=True)
class Texture(Degradation):
    """Paper texture and toner grain: low-amplitude multiplicative noise (``strength``)."""

    name: ClassVar[str] = "texture"
    strength: float = 0.04
    seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Texture:
        return cls(float(np.round(rng.uniform(0.01, 0.06), 3)), int(rng.integers(2**31)))

    def field(self, size: tuple[int, int]) -> Img:
        """Multiplicative grain as uint8 fixed point (``_FIELD_ONE`` = 1)."""
        w, h = size
        g = np.random.default_rng(self.seed)
        hc, wc = h // 2 + 1, w // 2 + 1
        small = _gaussian_bank(hc * wc, g).reshape(hc, wc)
        k = self.strength * 1.6 * _FIELD_ONE / _BANK_SCALE
        small8 = cv2.addWeighted(small, k, small, 0.0, _FIELD_ONE, dtype=cv2.CV_8U)
        small8 = cv2.GaussianBlur(small8, (3, 3), 0)
        return cv2.resize(small8, (wc * 2, hc * 2), interpolation=cv2.INTER_LINEAR)[:h, :w]


@dataclass(frozen=True)
class Creases(Degradation):
    """Fold lines: ``n`` straight creases with a bright and a dark side."""

    name: ClassVar[str] = "creases"
    lines: tuple[float, ...] = (0.5, 0.0, 0.5, 1.0)  # x0, y0, x1, y1 per crease, page fractions
    strength: float = 0.15
    width: float = 0.01

    @classmethod
    def sample(cls, rng: np.random.Generator, size: tuple[int, int]) -> Creases:
        lines: list[float] = []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                x = rng.uniform(0.2, 0.8)
                lines += [x + rng.normal(0, 0.02), 0.0, x + rng.normal(0, 0.02), 1.0]
            else:
                y = rng.uniform(0.2, 0.8)
                lines += [0.0, y + rng.normal(0, 0.02), 1.0, y + rng.normal(0, 0.02)]
        return cls(
            tuple(float(np.round(v, 4)) for v in lines),
            float(np.round(rng.uniform(0.08, 0.25), 3)),
            float(np.round(rng.uniform(0.004, 0.015), 4)),
        )

    def apply(self, image: Img) -> Img:
        """Shade ``image`` (a copy) along each crease, working in the crease's band only."""
        h, w = image.shape[:2]
        out = image.copy()
        wd = max(self.width * min(w, h), 1.5)
        reach = 3.0 * wd
        for x0, y0, x1, y1 in np.asarray(self.lines, np.float64).reshape(-1, 4):
            p0 = np.array([x0 * (w - 1), y0 * (h - 1)])
            p1 = np.array([x1 * (w - 1), y1 * (h - 1)])
            t = p1 - p0
            length = float(np.hypot(*t))
            if length < 1e-9:
                continue
            nrm = np.array([-t[1], t[0]]) / length
            # the crease only matters within `reach` of its line: work in that band's box
            if abs(nrm[0]) >= abs(nrm[1]):  # mostly vertical line: band spans columns
                lo = int(max(np.floor(min(x0 * (w - 1), x1 * (w - 1)) - reach / abs(nrm[0])), 0))
                hi = int(min(np.ceil(max(x0 * (w - 1), x1 * (w - 1)) + reach / abs(nrm[0])), w))
                box = (slice(0, h), slice(lo, hi))
                u = np.arange(lo, hi, dtype=np.float32)[None, :]
                v = np.arange(h, dtype=np.float32)[:, None]
            else:
                lo = int(max(np.floor(min(y0 * (h - 1), y1 * (h - 1)) - reach / abs(nrm[1])), 0))
                hi = int(min(np.ceil(max(y0 * (h - 1), y1 * (h - 1)) + reach / abs(nrm[1])), h))
                box = (slice(lo, hi), slice(0, w))
                u = np.arange(w, dtype=np.float32)[None, :]
                v = np.arange(lo, hi, dtype=np.float32)[:, None]
            if lo >= hi:
                continue
            a, b = float(nrm[0] / wd), float(nrm[1] / wd)
            c = float(-(p0[0] * nrm[0] + p0[1] * nrm[1]) / wd)
            dist = u * np.float32(a) + (v * np.float32(b) + np.float32(c))
            g = np.exp(-(dist**2))
            band = (1 - self.strength * g * np.tanh(2 * dist)) * (
                1 - 0.5 * self.strength * np.exp(-6.25 * dist**2)
            )
            b8 = cv2.convertScaleAbs(band.astype(np.float32), alpha=_FIELD_ONE)
            out[box] = cv2.multiply(out[box], cv2.merge([b8, b8, b8]), scale=1.0 / _FIELD_ONE)
        return out


@dataclass(frozen=True)
class Grayscale(Degradation):
    """Grey-level scan or photocopy."""

    name: ClassVar[str] = "grayscale"


DEGRADATIONS: dict[str, type[Degradation]] = {
    cls.name: cls
    for cls in (
        Rotate,
        Perspective,
        CropPad,
        Table,
        Resize,
        Curl,
        Lens,
        Wrinkles,
        Lighting,
        Shadow,
        Blur,
        Noise,
        Jpeg,
        ColorCast,
        Stains,
        Handwriting,
        Stamp,
        Moire,
        Texture,
        Creases,
        Grayscale,
    )
}


def make_degradation(
    spec: str | dict[str, Any] | Degradation, rng: np.random.Generator, size: tuple[int, int]
) -> Degradation:
    """A degradation from a name (parameters drawn), a dict ``{'name': ..., **params}``
    (missing parameters take their defaults) or an instance."""
    if isinstance(spec, Degradation):
        return spec
    if isinstance(spec, str):
        name, params = spec, None
    elif isinstance(spec, dict):
        params = dict(spec)
        name = str(params.pop("name", ""))
    else:
        raise EcgscanError(f"degradation must be a name, a dict or a Degradation, got {spec!r}")
    cls = DEGRADATIONS.get(name)
    if cls is None:
        raise EcgscanError(
            f"unknown degradation {name!r}; expected one of {', '.join(DEGRADATIONS)}"
        )
    if params is None:
        return cls.sample(rng, size)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in list(params.items()):
        if key not in fields:
            raise EcgscanError(
                f"degradation {name!r} has no parameter {key!r}; "
                f"it has {', '.join(fields) or 'none'}"
            )
        if isinstance(value, list):
            params[key] = tuple(value)
    return cls(**params)


# ---------------------------------------------------------------------------- chains per style


def sample_chain(style: str, rng: np.random.Generator) -> list[str]:
    """Names of the degradations of ``style`` (their parameters are drawn when applied)."""
    chain: list[str] = []

    def maybe(p: float, name: str) -> None:
        if rng.random() < p:
            chain.append(name)

    if style == "print":
        maybe(0.4, "crop_pad")
        maybe(0.3, "texture")
    elif style == "scan":
        maybe(0.25, "creases")
        maybe(0.3, "stains")
        maybe(0.3, "handwriting")
        maybe(0.15, "stamp")
        maybe(0.5, "texture")
        maybe(0.35, "wrinkles")
        maybe(0.8, "rotate")
        maybe(0.6, "crop_pad")
        maybe(0.4, "lighting")
        maybe(0.5, "blur")
        maybe(0.7, "noise")
        maybe(0.25, "grayscale")
        maybe(0.4, "color_cast")
        maybe(0.3, "jpeg")
    elif style == "photo":
        # on the paper
        maybe(0.2, "creases")
        maybe(0.2, "stains")
        maybe(0.25, "handwriting")
        maybe(0.1, "stamp")
        maybe(0.3, "texture")
        maybe(0.3, "wrinkles")
        # the camera: one resampling for all of these
        chain.append("table")
        maybe(0.6, "curl")
        chain.append("perspective")
        maybe(0.7, "rotate")
        maybe(0.5, "lens")
        maybe(0.2, "crop_pad")
        maybe(0.6, "resize")
        # light and sensor
        chain.append("lighting")
        maybe(0.4, "shadow")
        maybe(0.2, "moire")
        maybe(0.7, "blur")
        chain.append("noise")
        maybe(0.7, "color_cast")
        chain.append("jpeg")
    return chain


# ---------------------------------------------------------------------------- application


class _State:
    """The page being degraded: uint8 or float32 image (converted lazily), mask, pending warps."""

    def __init__(self, image: Img, mask: Img) -> None:
        self._u8: Img | None = image
        self._f32: Img | None = None
        # pending multiplicative shadings (they commute): grey (H×W) and coloured (H×W×3)
        self.field: Img | None = None
        self.field3: Img | None = None
        self.mask = mask
        self.pending: list[tuple[Warp, tuple[int, int]]] = []
        self.fills: list[tuple[int, int, int]] = []
        self.encoded: bytes | None = None
        self.jpeg_quality: int | None = None

    @property
    def u8(self) -> Img:
        if self._u8 is None:
            assert self._f32 is not None
            self._u8 = cv2.convertScaleAbs(self._f32)  # rounds and saturates to 0..255
        if self.field is not None or self.field3 is not None:
            # 8-bit fixed point (1/128 steps, up to ×2): a quarter of the memory traffic of
            # float32 fields, and below one grey level of error on paper white.
            img = self._u8
            if self.field is not None:
                f8 = cv2.convertScaleAbs(self.field, alpha=_FIELD_ONE)
                img = cv2.multiply(img, cv2.merge([f8, f8, f8]), scale=1.0 / _FIELD_ONE)
            if self.field3 is not None:
                f8 = cv2.convertScaleAbs(self.field3, alpha=_FIELD_ONE)
                img = cv2.multiply(img, f8, scale=1.0 / _FIELD_ONE)
            self._u8 = img
            self._f32 = None
            self.field = self.field3 = None
        return self._u8

    @u8.setter
    def u8(self, value: Img) -> None:
        self._u8, self._f32 = value, None
        self.encoded = None

    @property
    def f32(self) -> Img:
        if self._f32 is None or self.field is not None or self.field3 is not None:
            self._f32 = self.u8.astype(np.float32)
        return self._f32

    @f32.setter
    def f32(self, value: Img) -> None:
        self._f32, self._u8 = value, None
        self.encoded = None

    @property
    def shape(self) -> tuple[int, int]:
        img = self._u8 if self._u8 is not None else self._f32
        assert img is not None
        return int(img.shape[1]), int(img.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.shape
        for warp, in_size in self.pending:
            w, h = warp.out_size(in_size)
        return w, h


def _compose_maps(
    pending: list[tuple[Warp, tuple[int, int]]], out_size: tuple[int, int]
) -> tuple[Img, Img]:
    w, h = out_size
    step = max(_LATTICE, int(max(w, h) / 550))  # 4 px at 200 DPI, coarser for larger pages
    wc, hc = -(-w // step) + 1, -(-h // step) + 1
    xs = (np.arange(wc) + 0.5) * step - 0.5
    ys = (np.arange(hc) + 0.5) * step - 0.5
    gx, gy = np.meshgrid(xs, ys)
    for warp, in_size in reversed(pending):
        gx, gy = warp.inverse(gx, gy, in_size)
    full = (wc * step, hc * step)
    mx = cv2.resize(gx.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    my = cv2.resize(gy.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return mx, my


def _flush(state: _State, truth: dict[str, Any]) -> None:
    if not state.pending:
        return
    out_size = state.size
    mx, my = _compose_maps(state.pending, out_size)
    # what shows outside the page: the table under a photographed page, else the last border
    tables = [w.fill for w, _ in state.pending if isinstance(w, Table)]
    fill = tables[0] if tables else (state.fills[-1] if state.fills else (255, 255, 255))
    src = state.u8
    # Shrinking warps: resample from an area-averaged smaller copy, or thin lines alias away.
    h_src, w_src = src.shape[:2]
    jx = np.abs(np.diff(mx[:: _LATTICE * 8, ::_LATTICE], axis=1)).mean() / _LATTICE
    jy = np.abs(np.diff(my[::_LATTICE, :: _LATTICE * 8], axis=0)).mean() / _LATTICE
    shrink = float(max(jx, jy, 1e-6))
    if shrink > 1.4:
        f = 1.0 / shrink
        sw, sh = max(int(round(w_src * f)), 1), max(int(round(h_src * f)), 1)
        src = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA)
        fx, fy = sw / w_src, sh / h_src
        mx = (mx + 0.5) * fx - 0.5
        my = (my + 0.5) * fy - 0.5
    m1, m2 = cv2.convertMaps(mx, my, cv2.CV_16SC2)
    state.u8 = cv2.remap(
        src,
        m1,
        m2,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(int(c) for c in fill),
    )

    pending = list(state.pending)

    def fwd(x: FArray, y: FArray) -> tuple[FArray, FArray]:
        for warp, in_size in pending:
            x, y = warp.forward(x, y, in_size)
        return x, y

    old_corners = np.asarray(truth["page_corners"], np.float64)
    _map_truth(truth, fwd, out_size)
    # The mask is redrawn from the mapped ground truth rather than resampled (resampling a
    # 2-px line with nearest neighbours loses pixels), at the trace's new local width.
    scale = math.sqrt(_area(np.asarray(truth["page_corners"])) / max(_area(old_corners), 1e-9))
    thickness = max(2, int(round(truth.get("trace_width_px", 2) * scale)))
    state.mask = draw_mask(
        np.zeros((out_size[1], out_size[0]), np.uint8), truth["leads"], thickness
    )
    state.pending = []
    state.fills = []


def _image_scale(truth: dict[str, Any]) -> dict[str, float]:
    """Mean pixels per millimetre of the page as it lies in the final image (from where the page
    corners went: exact for rotations and scalings, the average for perspective and curls)."""
    c = np.asarray(truth["page_corners"], np.float64)
    paper = truth.get("paper", {})
    w_mm = float(paper.get("width_mm") or truth["width"] / truth["px_per_mm"]["x"])
    h_mm = float(paper.get("height_mm") or truth["height"] / truth["px_per_mm"]["y"])
    top, bottom = np.hypot(*(c[1] - c[0])), np.hypot(*(c[2] - c[3]))
    left, right = np.hypot(*(c[3] - c[0])), np.hypot(*(c[2] - c[1]))
    return {
        "x": round(float((top + bottom) / 2 / w_mm), 6),
        "y": round(float((left + right) / 2 / h_mm), 6),
    }


def _area(corners: NDArray[np.float64]) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _box_points(box: list[float]) -> NDArray[np.float64]:
    x0, y0, x1, y1 = box
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array(
        [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [xm, y0], [xm, y1], [x0, ym], [x1, ym]], np.float64
    )


def _map_truth(
    truth: dict[str, Any],
    fwd: Callable[[FArray, FArray], tuple[FArray, FArray]],
    out_size: tuple[int, int],
) -> None:
    """Move every coordinate of ``truth`` through ``fwd`` (one call for all points)."""
    with _gc_paused():
        _map_truth_impl(truth, fwd, out_size)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Building tens of thousands of small lists triggers the cyclic GC over the whole heap
    again and again; they hold no cycles, so pause it meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _map_truth_impl(
    truth: dict[str, Any],
    fwd: Callable[[FArray, FArray], tuple[FArray, FArray]],
    out_size: tuple[int, int],
) -> None:
    truth["width"], truth["height"] = int(out_size[0]), int(out_size[1])
    half = truth.get("trace_width_px", 2) / 2.0 + 0.5
    leads = truth["leads"]
    boxed = [
        item
        for key in ("labels", "calibration", "text")
        for item in truth.get(key, [])
        if item["bbox"][2] > item["bbox"][0]
    ]
    empty = [lead for lead in leads if not np.isfinite(np.asarray(lead["pixels"], float)).any()]
    parts = [np.asarray(lead["pixels"], dtype=np.float64).reshape(-1, 2) for lead in leads]
    parts.append(np.array([[lead["x_start"], lead["baseline_y"]] for lead in leads]).reshape(-1, 2))
    parts += [_box_points(item["bbox"]) for item in boxed]
    parts += [_box_points(lead["bbox"]) for lead in empty]
    parts.append(np.asarray(truth["page_corners"], np.float64).reshape(-1, 2))
    allp = np.concatenate(parts)
    ok = np.isfinite(allp).all(axis=1)
    if ok.any():
        mx, my = fwd(allp[ok, 0], allp[ok, 1])
        allp[ok, 0], allp[ok, 1] = mx, my
    chunks = iter(np.split(allp, np.cumsum([len(p) for p in parts])[:-1]))
    for lead in leads:
        pts = next(chunks)
        good = np.isfinite(pts).all(axis=1)
        if good.any():
            x, y = pts[good, 0], pts[good, 1]
            lead["bbox"] = [
                float(np.floor(x.min() - half)),
                float(np.floor(y.min() - half)),
                float(np.ceil(x.max() + half)),
                float(np.ceil(y.max() + half)),
            ]
        out: list[list[float | None]] = np.round(pts, 3).tolist()
        for i in np.flatnonzero(~good):
            out[i] = [None, None]
        lead["pixels"] = out
    for lead, (bx, by) in zip(leads, next(chunks), strict=True):
        lead["baseline_start_image"] = [round(float(bx), 3), round(float(by), 3)]
    for item in [*boxed, *empty]:
        pts = next(chunks)
        item["bbox"] = [
            float(np.floor(pts[:, 0].min())),
            float(np.floor(pts[:, 1].min())),
            float(np.ceil(pts[:, 0].max())),
            float(np.ceil(pts[:, 1].max())),
        ]
    truth["page_corners"] = np.round(next(chunks), 3).tolist()
    truth["warped"] = True


def _multiply(state: _State, field: Img) -> None:
    """Queue a multiplicative shading; consecutive ones are combined and applied once."""
    state.encoded = None
    if field.ndim == 2:
        state.field = field if state.field is None else cv2.multiply(state.field, field)
    else:
        state.field3 = field if state.field3 is None else cv2.multiply(state.field3, field)


def _photometric(state: _State, d: Degradation, rng: np.random.Generator) -> None:
    w, h = state.shape
    if isinstance(d, Stains | Creases):
        state.u8 = d.apply(state.u8)
    elif isinstance(d, Moire):
        state.u8 = cv2.multiply(state.u8, d.field((w, h)), scale=1.0 / _FIELD_ONE)
    elif isinstance(d, Texture):
        f8 = d.field((w, h))
        state.u8 = cv2.multiply(state.u8, cv2.merge([f8, f8, f8]), scale=1.0 / _FIELD_ONE)
    elif isinstance(d, Lighting | Shadow | Wrinkles):
        field = d.shading((w, h)) if isinstance(d, Wrinkles) else d.field((w, h))
        _multiply(state, field)
    elif isinstance(d, Blur):
        if d.kind == "gaussian":
            sigma = max(d.size, 0.3) / 2
            state.u8 = cv2.GaussianBlur(state.u8, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        else:
            state.u8 = cv2.filter2D(state.u8, -1, d.kernel(), borderType=cv2.BORDER_REPLICATE)
    elif isinstance(d, Noise):
        # luminance noise per pixel; colour noise (demosaicing) is coarser, at half resolution
        g = np.random.default_rng(d.seed)
        k = float(d.sigma) / _BANK_SCALE
        bank = _gaussian_bank(h * w, g).reshape(h, w)
        lum = cv2.addWeighted(bank, k, bank, 0.0, 0.0, dtype=cv2.CV_16S)
        if d.color:
            hc, wc = (h + 1) // 2, (w + 1) // 2
            bank3 = _gaussian_bank(hc * wc * 3, g).reshape(hc, wc, 3)
            chroma = cv2.addWeighted(bank3, k / 2, bank3, 0.0, 0.0, dtype=cv2.CV_16S)
            chroma = cv2.resize(chroma, (wc * 2, hc * 2), interpolation=cv2.INTER_LINEAR)[:h, :w]
            n = cv2.add(cv2.merge([lum, lum, lum]), chroma)
        else:
            n = cv2.merge([lum, lum, lum])
        state.u8 = cv2.add(state.u8, n, dtype=cv2.CV_8U)
    elif isinstance(d, Jpeg):
        bgr = cv2.cvtColor(state.u8, cv2.COLOR_RGB2BGR)
        _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(d.quality)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None
        state.u8 = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        state.encoded = buf.tobytes()
        state.jpeg_quality = int(d.quality)
    elif isinstance(d, ColorCast):
        lut = np.arange(256, dtype=np.float32) / 255.0
        lut = np.clip((lut**d.gamma - 0.5) * d.contrast + 0.5, 0, 1)
        table = np.stack([np.clip(lut * 255 * g, 0, 255) for g in d.gains], axis=1)
        state.u8 = cv2.LUT(state.u8, table.astype(np.uint8).reshape(256, 1, 3))
    elif isinstance(d, Handwriting):
        state.u8 = _handwriting(state.u8, d)
    elif isinstance(d, Stamp):
        state.u8 = _stamp(state.u8, d)
    elif isinstance(d, Grayscale):
        grey = cv2.cvtColor(state.u8, cv2.COLOR_RGB2GRAY)
        state.u8 = cv2.merge([grey, grey, grey])
    else:  # pragma: no cover
        raise EcgscanError(f"degradation {d.name!r} cannot be applied")


def _handwriting(img: Img, d: Handwriting) -> Img:
    from ._text import draw_text

    g = np.random.default_rng(d.seed)
    out = img.copy()
    h, w = img.shape[:2]
    s = min(w, h) / 1000.0
    words = ["ok", "NSR", "AF?", "see prev", "Dr. K", "ST↑?", "repeat", "12/03", "LBBB", "cf. echo"]
    for _ in range(d.n):
        x, y = g.uniform(0.05, 0.9) * w, g.uniform(0.05, 0.9) * h
        if g.random() < 0.5:
            n = int(g.integers(6, 16))
            steps = g.normal(0, 1, (n, 2)).cumsum(axis=0) * 12 * s + [x, y]
            steps[:, 0] += np.linspace(0, g.uniform(60, 250) * s, n)
            curve = _smooth_curve(steps)
            thick = max(int(round(g.uniform(1.5, 3.5) * s)), 1)
            cv2.polylines(
                out, [np.rint(curve * 16).astype(np.int32)], False, d.ink, thick, cv2.LINE_AA, 4
            )
        else:
            word = words[int(g.integers(len(words)))]
            draw_text(out, word, (x, y), font="serif", size_px=g.uniform(25, 45) * s, color=d.ink)
    return out


def _smooth_curve(points: NDArray[np.float64]) -> NDArray[np.float64]:
    n = len(points)
    t = np.linspace(0, n - 1, n * 8)
    i = np.clip(t.astype(int), 0, n - 2)
    f = (t - i)[:, None]
    f = f * f * (3 - 2 * f)
    return points[i] * (1 - f) + points[i + 1] * f


def _stamp(img: Img, d: Stamp) -> Img:
    from ._text import draw_text

    h, w = img.shape[:2]
    g = np.random.default_rng(d.seed)
    r = max(int(d.radius * min(w, h)), 8)
    cx, cy = int(d.x * w), int(d.y * h)
    # work in the stamp's neighbourhood only
    x0, y0 = max(cx - 2 * r, 0), max(cy - 2 * r, 0)
    x1, y1 = min(cx + 2 * r, w), min(cy + 2 * r, h)
    if x0 >= x1 or y0 >= y1:
        return img
    lh, lw = y1 - y0, x1 - x0
    layer = np.full((lh, lw, 3), 255, np.uint8)
    c = (cx - x0, cy - y0)
    thick = max(r // 14, 2)
    if d.shape == "circle":
        cv2.circle(layer, c, r, d.ink, thick, cv2.LINE_AA)
        cv2.circle(layer, c, int(r * 0.8), d.ink, max(thick // 2, 1), cv2.LINE_AA)
    else:
        cv2.rectangle(
            layer,
            (c[0] - int(1.6 * r), c[1] - r // 2),
            (c[0] + int(1.6 * r), c[1] + r // 2),
            d.ink,
            thick,
            cv2.LINE_AA,
        )
    draw_text(
        layer,
        d.text,
        (c[0] - 1.2 * r, c[1] - 0.2 * r),
        font="sans-bold",
        size_px=0.35 * r,
        color=d.ink,
    )
    ink = 1.0 - layer.astype(np.float32) / 255.0
    speckle = (g.random((lh, lw, 1)) > 0.25).astype(np.float32) * 0.75
    alpha = ink.max(axis=2, keepdims=True) * speckle
    patch = img[y0:y1, x0:x1].astype(np.float32)
    mixed = patch * (1 - alpha) + layer.astype(np.float32) * alpha
    out = img.copy()
    # the stamp's ink darkens what is below instead of painting over it
    out[y0:y1, x0:x1] = np.clip(np.minimum(mixed, patch), 0, 255).astype(np.uint8)
    return out


def apply_chain(
    image: Img,
    mask: Img,
    truth: dict[str, Any],
    chain: Iterable[str | dict[str, Any] | Degradation],
    rng: np.random.Generator,
) -> tuple[Img, Img, dict[str, Any], bytes | None]:
    """Apply ``chain`` in order; returns the new image, mask, truth (updated in place) and the
    JPEG bytes when the last step was a JPEG compression (so that saving is lossless)."""
    state = _State(image, mask)
    h, w = image.shape[:2]
    truth.setdefault(
        "page_corners", [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]]
    )
    truth.setdefault("warped", False)
    applied = truth.setdefault("degradations", [])
    for item in chain:
        d = make_degradation(item, rng, state.size)
        applied.append(d.to_json())
        if isinstance(d, Wrinkles):  # shading belongs to the paper: apply it before the warp
            _flush(state, truth)
            _photometric(state, d, rng)
        if isinstance(d, Warp):
            in_size = state.size
            d.out_size(in_size)  # validates
            state.pending.append((d, in_size))
            if isinstance(d, CropPad):
                state.fills.append(d.fill)
            state.encoded = None
        else:
            _flush(state, truth)
            _photometric(state, d, rng)
    _flush(state, truth)
    truth["image_px_per_mm"] = _image_scale(truth)
    if state.jpeg_quality is not None and state.encoded is not None:
        truth["jpeg_quality"] = state.jpeg_quality
    return state.u8, state.mask, truth, state.encoded
