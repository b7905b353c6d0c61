"""Sessions left "active" by a restart or a lost stop are reconciled when the station connects.

Real `ocpp` stations (1.6 and 2.0.1) over loopback, on SQLite and PostgreSQL: a station that
boots with a session open here gets it closed with a reason and a CDR; its own stop arriving
later from its offline queue corrects the session, and the CDR (credit and replacement: one CDR
in force); a station that reconnects without booting is asked what runs, and what really runs
is left alone. A station that cannot or will not say leaves its sessions as they are.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import after, on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from stekker.app import Stekker
from tests.observe import add_token, eventually
from tests.peers import Station, connected_peer
from tests.peers201 import Station201, tx_event
from tests.test_cdrs import TARIFF, add_tariff, base_time, iso

#: Reconnect tests: a station that does not boot within this is asked what still runs.
QUICK = {"reconcile_boot_wait": 0.3}


class Station16(Station):
    """A 1.6 station that answers TriggerMessage StatusNotification with `connector_status`
    (None: it refuses to)."""

    connector_status: str | None = "Charging"

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **kw: Any) -> Any:
        self.received.append(("TriggerMessage", {"requested_message": requested_message, **kw}))
        accepted = requested_message == "StatusNotification" and self.connector_status is not None
        return result16.TriggerMessage(status="Accepted" if accepted else "Rejected")

    @after("TriggerMessage")
    async def send_status(self, requested_message: str, connector_id: int | None = None, **kw: Any) -> None:
        if requested_message == "StatusNotification" and self.connector_status is not None:
            await self.call(
                call16.StatusNotification(
                    connector_id=connector_id or 1, error_code="NoError", status=self.connector_status
                )
            )


class Station201Tx(Station201):
    """A 2.0.1 station that answers GetTransactionStatus from `running` and `queued`."""

    running: set[str] = set()
    queued: set[str] = set()

    @on("GetTransactionStatus")
    async def on_get_transaction_status(self, transaction_id: str | None = None, **kw: Any) -> Any:
        self.received.append(("GetTransactionStatus", {"transaction_id": transaction_id}))
        return result201.GetTransactionStatus(
            messages_in_queue=transaction_id in self.queued, ongoing_indicator=transaction_id in self.running
        )


def station16(ocpp_url: str, station_id: str, boot: bool) -> Any:
    return connected_peer(ocpp_url, station_id, "ocpp1.6", Station16, None, boot)


def station201(ocpp_url: str, station_id: str, boot: bool) -> Any:
    return connected_peer(ocpp_url, station_id, "ocpp2.0.1", Station201Tx, None, boot)


async def session(api: httpx.AsyncClient, session_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def completed(api: httpx.AsyncClient, session_id: int) -> dict[str, Any] | None:
    row = await session(api, session_id)
    return row if row["status"] == "completed" else None


async def cdrs(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await api.get("/api/cdrs", params={"station_id": station_id})).json()
    return rows


def in_force(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The charge CDRs no credit cancels: what the driver is billed."""
    credited = {r["credits_cdr_uid"] for r in rows if r["kind"] == "credit"}
    return [r for r in rows if r["kind"] == "charge" and r["cdr_uid"] not in credited]


async def events(api: httpx.AsyncClient, station_id: str, kind: str) -> list[dict[str, Any]]:
    rows = (await api.get(f"/api/stations/{station_id}/events", params={"limit": 1000})).json()
    return [r for r in rows if r["kind"] == kind]


async def start16(cp: Station16, base: Any, card: str) -> int:
    """A transaction on connector 1 from 0:00 (1,000 Wh) with a meter value at 0:30 (2,500 Wh)."""
    started = await cp.call(
        call16.StartTransaction(connector_id=1, id_tag=card, meter_start=1000, timestamp=iso(base, 0))
    )
    sample = {"value": "2500", "measurand": "Energy.Active.Import.Register"}
    await cp.call(
        call16.MeterValues(
            connector_id=1,
            transaction_id=started.transaction_id,
            meter_value=[{"timestamp": iso(base, 30), "sampled_value": [sample]}],
        )
    )
    return int(started.transaction_id)


async def start201(cp: Station201Tx, base: Any, card: str, tx: str) -> None:
    await cp.call(
        call201.TransactionEvent(
            **_snake(tx_event("Started", tx, 0, token=card, meter_wh=1000, at=iso(base, 0)))
        )
    )
    await cp.call(
        call201.TransactionEvent(
            **_snake(
                tx_event("Updated", tx, 1, trigger="MeterValuePeriodic", meter_wh=2500, at=iso(base, 30))
            )
        )
    )


