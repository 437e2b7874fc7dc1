"""The browser the page checks run in: which Chromium is used, Debian's installed when missing, a clear
error otherwise, a page's errors, failed drawing and network requests all reported, and the tests'
own asyncio untouched by the browser."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from tests.browser import BrowserMissing, chromium_path

APT_GET = """#!/bin/sh
PATH=/usr/bin:/bin
echo "$@" >> "{log}"
if [ "$1" = install ]; then printf '#!/bin/sh\\n' > "{bin}/chromium"; chmod +x "{bin}/chromium"; fi
"""


def executable(path, text: str = "#!/bin/sh\n"):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH holding only an empty folder: no Chromium, no apt-get."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("CONTINUUM_TEST_CHROMIUM", raising=False)
    return folder


def test_the_named_binary_wins_and_a_wrong_name_says_how_to_fix_it(tmp_path, bare_path, monkeypatch):
    named = executable(tmp_path / "chrome")
    monkeypatch.setenv("CONTINUUM_TEST_CHROMIUM", str(named))
    assert chromium_path() == str(named)
    monkeypatch.setenv("CONTINUUM_TEST_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(BrowserMissing, match=r"CONTINUUM_TEST_CHROMIUM=.*missing is not an executable file.*"
                                             r"apt-get install chromium"):
        chromium_path()


def test_without_chromium_or_root_the_error_names_the_install_command(bare_path, monkeypatch):
    executable(bare_path / "apt-get")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(BrowserMissing, match=r"Chromium is not installed: install it \(Debian/Ubuntu: apt-get "
                                             r"install chromium\)"):
        chromium_path()


def test_as_root_on_debian_the_package_is_installed_with_apt_get(tmp_path, bare_path, monkeypatch):
    log = tmp_path / "apt.log"
    executable(bare_path / "apt-get", APT_GET.format(log=log, bin=bare_path))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert chromium_path() == str(bare_path / "chromium")
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq --no-install-recommends chromium"]
    assert chromium_path() == str(bare_path / "chromium")  # found on PATH now: apt-get is not run again
    assert len(log.read_text().splitlines()) == 2


def test_a_page_that_errs_or_reaches_out_is_reported(tmp_path, page_in_browser):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><title>broken</title><h1>Broken</h1>"
                    '<svg width="100" height="50"><line class="bad" x1="NaN" x2="10" y1="0" y2="10"/></svg>'
                    '<img src="http://127.0.0.1:9/chart.png"><script>console.error("drawn wrong");'
                    "missing_function();</script>")
    shown = page_in_browser.open(page)
    assert shown.title() == "broken" and shown.texts("h1") == ["Broken"]
    assert "console: drawn wrong" in shown.errors and "request: http://127.0.0.1:9/chart.png" in shown.errors
    assert any("missing_function is not defined" in e for e in shown.errors)
    assert any('attribute x1: Expected length, "NaN"' in e for e in shown.errors)


def test_the_browser_leaves_the_tests_thread_free_for_asyncio(tmp_path, page_in_browser):
    page = tmp_path / "calm.html"
    page.write_text("<!doctype html><title>calm</title><h1>Calm</h1>")
    shown = page_in_browser.open(page)
    assert shown.texts("h1") == ["Calm"] and shown.errors == []

    async def answer() -> int:
        return 42

    assert asyncio.run(answer()) == 42  # Playwright's sync API, driven from this thread, would refuse this
