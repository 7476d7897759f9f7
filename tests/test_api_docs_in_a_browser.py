"""/api/docs (Swagger UI) and /api/redoc (ReDoc) render the app's OpenAPI 3.1 document in a real
browser: every tag and the checkout operations appear, nothing is logged to the console as an
error, and the pages load nothing from outside the app (headless Chromium driven by Playwright).

Chromium comes from the system (Debian's `chromium` package, `make browser` installs it); where it
is missing the test is skipped and pytest's summary says why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import LiveServer

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "var" / "test" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# The operations a storefront's checkout uses: they must be on both pages.
CHECKOUT = [
    ("post", "/api/v1/orders"),
    ("post", "/api/v1/orders/{order_id}/pay"),
    ("get", "/api/v1/orders/{order_id}/status"),
    ("get", "/api/v1/orders/{order_id}"),
    ("post", "/api/v1/cart/items"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium) to run the "
        "browser test of /api/docs and /api/redoc",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the suite may run as root (CI does), where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def spec(live_server: LiveServer) -> dict[str, Any]:
    import httpx2 as httpx

    return dict(httpx.get(live_server.url + "/api/openapi.json", timeout=10).json())


class PageWatch:
    """A page that records console errors, uncaught exceptions and requests leaving the server."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.failed: list[str] = []
        own = urlsplit(origin).netloc
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.failed.append(req.url))

        def guard(route: Any) -> None:
            parts = urlsplit(route.request.url)
            if parts.scheme in {"http", "https"} and parts.netloc != own:
                self.outside.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        self.page.route("**/*", guard)

    def close(self) -> None:
        self.context.close()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def test_swagger_ui_renders_every_tag_and_the_checkout(
    browser: Any, live_server: LiveServer, spec: dict[str, Any]
) -> None:
    watch = PageWatch(browser, live_server.url)
    page = watch.page
    page.goto(live_server.url + "/api/docs")
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "swagger-ui.png"), full_page=False)
    assert "Unable to render this definition" not in page.content()
    shown_tags = {tag.get_attribute("data-tag") for tag in page.query_selector_all(".opblock-tag")}
    tags = {tag for _, _, op in operations(spec) for tag in op["tags"]}
    assert tags and tags <= shown_tags, tags - shown_tags
    # Every operation is listed (sections start expanded), the checkout's among them.
    shown = {
        (
            block.get_attribute("class").split("opblock-")[1].split()[0],  # type: ignore[union-attr]
            block.query_selector(".opblock-summary-path").get_attribute("data-path"),
        )  # type: ignore[union-attr]
        for block in page.query_selector_all(".opblock")
    }
    assert set(CHECKOUT) <= shown, set(CHECKOUT) - shown
    assert {(method, path) for method, path, _ in operations(spec)} <= shown
    # Open "pay" to see its body schema rendered, not just listed.
    page.click(".opblock-post .opblock-summary-path[data-path='/api/v1/orders/{order_id}/pay']")
    page.wait_for_selector(".opblock.is-open .opblock-section-request-body", timeout=10_000)
    page.screenshot(path=str(SHOTS / "swagger-ui-pay.png"), full_page=False)
    assert (watch.errors, watch.failed, watch.outside) == ([], [], [])
    watch.close()


def test_redoc_renders_every_tag_and_the_checkout(browser: Any, live_server: LiveServer, spec: dict[str, Any]) -> None:
    watch = PageWatch(browser, live_server.url)
    page = watch.page
    page.goto(live_server.url + "/api/redoc")
    page.wait_for_selector("[data-item-id^='tag/']", timeout=30_000)
    page.screenshot(path=str(SHOTS / "redoc.png"), full_page=False)
    assert "Something went wrong" not in page.content()
    shown = {item.get_attribute("data-item-id") for item in page.query_selector_all("li[data-item-id]")}
    tags = {tag for _, _, op in operations(spec) for tag in op["tags"]}
    assert {f"tag/{tag}" for tag in tags} <= shown
    by_route = {(method, path): op for method, path, op in operations(spec)}
    for method, path in CHECKOUT:
        op = by_route[(method, path)]
        assert f"tag/{op['tags'][0]}/operation/{op['operationId']}" in shown, (method, path)
    # The checkout's operation is rendered in the page body with its request body.
    create = by_route[("post", "/api/v1/orders")]
    section = page.wait_for_selector(
        f"[id='tag/{create['tags'][0]}/operation/{create['operationId']}']", timeout=10_000
    )
    assert section is not None and "request body schema" in section.inner_text().lower()
    assert (watch.errors, watch.failed, watch.outside) == ([], [], [])
    watch.close()
