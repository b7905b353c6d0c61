"""OCPI 2.2.1 ChargingProfiles (CPO, receiver): a partner limits, reads and frees its driver's
running session at /ocpi/2.2.1/chargingprofiles/{session_id}, and gets the station's answer
at its own response_url, over loopback.

The partner is a registered eMSP; its results endpoint is the small HTTP server of the Commands
tests. Stations are an `ocpp`-package 1.6 peer that answers the smart charging calls (and
records them), and a raw 2.0.1 socket whose answers the test chooses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

from stekker.app import Stekker
from stekker.ocpi import commands as ocpi_commands
from stekker.services import ocpi_outbox
from stekker.services.roaming_profiles import PROFILE_ID_BASE, PROFILE_STACK_LEVEL
from tests.peers import Station, connected_peer, now_iso, raw_station, typed_on
from tests.test_ocpi_commands import add_site, emsp_endpoint, ocpi_token, partner

BASE = "/ocpi/2.2.1/chargingprofiles"


class SmartStation(Station):
    """A 1.6 charge point that keeps the charging profiles it is given and reports them back as
    its composite schedule; `answers` overrides its status per action."""

    def __init__(self, station_id: str, ws: ClientConnection) -> None:
        super().__init__(station_id, ws)
        self.profiles: dict[int, dict[str, Any]] = {}
        self.answers: dict[str, str] = {}
        self.hold: asyncio.Event | None = None  # set: GetCompositeSchedule waits for it

    @typed_on(Action.set_charging_profile)
    async def on_set_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any]
    ) -> call_result.SetChargingProfile:
        self.received.append(("SetChargingProfile", {"connector_id": connector_id, **cs_charging_profiles}))
        status = self.answers.get("SetChargingProfile", "Accepted")
        if status == "Accepted":
            self.profiles[cs_charging_profiles["charging_profile_id"]] = cs_charging_profiles
        return call_result.SetChargingProfile(status=status)

    @typed_on(Action.clear_charging_profile)
    async def on_clear_profile(self, **kw: Any) -> call_result.ClearChargingProfile:
        self.received.append(("ClearChargingProfile", kw))
        found = self.profiles.pop(kw.get("id", -1), None)
        return call_result.ClearChargingProfile(status="Accepted" if found else "Unknown")

    @typed_on(Action.get_composite_schedule)
    async def on_composite(
        self, connector_id: int, duration: int, **kw: Any
    ) -> call_result.GetCompositeSchedule:
        self.received.append(
            ("GetCompositeSchedule", {"connector_id": connector_id, "duration": duration, **kw})
        )
        if self.hold is not None:
            await self.hold.wait()
        status = self.answers.get("GetCompositeSchedule", "Accepted")
        if status != "Accepted":
            return call_result.GetCompositeSchedule(status=status)
        periods = [{"startPeriod": 0, "limit": 32.0, "numberPhases": 3}]
        for profile in self.profiles.values():
            periods = profile["charging_schedule"]["charging_schedule_period"]
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-11-24T10:00:00Z",
            charging_schedule={"duration": duration, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": p.get("start_period", p.get("startPeriod")), "limit": p["limit"]}
                for p in periods
            ]},
        )  # fmt: skip


def smart_station(ocpp_url: str, station_id: str) -> Any:
    return connected_peer(ocpp_url, station_id, "ocpp1.6", SmartStation)


async def push_token(api: httpx.AsyncClient, headers: dict[str, str], uid: str, party: str = "ABC") -> None:
    response = await api.put(
        f"/ocpi/2.2.1/tokens/NL/{party}/{uid}", json=ocpi_token(uid, party), headers=headers
    )
    assert response.status_code == 200, response.text


async def start(cp: Station, uid: str) -> str:
    started = await cp.call(
        call.StartTransaction(connector_id=1, id_tag=uid, meter_start=0, timestamp=now_iso())
    )
    assert started.id_tag_info["status"] == "Accepted"
    return str(started.transaction_id)


def profile(*limits: float, **extra: Any) -> dict[str, Any]:
    periods = [{"start_period": 900 * n, "limit": limit} for n, limit in enumerate(limits)]
    return {"charging_rate_unit": "A", "charging_profile_period": periods, **extra}


P0 = {"start_period": 0, "limit": 6}


def with_periods(*periods: dict[str, Any]) -> dict[str, Any]:
    return {**profile(16), "charging_profile_period": list(periods)}


def answered(response: httpx.Response, server: Stekker) -> str:
    """The immediate ChargingProfileResponse's result (after checking the envelope and timeout)."""
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status_code"] == 1000, answer
    assert answer["data"]["timeout"] == int(server.settings.call_timeout) + ocpi_commands.RESULT_MARGIN
    return str(answer["data"]["result"])