def _snake(payload: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys of a wire payload as the `ocpp` package's call dataclasses name them
    (it converts nested keys itself)."""
    out = {}
    for key, value in payload.items():
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        out[snake] = value
    return out


async def test_16_boot_closes_the_open_session_and_its_late_stop_corrects_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-R16")
    async with station16(ocpp_url, "REC16", boot=True) as cp:
        session_id = await start16(cp, base, "CARD-R16")
    # the station lost power; it comes back, boots, and only then sends its queued stop
    async with station16(ocpp_url, "REC16", boot=False) as cp:
        await cp.boot()
        closed = await session(api, session_id)  # closed before the boot was answered
        assert closed["status"] == "completed"
        assert closed["stop_reason"] == "station_rebooted"
        assert closed["stop_time"].startswith(iso(base, 30)[:16])  # the last sign of life
        assert closed["energy_wh"] == 1500
        [first] = await eventually(lambda: cdrs(api, "REC16"))
        assert first["total_energy_wh"] == 1500
        [event] = await events(api, "REC16", "session_reconciled")
        assert event["detail"]["session_id"] == session_id
        assert event["detail"]["reason"] == "station_rebooted"

        await cp.call(
            call16.StopTransaction(
                meter_stop=4000, timestamp=iso(base, 50), transaction_id=session_id, reason="PowerLoss"
            )
        )
        rows = await eventually(lambda: _when(cdrs(api, "REC16"), lambda r: len(r) == 3))
    corrected = await session(api, session_id)
    assert corrected["stop_reason"] == "PowerLoss"
    assert corrected["stop_time"].startswith(iso(base, 50)[:16])
    assert corrected["energy_wh"] == 3000 and corrected["meter_stop_wh"] == 4000
    [billed] = in_force(rows)
    assert billed["total_energy_wh"] == 3000 and billed["end_time"].startswith(iso(base, 50)[:16])
    assert sum(r["total_cost_incl_vat"] for r in rows) == pytest.approx(billed["total_cost_incl_vat"])
    [late] = await events(api, "REC16", "session_stop_reported_late")
    assert late["detail"]["closed_as"] == "station_rebooted"
    assert (await session(api, session_id))["status"] == "completed"


async def test_201_boot_asks_and_closes_what_is_over_and_its_late_ended_corrects_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-R201")
    async with station201(ocpp_url, "REC201", boot=True) as cp:
        await start201(cp, base, "CARD-R201", "tx-over")
        await start201_on(cp, base, "CARD-R201", "tx-resumed", evse=2)
    [over_id, resumed_id] = sorted(
        s["id"] for s in (await api.get("/api/sessions", params={"station_id": "REC201"})).json()
    )
    async with station201(ocpp_url, "REC201", boot=False) as cp:
        cp.running = {"tx-resumed"}  # it resumed this one after the reboot
        await cp.boot()
        closed = await eventually(lambda: completed(api, over_id))
        assert closed["stop_reason"] == "station_rebooted" and closed["energy_wh"] == 1500
        asked = {c["transaction_id"] for c in cp.calls("GetTransactionStatus")}
        assert asked == {"tx-over", "tx-resumed"}
        assert (await session(api, resumed_id))["status"] == "active"
        [first] = await eventually(lambda: cdrs(api, "REC201"))
        assert first["session_id"] == over_id

        ended = tx_event(
            "Ended", "tx-over", 2, trigger="EVCommunicationLost", meter_wh=4000, at=iso(base, 50),
            stoppedReason="PowerLoss", offline=True,
        )  # fmt: skip
        await cp.call(call201.TransactionEvent(**_snake(ended)))
        rows = await eventually(lambda: _when(cdrs(api, "REC201"), lambda r: len(r) == 3))
    corrected = await session(api, over_id)
    assert corrected["stop_reason"] == "PowerLoss" and corrected["energy_wh"] == 3000
    [billed] = in_force(rows)
    assert billed["total_energy_wh"] == 3000 and billed["session_id"] == over_id
    assert (await session(api, resumed_id))["status"] == "active"


async def start201_on(cp: Station201Tx, base: Any, card: str, tx: str, evse: int) -> None:
    await cp.call(
        call201.TransactionEvent(
            **_snake(tx_event("Started", tx, 0, token=card, evse=evse, meter_wh=9000, at=iso(base, 0)))
        )
    )


@pytest.mark.parametrize("settings_overrides", [QUICK])
async def test_16_reconnect_without_boot_leaves_a_charging_connector_alone(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_token(api, "CARD-C16")
    async with station16(ocpp_url, "RUN16", boot=True) as cp:
        session_id = await start16(cp, base, "CARD-C16")
    async with station16(ocpp_url, "RUN16", boot=False) as cp:
        cp.connector_status = "Charging"
        await eventually(lambda: cp.calls("TriggerMessage"))
        await eventually(lambda: _status_is(api, "RUN16", "Charging"))
        assert (await session(api, session_id))["status"] == "active"
        assert await events(api, "RUN16", "session_reconciled") == []


@pytest.mark.parametrize("settings_overrides", [QUICK])
async def test_16_reconnect_without_boot_closes_the_session_of_an_available_connector(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_token(api, "CARD-A16")
    async with station16(ocpp_url, "GONE16", boot=True) as cp:
        session_id = await start16(cp, base, "CARD-A16")
    async with station16(ocpp_url, "GONE16", boot=False) as cp:
        cp.connector_status = "Available"
        closed = await eventually(lambda: completed(api, session_id))
        assert closed["stop_reason"] == "not_reported_by_station" and closed["energy_wh"] == 1500
        [event] = await events(api, "GONE16", "session_reconciled")
        assert event["detail"]["connector_status"] == "Available"


@pytest.mark.parametrize("settings_overrides", [QUICK])
async def test_201_reconnect_without_boot_asks_and_leaves_what_runs_or_is_queued(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_token(api, "CARD-Q201")
    async with station201(ocpp_url, "RUN201", boot=True) as cp:
        await start201(cp, base, "CARD-Q201", "tx-runs")
        await start201_on(cp, base, "CARD-Q201", "tx-queued", evse=2)
        await start201_on(cp, base, "CARD-Q201", "tx-gone", evse=3)
    by_tx = {
        s["transaction_id"]: s["id"]
        for s in (await api.get("/api/sessions", params={"station_id": "RUN201"})).json()
    }
    async with station201(ocpp_url, "RUN201", boot=False) as cp:
        cp.running, cp.queued = {"tx-runs"}, {"tx-queued"}
        closed = await eventually(lambda: completed(api, by_tx["tx-gone"]))
        assert closed["stop_reason"] == "not_reported_by_station"
        assert {c["transaction_id"] for c in cp.calls("GetTransactionStatus")} == set(by_tx)
    assert (await session(api, by_tx["tx-runs"]))["status"] == "active"
    assert (await session(api, by_tx["tx-queued"]))["status"] == "active"  # its Ended is on the way


class Refusing16(Station16):
    connector_status = None


class Silent201(Station201):
    """A 2.0.1 station without GetTransactionStatus: it answers with a CALLERROR (NotImplemented)."""

    @on("GetTransactionStatus")
    async def on_get_transaction_status(self, **kw: Any) -> Any:
        self.received.append(("GetTransactionStatus", kw))
        raise OcppNotImplemented(details={"cause": "not in this firmware"})


@pytest.mark.parametrize("settings_overrides", [QUICK])
async def test_stations_that_cannot_say_keep_their_sessions(api: httpx.AsyncClient, ocpp_url: str) -> None:
    base = base_time()
    await add_token(api, "CARD-X")
    async with connected_peer(ocpp_url, "MUTE16", "ocpp1.6", Refusing16, None, True) as cp:
        s16 = await start16(cp, base, "CARD-X")
    async with connected_peer(ocpp_url, "MUTE201", "ocpp2.0.1", Silent201, None, True) as cp:
        await cp.call(
            call201.TransactionEvent(**_snake(tx_event("Started", "tx-m", 0, token="CARD-X", meter_wh=5)))
        )
    [s201] = [s["id"] for s in (await api.get("/api/sessions", params={"station_id": "MUTE201"})).json()]
    async with connected_peer(ocpp_url, "MUTE16", "ocpp1.6", Refusing16, None, False) as refusing:
        await eventually(lambda: refusing.calls("TriggerMessage"))
    async with connected_peer(ocpp_url, "MUTE201", "ocpp2.0.1", Silent201, None, True) as silent:
        await eventually(lambda: silent.calls("GetTransactionStatus"))
        await silent.call(call201.Heartbeat())  # answered after the CALLERROR was read
    for session_id in (s16, s201):
        assert (await session(api, session_id))["status"] == "active"
    assert await events(api, "MUTE16", "session_reconciled") == []
    assert await events(api, "MUTE201", "session_reconciled") == []


async def _when(rows_coro: Any, ok: Any) -> Any:
    rows = await rows_coro
    return rows if ok(rows) else None


async def _status_is(api: httpx.AsyncClient, station_id: str, status: str) -> bool:
    station = (await api.get(f"/api/stations/{station_id}")).json()
    return any(c["status"] == status for e in station["evses"] for c in e["connectors"])
