"""Build the renderer gallery: our pages beside ECG-Image-Kit's and beside real scans.

For every category of the ECG-Image-Kit development set (``../shared/images/eik-dev``: clean,
print, 100 DPI, augment, wrinkles, 6×2, photo) it renders the *same PTB-XL records* with the
matching ecgscan style and layout, and writes an HTML page with the two side by side (reduced
JPEG thumbnails), followed by the real scans (``../shared/images/real-scans``) beside ecgscan
scan/photo pages. Nothing is copied into the repository: the output folder is
``docs/gallery/_build`` by default (git-ignored through ``build/``-like use; choose ``-o``).

    python docs/gallery/make_gallery.py --ptbxl /root/data/ptb-xl [-o docs/gallery/_build]
"""

from __future__ import annotations

import argparse
import csv
import html
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ecgscan.data.ptbxl import PTBXL
from ecgscan.render import render_page

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("ECGSCAN_SHARED", HERE.parents[2] / "shared"))

# ECG-Image-Kit category → our rendering options
CATEGORIES: dict[str, dict[str, Any]] = {
    "A_clean": {"style": "clean", "dpi": 200, "layout": "3x4+II"},
    "B_print": {"style": "print", "dpi": 200, "layout": "3x4+II"},
    "C_res100": {"style": "clean", "dpi": 100, "layout": "3x4+II"},
    "D_augment": {"style": "scan", "dpi": 200, "layout": "3x4+II"},
    "E_wrinkles": {
        "style": "print",
        "dpi": 200,
        "layout": "3x4+II",
        "degradations": ["wrinkles", "creases", "texture", "rotate", "noise"],
    },
    "F_6x2": {"style": "clean", "dpi": 200, "layout": "6x2"},
    "G_photo": {"style": "photo", "dpi": 200, "layout": "3x4+II"},
}


def _thumb(image_rgb: np.ndarray, path: Path, width: int = 900) -> str:
    h, w = image_rgb.shape[:2]
    small = cv2.resize(image_rgb, (width, max(int(h * width / w), 1)), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ptbxl", type=Path, required=True, help="PTB-XL folder")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "_build")
    parser.add_argument("--per-category", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    eik = SHARED / "images" / "eik-dev"
    real = SHARED / "images" / "real-scans"
    out = args.output
    img_dir = out / "img"
    ptbxl = PTBXL(args.ptbxl)
    rows: list[str] = []
    with open(eik / "manifest.csv", newline="") as fh:
        manifest = list(csv.DictReader(fh))
    for category, options in CATEGORIES.items():
        items = [m for m in manifest if m["category"] == category][: args.per_category]
        rows.append(f"<h2>{html.escape(category)}</h2><table>")
        rows.append("<tr><th>ECG-Image-Kit</th><th>ecgscan (same record)</th></tr>")
        for i, item in enumerate(items):
            theirs = cv2.imread(str(eik / item["image"]))
            if theirs is None:
                continue
            record = ptbxl.record(int(item["ecg_id"]), fs=int(item["fs"]))
            opts = dict(options)
            page = render_page(record, seed=args.seed + i, **opts)
            a = _thumb(cv2.cvtColor(theirs, cv2.COLOR_BGR2RGB), img_dir / f"{category}-{i}-eik.jpg")
            b = _thumb(page.image, img_dir / f"{category}-{i}-ours.jpg")
            desc = html.escape(f"{record.name}: {item['generator_options']}")
            ours = html.escape(
                f"style={page.truth['style']} layout={page.truth['layout']} dpi={opts['dpi']} "
                + " ".join(d["name"] for d in page.truth["degradations"])
            )
            rows.append(
                f"<tr><td><img src='img/{a}'><br><small>{desc}</small></td>"
                f"<td><img src='img/{b}'><br><small>{ours}</small></td></tr>"
            )
        rows.append("</table>")
    scans = sorted(p for p in real.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    ids = ptbxl.ecg_ids(folds=[9], fs=100)
    rows.append("<h2>Real scans and photos beside ecgscan scan/photo pages</h2><table>")
    rows.append("<tr><th>real</th><th>ecgscan</th></tr>")
    for i, path in enumerate(scans[: 2 * args.per_category]):
        theirs = cv2.imread(str(path))
        if theirs is None:
            continue
        record = ptbxl.record(ids[i], fs=100)
        style = "photo" if i % 2 else "scan"
        page = render_page(record, style=style, dpi=150, seed=args.seed + 100 + i)
        a = _thumb(cv2.cvtColor(theirs, cv2.COLOR_BGR2RGB), img_dir / f"real-{i}.jpg")
        b = _thumb(page.image, img_dir / f"real-{i}-ours.jpg")
        rows.append(
            f"<tr><td><img src='img/{a}'><br><small>{html.escape(path.name)}</small></td>"
            f"<td><img src='img/{b}'><br>"
            f"<small>{style}, {html.escape(record.name)}</small></td></tr>"
        )
    rows.append("</table>")
    page_html = (
        "<!doctype html><meta charset='utf-8'><title>ecgscan renderer gallery</title>"
        "<style>body{font-family:sans-serif;margin:2em}img{width:100%}td{width:50%;"
        "vertical-align:top;padding:4px}table{width:100%;border-collapse:collapse}</style>"
        "<h1>ecgscan renderer gallery</h1><p>Left: ECG-Image-Kit (or a real scan); right: "
        "ecgscan's page of the same PTB-XL record. Generated by docs/gallery/make_gallery.py."
        "</p>" + "\n".join(rows)
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text(page_html, encoding="utf-8")
    print(f"gallery written to {out / 'index.html'}")


if __name__ == "__main__":
    main()
