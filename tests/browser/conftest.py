"""Real-browser fixtures: the pages as people use them, in Debian's Chromium driven by Playwright.

- `browser`: one headless Chromium for the whole run (Debian's /usr/bin/chromium; Playwright's own download is not
  used).
- `suite`: an embedded suite (tests.support.suite) per test module, its clock at the module's `SUITE_NOW` (default
  Sunday 2026-12-06 09:00 +03:00).
- `open_page(lang, width)`: a fresh page (its own context: cookies, storage) in Arabic or English at phone
  (390x844) or desktop (1280x800) size, guarded: a request to any host but the suite is blocked and fails the test,
  and so does a Content-Security-Policy violation or an uncaught script error.
- `axe(page)`: the serious and critical violations axe-core finds on the page (axe-core from npm, pinned in
  package.json, loaded into the page by evaluation, which the page's CSP does not govern).
- `shot(page, name)`: a full-page screenshot in tests/browser/screenshots/; `shoot_widths(page, name)` takes it at
  both widths. Screenshots marked `keep=True` are also written to $MAWAEED_SCREENSHOTS (e.g. docs/screenshots) when
  that is set, to be committed.
- `T(lang, text)`: a page text as the person reads it (English, or its Arabic from the pages' catalogues), so tests
  find fields and buttons by the accessible names people see in either language.
"""
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.kit import CHROMIUM, HERE, WIDTHS, Guard
from tests.support.suite import NOW, Suite, running


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the pages in a real browser (Chromium)")


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


# -- the browser and the suite -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/ensure-browser.sh (make test does)")
    # Not `with sync_playwright()`: stopping Playwright waits for its driver process through asyncio's child
    # watcher thread, which never runs under eventlet's monkey patching (tests/conftest.py), so the stop hangs.
    # The browser is closed; the driver ends by itself when this process does (its stdin closes).
    playwright = sync_playwright().start()
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def suite(request, tmp_path_factory):
    """An embedded suite for the module, its clock starting at the module's SUITE_NOW."""
    now = getattr(request.module, "SUITE_NOW", NOW)
    with running(Suite("embedded", tmp_path_factory.mktemp("browser"), now=now)) as started:
        yield started


@pytest.fixture
def open_page(browser, suite):
    """open_page(lang="ar", width="phone", path=None, init_script=None, js=True) -> a guarded Page of the suite
    in `lang` (the `lang` cookie the site itself sets), at `width`, with or without JavaScript; opened at `path`
    if given. Every page opened by
    a test is checked by its guard when the test ends."""
    opened = []

    def factory(lang: str = "ar", width: str = "phone", path: str | None = None, init_script: str | None = None,
                js: bool = True):
        w, h = WIDTHS[width]
        context = browser.new_context(viewport={"width": w, "height": h}, base_url=suite.base_url,
                                      locale="en-US", timezone_id="Asia/Bahrain", java_script_enabled=js)
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": "lang", "value": lang, "url": suite.base_url}])
        guard = Guard(suite.base_url)
        context.route(lambda url: not guard.ours(url), lambda route: route.abort())  # nothing leaves the machine
        context.on("request", guard.on_request)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.on("console", guard.on_console)
        page.on("pageerror", guard.on_page_error)
        page.guard = guard
        opened.append((context, page))
        if path:
            page.goto(path)
        return page

    yield factory
    problems = []
    for context, page in opened:
        problems += page.guard.problems()
        context.close()
    assert not problems, "a page did what it must not:\n  " + "\n  ".join(problems)


