"""OCPP-J framing: message types, error codes per version, and the errors handlers raise."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"
OCPP21 = "ocpp2.1"


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5  # 2.1: an error about a CALLRESULT; never answered
    SEND = 6  # 2.1: a message that expects no reply (e.g. NotifyPeriodicEventStream)


class ErrorCode(StrEnum):
    """CALLERROR codes, in their neutral meaning; `wire()` spells them per version."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"

    def wire(self, protocol: str) -> str:
        """OCPP 1.6 spells two codes differently and has no MessageTypeNotSupported."""
        if protocol == OCPP16:
            return {
                ErrorCode.FORMAT_VIOLATION: "FormationViolation",
                ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
                ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "FormationViolation",
            }.get(self, self.value)
        return self.value


class OcppError(Exception):
    """Raised anywhere in inbound handling to answer the station with a CALLERROR."""

    def __init__(self, code: ErrorCode, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details or {}


# The id we answer with when a frame is so broken that its own id cannot be read
# (the 2.0.1 rule; 1.6 is silent, and a reply beats silence for the station's log).
UNREADABLE_ID = "-1"
