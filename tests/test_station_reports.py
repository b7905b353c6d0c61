"""A 2.0.1 configuration report arrives in parts (NotifyReport seqNo 0..n): one whose earlier
parts never came reads incomplete and names them; a retransmitted part counts once."""

from __future__ import annotations

from typing import Any

import httpx
from ocpp.v201 import call

from tests.peers import now_iso, raw_station
from tests.peers201 import Station201, ocpp201_station
from tests.test_ocpp201_hostile import error_frame


def _item(component: str, variable: str, value: str) -> dict[str, Any]:
    return {
        "component": {"name": component},
        "variable": {"name": variable},
        "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
    }


async def _part(station: Station201, request_id: int, seq_no: int, tbc: bool) -> None:
    await station.call(
        call.NotifyReport(
            request_id=request_id,
            generated_at=now_iso(),
            seq_no=seq_no,
            report_data=[_item("ChargingStation", f"Part{seq_no}", str(seq_no))],
            tbc=tbc,
        )
    )


async def _reports(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/reports")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_report_whose_first_part_never_came_is_incomplete(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp201_station(ocpp_url, "RP201") as station:
        await _part(station, 7, 1, tbc=True)
        await _part(station, 7, 2, tbc=False)
    [report] = await _reports(api, "RP201")
    assert report["request_id"] == 7
    assert report["finished"] is True and report["complete"] is False
    assert report["missing_parts"] == [0] and report["parts_received"] == [1, 2]
    events = (await api.get("/api/stations/RP201/events")).json()
    [received] = [e for e in events if e["kind"] == "report_received"]
    assert received["detail"]["parts"] == 2 and received["detail"]["missing_parts"] == [0]
    assert received["detail"]["complete"] is False


async def test_the_cli_names_the_missing_parts(cli: Any, ocpp_url: str) -> None:
    async with ocpp201_station(ocpp_url, "CL201") as station:
        await _part(station, 5, 0, tbc=True)
        await _part(station, 5, 2, tbc=False)
        result = await cli("station", "config", "CL201")
        assert result.exit_code == 0, result.output
        assert "incomplete, part(s) 1 never arrived" in result.output
        await _part(station, 5, 1, tbc=True)
        result = await cli("station", "config", "CL201")
        assert "last report (request 5, 3 part(s)): complete" in result.output


async def test_a_retransmitted_part_counts_once(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with ocpp201_station(ocpp_url, "RT201") as station:
        await _part(station, 8, 0, tbc=True)
        await _part(station, 8, 1, tbc=True)
        await _part(station, 8, 1, tbc=True)  # our answer was lost: sent again
        await _part(station, 8, 2, tbc=False)
    [report] = await _reports(api, "RT201")
    assert report["complete"] is True and report["missing_parts"] == []
    assert report["parts_received"] == [0, 1, 2] and report["items"] == 3


async def test_a_missing_part_arriving_late_completes_the_report(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp201_station(ocpp_url, "LT201") as station:
        await _part(station, 9, 1, tbc=False)
        [report] = await _reports(api, "LT201")
        assert report["missing_parts"] == [0]
        await _part(station, 9, 0, tbc=True)
    [report] = await _reports(api, "LT201")
    assert report["complete"] is True


async def test_reports_of_an_unknown_station_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/stations/NOPE/reports")
    assert response.status_code == 404, response.text


async def test_a_part_out_of_range_is_refused_and_nothing_recorded(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with raw_station(ocpp_url, "BIG201", protocol="ocpp2.0.1") as station:
        for n, (request_id, seq_no) in enumerate([(1, 10_000), (1, 2**40), (2**40, 0)]):
            payload = {"requestId": request_id, "generatedAt": now_iso(), "seqNo": seq_no, "tbc": False}
            frame = await error_frame(station, f"big{n}", "NotifyReport", payload)
            assert frame[2] == "PropertyConstraintViolation", frame
            assert "out of range" in frame[3], frame
        # the largest part we take is recorded, with every part before it missing
        assert (
            await station.ok(
                "NotifyReport", {"requestId": 1, "generatedAt": now_iso(), "seqNo": 9_999, "tbc": False}
            )
            == {}
        )
    [report] = await _reports(api, "BIG201")
    assert report["complete"] is False and len(report["missing_parts"]) == 9_999
