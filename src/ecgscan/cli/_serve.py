"""``ecgscan serve``: the web service (see :mod:`ecgscan.service`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import EcgscanError
from ._app import app


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Worker processes (each loads the models once)."
    ),
    max_upload_mb: float = typer.Option(25.0, help="Largest upload accepted (MB); 413 over it."),
    max_pixels: int = typer.Option(
        40_000_000, help="Largest image accepted (pixels, read before decoding); 422 over it."
    ),
    timeout: float = typer.Option(120.0, help="Seconds a request may take; 504 after it."),
    model: str = typer.Option(
        "ensemble", help="Classifier: a registered name or an ONNX file; '' to digitize only."
    ),
    results_dir: Path | None = typer.Option(
        None, help="Keep results here (default: a temporary folder removed at exit)."
    ),
    result_ttl: float = typer.Option(3600.0, help="Seconds a result stays downloadable."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve the digitizer and classifier over HTTP, with a page at / that works offline.

    POST /v1/digitize takes a page (multipart field 'file': image or PDF) and returns the
    12 leads, labels and download links. API documentation at /docs.
    """
    try:
        import uvicorn
    except ImportError:
        raise EcgscanError(
            "`ecgscan serve` needs uvicorn; install it with `pip install 'ecgscan[serve]'`"
        ) from None
    from ..service import ServiceConfig, create_app

    config = ServiceConfig(
        workers=workers,
        max_upload_mb=max_upload_mb,
        max_pixels=max_pixels,
        timeout=timeout,
        model=model,
        results_dir=str(results_dir) if results_dir is not None else None,
        result_ttl=result_ttl,
    )
    web = create_app(config)
    typer.echo(f"ecgscan serve: starting {workers} worker(s) on http://{host}:{port}/", err=True)
    uvicorn.run(web, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