# --- tests --------------------------------------------------------------------------------------


async def test_set_read_and_clear_a_profile_on_a_16_station(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    headers = await partner(server)
    await add_site(api, "P1")
    await push_token(api, headers, "ABC-CARD-1")
    async with emsp_endpoint() as emsp, smart_station(ocpp_url, "P1") as cp:
        session_id = await start(cp, "ABC-CARD-1")
        url = f"{BASE}/{session_id}"

        body = {"charging_profile": profile(16, 8.5), "response_url": emsp.url("set/1")}
        assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
        assert await emsp.result("set/1") == {"result": "ACCEPTED"}
        [sent] = cp.calls("SetChargingProfile")
        assert sent["connector_id"] == 1 and sent["transaction_id"] == int(session_id)
        assert (sent["charging_profile_purpose"], sent["charging_profile_kind"]) == ("TxProfile", "Relative")
        assert sent["stack_level"] == PROFILE_STACK_LEVEL
        profile_id = sent["charging_profile_id"]
        assert profile_id == PROFILE_ID_BASE + int(session_id)
        assert sent["charging_schedule"] == {
            "charging_rate_unit": "A",
            "charging_schedule_period": [
                {"start_period": 0, "limit": 16},
                {"start_period": 900, "limit": 8.5},
            ],
        }

        # a second PUT replaces the first (same id): absolute this time, with a duration and minimum
        body = {
            "charging_profile": profile(11, start_date_time="2026-11-24T10:00:00Z", duration=3600,
                                        min_charging_rate=6),
            "response_url": emsp.url("set/2"),
        }  # fmt: skip
        assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
        assert (await emsp.result("set/2"))["result"] == "ACCEPTED"
        second = cp.calls("SetChargingProfile")[1]
        assert second["charging_profile_id"] == profile_id and second["charging_profile_kind"] == "Absolute"
        assert second["charging_schedule"]["start_schedule"].startswith("2026-11-24T10:00:00")
        assert (
            second["charging_schedule"]["duration"],
            second["charging_schedule"]["min_charging_rate"],
        ) == (
            3600,
            6,
        )
        assert list(cp.profiles) == [profile_id]

        # the active profile: the station's composite schedule for the session's EVSE
        got = await api.get(url, params={"duration": 900, "response_url": emsp.url("get/1")}, headers=headers)
        assert answered(got, server) == "ACCEPTED"
        active = await emsp.result("get/1")
        assert active == {
            "result": "ACCEPTED",
            "profile": {
                "start_date_time": "2026-11-24T10:00:00Z",
                "charging_profile": {
                    "start_date_time": "2026-11-24T10:00:00Z",
                    "charging_rate_unit": "A",
                    "duration": 900,
                    "charging_profile_period": [{"start_period": 0, "limit": 11}],
                },
            },
        }
        assert cp.calls("GetCompositeSchedule") == [{"connector_id": 1, "duration": 900}]

        # clear: only our profile, by id; a second clear finds nothing
        deleted = await api.delete(url, params={"response_url": emsp.url("del/1")}, headers=headers)
        assert answered(deleted, server) == "ACCEPTED"
        assert await emsp.result("del/1") == {"result": "ACCEPTED"}
        assert cp.calls("ClearChargingProfile") == [{"id": profile_id}] and cp.profiles == {}
        deleted = await api.delete(url, params={"response_url": emsp.url("del/2")}, headers=headers)
        assert answered(deleted, server) == "ACCEPTED"
        assert await emsp.result("del/2") == {"result": "UNKNOWN"}

    rows = await ocpi_outbox.list_items(server.ctx, status=None, partner_id=None, limit=20)
    assert {(r["kind"], r["method"], r["status"]) for r in rows} == {
        ("chargingprofiles.result", "POST", "delivered")
    }
    assert len(rows) == 5
    audit = (await api.get("/api/audit", params={"action": "ocpi.chargingprofile."})).json()
    assert sorted((a["action"], a["result"]) for a in audit) == sorted(
        [("ocpi.chargingprofile.received", "accepted")] * 5
        + [("ocpi.chargingprofile.result", r) for r in ("ACCEPTED",) * 4 + ("UNKNOWN",)]
    )


async def test_sessions_that_are_not_yours_not_known_or_over(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    ours = await partner(server, "ABC")
    theirs = await partner(server, "XYZ")
    await add_site(api, "P2")
    await push_token(api, ours, "ABC-CARD-2")
    async with emsp_endpoint() as emsp, smart_station(ocpp_url, "P2") as cp:
        session_id = await start(cp, "ABC-CARD-2")
        body = {"charging_profile": profile(10), "response_url": emsp.url("x")}

        # another partner's driver: REJECTED (the spec's example), for every method
        assert (
            answered(await api.put(f"{BASE}/{session_id}", json=body, headers=theirs), server) == "REJECTED"
        )
        params: dict[str, Any] = {"duration": 60, "response_url": emsp.url("x")}
        assert (
            answered(await api.get(f"{BASE}/{session_id}", params=params, headers=theirs), server)
            == "REJECTED"
        )
        params = {"response_url": emsp.url("x")}
        assert answered(await api.delete(f"{BASE}/{session_id}", params=params, headers=theirs), server) == (
            "REJECTED"
        )

        for unknown in ("999999", "abc", "0", "99999999999", "-1", "1.0"):
            response = await api.put(f"{BASE}/{unknown}", json=body, headers=ours)
            assert answered(response, server) == "UNKNOWN_SESSION", unknown

        await cp.call(
            call.StopTransaction(meter_stop=10, timestamp=now_iso(), transaction_id=int(session_id))
        )
        assert answered(await api.put(f"{BASE}/{session_id}", json=body, headers=ours), server) == "REJECTED"
        assert cp.calls("SetChargingProfile") == []
    assert emsp.results == {}  # nothing queued for refused requests


async def test_station_refusals_and_offline_are_rejected_results(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    headers = await partner(server)
    await add_site(api, "P3")
    await push_token(api, headers, "ABC-CARD-3")
    async with emsp_endpoint() as emsp:
        async with smart_station(ocpp_url, "P3") as cp:
            session_id = await start(cp, "ABC-CARD-3")
            url = f"{BASE}/{session_id}"
            cp.answers["SetChargingProfile"] = "Rejected"
            body = {"charging_profile": profile(10), "response_url": emsp.url("set/refused")}
            assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
            assert await emsp.result("set/refused") == {"result": "REJECTED"}
            cp.answers["GetCompositeSchedule"] = "Rejected"
            params: dict[str, Any] = {"duration": 60, "response_url": emsp.url("get/refused")}
            assert answered(await api.get(url, params=params, headers=headers), server) == "ACCEPTED"
            assert await emsp.result("get/refused") == {"result": "REJECTED"}

            # one request of a kind at a time per session: a second while the first waits is TOO_OFTEN
            cp.answers.pop("GetCompositeSchedule")
            cp.hold = asyncio.Event()
            params = {"duration": 60, "response_url": emsp.url("get/slow")}
            assert answered(await api.get(url, params=params, headers=headers), server) == "ACCEPTED"
            again: dict[str, Any] = {"duration": 60, "response_url": emsp.url("get/again")}
            assert answered(await api.get(url, params=again, headers=headers), server) == "TOO_OFTEN"
            # another kind is not held up
            body = {"charging_profile": profile(12), "response_url": emsp.url("set/meanwhile")}
            assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
            cp.hold.set()
            assert (await emsp.result("get/slow"))["result"] == "ACCEPTED"
            assert (await emsp.result("set/meanwhile"))["result"] == "REJECTED"  # still refusing sets
            await ocpi_commands.wait_running()
            assert answered(await api.get(url, params=again, headers=headers), server) == "ACCEPTED"
            assert (await emsp.result("get/again"))["result"] == "ACCEPTED"

        # the station is gone (the session still runs on our side): REJECTED, at once
        body = {"charging_profile": profile(10), "response_url": emsp.url("set/offline")}
        assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
        assert await emsp.result("set/offline") == {"result": "REJECTED"}
        params = {"response_url": emsp.url("del/offline")}
        assert answered(await api.delete(url, params=params, headers=headers), server) == "ACCEPTED"
        assert await emsp.result("del/offline") == {"result": "REJECTED"}


async def test_a_profile_on_a_201_station(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    headers = await partner(server)
    await add_site(api, "P4")
    await push_token(api, headers, "ABC-CARD-4")
    async with emsp_endpoint() as emsp, raw_station(ocpp_url, "P4", protocol="ocpp2.0.1") as st:
        await st.ok(
            "TransactionEvent",
            {"eventType": "Started", "timestamp": now_iso(), "triggerReason": "Authorized", "seqNo": 0,
             "transactionInfo": {"transactionId": "tx-p4"}, "evse": {"id": 1, "connectorId": 1},
             "idToken": {"idToken": "ABC-CARD-4", "type": "ISO14443"}},
        )  # fmt: skip
        [session] = (await api.get("/api/sessions", params={"station_id": "P4"})).json()
        url = f"{BASE}/{session['id']}"
        body = {
            "charging_profile": profile(7000, 3000, charging_rate_unit="W"),
            "response_url": emsp.url("s"),
        }
        assert answered(await api.put(url, json=body, headers=headers), server) == "ACCEPTED"
        assert await emsp.result("s") == {"result": "ACCEPTED"}
        [sent] = [f[3] for f in st.server_calls if f[2] == "SetChargingProfile"]
        assert sent["evseId"] == 1
        installed = sent["chargingProfile"]
        assert (installed["transactionId"], installed["chargingProfilePurpose"]) == ("tx-p4", "TxProfile")
        assert installed["chargingSchedule"][0]["chargingRateUnit"] == "W"
        assert [p["limit"] for p in installed["chargingSchedule"][0]["chargingSchedulePeriod"]] == [
            7000,
            3000,
        ]

        st.answers["GetCompositeSchedule"] = {
            "status": "Accepted",
            "schedule": {"evseId": 1, "duration": 300, "scheduleStart": "2026-11-24T12:00:00+01:00",
                         "chargingRateUnit": "W",
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6999.5}]},
        }  # fmt: skip
        params: dict[str, Any] = {"duration": 300, "response_url": emsp.url("g")}
        assert answered(await api.get(url, params=params, headers=headers), server) == "ACCEPTED"
        active = await emsp.result("g")
        assert active["profile"]["start_date_time"] == "2026-11-24T11:00:00Z"
        assert active["profile"]["charging_profile"]["charging_profile_period"] == [
            {"start_period": 0, "limit": 6999.5}
        ]
        # a station without a schedule for the EVSE: UNKNOWN
        st.answers["GetCompositeSchedule"] = {"status": "Accepted"}
        params = {"duration": 300, "response_url": emsp.url("g2")}
        assert answered(await api.get(url, params=params, headers=headers), server) == "ACCEPTED"
        assert await emsp.result("g2") == {"result": "UNKNOWN"}

        st.answers["ClearChargingProfile"] = {"status": "Unknown"}
        assert answered(
            await api.delete(url, params={"response_url": emsp.url("d")}, headers=headers), server
        )
        assert await emsp.result("d") == {"result": "UNKNOWN"}
        [cleared] = [f[3] for f in st.server_calls if f[2] == "ClearChargingProfile"]
        assert cleared == {"chargingProfileId": installed["id"]}


async def test_malformed_and_unauthorized_requests(server: Stekker, api: httpx.AsyncClient) -> None:
    headers = await partner(server)
    url = f"{BASE}/1"
    good = {"charging_profile": profile(16), "response_url": "https://emsp.example/r/1"}
    bad_bodies: list[Any] = [
        {"charging_profile": profile(16)},
        {**good, "response_url": "ftp://emsp.example/x"},
        {**good, "response_url": "not a url"},
        {**good, "response_url": "https://" + "a" * 300 + ".example/"},
        {**good, "charging_profile": profile(16.25)},  # two decimals
        {**good, "charging_profile": profile(-1)},
        {**good, "charging_profile": profile(1e300)},
        {**good, "charging_profile": with_periods({"start_period": 0, "limit": "16"})},
        {**good, "charging_profile": with_periods({"start_period": 0, "limit": True})},
        {**good, "charging_profile": with_periods()},
        {**good, "charging_profile": with_periods({"start_period": 60, "limit": 6})},
        {**good, "charging_profile": with_periods(P0, {"start_period": 0, "limit": 7})},
        {**good, "charging_profile": with_periods(P0, {"start_period": -1, "limit": 7})},
        {**good, "charging_profile": with_periods({"start_period": 0.5, "limit": 6})},
        {**good, "charging_profile": profile(*[6] * 101)},
        {**good, "charging_profile": profile(16, charging_rate_unit="kW")},
        {**good, "charging_profile": profile(16, duration=-5)},
        {**good, "charging_profile": profile(16, duration="1h")},
        {**good, "charging_profile": profile(16, start_date_time="tomorrow")},
        {**good, "charging_profile": profile(16, start_date_time=1700000000)},
        {**good, "charging_profile": profile(16, min_charging_rate=6.55)},
        {**good, "charging_profile": "16 A"},
        [good],
        "text",
        None,
    ]  # fmt: skip
    for body in bad_bodies:
        response = await api.put(url, json=body, headers=headers)
        answer = response.json()
        assert (response.status_code, answer["status_code"]) == (200, 2001), (body, answer)
        assert "data" not in answer
    response = await api.put(
        url, content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)

    params_list: list[dict[str, Any]] = [
        {},
        {"duration": 60},
        {"response_url": "https://emsp.example/r"},
        {"duration": 0, "response_url": "https://emsp.example/r"},
        {"duration": 10**9, "response_url": "https://emsp.example/r"},
        {"duration": "soon", "response_url": "https://emsp.example/r"},
        {"duration": 60, "response_url": "javascript:alert(1)"},
        {"duration": 60, "response_url": "https://emsp.example/" + "x" * 300},
    ]
    for params in params_list:
        response = await api.get(url, params=params, headers=headers)
        assert (response.status_code, response.json()["status_code"]) == (200, 2001), params
    for params in ({}, {"response_url": "mailto:x@example.com"}):  # DELETE
        response = await api.delete(url, params=params, headers=headers)
        assert (response.status_code, response.json()["status_code"]) == (200, 2001), params
    response = await api.put(f"{BASE}/{'9' * 37}", json=good, headers=headers)
    assert (response.status_code, response.json()["status_code"]) == (200, 2001)

    # no token, a wrong one
    for sent in ({}, {"Authorization": "Token bm9wZQ=="}):
        response = await api.put(url, json=good, headers=sent)
        assert (response.status_code, response.json()["status_code"]) == (401, 2000)
        response = await api.get(
            url, params={"duration": 60, "response_url": "https://e.example/r"}, headers=sent
        )
        assert response.status_code == 401


async def test_announced_in_version_details(server: Stekker, api: httpx.AsyncClient) -> None:
    headers = await partner(server)
    details = (await api.get("/ocpi/2.2.1", headers=headers)).json()
    endpoints = {(e["identifier"], e["role"]): e["url"] for e in details["data"]["endpoints"]}
    assert endpoints[("chargingprofiles", "RECEIVER")].endswith("/ocpi/2.2.1/chargingprofiles")
    assert endpoints[("hubclientinfo", "RECEIVER")].endswith("/ocpi/2.2.1/hubclientinfo")
