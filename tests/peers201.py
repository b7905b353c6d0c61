"""Test peers for OCPP 2.0.1 and 2.1: a station on the `ocpp` package that records what the
central system asks of it, plus helpers to build TransactionEvent payloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection

from tests.peers import REPLY_TIMEOUT, connected_peer, now_iso


class Station201(ChargePoint):  # type: ignore[misc]
    """A 2.0.1 charging station from the `ocpp` package with a tiny device model."""

    def __init__(self, station_id: str, ws: ClientConnection) -> None:
        super().__init__(station_id, ws, response_timeout=REPLY_TIMEOUT)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.variables: dict[tuple[str, str], str] = {
            ("AuthCtrlr", "LocalPreAuthorize"): "true",
            ("AuthCtrlr", "LocalAuthorizeOffline"): "true",
            ("AuthCacheCtrlr", "Enabled"): "true",
            ("LocalAuthListCtrlr", "Enabled"): "false",
            ("TxCtrlr", "StopTxOnInvalidId"): "false",
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
        }
        self.read_only = {("ChargingStation", "VendorName")}
        self.variables[("ChargingStation", "VendorName")] = "Test"
        self.local_list_version = 0
        self.local_list: dict[str, dict[str, Any] | None] = {}
        self.start_answer = "Accepted"
        self.stop_answer = "Accepted"
        self.report_parts = 3

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    @on("RequestStartTransaction")
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **kw: Any) -> Any:
        self.received.append(
            ("RequestStartTransaction", {"id_token": id_token, "remote_start_id": remote_start_id, **kw})
        )
        return call_result.RequestStartTransaction(status=self.start_answer)

    @on("RequestStopTransaction")
    async def on_request_stop(self, transaction_id: str, **kw: Any) -> Any:
        self.received.append(("RequestStopTransaction", {"transaction_id": transaction_id}))
        return call_result.RequestStopTransaction(status=self.stop_answer)

    @on("GetVariables")
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self.received.append(("GetVariables", {"items": get_variable_data}))
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            result: dict[str, Any] = {"component": item["component"], "variable": item["variable"]}
            if key in self.variables:
                result.update(attribute_status="Accepted", attribute_value=self.variables[key])
            else:
                result["attribute_status"] = "UnknownVariable"
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **kw: Any) -> Any:
        self.received.append(("SetVariables", {"items": set_variable_data}))
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            status = "Accepted"
            if key in self.read_only:
                status = "Rejected"
            elif key[0] not in {k[0] for k in self.variables}:
                status = "UnknownComponent"
            else:
                self.variables[key] = item["attribute_value"]
            results.append(
                {"component": item["component"], "variable": item["variable"], "attribute_status": status}
            )
        return call_result.SetVariables(set_variable_result=results)

    @on("GetBaseReport")
    async def on_get_base_report(self, request_id: int, report_base: str, **kw: Any) -> Any:
        self.received.append(("GetBaseReport", {"request_id": request_id, "report_base": report_base}))
        asyncio.get_running_loop().call_later(
            0.05, lambda: asyncio.ensure_future(self.send_report(request_id))
        )
        return call_result.GetBaseReport(status="Accepted")

    async def send_report(self, request_id: int) -> None:
        items = [
            {
                "component": {"name": component},
                "variable": {"name": variable},
                "variable_attribute": [
                    {
                        "type": "Actual",
                        "value": value,
                        "mutability": "ReadOnly" if (component, variable) in self.read_only else "ReadWrite",
                    }
                ],
                "variable_characteristics": {"data_type": "string", "supports_monitoring": False},
            }
            for (component, variable), value in sorted(self.variables.items())
        ]
        parts = [items[i :: self.report_parts] for i in range(self.report_parts)]
        for seq_no, part in enumerate(parts):
            await self.call(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=now_iso(),
                    seq_no=seq_no,
                    report_data=part,
                    tbc=seq_no < len(parts) - 1,
                )
            )

    @on("GetLocalListVersion")
    async def on_get_local_list_version(self, **kw: Any) -> Any:
        self.received.append(("GetLocalListVersion", {}))
        return call_result.GetLocalListVersion(version_number=self.local_list_version)

    @on("SendLocalList")
    async def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> Any:
        entries = local_authorization_list or []
        self.received.append(
            ("SendLocalList", {"version": version_number, "type": update_type, "list": entries})
        )
        if update_type == "Full":
            self.local_list = {}
        for entry in entries:
            self.local_list[entry["id_token"]["id_token"]] = entry.get("id_token_info")
        self.local_list_version = version_number
        return call_result.SendLocalList(status="Accepted")

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(charging_station={"model": "T2", "vendor_name": "Test"}, reason="PowerUp")
        )


def meter(wh: float, context: str = "Sample.Periodic", at: str | None = None) -> dict[str, Any]:
    return {
        "timestamp": at or now_iso(),
        "sampledValue": [{"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}],
    }


def tx_event(
    event_type: str,
    transaction_id: str,
    seq_no: int,
    *,
    trigger: str = "Authorized",
    evse: int | None = 1,
    token: str | None = None,
    meter_wh: float | None = None,
    context: str | None = None,
    at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A TransactionEvent payload in wire (camelCase) form."""
    info: dict[str, Any] = {"transactionId": transaction_id}
    for key in ("chargingState", "stoppedReason", "remoteStartId"):
        if key in extra:
            info[key] = extra.pop(key)
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": at or now_iso(),
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": info,
        **extra,
    }
    if evse is not None:
        payload["evse"] = {"id": evse, "connectorId": 1}
    if token is not None:
        payload["idToken"] = {"idToken": token, "type": "ISO14443"}
    if meter_wh is not None:
        default_context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
            event_type, "Sample.Periodic"
        )
        payload["meterValue"] = [meter(meter_wh, context or default_context, at)]
    return payload


@contextlib.asynccontextmanager
async def ocpp201_station(
    base_url: str, station_id: str, password: str | None = None, boot: bool = True
) -> AsyncIterator[Station201]:
    async with connected_peer(base_url, station_id, "ocpp2.0.1", Station201, password, boot) as cp:
        yield cp
