"""``ecgscan demo``: run the whole pipeline on a built-in example and show what it does."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app


@app.command()
def demo(
    output: Path = typer.Option(
        Path("ecgscan-demo"), "-o", "--output", help="Folder for the demo's files."
    ),
    style: str = typer.Option(
        "clean", "--style", help="Page style of the example: clean, print, scan or photo."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the example record and page."),
) -> None:
    """Run every stage on a built-in example: signal → paper page → digitized record → labels.

    Makes a synthetic 12-lead ECG, prints it on a simulated paper page (with the page's exact
    ground truth), digitizes the page back into a record, scores that record against the truth
    with the Challenge's SNR, and classifies it into the Challenge's 11 labels.
    """
    import numpy as np

    from .._io import ensure_output_dir
    from ..data.synthetic import synthetic_ecg
    from ..digitize import digitize, write_result
    from ..metrics import challenge_snr
    from ..render import render_page

    out = ensure_output_dir(output)
    record = synthetic_ecg(fs=500, duration=10, seed=seed, name="example")
    base = record.to_wfdb(out / "example")
    typer.echo(f"1. signal     {base}.hea: {record.n_leads} leads, {record.fs:g} Hz, "
               f"{record.duration:g} s (synthetic dipole model)")  # fmt: skip

    page = render_page(record, layout="3x4+II", dpi=200, style=style, seed=seed)
    written = page.save(out, stem="example-page")
    image_path = next(p for p in written if p.suffix in {".png", ".jpg"} and "mask" not in p.name)
    typer.echo(f"2. render     {image_path}: {style} page, 3x4+II, 200 DPI, with ground truth "
               "(.json, -mask.png, reference .hea/.dat)")  # fmt: skip

    result = digitize(image_path, fs=500)
    outputs = write_result(result, out, "example-digitized", formats=("wfdb", "json", "csv"),
                           overlay=True)  # fmt: skip
    secs = sum(result.timings.values())
    overlay_path = out / "example-digitized-overlay.png"
    typer.echo(f"3. digitize   {out / 'example-digitized'}.hea and {len(outputs) - 1} more "
               f"files in {secs:.2f} s; overlay: {overlay_path}")  # fmt: skip

    snr = challenge_snr(page.reference, result.record)
    values = [v for v in snr.values() if np.isfinite(v)]
    mean = float(np.mean(values)) if values else float("nan")
    typer.echo(f"4. evaluate   Challenge SNR of the digitized record vs the page's truth: "
               f"{mean:.1f} dB mean over {len(values)} leads")  # fmt: skip

    try:
        from ..classify import classify
    except ImportError:  # pragma: no cover - classifier not installed
        return
    prediction = classify(result.record)
    top = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[:3]
    shown = ", ".join(f"{k} {v:.2f}" for k, v in top)
    typer.echo(f"5. classify   labels: {', '.join(prediction.labels) or 'none'} "
               f"(top probabilities: {shown})")  # fmt: skip
