"""Hostile and broken OCPP 2.0.1 stations against the real gateway, on SQLite and PostgreSQL.

Every test checks what a station on "ocpp2.0.1" sees: the exact CALLERROR frame
[4, id, code, description, details] with the 2.0.1 spellings (FormatViolation,
OccurrenceConstraintViolation, MessageTypeNotSupported), the sessions a user reads through
the API afterwards, and that the connection still works.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from stekker.app import Stekker
from stekker.ocpp.protocol import OcppError
from stekker.ocpp.schemas import validate
from tests.observe import sessions_of
from tests.peers import REPLY_TIMEOUT, RawStation, now_iso, raw_station
from tests.peers201 import tx_event
from tests.test_gateway_hostile import assert_usable, database_unreachable, error_for

P201 = "ocpp2.0.1"
T = "2026-03-01T12:00:00Z"


async def error_frame(station: RawStation, msg_id: str, action: str, payload: Any) -> list[Any]:
    """Send one CALL; the answer must be a well-formed CALLERROR for that very id."""
    frame = await error_for(station, json.dumps([2, msg_id, action, payload]))
    assert frame[1] == msg_id, frame
    assert frame[3], frame  # a description the station's log can show
    return frame


async def event_kinds(api: httpx.AsyncClient, station_id: str) -> list[str]:
    response = await api.get(f"/api/stations/{station_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e["kind"] for e in response.json()]


# ---- framing ------------------------------------------------------------------------------


async def test_invalid_json_is_format_violation_with_id_minus_1(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "HJ1", protocol=P201) as station:
        for text in ["hello", '[2, "x"', "", "[2, 'single', 'Heartbeat', {}]", '[2, "m", "Heartbeat", {}']:
            frame = await error_for(station, text)
            assert frame == [4, "-1", "FormatViolation", "frame is not valid JSON", {}], (text, frame)
            await assert_usable(station)


WRONG_SHAPES = [
    ('"hello"', "-1"),  # valid JSON, not an array
    ("{}", "-1"),
    ('{"0": 2, "1": "id", "2": "Heartbeat", "3": {}}', "-1"),
    ("[2]", "-1"),
    ("[]", "-1"),
    ("null", "-1"),
    ('["2", "id", "Heartbeat", {}]', "id"),  # the type as a string
    ('[2.0, "fl", "Heartbeat", {}]', "fl"),  # the type as a float
    ('[2, "id3", "Heartbeat"]', "id3"),
    ('[2, "id5", "Heartbeat", {}, {}]', "id5"),
    ('[2, 5, "Heartbeat", {}]', "-1"),
    ('[2, null, "Heartbeat", {}]', "-1"),
    ('[2, "act", 7, {}]', "act"),
    ('[2, "a", "Heartbeat", []]', "a"),
    ('[2, "s", "Heartbeat", "payload"]', "s"),
    ('[2, "n", "Heartbeat", null]', "n"),
    (json.dumps([2, "x" * 36, "Heartbeat"]), "x" * 36),  # 2.0.1's longest messageId is echoed
    (json.dumps([2, "x" * 37, "Heartbeat"]), "-1"),  # a longer one is not
]


async def test_wrong_frame_shapes_are_format_violation(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "HJ2", protocol=P201) as station:
        for text, expected_id in WRONG_SHAPES:
            frame = await error_for(station, text)
            assert frame[1:3] == [expected_id, "FormatViolation"], (text, frame)
            assert frame[4] == {}, frame
            await assert_usable(station)


async def test_message_types_2_0_1_lacks_are_message_type_not_supported(ocpp_url: str) -> None:
    """2.0.1 has the code 1.6 lacks; 5 (CALLRESULTERROR) and 6 (SEND) only exist from 2.1 on."""
    async with raw_station(ocpp_url, "HJ3", protocol=P201) as station:
        for kind in (7, 0, 5, 6, -1):
            frame = await error_for(station, json.dumps([kind, f"mt{kind}", "Heartbeat", {}]))
            assert frame == [4, f"mt{kind}", "MessageTypeNotSupported", f"unknown message type {kind}", {}]
            await assert_usable(station)


async def test_stray_replies_get_no_answer(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "HJ4", protocol=P201) as station:
        await station.ws.send(json.dumps([3, "never-asked", {"status": "Accepted"}]))
        await station.ws.send(json.dumps([4, "never-asked", "GenericError", "", {}]))
        await assert_usable(station)  # the first frame back is the Heartbeat's answer
        assert station.replies.empty()


# ---- schema violations --------------------------------------------------------------------

STARTED = tx_event("Started", "tx-h1", 0, token="CARD-H", meter_wh=1000, at=T)

# (what changes in a valid Started event, the code, the details the station gets)
TX_VIOLATIONS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    (
        "no transactionInfo",
        {"transactionInfo": None},
        "OccurrenceConstraintViolation",
        {"field": "payload", "rule": "required"},
    ),
    (
        "no transactionId",
        {"transactionInfo": {"chargingState": "Charging"}},
        "OccurrenceConstraintViolation",
        {"field": "transactionInfo", "rule": "required"},
    ),
    ("seqNo as string", {"seqNo": "0"}, "TypeConstraintViolation", {"field": "seqNo", "rule": "type"}),
    ("seqNo as float", {"seqNo": 1.5}, "TypeConstraintViolation", {"field": "seqNo", "rule": "type"}),
    (
        "eventType Paused",
        {"eventType": "Paused"},
        "PropertyConstraintViolation",
        {"field": "eventType", "rule": "enum"},
    ),
    (
        "triggerReason lowercase",
        {"triggerReason": "authorized"},
        "PropertyConstraintViolation",
        {"field": "triggerReason", "rule": "enum"},
    ),
    (
        "timestamp not a date",
        {"timestamp": "yesterday"},
        "PropertyConstraintViolation",
        {"field": "timestamp", "rule": "format"},
    ),
    (
        "extra root property",
        {"bonus": True},
        "FormatViolation",
        {"field": "payload", "rule": "additionalProperties"},
    ),
    (
        "extra transactionInfo property",
        {"transactionInfo": {"transactionId": "tx-h1", "colour": "blue"}},
        "FormatViolation",
        {"field": "transactionInfo", "rule": "additionalProperties"},
    ),
    (
        "extra idToken property",
        {"idToken": {"idToken": "CARD-H", "type": "ISO14443", "pin": "1234"}},
        "FormatViolation",
        {"field": "idToken", "rule": "additionalProperties"},
    ),
    (
        "transactionId of 37",
        {"transactionInfo": {"transactionId": "T" * 37}},
        "PropertyConstraintViolation",
        {"field": "transactionInfo.transactionId", "rule": "maxLength"},
    ),
    (
        "idToken of 37",
        {"idToken": {"idToken": "C" * 37, "type": "ISO14443"}},
        "PropertyConstraintViolation",
        {"field": "idToken.idToken", "rule": "maxLength"},
    ),
    (
        "idToken type of 1.6",
        {"idToken": {"idToken": "CARD-H", "type": "RFID"}},
        "PropertyConstraintViolation",
        {"field": "idToken.type", "rule": "enum"},
    ),
    (
        "empty meterValue",
        {"meterValue": []},
        "OccurrenceConstraintViolation",
        {"field": "meterValue", "rule": "minItems"},
    ),
]


async def test_bad_transaction_events_get_their_code_and_store_nothing(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-H"})
    async with raw_station(ocpp_url, "HS1", protocol=P201) as station:
        for n, (label, changes, code, details) in enumerate(TX_VIOLATIONS):
            payload = {k: v for k, v in {**STARTED, **changes}.items() if v is not None}
            frame = await error_frame(station, f"bad{n}", "TransactionEvent", payload)
            assert frame[2] == code, (label, frame)
            assert frame[3].startswith("TransactionEvent: "), (label, frame)
            assert frame[4] == details, (label, frame)
            await assert_usable(station)
            assert await sessions_of(api, "HS1") == [], label
        # the same event without the damage is stored: the checks above could see a session
        answer = await station.ok("TransactionEvent", STARTED)
        assert answer["idTokenInfo"]["status"] == "Accepted"
    [session] = await sessions_of(api, "HS1")
    assert session["transaction_id"] == "tx-h1"


async def test_lengths_at_the_schema_limit_are_accepted(ocpp_url: str, api: httpx.AsyncClient) -> None:
    """36 characters is 2.0.1's limit for transactionId and idToken (37 is refused, above):
    such an event is stored whole, and its (unknown) token is judged, not refused as too long."""
    tx_id, uid = "T" * 36, "C" * 36
    async with raw_station(ocpp_url, "HS2", protocol=P201) as station:
        answer = await station.ok("Authorize", {"idToken": {"idToken": uid, "type": "ISO14443"}})
        assert answer == {"idTokenInfo": {"status": "Unknown"}}
        frame = await error_frame(
            station, "long-auth", "Authorize", {"idToken": {"idToken": uid + "C", "type": "ISO14443"}}
        )
        assert frame[2:] == [
            "PropertyConstraintViolation",
            frame[3],
            {"field": "idToken.idToken", "rule": "maxLength"},
        ]
        answer = await station.ok("TransactionEvent", tx_event("Started", tx_id, 0, token=uid, at=T))
        assert answer == {"idTokenInfo": {"status": "Unknown"}}
    [session] = await sessions_of(api, "HS2")
    assert (session["transaction_id"], session["token_uid"]) == (tx_id, uid)


async def test_a_2_0_1_token_of_36_characters_can_be_registered(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    uid = "C" * 36
    response = await api.put("/api/tokens", json={"uid": uid})
    assert response.status_code in (200, 201), response.text
    async with raw_station(ocpp_url, "HS2b", protocol=P201) as station:
        answer = await station.ok("Authorize", {"idToken": {"idToken": uid, "type": "ISO14443"}})
        assert answer["idTokenInfo"]["status"] == "Accepted"


async def test_other_messages_get_2_0_1_codes(ocpp_url: str, api: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
        (
            "Heartbeat",
            {"unexpected": 1},
            "FormatViolation",
            {"field": "payload", "rule": "additionalProperties"},
        ),
        (
            "BootNotification",
            {"reason": "PowerUp"},
            "OccurrenceConstraintViolation",
            {"field": "payload", "rule": "required"},
        ),
        (
            "BootNotification",
            {"chargePointVendor": "Raw", "chargePointModel": "R1"},  # 1.6's boot
            "OccurrenceConstraintViolation",
            {"field": "payload", "rule": "required"},
        ),
        (
            "BootNotification",
            {**BOOTS["ocpp2.0.1"], "chargePointVendor": "Raw"},
            "FormatViolation",
            {"field": "payload", "rule": "additionalProperties"},
        ),
        (
            "StatusNotification",
            {"timestamp": T, "connectorStatus": "Available", "evseId": "1", "connectorId": 1},
            "TypeConstraintViolation",
            {"field": "evseId", "rule": "type"},
        ),
        (
            "StatusNotification",
            {"timestamp": T, "connectorStatus": "Charging", "evseId": 1, "connectorId": 1},
            "PropertyConstraintViolation",
            {"field": "connectorStatus", "rule": "enum"},
        ),
        (
            "MeterValues",
            {"evseId": 1, "meterValue": []},
            "OccurrenceConstraintViolation",
            {"field": "meterValue", "rule": "minItems"},
        ),
        (
            "Authorize",
            {"idToken": {"idToken": 12345, "type": "ISO14443"}},
            "TypeConstraintViolation",
            {"field": "idToken.idToken", "rule": "type"},
        ),
    ]
    async with raw_station(ocpp_url, "HS3", protocol=P201) as station:
        for n, (action, payload, code, details) in enumerate(cases):
            frame = await error_frame(station, f"o{n}", action, payload)
            assert (frame[2], frame[4]) == (code, details), (action, payload, frame)
            assert frame[3].startswith(f"{action}: "), frame
            await assert_usable(station)
        # customData is the one place 2.0.1 allows properties it does not define
        assert "currentTime" in await station.ok(
            "Heartbeat", {"customData": {"vendorId": "com.example", "anything": [1, 2]}}
        )
    body = (await api.get("/api/stations/HS3")).json()
    assert body["vendor"] == "Raw" and body["model"] == "R2"  # the bad boots changed nothing
    assert body["evses"] == []  # no connector status was stored


async def test_unknown_and_wrong_direction_actions(ocpp_url: str) -> None:
    cases = [
        ("FooBar", "NotImplemented", "unknown action 'FooBar'"),
        ("heartbeat", "NotImplemented", "unknown action 'heartbeat'"),
        ("", "NotImplemented", "unknown action ''"),
        ("StartTransaction", "NotImplemented", "unknown action 'StartTransaction'"),  # 1.6 only
        ("StopTransaction", "NotImplemented", "unknown action 'StopTransaction'"),
        (
            "RequestStartTransaction",
            "NotSupported",
            "RequestStartTransaction is known but not supported from a station here",
        ),
        ("GetVariables", "NotSupported", "GetVariables is known but not supported from a station here"),
        ("Reset", "NotSupported", "Reset is known but not supported from a station here"),
    ]
    async with raw_station(ocpp_url, "HA1", protocol=P201) as station:
        for action, code, description in cases:
            frame = await error_frame(station, "act1", action, {})
            assert frame == [4, "act1", code, description, {}], frame
            await assert_usable(station)


# ---- schema-valid but unstorable ----------------------------------------------------------

ANCIENT = "0001-01-01T00:00:00+14:00"  # a valid date-time that lies before year 1 in UTC

UNSTORABLE: list[tuple[str, str, dict[str, Any]]] = [
    ("seqNo over 2**63", "TransactionEvent", tx_event("Started", "big-seq", 2**63 + 5, token="CARD-U", at=T)),
    (
        "timestamp before year 1",
        "TransactionEvent",
        tx_event("Started", "old-tx", 0, token="CARD-U", at=ANCIENT),
    ),
    (
        "meter timestamp before year 1",
        "TransactionEvent",
        tx_event(
            "Started",
            "old-mv",
            0,
            token="CARD-U",
            at=T,
            meterValue=[{"timestamp": ANCIENT, "sampledValue": [{"value": 1.0}]}],
        ),
    ),
    (
        "status timestamp before year 1",
        "StatusNotification",
        {"timestamp": ANCIENT, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
]


@pytest.mark.parametrize(("label", "action", "payload"), UNSTORABLE, ids=[u[0] for u in UNSTORABLE])
async def test_schema_valid_but_unstorable_is_property_constraint_violation(
    ocpp_url: str, api: httpx.AsyncClient, label: str, action: str, payload: dict[str, Any]
) -> None:
    """InternalError would make the station retry the message forever and block its queue."""
    validate(P201, action, copy.deepcopy(payload))  # the schema has nothing against it
    await api.put("/api/tokens", json={"uid": "CARD-U"})
    async with raw_station(ocpp_url, "HU1", protocol=P201) as station:
        frame = await error_frame(station, "u1", action, payload)
        assert frame[:3] == [4, "u1", "PropertyConstraintViolation"]
        assert "out of range" in frame[3]
        await assert_usable(station)
        assert await sessions_of(api, "HU1") == []
        station_body = (await api.get("/api/stations/HU1")).json()
        assert [c["status"] for e in station_body["evses"] for c in e["connectors"]] == []
        # the station is not stuck: its next, sane, transaction is stored
        await station.ok("TransactionEvent", tx_event("Started", "sane", 0, token="CARD-U", meter_wh=5))
    assert [s["transaction_id"] for s in await sessions_of(api, "HU1")] == ["sane"]


async def test_seqno_beyond_64_bits_is_property_constraint_violation(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    """A seqNo of 2**64 or more is as unstorable as 2**63 + 5. orjson reads such integers as
    floats (2**64 and 2**64 + 1 both become 1.8446744073709552e19, and the 2.0.1 schema's
    "integer" accepts an integral float), so on SQLite the event is stored with a rounded
    seqNo and a later, different event (2**64 + 1) is taken for a retransmission of it."""
    await api.put("/api/tokens", json={"uid": "CARD-U"})
    async with raw_station(ocpp_url, "HU3", protocol=P201) as station:
        for n, seq_no in enumerate([2**64, 2**64 + 1]):
            payload = tx_event("Updated", "huge-seq", seq_no, token="CARD-U", meter_wh=1000 * (n + 1), at=T)
            frame = await station.call("TransactionEvent", payload, msg_id=f"h{n}")
            assert frame[:3] == [4, f"h{n}", "PropertyConstraintViolation"], frame
            assert frame[3].startswith("seqNo") and "out of range" in frame[3], frame
        await assert_usable(station)
    assert await sessions_of(api, "HU3") == []


async def test_nul_in_transaction_id(ocpp_url: str, api: httpx.AsyncClient, database_url: str) -> None:
    """JSON allows U+0000 in a string and the schema has only a maxLength, so the event is
    valid. SQLite stores it as sent; PostgreSQL text cannot hold NUL, so there the station
    must get PropertyConstraintViolation (a retry can never succeed), never InternalError."""
    payload = tx_event("Started", "nul\u0000id", 0, token="CARD-N", at=T)
    validate(P201, "TransactionEvent", copy.deepcopy(payload))
    await api.put("/api/tokens", json={"uid": "CARD-N"})
    async with raw_station(ocpp_url, "HU2", protocol=P201) as station:
        frame = await station.call("TransactionEvent", payload)
        if database_url.startswith("postgresql"):
            assert frame[0] == 4 and frame[2] == "PropertyConstraintViolation", frame
            assert await sessions_of(api, "HU2") == []
        else:
            assert frame[0] == 3 and frame[2]["idTokenInfo"]["status"] == "Accepted", frame
            [session] = await sessions_of(api, "HU2")
            assert session["transaction_id"] == "nul\u0000id"
        await assert_usable(station)


# ---- database down ------------------------------------------------------------------------


async def test_database_down_during_transaction_event_is_internal_error(
    ocpp_url: str, api: httpx.AsyncClient, server: Stekker
) -> None:
    assert (await api.put("/api/tokens", json={"uid": "CARD-DB"})).status_code == 200
    started = json.dumps([2, "te-1", "TransactionEvent", tx_event("Started", "db-1", 0, token="CARD-DB")])
    async with raw_station(ocpp_url, "HD1", protocol=P201) as station:
        async with database_unreachable(server):
            frame = await error_for(station, started)
            assert frame == [
                4,
                "te-1",
                "InternalError",
                "the central system could not store this; retry later",
                {},
            ]
            status = {"timestamp": now_iso(), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
            frame = await error_for(station, json.dumps([2, "st-1", "StatusNotification", status]))
            assert frame[1:3] == ["st-1", "InternalError"]
            await assert_usable(station)  # Heartbeat needs no database
        assert await sessions_of(api, "HD1") == []  # nothing half-stored once it is back
        assert (await api.get("/api/stations/HD1")).json()["evses"] == []
        retry = await station.send_text(started)  # the station retries the same message
        assert retry[0] == 3 and retry[1] == "te-1", retry
        assert retry[2]["idTokenInfo"]["status"] == "Accepted"
        again = await station.send_text(started)  # and a retransmission changes nothing
        assert again == retry
    [session] = await sessions_of(api, "HD1")
    assert (session["transaction_id"], session["status"], session["token_uid"]) == (
        "db-1",
        "active",
        "CARD-DB",
    )


# ---- every station message gets a schema-valid answer -------------------------------------

SCHEDULE = {
    "id": 1,
    "chargingRateUnit": "W",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
}
PROFILE = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": [SCHEDULE],
}

# action, its minimal valid payload (only what the official schema requires), and the event
# kind it leaves in the station's timeline (None: it is kept elsewhere, not as an event)
MINIMAL: list[tuple[str, dict[str, Any], str | None]] = [
    ("BootNotification", {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}, "boot"),
    ("Heartbeat", {}, None),
    (
        "StatusNotification",
        {"timestamp": T, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
        None,
    ),
    ("Authorize", {"idToken": {"idToken": "MIN-CARD", "type": "ISO14443"}}, None),
    (
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": T,
            "triggerReason": "CablePluggedIn",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "min-1"},
        },
        None,
    ),
    ("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T, "sampledValue": [{"value": 1.0}]}]}, None),
    ("NotifyReport", {"requestId": 1, "generatedAt": T, "seqNo": 0}, "report_received"),
    (
        "NotifyEvent",
        {
            "generatedAt": T,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": T,
                    "trigger": "Alerting",
                    "actualValue": "x",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "C"},
                    "variable": {"name": "V"},
                }
            ],
        },
        "notify_event",
    ),
    ("NotifyMonitoringReport", {"requestId": 1, "seqNo": 0, "generatedAt": T}, "monitoring_report"),
    ("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": T}, "security_event"),
    ("LogStatusNotification", {"status": "Idle"}, "log_status"),
    ("FirmwareStatusNotification", {"status": "Idle"}, "firmware_status"),
    ("NotifyChargingLimit", {"chargingLimit": {"chargingLimitSource": "EMS"}}, "charging_limit"),
    ("ClearedChargingLimit", {"chargingLimitSource": "EMS"}, "charging_limit_cleared"),
    (
        "ReportChargingProfiles",
        {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [PROFILE]},
        "charging_profiles_report",
    ),
    (
        "NotifyEVChargingNeeds",
        {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC"}},
        "ev_charging_needs",
    ),
    (
        "NotifyEVChargingSchedule",
        {"timeBase": T, "evseId": 1, "chargingSchedule": SCHEDULE},
        "ev_charging_schedule",
    ),
    (
        "ReservationStatusUpdate",
        {"reservationId": 1, "reservationUpdateStatus": "Expired"},
        "reservation_status",
    ),
    ("NotifyDisplayMessages", {"requestId": 1}, "display_messages"),
    (
        "NotifyCustomerInformation",
        {"data": "d", "seqNo": 0, "generatedAt": T, "requestId": 1},
        "customer_information",
    ),
    ("DataTransfer", {"vendorId": "com.example"}, "data_transfer"),
    ("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, "certificate_signing_refused"),
    (
        "Get15118EVCertificate",
        {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "AAAA"},
        "ev_certificate_refused",
    ),
    (
        "GetCertificateStatus",
        {
            "ocspRequestData": {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": "a",
                "issuerKeyHash": "b",
                "serialNumber": "1",
                "responderURL": "http://ocsp.example",
            }
        },
        "certificate_status_refused",
    ),
    ("PublishFirmwareStatusNotification", {"status": "Idle"}, "publish_firmware_status"),
]


def test_minimal_payloads_cover_every_station_message() -> None:
    """The table above is what the official 2.0.1 schemas require, and nothing more."""
    for action, payload, _ in MINIMAL:
        validate(P201, action, copy.deepcopy(payload))  # (the validator fills in defaults)
        for key in payload:  # every key is required: dropping one breaks the schema
            with pytest.raises(OcppError) as info:
                validate(P201, action, copy.deepcopy({k: v for k, v in payload.items() if k != key}))
            assert info.value.details["rule"] == "required", (action, key)


async def test_every_station_message_gets_a_schema_valid_answer(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    problems: dict[str, Any] = {}
    async with raw_station(ocpp_url, "HM1", protocol=P201) as station:
        for n, (action, payload, _) in enumerate(MINIMAL):
            frame = await station.call(action, payload, msg_id=f"min{n}")
            if frame[:2] != [3, f"min{n}"] or len(frame) != 3:
                problems[action] = frame
                continue
            try:
                validate(P201, action, frame[2], response=True)
            except OcppError as exc:
                problems[action] = (frame, exc.description)
        await assert_usable(station)
    assert problems == {}
    kinds = await event_kinds(api, "HM1")
    missing = [action for action, _, kind in MINIMAL if kind is not None and kind not in kinds]
    assert missing == [], kinds
    assert kinds.count("boot") == 2  # raw_station's own boot, and the minimal one
    [session] = await sessions_of(api, "HM1")  # the minimal TransactionEvent opened a session
    assert session["transaction_id"] == "min-1"


async def test_notification_details_are_kept(ocpp_url: str, api: httpx.AsyncClient) -> None:
    event = {"type": "FirmwareUpdated", "timestamp": T, "techInfo": "from 1.2 to 1.3"}
    async with raw_station(ocpp_url, "HM2", protocol=P201) as station:
        assert await station.ok("SecurityEventNotification", event) == {}
        answer = await station.ok("DataTransfer", {"vendorId": "com.example", "messageId": "Hi", "data": [1]})
        assert answer == {"status": "UnknownVendorId"}
    body = (await api.get("/api/stations/HM2/events")).json()
    [security] = [e["detail"] for e in body if e["kind"] == "security_event"]
    assert security == event
    [vendor] = [e["detail"] for e in body if e["kind"] == "data_transfer"]
    assert vendor == {"vendor_id": "com.example", "message_id": "Hi", "data": [1]}


async def test_notification_is_kept_as_sent_without_schema_defaults(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    sent = {"requestId": 7, "seqNo": 0, "generatedAt": T, "data": "customer 42: no data"}
    async with raw_station(ocpp_url, "HM3", protocol=P201) as station:
        assert await station.ok("NotifyCustomerInformation", dict(sent)) == {}
    body = (await api.get("/api/stations/HM3/events")).json()
    [detail] = [e["detail"] for e in body if e["kind"] == "customer_information"]
    assert detail == sent


# ---- handshake ----------------------------------------------------------------------------

BOOTS = {
    "ocpp1.6": {"chargePointVendor": "Raw", "chargePointModel": "R1"},
    "ocpp2.0.1": {"chargingStation": {"vendorName": "Raw", "model": "R2"}, "reason": "PowerUp"},
}


async def test_handshake_offering_2_0_1_first_gets_2_0_1(ocpp_url: str, api: httpx.AsyncClient) -> None:
    async with connect(f"{ocpp_url}/HH1", subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "ocpp2.0.1"
        station = RawStation(ws)
        try:
            assert (await station.ok("BootNotification", BOOTS["ocpp2.0.1"]))["status"] == "Accepted"
            await assert_usable(station)
        finally:
            await station.close()
    assert (await api.get("/api/stations/HH1")).json()["ocpp_version"] == "ocpp2.0.1"


async def test_handshake_offering_1_6_first(ocpp_url: str, api: httpx.AsyncClient) -> None:
    """The gateway picks by its own preference (2.1, 2.0.1, 1.6), not the station's order:
    offered ["ocpp1.6", "ocpp2.0.1"] it answers "ocpp2.0.1". Whatever it picks, the station
    must then be served in that version, and only in that version."""
    offer = ["ocpp1.6", "ocpp2.0.1"]
    async with connect(f"{ocpp_url}/HH2", subprotocols=offer) as ws:  # type: ignore[arg-type]
        picked = ws.subprotocol
        assert picked in offer
        other = next(p for p in offer if p != picked)
        station = RawStation(ws)
        try:
            assert (await station.ok("BootNotification", BOOTS[picked]))["status"] == "Accepted"
            frame = await error_for(station, json.dumps([2, "wrong", "BootNotification", BOOTS[other]]))
            assert frame[1] == "wrong"  # the other version's boot is refused by this one's schema
            await assert_usable(station)
        finally:
            await station.close()
    assert (await api.get("/api/stations/HH2")).json()["ocpp_version"] == picked
    assert picked == "ocpp2.0.1"  # documents the current choice


async def test_many_bad_frames_in_a_burst_keep_order(ocpp_url: str) -> None:
    """Garbage and good CALLs interleaved without waiting: every one is answered, in order."""
    texts = []
    expected = []
    for n in range(20):
        texts.append(json.dumps([2, f"hb{n}", "Heartbeat", {}]))
        expected.append((3, f"hb{n}"))
        texts.append(json.dumps([2, f"bad{n}", "TransactionEvent", {"seqNo": "x"}]))
        expected.append((4, f"bad{n}"))
    async with raw_station(ocpp_url, "HB1", protocol=P201) as station:
        for text in texts:
            await station.ws.send(text)
        got = []
        for _ in expected:
            frame = await asyncio.wait_for(station.replies.get(), REPLY_TIMEOUT)
            got.append((frame[0], frame[1]))
        assert got == expected
        await assert_usable(station)
