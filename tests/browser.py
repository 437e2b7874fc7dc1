"""The pages the product renders, checked in a real browser: Debian's Chromium driven by Playwright
(never Playwright's own browser download), one browser for the whole test session.

Playwright's sync API marks its event loop as running in the thread that drives it, which would make
every later `asyncio.run` of the test process fail; so the browser lives in a thread of its own and a
test reads the page it opened through `ShownPage`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ml.lake import Lake

CHROMIUM_ENV = "CONTINUUM_TEST_CHROMIUM"
CHROMIUM_HINT = (f"install it (Debian/Ubuntu: apt-get install chromium) or set {CHROMIUM_ENV} to a Chromium "
                 "or Chrome binary; Playwright's own browser download is not used")
# every mark of a selector: its class, tooltip, vertices, size on screen, and whether it lies in its chart
MARKS_JS = """sel => [...document.querySelectorAll(sel)].map(e => {
  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  const f = (e.ownerSVGElement || e).getBoundingClientRect();
  return {cls: e.getAttribute('class'), tip: e.querySelector('title')?.textContent ?? null,
          stroke: e.getAttribute('stroke'), fill: e.getAttribute('fill'),
          points: e.points ? e.points.numberOfItems : null, width: r.width, height: r.height,
          shown: s.display !== 'none' && s.visibility !== 'hidden' && r.width + r.height > 0,
          inside: r.left >= f.left - 1 && r.right <= f.right + 1 && r.top >= f.top - 1 && r.bottom <= f.bottom + 1};
})"""
CELLS_JS = "sel => [...document.querySelectorAll(sel)].map(r => [...r.cells].map(c => c.innerText.trim()))"
# the canvases under a selector that hold at least one painted pixel
PAINTED_JS = """sel => [...document.querySelectorAll(sel)].filter(c => {
  const ctx = c.width && c.height && c.getContext('2d');
  return ctx && ctx.getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0);
}).length"""


class BrowserMissing(RuntimeError):
    """No Chromium to check the pages in, and none could be installed."""


def chromium_path() -> str:
    """The Chromium binary: the one CONTINUUM_TEST_CHROMIUM names, else `chromium` on PATH, else Debian's
    package installed with apt-get (as root on a Debian machine, as the local stack installs PostgreSQL)."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise BrowserMissing(f"{CHROMIUM_ENV}={chosen} is not an executable file: {CHROMIUM_HINT}")
        return chosen
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        if found := shutil.which("chromium"):
            return found
    raise BrowserMissing(f"Chromium is not installed: {CHROMIUM_HINT}")


def lake_file(lake: Lake, key: str, folder: Path) -> Path:
    """A page of the lake as a local file: the lake's own file, or a copy of the S3 object in `folder`."""
    if not lake.is_s3:
        return Path(lake.url(key))
    copy = folder / key.rpartition("/")[2]
    copy.write_bytes(lake.read_bytes(key))
    return copy


class ShownPage:
    """A page opened in the session's browser: what it shows, and every console error, uncaught
    exception and request for anything outside the file that it made (a page of the product needs no
    network)."""

    def __init__(self, run, page):
        self._run, self._page = run, page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("request", lambda r: r.url.startswith(("file:", "data:", "blob:"))
                or self.errors.append(f"request: {r.url}"))

    def title(self) -> str:
        return self._run(self._page.title)

    def texts(self, selector: str) -> list[str]:
        """The text of every element the selector matches, whitespace trimmed."""
        return [t.strip() for t in self._run(self._page.locator(selector).all_text_contents)]

    def cells(self, selector: str = "tr") -> list[list[str]]:
        """The text of the cells of every table row the selector matches, as shown on screen."""
        return self._run(self._page.evaluate, CELLS_JS, selector)

    def marks(self, selector: str) -> list[dict]:
        """Every SVG mark the selector matches, as the browser laid it out (see MARKS_JS)."""
        return self._run(self._page.evaluate, MARKS_JS, selector)

    def painted(self, selector: str = "canvas") -> int:
        """How many of the canvases the selector matches the page's scripts drew on."""
        return self._run(self._page.evaluate, PAINTED_JS, selector)


class PageInBrowser:
    """Headless Chromium in a thread of its own; `open` shows one local page at a time."""

    def __init__(self, executable: str):
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")
        self._playwright, self._browser = self._run(self._start, executable)
        self._page = None

    def _run(self, fn, *args):
        return self._thread.submit(fn, *args).result()

    @staticmethod
    def _start(executable: str):
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0  # Chromium's sandbox refuses to run as root
        return playwright, playwright.chromium.launch(executable_path=executable, headless=True,
                                                      args=["--no-sandbox"] if as_root else [])

    def open(self, path: Path, ready: str | None = None) -> ShownPage:
        """Load a local HTML file and wait for its load event (and for `ready`, a selector, when the page
        draws itself with script)."""
        def load() -> ShownPage:
            if self._page is not None:
                self._page.close()
            self._page = self._browser.new_page(viewport={"width": 1280, "height": 900})
            shown = ShownPage(self._run, self._page)
            self._page.goto(Path(path).resolve().as_uri())
            if ready:  # drawn by script: the element, then two frames for the drawing it schedules
                self._page.wait_for_selector(ready)
                self._page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            return shown
        return self._run(load)

    def close(self) -> None:
        self._run(self._browser.close)
        self._run(self._playwright.stop)
        self._thread.shutdown()


@pytest.fixture(scope="session")
def page_in_browser():
    """The session's browser, started the first time a test asks for it."""
    try:
        executable = chromium_path()
    except BrowserMissing as exc:
        pytest.fail(str(exc))
    browser = PageInBrowser(executable)
    yield browser
    browser.close()
