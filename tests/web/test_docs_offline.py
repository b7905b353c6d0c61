"""`/docs` (Swagger UI) and `/redoc` (ReDoc) render in headless Chromium with every request
to anywhere but this server refused, as on an air-gapped network: the operations show, and
the page never even tried an outside address. Screenshots at 1280 and 390 px."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest

from stekker.app import Stekker
from tests.web.conftest import SCREENSHOTS, base_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTHS = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


async def photograph(page: Any, name: str) -> None:
    """The first screen only: the whole reference is tens of thousands of pixels high."""
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def offline_page(browser: Any, server: Stekker, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    """A page whose every request off this server is aborted and recorded, with every breach of
    the page's Content-Security-Policy."""
    context = await browser.new_context(base_url=base_url(server), viewport=viewport)
    outside: list[str] = []
    ours = urlsplit(base_url(server)).netloc

    async def only_ours(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == ours:
            await route.continue_()
        else:
            outside.append(url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_ours)
    page = await context.new_page()
    page.on("console", lambda message: outside.extend(policy_breach(message.text)))
    return page, outside


# ReDoc's footer shows Redocly's logo from their CDN and hides it when it cannot load: the
# page's policy blocks it before a request leaves, which is what we want, not a breach
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def policy_breach(console_text: str) -> list[str]:
    """A script, style, worker or fetch the page's policy blocked: a part of the page broken."""
    if "Content Security Policy" in console_text and f"'{REDOCLY_LOGO}'" not in console_text:
        return [console_text]
    return []


async def at_least(locator: Any, count: int) -> int:
    """Wait until `locator` matches more than `count` elements: the pages render in steps (a
    loaded machine takes a while over 128 operations). Polled from here, as the page's policy
    forbids the evaluated script `wait_for_function` uses."""
    found = 0
    for _ in range(1800):
        found = await locator.count()
        if found > count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{locator} matched {found} elements, not more than {count}")


@pytest.mark.parametrize("width", WIDTHS)
async def test_swagger_ui_works_offline(browser: Any, web_server: Stekker, width: str) -> None:
    page, outside = await offline_page(browser, web_server, WIDTHS[width])
    try:
        await page.goto("/docs")
        operations = page.locator(".opblock")
        await at_least(operations, 0)  # the first operations show
        assert await page.locator(".information-container .title").inner_text() != ""
        await operations.first.locator(".opblock-summary").click()  # one opens: the script runs
        await page.get_by_role("button", name="Try it out").first.wait_for()
        await photograph(page, f"docs-swagger-{width}")
        await at_least(operations, 20)  # and the rest
        assert outside == []
    finally:
        await page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
async def test_redoc_works_offline(browser: Any, web_server: Stekker, width: str) -> None:
    page, outside = await offline_page(browser, web_server, WIDTHS[width])
    try:
        await page.goto("/redoc")
        operations = page.locator("[data-section-id^='operation/']")
        await at_least(operations, 20)
        assert "Stekker" in await page.locator("h1").first.inner_text()
        await photograph(page, f"docs-redoc-{width}")
        assert outside == []
    finally:
        await page.context.close()
