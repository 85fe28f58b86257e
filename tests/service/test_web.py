"""The web service from outside: a real `ecgscan serve` on loopback, real pages, real models."""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from service_helpers import running_server

from ecgscan.data import LEADS, Record
from ecgscan.data.synthetic import synthetic_ecg
from ecgscan.service._app import _record_name, sniff_type

TIMEOUT = 120.0


def post(url: str, content: bytes, filename: str = "page.png", **data: str) -> httpx.Response:
    files = {"file": (filename, content, "application/octet-stream")}
    return httpx.post(f"{url}/v1/digitize", files=files, data=data, timeout=TIMEOUT)


def best_correlation(got: np.ndarray, truth: np.ndarray, *, max_lag: int) -> float:
    """Highest correlation of ``got`` with ``truth`` shifted by at most ``max_lag`` samples."""
    ok = np.isfinite(got)
    return max(
        float(np.corrcoef(got[ok], np.roll(truth, lag)[ok])[0, 1])
        for lag in range(-max_lag, max_lag + 1)
    )


def test_sniff_type_reads_content_not_names() -> None:
    assert sniff_type(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_type(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_type(b"II*\x00") == sniff_type(b"MM\x00*") == "tiff"
    assert sniff_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_type(b"\n\n%PDF-1.7") == "pdf"
    assert sniff_type(b"GIF89a") is None
    assert sniff_type(b"<svg xmlns=...") is None


def test_record_names_are_never_paths() -> None:
    assert _record_name("../../etc/passwd") == "passwd"
    assert _record_name("C:\\scans\\ward 3\\ecg 17.png") == "ecg_17"
    assert _record_name("..") == "ecg"
    assert _record_name(None) == "ecg"


def test_health_and_docs(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok"
    assert health["workers"] == health["workers_alive"] == 2
    assert health["classifier"], health["classifier_error"]
    assert health["limits"]["max_upload_mb"] == 25.0
    schema = httpx.get(f"{server}/openapi.json").json()
    assert "/v1/digitize" in schema["paths"]
    assert "/v1/results/{result_id}/record.zip" in schema["paths"]
    assert httpx.get(f"{server}/docs").status_code == 200


def test_page_upload_returns_12_leads_labels_and_downloads(server: str, pages: Path) -> None:
    reply = post(server, (pages / "a.png").read_bytes(), filename="ward 3/a.png")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["name"] == "a"
    assert body["fs"] == 500 and body["n_samples"] == 5000
    assert list(body["leads"]) == list(LEADS)
    assert all(len(v) == 5000 for v in body["leads"].values())
    # a 3x4+II page prints lead I for the first 2.5 s only: the rest is null (NaN), not 0
    lead_i = np.array([np.nan if v is None else v for v in body["leads"]["I"]])
    assert np.isfinite(lead_i[:1000]).mean() > 0.9 and np.isnan(lead_i[1500:]).all()
    # the rhythm strip follows the rendered signal (up to the digitizer's time origin)
    truth = synthetic_ecg(fs=500, duration=10, seed=0, heart_rate=60).lead("II")
    lead_ii = np.array([np.nan if v is None else v for v in body["leads"]["II"]])
    ok = np.isfinite(lead_ii)
    assert ok.mean() > 0.9
    assert best_correlation(lead_ii, truth, max_lag=150) > 0.85
    # the classifier: 11 Challenge labels with probabilities, chosen ones among them
    assert len(body["probabilities"]) == 11
    assert all(0.0 <= p <= 1.0 for p in body["probabilities"].values())
    assert set(body["labels"]) <= set(body["probabilities"])
    assert body["layout"]["name"] == "3x4+II"
    assert set(body["quality"]) == set(LEADS)

    files = body["files"]
    again = httpx.get(server + files["result"]).json()
    assert again["leads"] == body["leads"]
    z = httpx.get(server + files["wfdb"])
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    assert 'filename="a.zip"' in z.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        assert sorted(zf.namelist()) == ["a.dat", "a.hea"]
        with tempfile.TemporaryDirectory() as tmp:
            zf.extractall(tmp)
            record = Record.from_wfdb(Path(tmp) / "a")
    got = np.where(np.isnan(record.signal), np.nan, record.signal)
    assert record.leads == LEADS and record.fs == 500
    assert np.allclose(got[ok, 1], lead_ii[ok], atol=2e-3)
    assert set(record.labels) == set(body["labels"])
    csv = httpx.get(server + files["csv"])
    assert csv.text.splitlines()[0].startswith("time_s,I_mV,II_mV")
    assert len(csv.text.splitlines()) == 5001
    record_json = httpx.get(server + files["json"]).json()
    assert record_json["leads"]["II"][:100] == pytest.approx(
        [None if v is None else v for v in body["leads"]["II"][:100]], abs=1e-3
    )
    png = httpx.get(server + files["overlay"])
    overlay = Image.open(io.BytesIO(png.content))
    assert overlay.size == (body["image"]["width"], body["image"]["height"])


def test_pdf_upload_with_fs_and_samples(server: str, pages: Path) -> None:
    # the type comes from the content: a PDF named .png is read as a PDF (its first page)
    reply = post(server, (pages / "c.pdf").read_bytes(), filename="c.png", fs="250",
                 samples="2000")  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["fs"] == 250 and body["n_samples"] == 2000
    assert all(len(v) == 2000 for v in body["leads"].values())


def _bomb_png() -> bytes:
    """A 12000×12000 one-bit PNG: ~20 kB on the wire, 144 Mpx once decoded."""
    buf = io.BytesIO()
    Image.new("1", (12000, 12000), 1).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_bad_uploads_get_4xx(server: str, server_root: Path, pages: Path) -> None:
    png = (pages / "a.png").read_bytes()
    cases = {
        "text named .png": (post(server, b"hello, not an image", "x.png"), 415),
        "svg": (post(server, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg"), 415),
        "empty": (post(server, b"", "x.png"), 422),
        "truncated png": (post(server, png[: len(png) // 3], "x.png"), 422),
        "corrupt pdf": (post(server, b"%PDF-1.4\n1 0 obj garbage\n%%EOF", "x.pdf"), 422),
        "bad fs": (post(server, png, "x.png", fs="-5"), 422),
        "bad samples": (post(server, png, "x.png", samples="0"), 422),
        "decompression bomb": (post(server, _bomb_png(), "bomb.png"), 422),
        "too large": (post(server, b"\x89PNG\r\n\x1a\n" + bytes(26_000_000), "big.png"), 413),
    }
    for what, (reply, status) in cases.items():
        assert reply.status_code == status, (what, reply.status_code, reply.text)
        detail = reply.json()["detail"]
        assert detail, what
    assert "Mpx" in cases["decompression bomb"][0].json()["detail"]
    assert "25 MB" in cases["too large"][0].json()["detail"]

    # a chunked upload (no Content-Length) is cut off as soon as it passes the limit
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        yield b"\x89PNG\r\n\x1a\n"
        for _ in range(30):
            yield bytes(1_000_000)
        yield b"\r\n--b--\r\n"

    chunked = httpx.post(f"{server}/v1/digitize", content=chunks(), timeout=TIMEOUT,
                         headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert chunked.status_code == 413, chunked.text
    # no file field at all
    missing = httpx.post(f"{server}/v1/digitize", data={"fs": "500"}, timeout=TIMEOUT)
    assert missing.status_code == 422
    # a blank page is an image but not an ECG
    blank = io.BytesIO()
    Image.new("RGB", (1100, 850), "white").save(blank, format="PNG")
    reply = post(server, blank.getvalue(), "blank.png")
    assert reply.status_code == 422 and "ECG" in reply.json()["detail"]
    # the server keeps no upload behind, and the service still works
    assert list((server_root / "uploads").iterdir()) == []
    assert httpx.get(f"{server}/health").json()["workers_alive"] == 2


def test_result_routes_take_no_paths(server: str) -> None:
    for path in (
        "/v1/results/..%2F..%2Fetc%2Fpasswd",
        "/v1/results/../../etc/passwd",
        "/v1/results/0123456789abcdef0123456789abcdef/record.zip",
        "/v1/results/0123456789ABCDEF0123456789ABCDEF",
        "/v1/results/x/..%2F..%2Fresult.json",
    ):
        assert httpx.get(server + path).status_code == 404, path


def test_concurrent_clients_all_succeed(server: str, server_root: Path, pages: Path) -> None:
    uploads = [(pages / "a.png").read_bytes(), (pages / "b.jpg").read_bytes()] * 2

    def client(content: bytes) -> tuple[int, str]:
        reply = post(server, content)
        return reply.status_code, reply.json().get("id", reply.text)

    with ThreadPoolExecutor(len(uploads)) as pool:
        replies = list(pool.map(client, uploads))
    assert [status for status, _ in replies] == [200] * len(uploads)
    ids = {rid for _, rid in replies}
    assert len(ids) == len(uploads)  # every request got its own result
    for rid in ids:
        assert (server_root / "results" / rid / "result.json").is_file()
    health = httpx.get(f"{server}/health").json()
    assert health["worker_restarts"] == 0 and health["requests"]["server_error"] == 0


def test_slow_request_times_out_and_its_worker_is_replaced(pages: Path, tmp_path: Path) -> None:
    with running_server("--workers", "1", "--timeout", "0.5", results_dir=tmp_path) as url:
        reply = post(url, (pages / "c.pdf").read_bytes())  # a 200-DPI page: over 1 s of work
        assert reply.status_code == 504, reply.text
        assert "0.5 s" in reply.json()["detail"]
        # the worker that overran was killed and replaced: the service answers again
        health: dict = {}
        for _ in range(240):
            health = httpx.get(f"{url}/health").json()
            if health["worker_restarts"] == 1 and health["workers_idle"] == 1:
                break
            time.sleep(0.25)
        assert health["worker_restarts"] == 1 and health["workers_alive"] == 1
        png = (pages / "a.png").read_bytes()
        assert post(url, png[:5000]).status_code == 422  # quick to refuse, so within 0.5 s
    # stopping the server removed its temporary uploads folder
    assert not (tmp_path / "uploads").exists()


def test_stalled_upload_gets_408_without_reaching_a_worker() -> None:
    import asyncio

    from ecgscan.service import create_app

    app = create_app(read_timeout=0.2)  # not started: no worker is needed to refuse this
    sent: list[dict] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/digitize", "raw_path": b"/v1/digitize",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("x", 80),
        "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
    }  # fmt: skip
    chunks = [b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n']

    async def receive() -> dict:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(), "more_body": True}
        await asyncio.sleep(3600)  # the client stalls
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    assert b"stalled" in sent[1]["body"]


def test_results_expire_and_are_capped(tmp_path: Path) -> None:
    import os

    from ecgscan.service._app import ServiceConfig, _Service

    service = _Service(ServiceConfig(max_results=2, result_ttl=600, timeout=10))
    service.root = tmp_path
    results = tmp_path / "results"
    now = time.time()
    ages = {"a" * 32: 5000, "b" * 32: 300, "c" * 32: 200, "d" * 32: 100, ".staging": 1000}
    for name, age in ages.items():
        (results / name).mkdir(parents=True)
        os.utime(results / name, (now - age, now - age))
    service.prune()
    assert sorted(p.name for p in results.iterdir()) == ["c" * 32, "d" * 32]


def test_serve_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from ecgscan.cli import main

    assert main(["serve", "--max-upload-mb", "0"]) == 2
    assert "max_upload_mb must be positive" in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2
