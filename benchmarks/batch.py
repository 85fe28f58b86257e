"""Benchmark archive jobs: pages per second with 1 and 2 local workers and on Ray.

Renders PAGES ECG pages with ecgscan's renderer into a temporary folder, then runs the same
digitization job (`run_digitize_job`, WFDB + JSON summary per page) with 1 local worker, 2 local
workers, and on a local Ray instance with 2 CPUs. Reports pages/s, the speed-up from 1 to 2
local workers (target ≥ 1.8× on 2 free cores) and checks that every run wrote the same outputs
(byte for byte, but for the stage timings in the JSON summaries).

    python benchmarks/batch.py [--pages 16] [--no-ray] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from PIL import Image

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.render import render_page
from ecgscan.service import JOB_DIR, run_digitize_job


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and JOB_DIR not in p.parts:
            h.update(p.relative_to(folder).as_posix().encode())
            data = p.read_bytes()
            if p.suffix == ".json":  # stage timings vary from run to run
                summary = json.loads(data)
                summary.pop("timings", None)
                data = json.dumps(summary, sort_keys=True).encode()
            h.update(data)
    return h.hexdigest()


def page_times(out: Path) -> tuple[float, float]:
    """Mean wall-clock and CPU seconds per page, from the job's ledger.

    CPU ≈ wall means each worker had a core to itself; wall ≫ CPU means the cores were shared
    with other processes and the speed-up figures understate what free cores give.
    """
    entries = [json.loads(line) for line in (out / JOB_DIR / "ledger.jsonl").open()]
    done = [e for e in entries if e["event"] == "done"]
    wall = sum(e["seconds"] for e in done) / max(len(done), 1)
    cpu = sum(e.get("cpu_seconds", 0.0) for e in done) / max(len(done), 1)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=16)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ecgscan-batch-") as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        pages = root / "pages"
        pages.mkdir(parents=True)
        for k in range(args.pages):
            record = synthetic_ecg(fs=500, duration=10, seed=k, heart_rate=55 + 3 * k)
            image = render_page(record, layout="3x4+II", dpi=args.dpi, style="clean", seed=k)
            Image.fromarray(image.image).save(pages / f"page{k:03d}.png")

        runs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 2)])
        figures: dict[str, object] = {"pages": args.pages, "page_dpi": args.dpi}
        digests = {}
        for backend, workers in runs:
            key = f"{backend}_{workers}"
            out = root / key
            report = run_digitize_job([pages], out, workers=workers, backend=backend,
                                      progress=False)  # fmt: skip
            if report.failed:
                print(f"{key}: {len(report.failed)} pages failed, e.g. {report.failed[0]}")
            figures[f"{key}_pages_per_s"] = round(report.pages_per_second, 3)
            figures[f"{key}_seconds"] = round(report.seconds, 2)
            figures[f"{key}_failed"] = len(report.failed)
            digests[key] = digest(out)
            wall, cpu = page_times(out)
            figures[f"{key}_page_wall_s"] = round(wall, 2)
            figures[f"{key}_page_cpu_s"] = round(cpu, 2)
            print(f"{key:8s} {report.pages_per_second:6.3f} pages/s  ({report.seconds:.1f} s; "
                  f"per page {wall:.2f} s wall, {cpu:.2f} s CPU)")  # fmt: skip
        speedup = figures["local_2_pages_per_s"] / figures["local_1_pages_per_s"]  # type: ignore[operator]
        figures["speedup_1_to_2_local"] = round(speedup, 2)
        figures["outputs_identical"] = len(set(digests.values())) == 1
        figures["cpu_count"] = os.cpu_count()
        figures["load_average_1min"] = round(os.getloadavg()[0], 2)
        figures["machine"] = platform.platform()
    print(f"speed-up 1 → 2 local workers: {speedup:.2f}× (target ≥ 1.8× on 2 free cores)")
    print(f"outputs identical across runs: {figures['outputs_identical']}")
    print(f"load average during the run: {figures['load_average_1min']} on {os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if figures["outputs_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
