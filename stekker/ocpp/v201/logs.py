"""Diagnostics and log uploads for OCPP 2.0.1: the request to upload, and the station's upload status."""

from __future__ import annotations

from typing import Any

from stekker.ocpp.connection import Handler
from stekker.ocpp.outbound import Outbound
from stekker.ocpp.v16 import logs as v16_logs


def get_diagnostics(args: dict[str, Any]) -> Outbound:
    """GetLog for either log type (the message is the same as in the 1.6 security extension)."""
    return v16_logs.get_log(args)


HANDLERS: dict[str, Handler] = {
    "LogStatusNotification": v16_logs.log_status,
}
