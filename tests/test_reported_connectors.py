"""Auto-registered stations: connectors come from what the station reports (2.0.1 inventory,
1.6 connector count and connectorIds); what we had to assume says so, in the API and console."""

from __future__ import annotations

from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action
from ocpp.v201 import call

from stekker.app import Stekker
from stekker.db.models_users import Role
from stekker.domain.reported_connectors import reported_connector
from stekker.services import users
from tests.peers import Station, connected_peer, now_iso, ocpp_station
from tests.peers201 import Station201, ocpp201_station
from tests.web.conftest import PASSWORD, http_login


def _variable(
    component: str, variable: str, value: str, evse: int = 0, connector: int = 0, **characteristics: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "component": {"name": component},
        "variable": {"name": variable},
        "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
    }
    if evse:
        item["component"]["evse"] = {"id": evse, **({"connector_id": connector} if connector else {})}
    if characteristics:
        item["variable_characteristics"] = {"supports_monitoring": False, **characteristics}
    return item


async def _connectors(api: httpx.AsyncClient, station_id: str) -> dict[tuple[int, int], dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}")
    assert response.status_code == 200, response.text
    return {
        (e["evse_number"], c["connector_number"]): c
        for e in response.json()["evses"]
        for c in e["connectors"]
    }


async def _status201(station: Station201, evse: int, connector: int) -> None:
    await station.call(
        call.StatusNotification(
            timestamp=now_iso(), connector_status="Available", evse_id=evse, connector_id=connector
        )
    )


async def test_a_201_dc_station_reports_its_connector_type_and_power(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp201_station(ocpp_url, "DC201") as station:
        await _status201(station, 1, 1)
        placeholder = (await _connectors(api, "DC201"))[(1, 1)]
        assert placeholder["assumed"] is True and placeholder["power_type"] == "AC_3_PHASE"
        # the inventory in two parts: the EVSE's power first, the connector's type after
        power = _variable("EVSE", "Power", "0", evse=1, data_type="decimal", unit="W", max_limit=50000)
        kind = _variable("Connector", "ConnectorType", "cCCS2", evse=1, connector=1, data_type="string")
        for seq_no, part in enumerate([[power], [kind]]):
            await station.call(
                call.NotifyReport(
                    request_id=3, generated_at=now_iso(), seq_no=seq_no, report_data=part, tbc=seq_no == 0
                )
            )
    connector = (await _connectors(api, "DC201"))[(1, 1)]
    assert connector["assumed"] is False
    assert (connector["standard"], connector["format"], connector["power_type"]) == (
        "IEC_62196_T2_COMBO",
        "CABLE",
        "DC",
    )
    assert connector["max_electric_power"] == 50000
    assert connector["status"] == "Available"  # the same connector, filled in


async def test_a_reported_connector_an_operator_entered_is_left_alone(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp201_station(ocpp_url, "OP201") as station:
        await _status201(station, 1, 1)
        patched = await api.patch(
            "/api/stations/OP201/evses/1/connectors/1", json={"standard": "IEC_62196_T2", "format": "CABLE"}
        )
        assert patched.status_code == 200, patched.text
        assert (await _connectors(api, "OP201"))[(1, 1)]["assumed"] is False
        await station.call(
            call.NotifyReport(
                request_id=4,
                generated_at=now_iso(),
                seq_no=0,
                report_data=[_variable("Connector", "ConnectorType", "cCCS2", evse=1, connector=1)],
            )
        )
    connector = (await _connectors(api, "OP201"))[(1, 1)]
    assert connector["standard"] == "IEC_62196_T2" and connector["power_type"] == "AC_3_PHASE"


async def test_a_16_stations_connectors_are_flagged_assumed(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with ocpp_station(ocpp_url, "AS16") as station:
        for connector_id in (1, 2):
            await station.call(
                call16.StatusNotification(
                    connector_id=connector_id, error_code="NoError", status="Available", timestamp=now_iso()
                )
            )
    connectors = await _connectors(api, "AS16")
    assert sorted(connectors) == [(1, 1), (2, 1)]
    assert all(c["assumed"] is True for c in connectors.values())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as web:
        await users.create_user(server.ctx, "test", "ops", PASSWORD, Role.ADMIN)
        assert (await http_login(web, "ops")).status_code == 303
        page = await web.get("/console/stations/AS16")
        assert page.status_code == 200
        assert page.text.count("data-assumed") == 2  # one mark per connector


class _Counted16(Station):
    """A 1.6 station that answers GetConfiguration with how many connectors it has."""

    @on(Action.get_configuration)
    async def on_get_configuration(self, key: list[str] | None = None) -> result16.GetConfiguration:
        return result16.GetConfiguration(
            configuration_key=[{"key": "NumberOfConnectors", "readonly": True, "value": "3"}]
        )


async def test_a_16_stations_connector_count_comes_from_its_configuration(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with connected_peer(ocpp_url, "NC16", "ocpp1.6", _Counted16, None, True):
        response = await api.post("/api/stations/NC16/reports", json={"report_base": "FullInventory"})
        assert response.status_code == 200, response.text
    connectors = await _connectors(api, "NC16")
    assert sorted(connectors) == [(1, 1), (2, 1), (3, 1)]
    assert all(c["assumed"] is True for c in connectors.values())


def test_reported_types_read_as_ocpi_with_limits_from_the_power() -> None:
    ac = reported_connector("sType2", 22_000, 3)
    assert ac is not None
    assert (ac.standard, ac.format, ac.power_type, ac.max_voltage, ac.max_amperage) == (
        "IEC_62196_T2",
        "SOCKET",
        "AC_3_PHASE",
        230,
        32,
    )
    single = reported_connector("cType2", 7_400, 1)
    assert single is not None and (single.power_type, single.max_amperage) == ("AC_1_PHASE", 33)
    chademo = reported_connector("cG105", None, None)
    assert chademo is not None and (chademo.standard, chademo.power_type) == ("CHADEMO", "DC")
    assert chademo.max_electric_power is None
    assert reported_connector("Unknown", 11_000, 3) is None  # stays assumed
