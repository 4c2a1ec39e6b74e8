"""The dashboard in a real browser: headless Chromium, driven by Selenium through Debian's chromedriver.

It loads the overview, opens a failed job from the failed page, retries it and watches the page turn to complete
by itself; an argument holding a script stays text; the overview fits a phone's width. It also takes the
screenshots the docs show: they are written into docs/img/ when RUNNER_WRITE_SCREENSHOTS=1 (so a test run does not
rewrite committed images), else next to the test's other files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ops import WorkerThread, enqueue, wait_status
from tests.support.web import XSS_ARG, Seeded, options_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# read at import: the project fixture clears RUNNER_* variables from the environment of each test
WRITE_SCREENSHOTS = os.environ.get("RUNNER_WRITE_SCREENSHOTS") == "1"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - selenium is in the test extra
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no headless browser here: install Debian's chromium and chromium-driver (.ci/run does)",
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="runner-chromium-", dir=tmp_path)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()  # chromedriver ends the browser it started, and then itself


def screenshot(driver: Any, name: str, tmp_path: Path) -> Path:
    target = DOCS_IMG if WRITE_SCREENSHOTS else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def wait(driver: Any, predicate: Any, timeout: float = 30) -> Any:
    """Until ``predicate(driver)`` is true; a page that refreshes itself may swap an element out meanwhile."""
    waiter = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    return waiter.until(lambda d: predicate(d))


def click(driver: Any, by: str, what: str) -> None:
    wait(driver, lambda d: d.find_element(by, what).click() or True)


def main_text(driver: Any) -> str:
    return str(wait(driver, lambda d: d.find_element(By.TAG_NAME, "main").text))


def test_retry_a_failed_job_and_watch_it_complete(
    seeded: Seeded, config: Path, redis_url: str, serve: Any, browser: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "broken"
    marker.write_text("")
    flaky = enqueue(redis_url, "flaky", str(marker), _queue_name="mail")
    # the seeded worker's one slot is taken by a long job: a second worker fails this one (and runs the rest)
    with WorkerThread(config, "mail").start(redis_url):
        wait_status(redis_url, flaky, "mail", "complete")
    # work waiting behind the busy worker, so the overview shows a queue as it usually looks
    for n in range(40):
        enqueue(redis_url, "add", n, n, _queue_name="mail", _defer_by=600 if n % 8 == 0 else None)
    server = serve(options_for(config, refresh_s=1.0, title="worker.toml"))

    browser.get(server.url + "/")
    wait(browser, lambda d: "Queues" in d.find_element(By.TAG_NAME, "h1").text)
    failed = "//section[contains(@class, 'card')][.//h2/a[text()='mail']]//dt[text()='Failed']/following-sibling::dd"
    # the two seeded failures, the flaky job, and the undecodable payload the second worker could not run
    wait(browser, lambda d: d.find_element(By.XPATH, failed).text == "4")
    screenshot(browser, "dashboard-overview.png", tmp_path)

    click(browser, By.XPATH, failed + "/a")
    wait(browser, lambda d: "Failed jobs of" in d.find_element(By.TAG_NAME, "h1").text)
    click(browser, By.LINK_TEXT, flaky)
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1 .status").text == "failed")
    assert "RuntimeError: marker present" in main_text(browser)
    screenshot(browser, "dashboard-job.png", tmp_path)

    marker.unlink()  # the job will succeed this time
    click(browser, By.XPATH, "//button[text()='Retry']")
    wait(browser, lambda d: "Queued again" in d.find_element(By.CSS_SELECTOR, "p.flash").text)
    loaded = browser.execute_script("return window.performance.timeOrigin")
    with WorkerThread(config, "mail").start(redis_url):
        # the page updates itself: no reload, yet its status turns to complete
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "h1 .status").text == "complete")
    assert browser.execute_script("return window.performance.timeOrigin") == loaded
    assert "'ok'" in main_text(browser)


def test_a_script_in_an_argument_stays_text(seeded: Seeded, config: Path, serve: Any, browser: Any) -> None:
    server = serve(options_for(config))
    browser.get(f"{server.url}/queues/mail")
    assert XSS_ARG in main_text(browser)
    browser.get(f"{server.url}/jobs/{seeded.xss}")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "pre.value")[0].text == repr(XSS_ARG))
    # neither the script nor the onerror attribute of the subject ran, and no element was made from them
    assert browser.execute_script("return window.__xss === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []


def test_the_overview_fits_a_phone(seeded: Seeded, config: Path, serve: Any, browser: Any, tmp_path: Path) -> None:
    server = serve(options_for(config, title="worker.toml"))
    browser.set_window_size(390, 844)
    for path in ("/", "/queues/mail", f"/jobs/{seeded.failed[0]}"):
        browser.get(server.url + path)
        wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1"))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        viewport = browser.execute_script("return window.innerWidth")
        assert width <= viewport, f"{path} is {width}px wide in a {viewport}px window"
        if path == "/":
            screenshot(browser, "dashboard-phone.png", tmp_path)
