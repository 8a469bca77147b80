"""Browser fixtures for UI tests: Debian's chromium driven by Playwright, screenshots on disk.

Playwright's own browser download cannot work here, so the system Chromium is launched through
`executable_path`. Without it (or without Playwright) the browser tests skip and say why; CI
installs both. Screenshots go to $SPANLAKE_SCREENSHOTS (default build/screenshots); run with
SPANLAKE_SCREENSHOTS=docs/ui to refresh the pictures docs/ui.md shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Without the background-networking flags Chromium keeps dialling out, and this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOT_DIR = Path(os.environ.get("SPANLAKE_SCREENSHOTS", Path(__file__).parent.parent / "build" / "screenshots"))


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


# Per module, not per session: while Playwright's sync API is open it keeps an asyncio loop
# running on this thread, and a later test's asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium); .ci/run installs it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class BrowserPage:
    """One page in a fresh context, recording console errors, failed requests and JS dialogs."""

    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int] = DESKTOP):
        self.context = browser.new_context(base_url=base_url, viewport=viewport)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """`open_page(base_url, viewport=DESKTOP) -> BrowserPage`; every page is closed at the end."""
    pages: list[BrowserPage] = []

    def factory(base_url: str, viewport: dict[str, int] = DESKTOP) -> BrowserPage:
        page = BrowserPage(browser, base_url, viewport)
        pages.append(page)
        return page

    yield factory
    for page in pages:
        page.close()
