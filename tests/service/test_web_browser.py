"""The page at / in real headless Chromium (Debian's chromium + chromedriver, via Selenium)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "the browser test needs Debian's chromium and chromium-driver packages; install "
            "them with `bash scripts/install-browser.sh`"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser test needs selenium (the dev extra)"
    )
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ecgscan-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
            "--window-size=1400,1000"]  # fmt: skip
    for arg in args:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_state(driver, states: tuple[str, ...], timeout: float = 120.0) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: d.find_element("tag name", "body").get_attribute("data-state") in states
    )
    return str(driver.find_element("tag name", "body").get_attribute("data-state"))


def test_page_digitizes_an_upload_end_to_end(browser, server: str, pages: Path) -> None:
    driver = browser
    driver.get(f"{server}/")
    assert _wait_state(driver, ("ready",)) == "ready"
    # everything the page loads comes from the server itself (works offline, no CDN)
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href))"
    )
    origin = urlsplit(server).netloc
    foreign = [u for u in urls if urlsplit(u).scheme in ("http", "https")
               and urlsplit(u).netloc != origin]  # fmt: skip
    assert foreign == []
    assert "Up to 25" in driver.find_element("id", "limits").text

    # the file picker: choose a page, wait for the result
    driver.find_element("id", "file").send_keys(str(pages / "a.png"))
    assert _wait_state(driver, ("done", "error")) == "done", driver.find_element("id", "error").text
    assert driver.find_element("id", "status").text.startswith("Done in")
    # 12 leads in standard layout plus the rhythm strip drawn on the canvas
    assert driver.find_element("id", "ecg").get_attribute("data-drawn") == "13"
    labels = driver.find_elements("css selector", "#labels li.label")
    assert len(labels) == 11
    assert all(li.find_element("class name", "p").text.endswith("%") for li in labels)
    overlay_width = driver.execute_script(
        "const i = document.getElementById('overlay'); return i.complete ? i.naturalWidth : 0"
    )
    assert overlay_width > 1000
    assert len(driver.find_elements("css selector", "#quality tbody tr")) == 12
    for name in ("dl-wfdb", "dl-csv", "dl-json", "dl-overlay"):
        href = driver.find_element("id", name).get_attribute("href")
        assert href.startswith(server)
        assert httpx.get(href).status_code == 200, name
    # the canvas really holds a drawing (dark trace pixels on the pink grid)
    dark = driver.execute_script(
        "const c = document.getElementById('ecg'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i+1] < 80) n++; return n"
    )
    assert dark > 2000

    # drag and drop: a file that is not an image is refused with a message
    driver.execute_script(
        "const dt = new DataTransfer();"
        "dt.items.add(new File(['just text'], 'notes.png', {type: 'image/png'}));"
        "const zone = document.getElementById('dropzone');"
        "zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true}));"
        "zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));"
    )
    assert _wait_state(driver, ("error",)) == "error"
    message = driver.find_element("id", "error").text
    assert "415" in message and "notes.png" in message
    assert not driver.find_element("id", "progress-box").is_displayed()
    assert not driver.find_element("id", "result").is_displayed()
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "415" not in e["message"]]  # fmt: skip
    assert severe == []
