"""Printed text (lead labels, header, footer) with open fonts, blended into a page.

The fonts are the DejaVu family (Bitstream Vera licence, free to redistribute) and Computer
Modern Sans (BaKoMa, the narrow face of the ``'condensed'`` style) that ship with matplotlib, one
of ecgscan's dependencies, so no font file is copied into the package.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["FONTS", "draw_text", "font_path"]

#: Font names accepted by the renderer → file name in matplotlib's font folder.
FONTS: dict[str, str] = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
    "mono-bold": "DejaVuSansMono-Bold.ttf",
    "serif": "DejaVuSerif.ttf",
    # a narrow sans: DejaVuSansDisplay.ttf, despite its name, holds almost no glyphs
    "condensed": "cmss10.ttf",
}


@cache
def font_path(name: str) -> str:
    """Absolute path of the TrueType file for a font name of :data:`FONTS`."""
    import matplotlib

    from ..errors import EcgscanError

    if name not in FONTS:
        raise EcgscanError(f"unknown font {name!r}; expected one of {', '.join(FONTS)}")
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[name]
    if not path.is_file():  # pragma: no cover - broken matplotlib install
        raise EcgscanError(f"font file {path} is missing; reinstall matplotlib")
    return str(path)


@lru_cache(maxsize=512)
def _glyphs(text: str, font: str, size_px: int) -> tuple[NDArray[np.float32], int, int]:
    """Coverage (h×w float in [0, 1]) of ``text`` and its offset from the pen position."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(font_path(font), size_px)
    left, top, right, bottom = (int(v) for v in face.getbbox(text))
    w, h = max(right - left, 1), max(bottom - top, 1)
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, font=face, fill=255)
    alpha = np.asarray(canvas, np.float32) / 255.0
    alpha.flags.writeable = False
    return alpha, left, top


def draw_text(
    image: NDArray[np.uint8],
    text: str,
    xy: tuple[float, float],
    *,
    font: str = "sans",
    size_px: float = 20.0,
    color: tuple[int, int, int] = (0, 0, 0),
) -> list[int]:
    """Blend ``text`` into ``image`` in place with its pen position at ``xy`` (left, top).

    Returns the ink bounding box ``[x0, y0, x1, y1]`` in pixels (``x1``/``y1`` exclusive),
    clipped to the image; an empty box if the text falls outside.
    """
    if not text:
        return [0, 0, 0, 0]
    alpha, left, top = _glyphs(text, font, max(int(round(size_px)), 4))
    h_img, w_img = image.shape[:2]
    x0, y0 = int(round(xy[0])) + left, int(round(xy[1])) + top
    x1, y1 = x0 + alpha.shape[1], y0 + alpha.shape[0]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w_img), min(y1, h_img)
    if cx0 >= cx1 or cy0 >= cy1:
        return [0, 0, 0, 0]
    a = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
    region = image[cy0:cy1, cx0:cx1].astype(np.float32)
    region += a * (np.asarray(color, np.float32) - region)
    image[cy0:cy1, cx0:cx1] = np.rint(region).astype(np.uint8)
    return [cx0, cy0, cx1, cy1]


def text_height(font: str, size_px: float) -> int:
    """Height in pixels of a capital line of ``font`` at ``size_px`` (for layout)."""
    alpha, _, top = _glyphs("Hg", font, max(int(round(size_px)), 4))
    return int(alpha.shape[0] + top)
