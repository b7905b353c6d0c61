"""Sessions reconciled at a station's boot, as the console shows them: the station's timeline
says which sessions were closed and which real end came later, the session says why it was
closed, in Dutch and English, on a laptop and a phone (screenshots in .cache/screenshots)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from stekker.services import tokens
from tests.peers import ocpp_station
from tests.web.conftest import login_page, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTHS = (1280, 390)


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def reconciled_station(server: Stekker) -> tuple[int, int]:
    """REC-WEB: two sessions open when it reboots; the stop of the first arrives late."""
    for card in ("CARD-WEB-REC", "CARD-WEB-REC2"):
        await tokens.upsert_token(server.ctx, "test", tokens.TokenInput(uid=card))
    url = f"ws://127.0.0.1:{server.ocpp_port}/ocpp"
    async with ocpp_station(url, "REC-WEB") as cp:
        first = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-WEB-REC", meter_start=1000, timestamp=ago(40))
        )
        second = await cp.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-WEB-REC2", meter_start=5000, timestamp=ago(30))
        )
    async with ocpp_station(url, "REC-WEB") as cp:  # it rebooted: both closed before the boot's answer
        await cp.call(
            call.StopTransaction(
                meter_stop=3500, timestamp=ago(20), transaction_id=first.transaction_id, reason="PowerLoss"
            )
        )
    return int(first.transaction_id), int(second.transaction_id)


async def test_the_console_says_which_sessions_were_reconciled(web_server: Stekker, browser: Any) -> None:
    late, closed = await reconciled_station(web_server)
    page = await login_page(browser, web_server, "admin")
    expected = {
        "nl": (
            f"laadsessie {closed} afgesloten: loopt niet meer op de laadpaal",
            f"laadsessie {late}: de laadpaal meldde later het echte einde, dat nu geldt",
            "afgesloten: de laadpaal is herstart",
        ),
        "en": (
            f"session {closed} closed: no longer running at the station",
            f"session {late}: the station later reported its real end, which now counts",
            "closed: the station rebooted",
        ),
    }
    for lang, (closed_line, late_line, reason) in expected.items():
        await page.goto(f"/console/stations/REC-WEB/timeline?lang={lang}")
        timeline = await page.locator("main").inner_text()
        assert closed_line in timeline and late_line in timeline, timeline
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await screenshot(page, f"reconcile-timeline-{lang}-{width}")
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await page.goto(f"/console/sessions/{closed}?lang={lang}")
        assert reason in await page.locator("main").inner_text()
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": 900})
            await screenshot(page, f"reconcile-session-{lang}-{width}")
        await page.set_viewport_size({"width": 1280, "height": 900})
    await page.context.close()
