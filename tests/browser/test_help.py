"""The help page (what to bring, check-in, every centre's hours) in both languages and both widths, and the
browser tests' own tools checked against it: the CSP the pages are served with, axe-core loading under it, the
guard catching a request to another host."""
import pytest

from tests.browser.kit import LANGUAGES, T, Guard, axe, check_page

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", LANGUAGES)
def test_help_page(open_page, lang):
    page = open_page(lang, "phone")
    answer = page.goto("/help")
    assert answer.status == 200
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert page.get_by_role("heading", level=1).inner_text() == T(lang, "Help")
    assert page.get_by_role("heading", name=T(lang, "What to bring")).is_visible()
    assert page.get_by_role("navigation", name=T(lang, "Site")).is_visible()
    check_page(page, "help", lang)


def test_the_language_link_switches_and_is_remembered(open_page):
    page = open_page("ar", "desktop", "/help")
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto("/help")   # no ?lang=: the cookie remembers
    assert page.locator("html").get_attribute("dir") == "ltr"
    page.get_by_role("link", name="العربية").click()
    assert page.locator("html").get_attribute("dir") == "rtl"


def test_the_tools_work_under_the_pages_policy(browser, suite):
    """axe-core runs on a page whose CSP forbids inline scripts; the guard sees a request to another host (and
    blocks it) and a CSP violation."""
    context = browser.new_context(base_url=suite.base_url)
    guard = Guard(suite.base_url)
    context.route(lambda url: not guard.ours(url), lambda route: route.abort())
    context.on("request", guard.on_request)
    page = context.new_page()
    page.on("console", guard.on_console)
    page.on("pageerror", guard.on_page_error)
    try:
        page.goto("/help")
        assert axe(page) == [] or True   # it runs (the help page's own result is test_help_page's business)
        assert page.evaluate("() => typeof axe.run") == "function"
        page.evaluate("""() => { const img = new Image(); img.src = 'http://elsewhere.invalid/pixel.png';
                                 document.body.append(img); }""")
        page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';
                                 document.body.append(s); }""")
        page.wait_for_timeout(300)
        assert guard.foreign == ["http://elsewhere.invalid/pixel.png"]
        assert guard.csp, "an inline script must be refused by the page's CSP"
        assert page.evaluate("() => window.x") is None
    finally:
        context.close()
