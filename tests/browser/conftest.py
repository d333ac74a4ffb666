"""Chromium (through Playwright) and a JupyterLab server for the browser tests.

The browser is the system's Chromium: ``$CHROMIUM`` if set, else the first of ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH``. Playwright drives it through
``executable_path``; ``playwright install`` (a download) is never needed. Without a browser
the tests are skipped with one line saying so, unless ``REQUIRE_BROWSER=1`` (CI sets it), which
makes a missing browser a failure.

Pages may only reach 127.0.0.1 and local files: any other request is aborted and recorded in
``context.outside_requests``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lab_driver import JupyterLab

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The Chromium to use: ``$CHROMIUM``, else the first browser name found on ``PATH``."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next(filter(None, map(shutil.which, BROWSER_NAMES)), None)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if find_chromium() is None:
        if os.environ.get("CHROMIUM"):
            return f"CHROMIUM={os.environ['CHROMIUM']!r} is not an executable"
        return f"no Chromium found (set CHROMIUM, or put one of {', '.join(BROWSER_NAMES)} on PATH)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make setup installs it)"
    return None


MISSING = missing_browser()
SKIPPING = bool(MISSING) and os.environ.get("REQUIRE_BROWSER") != "1"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Without a browser (and not required), collect nothing here: nothing starts, no fixture runs."""
    return True if SKIPPING and collection_path.suffix == ".py" else None


def pytest_terminal_summary(terminalreporter) -> None:
    if SKIPPING:  # the one line that says so
        terminalreporter.write_line(f"SKIPPED tests/browser: {MISSING} (CONTRIBUTING.md: 'Browser tests')")


@pytest.fixture(scope="session", autouse=True)
def chromium_path() -> str:
    """The browser's path; under REQUIRE_BROWSER=1 a missing browser fails every test here."""
    if MISSING:
        pytest.fail(f"REQUIRE_BROWSER=1 but {MISSING}", pytrace=False)
    return find_chromium()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """The folder JupyterLab serves; each test module puts its notebook in a folder of it."""
    return tmp_path_factory.mktemp("lab-root")


@pytest.fixture(scope="session")
def lab(lab_root, tmp_path_factory, chromium_path) -> JupyterLab:
    server = JupyterLab(lab_root, tmp_path_factory.mktemp("lab-home")).start()
    yield server
    server.stop()
