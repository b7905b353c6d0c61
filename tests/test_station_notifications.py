"""The notifications a 1.6 station sends besides sessions: stored as events, answered per spec."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.peers import raw_station

NOTIFICATIONS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("DataTransfer", {"vendorId": "com.example", "messageId": "Hello", "data": "{\"a\":1}"},
     {"status": "UnknownVendorId"}, "data_transfer"),
    ("DiagnosticsStatusNotification", {"status": "Uploaded"}, {}, "diagnostics_status"),
    ("FirmwareStatusNotification", {"status": "InstallationFailed"}, {}, "firmware_status"),
    ("SecurityEventNotification", {"type": "InvalidCentralSystemCertificate",
                                   "timestamp": "2026-11-20T10:00:00Z"}, {}, "security_event"),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": 7}, {}, "log_status"),
    ("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, {"status": "Rejected"},
     "certificate_signing_refused"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "payload", "answer", "kind"), NOTIFICATIONS, ids=[n[0] for n in NOTIFICATIONS]
)
async def test_notification_is_recorded_and_answered(
    api: httpx.AsyncClient,
    ocpp_url: str,
    action: str,
    payload: dict[str, Any],
    answer: dict[str, Any],
    kind: str,
) -> None:
    async with raw_station(ocpp_url, "CP-NOTE") as st:
        assert await st.ok(action, payload) == answer
    [event] = [e for e in (await api.get("/api/stations/CP-NOTE/events")).json() if e["kind"] == kind]
    if action == "DataTransfer":  # kept in our own field names
        assert event["detail"] == {"vendor_id": "com.example", "message_id": "Hello", "data": '{"a":1}'}
    else:
        assert event["detail"] == payload


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("DataTransfer", {"vendorId": "v" * 256}, "PropertyConstraintViolation"),
    ("DataTransfer", {"messageId": "x"}, "OccurenceConstraintViolation"),
    ("DiagnosticsStatusNotification", {"status": "Exploded"}, "PropertyConstraintViolation"),
    ("FirmwareStatusNotification", {}, "OccurenceConstraintViolation"),
    ("FirmwareStatusNotification", {"status": 3}, "TypeConstraintViolation"),
    ("SecurityEventNotification", {"type": "X", "timestamp": "not a time"}, "PropertyConstraintViolation"),
    ("SignCertificate", {"csr": "x", "extra": True}, "FormationViolation"),
]


@pytest.mark.parametrize(("action", "payload", "code"), HOSTILE, ids=[f"{h[0]}-{h[2]}" for h in HOSTILE])
async def test_bad_notification_gets_its_error_and_nothing_is_stored(
    api: httpx.AsyncClient, ocpp_url: str, action: str, payload: dict[str, Any], code: str
) -> None:
    async with raw_station(ocpp_url, "CP-BAD") as st:
        reply = await st.call(action, payload)
        assert reply[0] == 4 and reply[2] == code, reply
        assert (await st.ok("Heartbeat", {}))["currentTime"]
    kinds = {e["kind"] for e in (await api.get("/api/stations/CP-BAD/events")).json()}
    assert kinds <= {"registered", "connected", "boot", "disconnected"}  # no event for the bad message
