"""Fixtures of the web console tests: a real Stekker per test module and one headless
Chromium per module (Debian's chromium, driven by Playwright for Python; never a
downloaded browser build).

The browser tests share one event loop per module (`pytestmark = pytest.mark.asyncio(
loop_scope="module")`), so the server here is module-scoped too: the same `Stekker` that
tests/conftest.py's `server` fixture starts, on SQLite, started once per module.
Without Chromium (or playwright, or axe-core) the browser tests skip saying why; with
CI=true they fail instead, so CI cannot pass without having run them.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from stekker.app import Stekker
from stekker.db.models_users import Role
from stekker.services import users
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("STEKKER_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".cache" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / ".cache" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/ensure-browser installs Debian's chromium)"
    if not AXE.exists():
        return f"{AXE} is missing (scripts/ensure-browser installs axe-core from npm)"
    return None


def require_browser() -> None:
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stekker]:
    """A real Stekker (gateway + HTTP) on SQLite with one user per role (password PASSWORD)."""
    path = tmp_path_factory.mktemp("web") / "stekker.db"
    app = Stekker(make_settings(f"sqlite+aiosqlite:///{path}"))
    await app.start()
    try:
        await users.create_user(app.ctx, "test", "admin", PASSWORD, Role.ADMIN)
        for role in (Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY):
            await users.create_user(app.ctx, "test", role.value, PASSWORD, role)
        yield app
    finally:
        await app.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    require_browser()
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


def base_url(server: Stekker) -> str:
    return f"http://127.0.0.1:{server.http_port}"


async def login_page(browser: Any, server: Stekker, username: str, **context: Any) -> Any:
    """A new browser context logged in as `username`; returns its page (on the dashboard)."""
    ctx = await browser.new_context(base_url=base_url(server), **context)
    page = await ctx.new_page()
    await page.goto("/console/login")
    await page.get_by_label(re.compile("Gebruikersnaam|User name")).fill(username)
    await page.get_by_label(re.compile("Wachtwoord|Password")).fill(PASSWORD)
    await page.get_by_role("button", name=re.compile("Inloggen|Log in")).click()
    await page.wait_for_url("**/console/")
    return page


async def screenshot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical WCAG 2.1 A/AA violations axe-core finds on the page (the page's
    context must be made with bypass_csp=True: our CSP forbids the injected script)."""
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}
        })"""
    )
    return [v for v in result["violations"] if v.get("impact") in ("serious", "critical")]


async def http_login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the form as a browser would (CSRF cookie + field)."""
    page = await client.get("/console/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return await client.post(
        "/console/login",
        data={"csrf_token": found.group(1), "username": username, "password": password, "next": "/console/"},
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)
