"""Test peers: a station built on the `ocpp` package, and a raw OCPP-J socket for hostile input."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect

_F = TypeVar("_F", bound=Callable[..., Any])

#: How long a test station waits for our answer. Generous: the tests check what is answered;
#: how fast is measured in bench/ (a loaded 2-core CI machine can stall a PostgreSQL test
#: for seconds).
REPLY_TIMEOUT = 15.0


def typed_on(action: str) -> Callable[[_F], _F]:
    """`ocpp.routing.on`, typed so mypy keeps the handler's signature."""
    return cast(Callable[[_F], _F], on(action))


@dataclass
class Received:
    """One message a test central system received from a station."""

    station_id: str
    action: str
    payload: dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Station(ChargePoint):  # type: ignore[misc]
    """A charge point from the `ocpp` package that records what the central system asks of it."""

    def __init__(self, station_id: str, ws: ClientConnection) -> None:
        super().__init__(station_id, ws, response_timeout=REPLY_TIMEOUT)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.configuration: dict[str, str] = {}
        self.local_list_version = 0
        self.local_list: dict[str, dict[str, Any] | None] = {}
        self.remote_start_answer = "Accepted"
        self.remote_stop_answer = "Accepted"

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, **kw: Any) -> call_result.RemoteStartTransaction:
        self.received.append(("RemoteStartTransaction", {"id_tag": id_tag, **kw}))
        return call_result.RemoteStartTransaction(status=self.remote_start_answer)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        self.received.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return call_result.RemoteStopTransaction(status=self.remote_stop_answer)

    @on(Action.change_configuration)
    async def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        self.received.append(("ChangeConfiguration", {"key": key, "value": value}))
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.get_local_list_version)
    async def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        self.received.append(("GetLocalListVersion", {}))
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.send_local_list)
    async def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> call_result.SendLocalList:
        entries = local_authorization_list or []
        self.received.append(
            ("SendLocalList", {"version": list_version, "type": update_type, "list": entries})
        )
        if update_type == "Full":
            self.local_list = {}
        for entry in entries:
            if entry.get("id_tag_info") is None:
                self.local_list.pop(entry["id_tag"], None)
            else:
                self.local_list[entry["id_tag"]] = entry["id_tag_info"]
        self.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    async def boot(self) -> Any:
        return await self.call(call.BootNotification(charge_point_model="T1", charge_point_vendor="Test"))


def auth_header(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def connected_peer(
    base_url: str,
    station_id: str,
    subprotocol: str,
    make: Callable[[str, ClientConnection], Any],
    password: str | None = None,
    boot: bool = True,
) -> AsyncIterator[Any]:
    """An `ocpp`-package station of any version, connected (and booted) for the test's length."""
    headers = auth_header(station_id, password) if password else {}
    async with connect(
        f"{base_url}/{station_id}",
        subprotocols=[subprotocol],  # type: ignore[list-item]
        additional_headers=headers,
    ) as ws:
        cp = make(station_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            if boot:
                await cp.boot()
            yield cp
        finally:
            task.cancel()


@contextlib.asynccontextmanager
async def ocpp_station(
    base_url: str, station_id: str, password: str | None = None, boot: bool = True
) -> AsyncIterator[Station]:
    async with connected_peer(base_url, station_id, "ocpp1.6", Station, password, boot) as cp:
        yield cp


class RawStation:
    """A bare OCPP-J socket: sends exactly the bytes a test gives it and returns the reply
    frame. CALLs from the central system are answered with `answers[action]` (or Accepted)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.replies: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.server_calls: list[list[Any]] = []
        self.answers: dict[str, dict[str, Any]] = {
            "GetLocalListVersion": {"listVersion": 0},
        }
        self.silent = False  # True: never answer the central system's calls
        self._n = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                frame = json.loads(message)
                if frame[0] == 2:
                    self.server_calls.append(frame)
                    if not self.silent:
                        answer = self.answers.get(frame[2], {"status": "Accepted"})
                        await self.ws.send(json.dumps([3, frame[1], answer]))
                else:
                    await self.replies.put(frame)

    async def send_text(self, text: str, timeout: float = REPLY_TIMEOUT) -> list[Any]:
        await self.ws.send(text)
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def call(self, action: str, payload: dict[str, Any], msg_id: str | None = None) -> list[Any]:
        self._n += 1
        return await self.send_text(json.dumps([2, msg_id or f"m{self._n}", action, payload]))

    async def ok(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        frame = await self.call(action, payload)
        assert frame[0] == 3, f"{action} answered {frame}"
        result: dict[str, Any] = frame[2]
        return result

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


@contextlib.asynccontextmanager
async def raw_station(
    base_url: str, station_id: str, boot: bool = True, protocol: str = "ocpp1.6", **connect_kw: Any
) -> AsyncIterator[RawStation]:
    async with connect(f"{base_url}/{station_id}", subprotocols=[protocol], **connect_kw) as ws:  # type: ignore[list-item]
        station = RawStation(ws)
        if protocol != "ocpp1.6":
            station.answers["GetLocalListVersion"] = {"versionNumber": 0}
        try:
            if boot and protocol == "ocpp1.6":
                await station.ok("BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
            elif boot:
                await station.ok(
                    "BootNotification",
                    {"chargingStation": {"vendorName": "Raw", "model": "R2"}, "reason": "PowerUp"},
                )
            yield station
        finally:
            await station.close()
