"""Fixtures of the service tests: rendered ECG pages and a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from service_helpers import SEEDS, page_image, running_server


@pytest.fixture(scope="session")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of ECG pages: a.png, b.jpg and c.pdf (two pages), rendered by ecgscan."""
    folder = tmp_path_factory.mktemp("pages")
    images = {k: Image.fromarray(page_image(s)) for k, s in SEEDS.items()}
    images["a"].save(folder / "a.png")
    images["b"].save(folder / "b.jpg", quality=92)
    images["c1"].save(folder / "c.pdf", save_all=True, append_images=[images["c2"]],
                      resolution=150)  # fmt: skip
    return folder


@pytest.fixture(scope="session")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-root")


@pytest.fixture(scope="session")
def server(server_root: Path) -> Iterator[str]:
    """`ecgscan serve --workers 2` on a free loopback port (shared by the API and browser tests)."""
    with running_server("--workers", "2", results_dir=server_root) as url:
        yield url
