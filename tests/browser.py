"""Headless Chrome/Chromium for the HTML-report tests, found wherever it already is.

Why: the reports are meant to be opened in a browser, so they are tested in one. The browser
is looked up, never downloaded: $CHROME_BIN / $CHROMEDRIVER if set, then the usual names on
PATH (chromium, chromium-browser, google-chrome, ...), then the usual install folders (macOS
apps, /opt/google, /snap). A found browser without a driver is handed to Selenium Manager,
which finds or fetches the matching chromedriver. `python tests/browser.py --check` exits 0
when a browser is found, so `make browser` installs one only where none is (and only with apt).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BROWSER_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
)
BROWSER_PATHS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/opt/google/chrome/chrome",
    "/usr/lib/chromium/chromium",
    "/snap/bin/chromium",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe",
)
DRIVER_NAMES = ("chromedriver", "chromium.chromedriver")
DRIVER_PATHS = ("/usr/lib/chromium/chromedriver", "/snap/bin/chromium.chromedriver")


def _first(env: str, names: tuple[str, ...], paths: tuple[str, ...]) -> Path | None:
    given = os.environ.get(env)
    if given:
        return Path(given) if Path(given).exists() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    for path in paths:
        if Path(path).exists():
            return Path(path)
    return None


def find_browser() -> tuple[Path | None, Path | None]:
    """(browser binary, chromedriver) as installed on this machine; None where not found."""
    return (
        _first("CHROME_BIN", BROWSER_NAMES, BROWSER_PATHS),
        _first("CHROMEDRIVER", DRIVER_NAMES, DRIVER_PATHS),
    )


def start_browser(profile: Path) -> Any:
    """A headless Chrome/Chromium WebDriver with console logging, or a clear error saying how
    to get a browser (`make browser`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = find_browser()
    if binary is None:
        raise RuntimeError(
            "no Chrome or Chromium found (looked at $CHROME_BIN, "
            f"{', '.join(BROWSER_NAMES)} on PATH and {', '.join(BROWSER_PATHS[:4])}); "
            "install one, e.g. `make browser` on Debian/Ubuntu"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(binary)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1200,2000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(driver)) if driver is not None else Service()
    return webdriver.Chrome(service=service, options=opts)


def browser_session(profile: Path) -> Iterator[Any]:
    driver = start_browser(profile)
    try:
        yield driver
    finally:
        driver.quit()


def severe_console_errors(driver: Any, path: Path) -> list[dict[str, Any]]:
    """Open a file and return the console errors it caused."""
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        binary, driver = find_browser()
        print(f"browser: {binary or 'not found'}; chromedriver: {driver or 'not found'}")
        # without a chromedriver, Selenium Manager fetches one; where apt is the package tool,
        # Debian's chromium-driver is installed instead (`make browser`)
        apt = shutil.which("apt-get") is not None
        sys.exit(0 if binary is not None and (driver is not None or not apt) else 1)
    print("usage: python tests/browser.py --check", file=sys.stderr)
    sys.exit(2)
