"""The OCPI 2.2.1 Commands objects on the wire: the five requests an eMSP sends, our
immediate CommandResponse and the CommandResult we POST to its `response_url` later.

Field rules follow the spec's types (CiString(36) ids, URL as string(255), DateTime); a
value that breaks them is refused with 2001, never cut to fit. Unknown fields are ignored
(later OCPI versions add some).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, model_validator

from stekker.domain.partner_urls import url_problem
from stekker.ocpi.token_objects import CiString36, OcpiDateTime, OcpiToken
from stekker.services.roaming_commands import CommandOutcome, Outcome


class CommandType(StrEnum):
    """OCPI CommandType: what the eMSP asks (the last segment of the URL)."""

    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(StrEnum):
    """OCPI CommandResponseType: our immediate answer (did we take the command?)."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    """OCPI CommandResultType: what the station made of it, sent later."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


_RESULTS: dict[Outcome, CommandResultType] = {
    Outcome.ACCEPTED: CommandResultType.ACCEPTED,
    Outcome.REJECTED: CommandResultType.REJECTED,
    Outcome.OCCUPIED: CommandResultType.EVSE_OCCUPIED,
    Outcome.INOPERATIVE: CommandResultType.EVSE_INOPERATIVE,
    Outcome.FAILED: CommandResultType.FAILED,
    Outcome.NOT_SUPPORTED: CommandResultType.NOT_SUPPORTED,
    Outcome.TIMEOUT: CommandResultType.TIMEOUT,
    Outcome.UNKNOWN_RESERVATION: CommandResultType.UNKNOWN_RESERVATION,
}

_MAX_URL = 255  # OCPI URL: string(255)
_MAX_TEXT = 512  # OCPI DisplayText.text: string(512)


def _http_url(value: str) -> str:
    # where we POST the result later: the rule of every partner URL (the guard checks the
    # address when the result is sent)
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(f"must be an absolute http(s) URL: {problem}")
    return value


Url = Annotated[StrictStr, Field(min_length=1, max_length=_MAX_URL), AfterValidator(_http_url)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore")

    response_url: Url


class StartSession(_Command):
    """Start charging for the token at a location, optionally on one EVSE and connector."""

    token: OcpiToken
    location_id: CiString36
    evse_uid: CiString36 | None = None
    connector_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> StartSession:
        if self.connector_id is not None and self.evse_uid is None:
            raise ValueError("connector_id needs evse_uid")
        return self


class StopSession(_Command):
    """Stop a running session (its OCPI Session.id)."""

    session_id: CiString36


class UnlockConnector(_Command):
    """Release the cable stuck in a connector."""

    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36


class ReserveNow(_Command):
    """Hold an EVSE (or any EVSE of the location) for the token until `expiry_date`."""

    token: OcpiToken
    expiry_date: OcpiDateTime
    reservation_id: CiString36
    location_id: CiString36
    evse_uid: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class CancelReservation(_Command):
    """Cancel a reservation made with RESERVE_NOW (the eMSP's reservation_id)."""

    reservation_id: CiString36


REQUESTS: dict[CommandType, type[_Command]] = {
    CommandType.CANCEL_RESERVATION: CancelReservation,
    CommandType.RESERVE_NOW: ReserveNow,
    CommandType.START_SESSION: StartSession,
    CommandType.STOP_SESSION: StopSession,
    CommandType.UNLOCK_CONNECTOR: UnlockConnector,
}


def _display_text(message: str) -> list[dict[str, str]]:
    return [{"language": "en", "text": message[:_MAX_TEXT]}]


def command_response(result: CommandResponseType, timeout: int, message: str | None = None) -> dict[str, Any]:
    """The CommandResponse object (the `data` of our answer to the POST)."""
    body: dict[str, Any] = {"result": result.value, "timeout": timeout}
    if message:
        body["message"] = _display_text(message)
    return body


def command_result(outcome: CommandOutcome) -> dict[str, Any]:
    """The CommandResult object we POST to the eMSP's response_url."""
    return {"result": _RESULTS[outcome.outcome].value, "message": _display_text(outcome.detail)}
