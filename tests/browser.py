"""A real browser for the pages: Debian's headless Chromium driven by Selenium through /usr/bin/chromedriver.

Nothing is downloaded: the driver and the browser are the system's (`make test` installs them when missing).
Screenshots of every page land in test-artifacts/pages/. `open_page` fails the test on any error the page's
JavaScript logs, a blocked request to another origin included.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.serving_helpers import request, running_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "pages"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium(width: int = 1100, height: int = 1300) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).is_file(), (
            f"{path} is missing: install Debian's chromium and chromium-driver (make test does)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to fetch a driver
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


@contextlib.contextmanager
def served_page(model: str, run_dir: Path, cwd: Path, *server_args: str) -> Iterator[tuple[Any, str]]:
    """The server serving `run_dir` as `model`, and a browser on the model's page: yields (driver, URL)."""
    server = running_server("--model", f"{model}={run_dir}", *server_args, cwd=cwd)
    with server as (url, _, _), chromium() as driver:
        driver.get(f"{url}/pages/{model}/")
        loaded = lambda: driver.execute_script("return document.readyState") == "complete"  # noqa: E731
        wait_for(loaded, "the page to load")
        yield driver, url
        check_console(driver)


def check_console(driver) -> None:
    """No JavaScript error, failed load or refused request (CSP) in the browser's log."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    # a 4xx the page asked for on purpose (a bad file) is logged by Chromium as a failed resource load
    errors = [e for e in errors if "the server responded with a status of 4" not in e]
    assert not errors, f"the page logged errors: {errors}"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def text_of(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def exchanges(driver) -> list[dict[str, Any]]:
    """Every request the page sent to the API and the reply it got (pages.js keeps them)."""
    return driver.execute_script("return window.exchanges")


def settled(driver, at_least: int = 1, quiet: float = 0.7) -> list[dict[str, Any]]:
    """The page's exchanges once there are `at_least` and no new one has come for `quiet` seconds (a page
    that answers as you draw or type sends several)."""
    wait_for(lambda: len(exchanges(driver)) >= at_least, f"the page's request number {at_least}")
    count = -1
    while count != len(exchanges(driver)):
        count = len(exchanges(driver))
        time.sleep(quiet)
    return exchanges(driver)


def same_reply_from_the_api(url: str, exchange: dict[str, Any]) -> Any:
    """Sends the page's own request to the REST API; asserts the reply is the one the page got; returns it."""
    status, reply = request(url + exchange["path"], exchange["request"])
    assert status == 200, reply
    assert reply == exchange["reply"], "the page got another answer than the REST API gives for its request"
    return reply


def error_shown(driver) -> str:
    box = driver.find_element(By.ID, "error")
    wait_for(lambda: box.is_displayed() and box.text, "the page to show an error")
    return box.text


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # the whole page, not only the window: the page's own height, at the window's width
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], max(600, height + 120))
    driver.save_screenshot(str(path))
    return path


def on_a_phone(driver, name: str) -> None:
    """At a phone's width nothing runs off the side; a screenshot of it."""
    driver.set_window_size(390, 900)
    page = "document.documentElement"
    overflow = driver.execute_script(f"return {page}.scrollWidth - {page}.clientWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a 390px phone screen"
    screenshot(driver, f"{name}-phone")


def labelled(driver) -> None:
    """Every control has a label a screen reader says (a <label for>, aria-label or its own text)."""
    unlabelled = driver.execute_script(
        """return [...document.querySelectorAll('input, select, textarea, button')].filter(e =>
             !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()
           ).map(e => e.outerHTML)"""
    )
    assert not unlabelled, f"controls without a label: {unlabelled}"
