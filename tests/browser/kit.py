"""What the real-browser tests share: page text in either language, the guard, axe-core, screenshots, keyboard."""
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.web.i18n import catalogue

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = HERE / "screenshots"
CHROMIUM = os.environ.get("MAWAEED_CHROMIUM", "/usr/bin/chromium")
WIDTHS = {"phone": (390, 844), "desktop": (1280, 800)}
LANGUAGES = ("ar", "en")
SERIOUS = ("serious", "critical")
BRANCH, SERVICE = "npra-isa-town", "passport-renewal"   # open on Sunday morning, takes walk-ins


# -- page text in either language --------------------------------------------------------------------------

_ARABIC = {}


def T(lang: str, text: str) -> str:
    """`text` (an English message id of the templates) as a person reading `lang` sees it."""
    if lang == "en":
        return text
    if not _ARABIC:
        _ARABIC.update({m.id: m.string for m in catalogue("ar") if m.id and m.string})
    return _ARABIC.get(text) or text


# -- guarded pages -------------------------------------------------------------------------------------------

class Guard:
    """What a page did that it must not: requests to other hosts, CSP violations, uncaught script errors."""

    def __init__(self, base_url: str):
        self.origin = urlsplit(base_url).netloc
        self.foreign, self.csp, self.errors = [], [], []

    def ours(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob", "about") or parts.netloc == self.origin

    def on_request(self, request):
        if not self.ours(request.url):
            self.foreign.append(request.url)

    def on_console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def on_page_error(self, error):
        self.errors.append(str(error))

    def problems(self) -> list[str]:
        return ([f"request to another host: {url}" for url in self.foreign]
                + [f"CSP violation: {text}" for text in self.csp]
                + [f"script error: {text}" for text in self.errors])

    def check(self):
        problems = self.problems()
        assert not problems, "the page did what it must not:\n  " + "\n  ".join(problems)


# -- accessibility -------------------------------------------------------------------------------------------

def axe(page) -> list[dict]:
    """The serious and critical axe-core violations of the page as it is now: [{id, impact, help, nodes}]."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests/browser` (make test does)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;true")   # evaluated by the browser's debugger: the page's CSP allows it
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary,
                                      html: n.html.slice(0, 200)}))}));
    }""")
    return [v for v in violations if v["impact"] in SERIOUS]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['impact']}: {v['id']} ({v['help']})")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html']}")
            lines += ["        " + line for line in (node["summary"] or "").splitlines()]
    return "\n".join(lines)


def assert_accessible(page, what: str = ""):
    found = axe(page)
    assert not found, f"axe-core: serious or critical violations on {what or page.url}:\n{describe(found)}"


# -- screenshots ---------------------------------------------------------------------------------------------

def _name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def shot(page, name: str, keep: bool = False) -> Path:
    """A full-page screenshot tests/browser/screenshots/<name>.png; with keep=True also written to the folder
    $MAWAEED_SCREENSHOTS names (relative to the repository), e.g. docs/screenshots, to be committed."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{_name(name)}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    extra = os.environ.get("MAWAEED_SCREENSHOTS")
    if keep and extra:
        folder = Path(extra) if Path(extra).is_absolute() else ROOT / extra
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)
    return path


def shoot_widths(page, name: str, lang: str, keep: bool = True) -> None:
    """Screenshots of the page at phone and desktop widths: <name>-<lang>-390.png and <name>-<lang>-1280.png;
    the viewport is put back as it was."""
    before = page.viewport_size
    for width, height in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)  # let the layout settle
        shot(page, f"{name}-{lang}-{width}", keep=keep)
    page.set_viewport_size(before)


def check_page(page, name: str, lang: str, keep: bool = True) -> None:
    """What every page must pass as it stands: the lang and dir of its language, axe-core, its guard; and its
    screenshots at both widths."""
    html = page.locator("html")
    assert html.get_attribute("lang") == lang, f"{name}: <html lang> is {html.get_attribute('lang')!r}, not {lang!r}"
    assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr"), f"{name}: <html dir> is wrong"
    shoot_widths(page, name, lang, keep=keep)
    page.guard.check()
    for width in WIDTHS.values():
        page.set_viewport_size({"width": width[0], "height": width[1]})
        assert_accessible(page, f"{name} ({lang}, {width[0]} px wide)")


# -- keyboard ------------------------------------------------------------------------------------------------

def tab_to(page, locator, limit: int = 120, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab backwards) until `locator` has the focus; fails if it never does."""
    target = locator.element_handle()
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        if page.evaluate("el => document.activeElement === el", target):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{locator} is not reachable with {key} in {limit} presses")


def focused_is_visible(page) -> bool:
    """The focused element shows that it has the focus (an outline or a box shadow)."""
    return page.evaluate("""() => {
        const el = document.activeElement; if (!el || el === document.body) return false;
        const s = getComputedStyle(el);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
    }""")
