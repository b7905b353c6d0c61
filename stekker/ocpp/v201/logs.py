"""Diagnostics and log uploads for OCPP 2.01: the request to upload, and the station's upload status."""

from __future__ import annotations

from typing import Any

from stekker.ocpp.common import recorder
from stekker.ocpp.connection import Handler
from stekker.ocpp.outbound import Outbound
from stekker.services.ports import CommandNotSupported


def get_diagnostics(args: dict[str, Any]) -> Outbound:
    raise CommandNotSupported("diagnostics uploads are not available yet")


HANDLERS: dict[str, Handler] = {
    "LogStatusNotification": recorder("log_status"),
}
