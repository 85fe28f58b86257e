"""Benchmark the web service: concurrent clients uploading ECG pages to `ecgscan serve`.

Starts `ecgscan serve` on a free loopback port, renders a few pages with ecgscan's renderer,
then runs CLIENTS threads that each upload UPLOADS pages one after the other. Reports errors,
latency percentiles (p50/p95/max) and throughput. Target: 8 clients × 6 uploads, no error.

    python benchmarks/serve.py [--clients 8] [--uploads 6] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.render import render_page


def render_uploads(n: int, dpi: int) -> list[tuple[str, bytes]]:
    """``n`` distinct pages as (file name, PNG/JPEG bytes), alternating styles and formats."""
    out = []
    for k in range(n):
        record = synthetic_ecg(fs=500, duration=10, seed=k, heart_rate=55 + 7 * k)
        image = render_page(record, layout="3x4+II", dpi=dpi, style="clean", seed=k).image
        buf = io.BytesIO()
        fmt = "PNG" if k % 2 == 0 else "JPEG"
        Image.fromarray(image).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        out.append((f"page{k}.{fmt.lower()}", buf.getvalue()))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=6, help="uploads per client")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--dpi", type=int, default=200, help="resolution of the test pages")
    parser.add_argument("--timeout", type=float, default=600.0, help="client timeout (s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    pages = render_uploads(4, args.dpi)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "ecgscan", "serve", "--port", str(port), "--workers",
           str(args.workers), "--log-level", "warning", "--timeout", str(args.timeout)]  # fmt: skip
    server = subprocess.Popen(cmd, start_new_session=True)
    try:
        tic = time.monotonic()
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).json()["status"] == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if server.poll() is not None or time.monotonic() - tic > 180:
                print("the server did not start", file=sys.stderr)
                return 1
            time.sleep(0.25)
        startup = time.monotonic() - tic

        def client(c: int) -> list[tuple[int, float, str]]:
            results = []
            with httpx.Client(base_url=url, timeout=args.timeout) as http:
                for u in range(args.uploads):
                    name, content = pages[(c + u) % len(pages)]
                    t0 = time.perf_counter()
                    try:
                        r = http.post("/v1/digitize", files={"file": (name, content)})
                        status, ok_leads = r.status_code, len(r.json().get("leads", {}))
                        detail = "" if status == 200 and ok_leads == 12 else r.text[:200]
                    except httpx.HTTPError as exc:
                        status, detail = 0, repr(exc)
                    results.append((status, time.perf_counter() - t0, detail))
            return results

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            per_client = list(pool.map(client, range(args.clients)))
        wall = time.perf_counter() - t0
        health = httpx.get(f"{url}/health").json()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    flat = [r for rs in per_client for r in rs]
    latencies = np.array([t for s, t, _ in flat if s == 200])
    errors = [(s, d) for s, _, d in flat if s != 200 or d]
    figures = {
        "clients": args.clients,
        "uploads_per_client": args.uploads,
        "requests": len(flat),
        "errors": len(errors),
        "workers": args.workers,
        "page_dpi": args.dpi,
        "server_startup_s": round(startup, 2),
        "wall_s": round(wall, 2),
        "throughput_pages_per_s": round(len(latencies) / wall, 3),
        "latency_p50_s": round(float(np.percentile(latencies, 50)), 2) if latencies.size else None,
        "latency_p95_s": round(float(np.percentile(latencies, 95)), 2) if latencies.size else None,
        "latency_max_s": round(float(latencies.max()), 2) if latencies.size else None,
        "latency_mean_s": round(statistics.fmean(latencies), 2) if latencies.size else None,
        "worker_restarts": health["worker_restarts"],
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.platform(),
    }
    for key, value in figures.items():
        print(f"{key:26s} {value}")
    for status, detail in errors[:5]:
        print(f"error: status {status}: {detail}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
