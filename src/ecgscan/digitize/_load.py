"""Stage 1: load and normalise a page (files, PDFs, arrays) into an RGB uint8 array."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DigitizationError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "iter_pages",
    "load_image",
]

#: Image file suffixes the digitizer reads (plus ``.pdf``).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: Largest page accepted, in pixels (a 600-DPI A3 page is ~70 Mpx); guards against bombs.
MAX_PIXELS = 80_000_000
#: Smallest side accepted, in pixels (a 10-s row needs a few hundred columns).
MIN_SIDE = 200


def _check_array(image: NDArray[Any], where: str) -> NDArray[np.uint8]:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DigitizationError(
            f"{where}: expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), "
            f"got shape {arr.shape}"
        )
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                raise DigitizationError(f"{where}: image contains NaN or inf")
            scale = 255.0 if arr.max() <= 1.0 else 1.0
            arr = np.clip(arr * scale, 0, 255).round().astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer):
            top = 65535 if arr.max() > 255 else 255
            arr = (arr.astype(np.float64) * (255.0 / top)).round().astype(np.uint8)
        else:
            raise DigitizationError(f"{where}: unsupported image dtype {arr.dtype}")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DigitizationError(
            f"{where}: image is {w}×{h} px, too small to hold an ECG (needs at least "
            f"{MIN_SIDE} px per side); scan at 100 DPI or more"
        )
    if h * w > MAX_PIXELS:
        raise DigitizationError(
            f"{where}: image is {w}×{h} px ({h * w / 1e6:.0f} Mpx), over the limit of "
            f"{MAX_PIXELS / 1e6:.0f} Mpx; scan at a lower DPI (200–300 is plenty)"
        )
    return np.ascontiguousarray(arr)


#: EXIF tag of the image's orientation (1: as stored).
_ORIENTATION = 0x0112


def _plain_raster(opened: Any, data: bytes) -> NDArray[np.uint8] | None:
    """The pixels of an 8-bit RGB PNG or a colour JPEG stored the right way up (no EXIF
    orientation other than 1), decoded by OpenCV from the file's bytes ``data``: the same
    pixels as Pillow's (both use zlib and libjpeg-turbo with their default settings; checked
    on every ECG-Image-Kit page and real scan of the project's data), about a third faster for
    JPEG. None for any other file (palette, grey, alpha, CMYK, 16-bit, turned, or a JPEG cut
    off before its end-of-image marker): Pillow reads it, or refuses it."""
    if opened.format not in ("PNG", "JPEG") or opened.mode != "RGB":
        return None
    if "exif" in opened.info and opened.getexif().get(_ORIENTATION, 1) != 1:
        return None
    if opened.format == "JPEG" and not data.endswith(b"\xff\xd9"):
        return None  # a cut-off JPEG: OpenCV would fill it grey, Pillow refuses it
    import cv2

    flags = cv2.IMREAD_IGNORE_ORIENTATION
    rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.11: no conversion pass
    buffer = np.frombuffer(data, np.uint8)
    arr = cv2.imdecode(buffer, flags | (rgb_flag if rgb_flag is not None else cv2.IMREAD_COLOR))
    if arr is None or arr.shape[:2] != (opened.size[1], opened.size[0]):
        return None
    if rgb_flag is None:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return np.asarray(arr, np.uint8)


def _open_raster(path: Path) -> NDArray[np.uint8]:
    from PIL import Image, ImageOps

    where = str(path)
    data = path.read_bytes()  # read once: Pillow checks the header, OpenCV may decode it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    w, h = opened.size
                    if w * h > MAX_PIXELS:
                        raise DigitizationError(
                            f"{where}: image is {w}×{h} px ({w * h / 1e6:.0f} Mpx), over the "
                            f"limit of {MAX_PIXELS / 1e6:.0f} Mpx; scan at a lower DPI"
                        )
                    fast = _plain_raster(opened, data)
                    if fast is not None:
                        return _check_array(fast, where)
                    opened.load()
                    im: Image.Image = ImageOps.exif_transpose(opened)
                    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                        arr = np.asarray(im, dtype=np.float64)
                        arr = arr / max(float(arr.max()), 1.0)
                        return _check_array(arr, where)
                    if im.mode in ("RGBA", "LA", "P", "PA"):
                        im = im.convert("RGBA")
                        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                        im = Image.alpha_composite(background, im)
                    im = im.convert("RGB")
                    return _check_array(np.asarray(im), where)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except DigitizationError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DigitizationError(
            f"{where}: image is over the pixel limit of {MAX_PIXELS / 1e6:.0f} Mpx "
            "(possible decompression bomb); scan at a lower DPI"
        ) from None
    except Image.UnidentifiedImageError:
        raise DigitizationError(
            f"{where}: not an image file (its contents are no image format Pillow knows); "
            "expected a PNG, JPEG, TIFF, BMP, WebP or PDF file"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DigitizationError(
            f"{where}: cannot read the file as an image ({exc}); expected a PNG, JPEG, TIFF, "
            "BMP, WebP or PDF file"
        ) from None


def _pdf_pages(
    path: Path, dpi: float, pages: Sequence[int] | None = None
) -> Iterator[NDArray[np.uint8]]:
    """Rasterise the PDF pages ``pages`` (0-based; all when None), only those, in order."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception as exc:  # pdfium raises its own error types
        raise DigitizationError(
            f"{path}: cannot read the file as a PDF ({exc}); is it corrupt or encrypted?"
        ) from None
    try:
        if len(doc) == 0:
            raise DigitizationError(f"{path}: the PDF has no pages")
        for k in range(len(doc)) if pages is None else pages:
            if not 0 <= k < len(doc):
                raise DigitizationError(f"{path}: the PDF has no page {k + 1} ({len(doc)} pages)")
            page = doc[k]
            w_pt, h_pt = page.get_size()
            scale = dpi / 72.0
            if w_pt * h_pt * scale * scale > MAX_PIXELS:
                scale = float(np.sqrt(MAX_PIXELS / (w_pt * h_pt))) * 0.99
            bitmap = page.render(scale=scale)
            image = np.array(bitmap.to_pil().convert("RGB"))
            page.close()
            yield _check_array(image, f"{path} page {k + 1}")
    finally:
        doc.close()


