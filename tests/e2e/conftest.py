"""Headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) for the
end-to-end tests of the dashboard and the HTML report.

No skips: a missing browser, driver or Selenium fails the tests with the fix
(``scripts/install_browser.sh``). Selenium Manager never downloads anything: the driver path
is given explicitly and ``SE_OFFLINE=true``. Chromium resolves no host name (everything but
127.0.0.1 maps to NOTFOUND) and every request it makes is read back from its performance
log, so a test can assert that nothing left 127.0.0.1 (or the report's own file://).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carbonmonitor import FakeBackend, ManualClock, Tracker

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FIX = "Fix: run scripts/install_browser.sh (installs Debian's chromium and chromium-driver)"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
DEADLINE_S = 15.0
NO_HOST = ("chrome://", "data:", "about:")

def _make_run(db: Path, *, name: str = "resnet", project: str = "vision",
             tags: tuple[str, ...] = (), phase: str = "train", metric: str = "accuracy",
             start_wall: float = 1_764_000_000.0, watts: float = 100.0) -> str:
    """``watts`` cpu + 10 W memory for 10 s, one phase, one metric; returns the run id."""
    clock = ManualClock(start_wall=start_wall)
    t = Tracker(backend=[FakeBackend({"cpu": watts, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), name=name, project=project,
                tags=list(tags), country="DE")
    t.start()
    with t.phase(phase):
        clock.advance(10)
        t.tick()
        t.add_work(samples=100)
    t.log_metric(metric, 0.9)
    return t.stop().identity.run_id


class Browser:
    """One headless Chromium; ``visit`` a page, ``wait`` on a condition, ``check`` the log."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def visit(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete",
                  f"{url} to load")

    def wait(self, condition: Callable[[Any], Any], what: str,
             deadline_s: float = DEADLINE_S) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, deadline_s, poll_frequency=0.05).until(
            condition, f"timed out after {deadline_s} s waiting for {what}")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, element_id: str) -> str:
        return str(self.js("return document.getElementById(arguments[0]).innerText",
                           element_id))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        assert self.driver.save_screenshot(str(path)), f"no screenshot at {path}"
        return path

    def drain(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Console entries and requested URLs since the last drain."""
        console = list(self.driver.get_log("browser"))
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return console, urls

    def check(self, *allowed: str) -> list[str]:
        """No console errors, and every request went to one of the ``allowed`` prefixes (at
        least one did: the log is being read)."""
        console, urls = self.drain()
        severe = [e for e in console if e.get("level") == "SEVERE"]
        assert not severe, f"browser console errors: {severe}"
        # chrome://, data: and about: name no host (the browser's built-in new-tab page asks
        # for some): nothing with a host may be anything but ``allowed``.
        outside = [u for u in urls if not u.startswith((*allowed, *NO_HOST))]
        assert not outside, f"requests outside {allowed}: {outside}"
        assert any(u.startswith(allowed) for u in urls), f"no request logged: {urls}"
        return urls


def _options(profile: str) -> Any:
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps",
                "--disable-dev-shm-usage", "--window-size=1280,1400",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return options


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"no {' or '.join(missing)}: the browser tests need them. {FIX}",
                    pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        pytest.fail(f"selenium is not installed ({err}). Fix: pip install -e '.[test]'",
                    pytrace=False)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never download a driver
    profile = tempfile.mkdtemp(prefix="carbonmonitor-chromium-")
    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=_options(profile))
    except Exception as err:  # noqa: BLE001 (any failure to start is the same fix)
        shutil.rmtree(profile, ignore_errors=True)
        pytest.fail(f"cannot start {CHROMIUM} through {CHROMEDRIVER}: {err}. {FIX}",
                    pytrace=False)
    driver.set_page_load_timeout(DEADLINE_S)
    try:
        yield Browser(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def make_run() -> Callable[..., str]:
    """Stores a finished run (fake backend, manual clock); returns its run id."""
    return _make_run


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    """The shared browser, its logs drained before the test (each test checks its own)."""
    browser.drain()
    yield browser
    browser.driver.get("about:blank")
    browser.drain()
