"""The web app in a real browser: Debian's headless Chromium driven by selenium + chromedriver.

``scripts/install_browser.sh`` installs both (``make test`` runs it first, and installs only with root or
passwordless sudo); ``CLINKD_CHROMIUM`` / ``CLINKD_CHROMEDRIVER`` name other binaries. Without them the
test is skipped, saying how to enable it; under CI (``CI=true``) it fails instead, since CI must run it.
The page must render with no request leaving 127.0.0.1 (the machine is offline).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ENABLE = (
    "run `sudo bash scripts/install_browser.sh` (Debian's chromium and chromium-driver), or set "
    "CLINKD_CHROMIUM=/path/to/chromium and CLINKD_CHROMEDRIVER=/path/to/chromedriver"
)


def in_ci(environ: Mapping[str, str]) -> bool:
    """``CI`` set as CI services set it (``true``; ``1`` and ``yes`` too), as scripts/install_browser.sh reads it."""
    return environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


Which = Callable[[str], str | None]  # shutil.which's shape


def find_browser(environ: Mapping[str, str], which: Which) -> tuple[str | None, str | None, str | None]:
    """``(chromium, chromedriver, problem)``: each binary from its ``CLINKD_*`` variable if set (which must name an
    executable), else from PATH; ``problem`` says what is missing, None when both are found."""
    found, missing = [], []
    for variable, names in (
        ("CLINKD_CHROMIUM", ("chromium", "chromium-browser")),
        ("CLINKD_CHROMEDRIVER", ("chromedriver",)),
    ):
        if environ.get(variable):
            path = which(environ[variable])
            what = f"{variable}={environ[variable]} is not an executable file"
        else:
            path = next(filter(None, map(which, names)), None)
            what = f"no {' or '.join(names)} on PATH"
        found.append(path)
        if path is None:
            missing.append(what)
    return found[0], found[1], "; ".join(missing) or None


def skip_reason(environ: Mapping[str, str], which: Which) -> str | None:
    """Why the browser test is skipped, or None to run it: when the browser is found, and under CI whatever
    happens (there a missing browser fails the test, see ``browser_binaries``)."""
    problem = find_browser(environ, which)[2]
    if problem is None or in_ci(environ):
        return None
    return f"no browser for the web-app test ({problem}); to enable it, {ENABLE}"


def require_browser(problem: str | None) -> None:
    """Fail (not skip) the browser test when the browser is missing: what CI must see."""
    if problem is not None:
        pytest.fail(f"CI must run the browser test, but {problem}; {ENABLE}", pytrace=False)


CHROMIUM, CHROMEDRIVER, PROBLEM = find_browser(os.environ, shutil.which)
SKIP = skip_reason(os.environ, shutil.which)
needs_browser = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

# Offline, as root, in a container: no sandbox, no GPU, no background calls to Google's hosts.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1100",
)
TIMEOUT = 25  # seconds for any one thing to appear


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served(answerer, tiny_student_dir):
    """The app on a free loopback port, in this process's threads, with its private temporary folder (as
    ``clinkd serve`` does); yields its URL."""
    from clinkd.serve.app import build_app, launch
    from clinkd.serve.uploads import private_temp_dir

    port = free_port()
    with private_temp_dir() as folder:
        app = build_app(answerer, model_path=tiny_student_dir, max_upload_mb=1)
        launch(app, host="127.0.0.1", port=port, max_upload_mb=1, block=False, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            app.close()
    assert not folder.exists()


@pytest.fixture(scope="session")
def browser_binaries():
    """``(chromium, chromedriver)``; reached without them only under CI (elsewhere the test is skipped), where
    it fails. Session-scoped and first in the test's arguments, so that it fails before the model is built."""
    require_browser(PROBLEM)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture()
def browser(browser_binaries, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_binaries
    opts = Options()
    opts.binary_location = chromium
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # to list every request the page made
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_value(driver, css: str, predicate, what: str) -> str:
    """Poll the value of the input/textarea at ``css`` until ``predicate(value)``; fail naming ``what``."""
    deadline, value = time.monotonic() + TIMEOUT, None
    while time.monotonic() < deadline:
        value = driver.execute_script(
            f"const e = document.querySelector({css!r}); return e ? e.value : null;"
        )
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


@needs_browser
def test_ask_in_browser(browser_binaries, served, browser, png, tmp_path):
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
    wait_value(
        browser, status_css, lambda v: v.startswith("Refused: fake.png is not a readable image"), "refusal"
    )

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


# The skip rule, on made-up environments: `which` is a lookup table of the executables that exist.


def which_of(*present: str) -> Which:
    return lambda name: name if name in present else None


def test_a_browser_on_path_runs_the_test():
    which = which_of("chromium", "chromedriver")
    assert find_browser({}, which) == ("chromium", "chromedriver", None)
    assert skip_reason({}, which) is None
    assert find_browser({}, which_of("chromium-browser", "chromedriver"))[:2] == (
        "chromium-browser",
        "chromedriver",
    )


def test_no_browser_outside_ci_skips_saying_how_to_enable_it():
    for environ in ({}, {"CI": "false"}, {"CI": ""}, {"CI": "0"}):
        reason = skip_reason(environ, which_of("chromedriver"))
        assert reason is not None and "no chromium or chromium-browser on PATH" in reason
        assert (
            "sudo bash scripts/install_browser.sh" in reason and "CLINKD_CHROMIUM=/path/to/chromium" in reason
        )
    reason = skip_reason({}, which_of())
    assert "chromium-browser on PATH; no chromedriver on PATH" in reason


def test_no_browser_in_ci_runs_the_test_and_fails_it():
    for value in ("true", "True", "1", "yes"):
        assert skip_reason({"CI": value}, which_of()) is None
    problem = find_browser({"CI": "true"}, which_of())[2]
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test, but no chromium"):
        require_browser(problem)
    require_browser(None)  # a browser found: nothing to say


def test_the_variables_name_the_binaries_before_path():
    environ = {"CLINKD_CHROMIUM": "/opt/chrome/chrome", "CLINKD_CHROMEDRIVER": "/opt/chrome/chromedriver"}
    which = which_of("chromium", "chromedriver", "/opt/chrome/chrome", "/opt/chrome/chromedriver")
    assert find_browser(environ, which) == ("/opt/chrome/chrome", "/opt/chrome/chromedriver", None)
    assert find_browser({"CLINKD_CHROMIUM": "/opt/chrome/chrome"}, which)[:2] == (
        "/opt/chrome/chrome",
        "chromedriver",
    )
    # a variable naming nothing executable is reported, not replaced by PATH's binary
    wrong = {"CLINKD_CHROMIUM": "/nowhere/chrome"}
    chromium, _, problem = find_browser(wrong, which)
    assert chromium is None and problem == "CLINKD_CHROMIUM=/nowhere/chrome is not an executable file"
    assert problem in skip_reason(wrong, which)


def test_the_real_which_accepts_a_path(tmp_path):
    chrome = tmp_path / "chrome"
    chrome.write_text("#!/bin/sh\n")
    assert find_browser({"CLINKD_CHROMIUM": str(chrome)}, shutil.which)[0] is None  # not executable yet
    chrome.chmod(0o755)
    assert find_browser({"CLINKD_CHROMIUM": str(chrome)}, shutil.which)[0] == str(chrome)
