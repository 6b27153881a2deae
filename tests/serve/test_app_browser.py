"""The web app in a real browser: Debian's headless Chromium driven by selenium + chromedriver.

``scripts/install_browser.sh`` installs both (``make test`` runs it first); without Chromium the test
is skipped. The page must render with no request leaving 127.0.0.1 (the machine is offline).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (run scripts/install_browser.sh)",
)
# Offline, as root, in a container: no sandbox, no GPU, no background calls to Google's hosts.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1100")
TIMEOUT = 25  # seconds for any one thing to appear


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served(answerer, model_dir):
    """The app on a free loopback port, in this process's threads, with its private temporary folder (as
    ``clinkd serve`` does); yields its URL."""
    from clinkd.serve.app import build_app, launch
    from clinkd.serve.uploads import private_temp_dir

    port = free_port()
    with private_temp_dir() as folder:
        app = build_app(answerer, model_path=model_dir, max_upload_mb=1)
        launch(app, host="127.0.0.1", port=port, max_upload_mb=1, block=False, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            app.close()
    assert not folder.exists()


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # to list every request the page made
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_value(driver, css: str, predicate, what: str) -> str:
    """Poll the value of the input/textarea at ``css`` until ``predicate(value)``; fail naming ``what``."""
    deadline, value = time.monotonic() + TIMEOUT, None
    while time.monotonic() < deadline:
        value = driver.execute_script(f"const e = document.querySelector({css!r}); return e ? e.value : null;")
        if value is not None and predicate(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not appear within {TIMEOUT} s (last value {value!r})")


def wait_text(driver, text: str, what: str) -> None:
    """Poll the page's visible text until it contains ``text`` (toasts included)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if text in driver.execute_script("return document.body.innerText"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: {text!r} did not appear within {TIMEOUT} s")


def wait_element(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def upload(driver, path: Path) -> None:
    wait_element(driver, "#clinkd-file input[type=file]").send_keys(str(path))


def requested_urls(driver) -> set[str]:
    urls = set()
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    return urls


def test_ask_in_browser(served, browser, png, tmp_path):
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    browser.get(served)
    status_css = "#clinkd-status textarea"
    wait_element(browser, "#clinkd-ask")  # the page rendered (client-side: gradio's bundled JS)
    header = browser.find_element(By.ID, "clinkd-header").text
    assert "RoPE scheme mcg" in header and str(served) not in header

    # a refusal first: a .png that is not an image
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not an image at all")
    upload(browser, fake)
    wait_value(browser, status_css, lambda v: v.startswith("Refused: fake.png is not a readable image"), "refusal")

    # then a real question about a real image; the question's box is drawn as the asked region
    upload(browser, png)
    wait_value(browser, status_css, lambda v: v.startswith("Loaded scan.png"), "upload preview")
    question = browser.find_element(By.CSS_SELECTOR, "#clinkd-question textarea")
    question.send_keys("What is the object in <box>(250,200),(700,650)</box>?")
    browser.find_element(By.ID, "clinkd-ask").click()
    wait_value(browser, status_css, lambda v: v.startswith("Answered"), "answer status")
    uploads = Path(os.environ["GRADIO_TEMP_DIR"])  # the served app's private folder
    assert not [*uploads.rglob("fake.png"), *uploads.rglob("scan.png")], "an upload outlived its reading"
    answer = wait_value(browser, "#clinkd-answer textarea", bool, "answer text")
    assert answer.strip()
    assert "asked region" in browser.find_element(By.ID, "clinkd-boxes").text

    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    from PIL import Image

    with Image.open(shot) as im:
        assert im.format == "PNG" and im.width >= 800 and im.height >= 600
        assert len(set(im.convert("L").resize((64, 64)).getdata())) > 20  # not a blank page
    assert shot.stat().st_size > 20_000
    web = {u for u in requested_urls(browser) if u.startswith(("http:", "https:", "ws:", "wss:"))}
    outside = {u for u in web if urlsplit(u).netloc != urlsplit(served).netloc}  # chrome:// pages are local
    assert not outside, f"the page fetched from outside the app: {sorted(outside)[:5]}"

    # an oversized upload (the test app's limit is 1 MB) is refused by the upload route, with a message
    browser.find_element(By.CSS_SELECTOR, "#clinkd-file button[aria-label=Clear]").click()
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (2**20 + 1))
    upload(browser, big)
    wait_text(browser, 'exceed the maximum allowed size of 1.0 Mb: "big.png"', "oversize refusal")
    assert time.monotonic() - started < 60