def iter_pages(
    path: str | os.PathLike[str], *, pdf_dpi: float = 200.0
) -> Iterator[tuple[str, NDArray[np.uint8]]]:
    """Yield ``(stem, image)`` for every page of an image or PDF file.

    A PDF gives one page per PDF page, named ``<stem>-p<k>`` (k from 1); an image file gives
    one page named ``<stem>``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DigitizationError
        If the file cannot be decoded, or a page is too small or too large.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {str(p)!r}")
    if p.is_dir():
        raise IsADirectoryError(f"{str(p)!r} is a folder; pass an image or PDF file")
    if p.suffix.lower() == ".pdf":
        for k, image in enumerate(_pdf_pages(p, pdf_dpi), start=1):
            yield f"{p.stem}-p{k}", image
    else:
        yield p.stem, _open_raster(p)


def load_image(image: Any, *, pdf_dpi: float = 200.0, page: int = 0) -> NDArray[np.uint8]:
    """Load one page as an RGB uint8 array of shape (H, W, 3).

    Parameters
    ----------
    image : path, PIL image or array
        A file (PNG, JPEG, TIFF, BMP, WebP; EXIF orientation applied; a PDF gives page
        ``page``), a PIL image, or an array (H×W grey, H×W×3 RGB or H×W×4 RGBA; uint8, uint16
        or float in 0–1).
    pdf_dpi : float
        Rasterisation resolution for PDF pages.
    page : int
        Page index (0-based) for PDFs.

    Raises
    ------
    DigitizationError
        If the input cannot be read as an image, or is too small or too large.
    """
    if isinstance(image, str | os.PathLike):
        p = Path(image)
        if p.suffix.lower() == ".pdf":
            if not p.is_file():
                raise FileNotFoundError(f"no such file: {str(p)!r}")
            return next(_pdf_pages(p, pdf_dpi, [page]))
        for _, arr in iter_pages(p):
            return arr
    if hasattr(image, "convert") and hasattr(image, "size"):
        return _check_array(np.asarray(image.convert("RGB")), "image")
    if isinstance(image, np.ndarray):
        return _check_array(image, "image")
    raise TypeError(
        f"image must be a file path, a PIL image or a numpy array, got {type(image).__name__}"
    )
