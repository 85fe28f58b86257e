"""The web service: ``POST /v1/digitize``, result downloads, ``/health`` and a page at ``/``.

Uploads are checked before any decoding: the body size is capped while it streams in (413),
the type is read from the file's first bytes, never from its name or declared type (415), and
the pixel count from the image header (422). Work runs in a pool of worker processes that load
the models once; each request has a deadline after which its worker is replaced (504).
Results live in server-chosen folders named by random ids; nothing the client sends names a
path on the server. Uploads are deleted as soon as they are processed; results expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EcgscanError

try:
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise EcgscanError(
        f"the web service needs FastAPI and python-multipart ({_exc}); install them with "
        "`pip install 'ecgscan[serve]'`"
    ) from None
if importlib.util.find_spec("python_multipart") is None:  # pragma: no cover
    raise EcgscanError(
        "the web service needs python-multipart to read uploads; install it with "
        "`pip install 'ecgscan[serve]'`"
    )
from ..classify._registry import DEFAULT_MODEL
from ._pool import PoolBusy, PoolTimeout, WorkerCrashed, WorkerPool
from ._worker import handle_request, setup_worker

__all__ = ["ServiceConfig", "create_app", "sniff_type"]

_STATIC = Path(__file__).parent / "_static"
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART_SLACK = 1 << 20
_CSP = (
    b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    b"frame-ancestors 'none'"
)  # form fields and multipart framing on top of the file itself

# first bytes → (type name, file suffix the digitizer reads, media type)
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpeg", "image/jpeg"),
    (b"II*\x00", "tiff", "image/tiff"),
    (b"MM\x00*", "tiff", "image/tiff"),
    (b"BM", "bmp", "image/bmp"),
)


def sniff_type(head: bytes) -> str | None:
    """The file type of an upload from its first bytes (``'png'``, ``'pdf'``, ...) or None.

    Recognises PNG, JPEG, TIFF, BMP, WebP and PDF (``%PDF-`` within the first 1024 bytes, as
    readers allow).
    """
    for magic, kind, _ in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the web service.

    Attributes
    ----------
    workers : int
        Worker processes (each loads the models once and digitizes one page at a time).
    max_upload_mb : float
        Largest upload accepted, in MB (10⁶ bytes); larger ones get 413.
    max_pixels : int
        Largest image accepted, in pixels, read from the header before decoding (422).
    timeout : float
        Seconds a request may take in all (waiting for a worker and processing); 504 after.
    read_timeout : float
        Seconds the server waits for the next piece of an upload before giving up (408).
    max_queue : int
        Requests that may wait for a worker at once; more get 503.
    results_dir : str or None
        Where results are kept; default a temporary folder removed at shutdown.
    result_ttl : float
        Seconds a result stays downloadable.
    max_results : int
        Results kept at most (the oldest go first).
    model : str
        Classifier (registry name or ONNX file); ``''`` to digitize only.
    """

    workers: int = 1
    max_upload_mb: float = 25.0
    max_pixels: int = 40_000_000
    timeout: float = 120.0
    read_timeout: float = 30.0
    max_queue: int = 64
    results_dir: str | None = None
    result_ttl: float = 3600.0
    max_results: int = 500
    model: str = DEFAULT_MODEL

    def __post_init__(self) -> None:
        checks = {
            "workers": self.workers >= 1,
            "max_upload_mb": self.max_upload_mb > 0,
            "max_pixels": self.max_pixels >= 1,
            "timeout": self.timeout > 0,
            "read_timeout": self.read_timeout > 0,
            "max_queue": self.max_queue >= 0,
            "result_ttl": self.result_ttl > 0,
            "max_results": self.max_results >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise EcgscanError(
                    f"service setting {name} must be positive, got {getattr(self, name)!r}"
                )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


class _UploadGuard:
    """ASGI middleware: cap request bodies while they stream in (413) and time out stalled
    uploads (408); add security headers to every response."""

    def __init__(self, app: Any, *, max_body: int, read_timeout: float, limit_mb: float) -> None:
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.limit_mb = limit_mb

    async def _reply(self, send: Callable[..., Awaitable[None]], status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if page:  # the page loads nothing from elsewhere
                    headers.append((b"content-security-policy", _CSP))
                message["headers"] = headers
            await send(message)

        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send_with_headers)
            return
        too_large = (
            f"the upload is over this server's limit of {self.limit_mb:g} MB; "
            "send a smaller file (a 300-DPI scan of one page is a few MB)"
        )
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_body:
                    await self._reply(send, 413, too_large)
                    return
        received = 0
        done = False

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal received, done
            if done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                raise StarletteHTTPException(
                    408, f"the upload stalled for {self.read_timeout:g} s; send it again"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise StarletteHTTPException(413, too_large)
                done = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send_with_headers)


def _record_name(filename: str | None) -> str:
    """A safe record name from the client's file name (used in downloads, never as a path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:64]
    return clean or "ecg"


class _Service:
    """State shared by the routes: settings, the worker pool, the results folder."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.pool: WorkerPool | None = None
        self.root: Path | None = None
        self.owns_root = False
        self.started = time.time()
        self.waiting = 0
        self.counts = {"ok": 0, "client_error": 0, "server_error": 0}
        self._lock = threading.Lock()

    @property
    def results(self) -> Path:
        assert self.root is not None
        return self.root / "results"

    @property
    def uploads(self) -> Path:
        assert self.root is not None
        return self.root / "uploads"

    def start(self) -> None:
        cfg = self.config
        if cfg.results_dir:
            self.root = Path(cfg.results_dir).resolve()
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self.root = Path(tempfile.mkdtemp(prefix="ecgscan-serve-"))
            self.owns_root = True
        self.results.mkdir(exist_ok=True)
        self.uploads.mkdir(exist_ok=True)
        for leftover in self.uploads.iterdir():  # from a server that was killed
            leftover.unlink(missing_ok=True)
        pool = WorkerPool(cfg.workers, setup=setup_worker, handler=handle_request,
                          options={"model": cfg.model})  # fmt: skip
        pool.start()
        self.pool = pool

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.root is not None:
            if self.owns_root:
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                shutil.rmtree(self.uploads, ignore_errors=True)

    def prune(self) -> None:
        """Delete expired results, and the oldest beyond ``max_results``."""
        now = time.time()
        entries = []
        for d in self.results.iterdir():
            try:
                entries.append((d.stat().st_mtime, d))
            except FileNotFoundError:
                continue
        entries.sort()
        excess = len(entries) - self.config.max_results
        for k, (mtime, d) in enumerate(entries):
            stale_staging = d.name.startswith(".") and now - mtime > self.config.timeout + 60
            if k < excess or now - mtime > self.config.result_ttl or stale_staging:
                shutil.rmtree(d, ignore_errors=True)

    def count(self, status: int) -> None:
        key = "ok" if status < 400 else "client_error" if status < 500 else "server_error"
        with self._lock:
            self.counts[key] += 1


def create_app(config: ServiceConfig | None = None, **settings: Any) -> FastAPI:
    """Build the FastAPI application.

    Parameters
    ----------
    config : ServiceConfig, optional
    **settings
        Fields of :class:`ServiceConfig` overriding ``config`` (e.g. ``workers=2``).

    Returns
    -------
    fastapi.FastAPI
        Workers start when the app starts (its lifespan) and stop with it.
    """
    cfg = replace(config or ServiceConfig(), **settings)
    service = _Service(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="ecgscan",
        version=__version__,
        summary="Paper ECGs (scans, photos, PDFs) to digital 12-lead signals and diagnoses.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(
        _UploadGuard,
        max_body=cfg.max_upload_bytes + _MULTIPART_SLACK,
        read_timeout=cfg.read_timeout,
        limit_mb=cfg.max_upload_mb,
    )

    def error(status: int, detail: str) -> HTTPException:
        service.count(status)
        return HTTPException(status_code=status, detail=detail)

    @app.post(
        "/v1/digitize",
        summary="Digitize and classify one ECG page",
        response_description="The 12-lead signal, labels, layout, quality and download links",
        responses={
            413: {"description": "Upload over the size limit"},
            415: {"description": "Not a PNG, JPEG, TIFF, BMP, WebP or PDF file (by content)"},
            422: {"description": "Corrupt, truncated, too large in pixels, or not an ECG"},
            503: {"description": "Every worker busy and the queue full"},
            504: {"description": "Processing exceeded the time limit"},
        },
    )
    async def digitize_upload(
        file: UploadFile = File(..., description="The page: an image or a PDF (first page)"),
        fs: float = Form(500.0, gt=0, le=10_000, description="Output sampling frequency (Hz)"),
        samples: int | None = Form(None, ge=1, le=1_000_000, description="Output length"),
    ) -> Any:
        pool = service.pool
        if pool is None:
            raise error(503, "the server is starting or stopping; try again shortly")
        size = file.size
        if size is None:
            await run_in_threadpool(file.file.seek, 0, 2)
            size = file.file.tell()
        if size > cfg.max_upload_bytes:
            raise error(413, f"the upload is over this server's limit of {cfg.max_upload_mb:g} MB")
        if size == 0:
            raise error(422, "the upload is empty; choose an image or PDF of an ECG page")
        await file.seek(0)
        head = await file.read(1024)
        kind = sniff_type(head)
        if kind is None:
            raise error(
                415,
                "the upload is not a PNG, JPEG, TIFF, BMP, WebP or PDF file (the type is read "
                "from the content; file names and declared types are ignored)",
            )
        if service.waiting >= cfg.workers + cfg.max_queue:
            service.count(503)
            raise HTTPException(503, "the server is busy; try again shortly",
                                headers={"Retry-After": "5"})  # fmt: skip
        result_id = uuid.uuid4().hex
        upload = service.uploads / f"{result_id}.{kind}"
        request = {
            "upload": str(upload),
            "kind": kind,
            "id": result_id,
            "name": _record_name(file.filename),
            "fs": fs,
            "samples": samples,
            "max_pixels": cfg.max_pixels,
            "results_root": str(service.results),
        }
        service.waiting += 1
        try:
            await file.seek(0)
            await run_in_threadpool(_save, file.file, upload)
            await file.close()
            reply = await run_in_threadpool(pool.call, request, timeout=cfg.timeout)
        except PoolBusy:
            raise error(503, f"no worker became free within {cfg.timeout:g} s; try again") from None
        except PoolTimeout:
            raise error(
                504, f"processing took longer than this server's limit of {cfg.timeout:g} s"
            ) from None
        except WorkerCrashed:
            raise error(500, "the worker processing the upload crashed; try again") from None
        finally:
            service.waiting -= 1
            upload.unlink(missing_ok=True)
        status = int(reply["status"])
        if status != 200:
            if status >= 500 and "traceback" in reply:
                import logging

                logging.getLogger("ecgscan.service").error("worker error:\n%s", reply["traceback"])
            raise error(status, str(reply["detail"]))
        service.count(200)
        await run_in_threadpool(service.prune)
        return JSONResponse(reply["body"])

    def result_file(result_id: str, name: str) -> Path:
        if not _ID_RE.match(result_id):
            raise HTTPException(404, "no such result (ids are 32 hexadecimal digits)")
        path = service.results / result_id / name
        if not path.is_file():
            raise HTTPException(404, "no such result; results expire after a while")
        return path

    @app.get("/v1/results/{result_id}", summary="The JSON reply of a digitization again")
    async def get_result(result_id: str) -> Any:
        return FileResponse(result_file(result_id, "result.json"), media_type="application/json")

    downloads = {
        "record.zip": ("application/zip", "{name}.zip", "WFDB record (.hea + .dat) as a zip"),
        "record.csv": ("text/csv", "{name}.csv", "Signal as CSV (time_s, I_mV, ...)"),
        "record.json": ("application/json", "{name}.json", "Signal as JSON"),
        "overlay.png": ("image/png", "{name}-overlay.png", "The page with the found traces"),
    }

    def add_download(filename: str, media: str, pattern: str, summary: str) -> None:
        async def download(result_id: str) -> Any:
            path = result_file(result_id, filename)
            name = json.loads((path.parent / "result.json").read_text())["name"]
            inline = filename.endswith(".png")
            return FileResponse(
                path,
                media_type=media,
                filename=pattern.format(name=name),
                content_disposition_type="inline" if inline else "attachment",
            )

        app.get(f"/v1/results/{{result_id}}/{filename}", summary=summary,
                name=f"download_{filename.replace('.', '_')}")(download)  # fmt: skip

    for filename, (media, pattern, summary) in downloads.items():
        add_download(filename, media, pattern, summary)

    @app.get("/health", summary="Liveness and what the server has loaded")
    async def health() -> Any:
        pool = service.pool
        info = pool.info if pool else {}
        return {
            "status": "ok" if pool is not None and pool.alive > 0 else "starting",
            "version": __version__,
            "workers": cfg.workers,
            "workers_alive": pool.alive if pool else 0,
            "workers_idle": pool.idle if pool else 0,
            "worker_restarts": pool.restarts if pool else 0,
            "classifier": info.get("classifier"),
            "classifier_error": info.get("classifier_error"),
            "segmentation": info.get("segmentation"),
            "requests": dict(service.counts),
            "uptime_s": round(time.time() - service.started, 1),
            "limits": {
                "max_upload_mb": cfg.max_upload_mb,
                "max_pixels": cfg.max_pixels,
                "timeout_s": cfg.timeout,
            },
        }

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        return FileResponse(_STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.state.config = asdict(cfg)
    return app


def _save(source: Any, target: Path) -> None:
    with open(target, "xb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
