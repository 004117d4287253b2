"""The built site in a real browser: linked framework tabs, code, notebook outputs.

Runs headless Chromium from Debian's `chromium` package through Playwright;
`playwright install` is never needed. Without Chromium the tests skip, with
the reason in pytest's summary, except under `CI=true`, where they fail.
"""

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import sync_playwright
from test_docs import build_site

CHROMIUM = Path("/usr/bin/chromium")
MISSING_CHROMIUM = (
    f"{CHROMIUM} is missing: the site's browser test needs Debian's Chromium. "
    "Install it with `apt-get install chromium` (or add it to .ci/run)."
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    "",
    "add-scim-to-your-app/",
    "storage/",
    "mapping/",
    "discovery/",
    "wiring/",
    "users/",
    "groups/",
    "querying/",
    "patch/",
    "etags/",
    "bulk/",
    "errors/",
    "authentication/",
    "identity-provider-quirks/",
    "testing/",
    "deploying/",
]
NOTEBOOK = "notebooks/01-storage-and-mapping/"
# The length of every code block's text (hidden tabs included), and the page text.
CODE_AND_TEXT = """() => [
    [...document.querySelectorAll(".highlight code")].map(
        (code) => code.textContent.trim().length
    ),
    document.querySelector("article").textContent,
]"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The strict build, served on a free port of 127.0.0.1."""
    handler = functools.partial(QuietHandler, directory=str(build_site()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser | None]:
    if not CHROMIUM.is_file():
        yield None  # each test skips, or fails under CI=true
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser | None, site_url: str) -> Iterator[Page | None]:
    """A fresh page (fresh localStorage) that can reach only the site."""
    if browser is None:
        yield None
        return
    context = browser.new_context()
    errors: list[str] = []

    def stay_on_site(route: Route) -> None:
        if route.request.url.startswith(site_url):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", stay_on_site)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_page(page: Page | None, url: str, wait_until: str = "load") -> Page:
    if page is None and os.environ.get("CI") == "true":
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    if page is None:
        pytest.skip(MISSING_CHROMIUM)
    page.goto(url, wait_until=wait_until)
    return page


def visible_code_title(page: Page) -> str:
    """The file name above the code block the first tab set shows."""
    tab_set = page.locator(".tabbed-set").first
    blocks = tab_set.locator(":scope > .tabbed-content > .tabbed-block")
    shown = [block for block in blocks.all() if block.is_visible()]
    assert len(shown) == 1, f"{len(shown)} tabs of the first tab set are visible"
    return shown[0].locator(".filename").first.inner_text()


def test_django_tab_choice_holds_across_pages(page, site_url):
    page = open_page(page, site_url + "users/")
    assert visible_code_title(page) == "integrations/flask_app/app.py"

    page.locator(".tabbed-set").first.get_by_text("Django", exact=True).click()
    assert visible_code_title(page) == "integrations/django_app/views.py"
    # Tabs are linked: every tab set of the page follows.
    for tab_set in page.locator(".tabbed-set").all():
        checked = tab_set.locator(":scope > input:checked")
        label = tab_set.locator(f"label[for='{checked.get_attribute('id')}']")
        assert label.inner_text() == "Django"

    # And the choice survives to the next page (Material keeps it in localStorage).
    open_page(page, site_url + "errors/")
    assert visible_code_title(page) == "integrations/django_app/views.py"


def test_pages_render_their_code(page, site_url):
    for path in PAGES:
        # The code is in the HTML: no need to wait for images and the like.
        page = open_page(page, site_url + path, wait_until="domcontentloaded")
        lengths, text = page.evaluate(CODE_AND_TEXT)
        assert lengths, f"/{path}: no code block"
        empty = [index for index, length in enumerate(lengths) if not length]
        assert not empty, f"/{path}: code blocks {empty} are empty"
        # An include that went wrong shows up as its own syntax.
        assert "--8<--" not in text, f"/{path}: a snippet marker was not replaced"


def test_notebook_page_shows_cell_outputs(page, site_url):
    page = open_page(page, site_url + NOTEBOOK)
    outputs = page.locator(".jp-OutputArea-output")
    assert outputs.count() > 0, "the notebook page has no cell output"
    first = outputs.first
    first.scroll_into_view_if_needed()
    assert first.is_visible()
    assert first.inner_text().strip(), "the first cell output shows no text"
