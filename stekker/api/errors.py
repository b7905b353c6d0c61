"""Service exceptions → HTTP answers that say what is wrong (never a bare 500)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.requests import ClientDisconnect

from stekker.api.multipart import MultipartError
from stekker.cluster.redis_link import ClusterMessagingUnavailable
from stekker.services import errors as service_errors
from stekker.services.device_model import UnknownStation
from stekker.services.diagnostics import (
    DiagnosticsNotFound,
    EmptySelection,
    UploadAlreadyReceived,
    UploadExpired,
    UploadInProgress,
    UploadNotFound,
)
from stekker.services.functions import InvalidArguments, UnknownFunction
from stekker.services.helpdesk import BadQuery
from stekker.services.inventory import (
    InvalidInventory,
    InvalidSecurityProfile,
    InventoryConflict,
    InventoryNotFound,
    StationExists,
)
from stekker.services.jobs import JobFinished, JobNotFound, NothingSelected
from stekker.services.ports import (
    ClusterUnavailable,
    CommandNotSupported,
    CommandTimeout,
    OutcomeUnknown,
    StationCallError,
    StationOffline,
)
from stekker.services.remote import NotFound, RemoteRefused
from stekker.services.selection import UnknownGroup
from stekker.services.stop_release import FlowAlreadyRunning
from stekker.services.templates import InvalidTemplate, TemplateExists, TemplateNotFound
from stekker.services.tokens import TokenError
from stekker.services.users import NotPermitted, UserConflict, UserNotFound
from stekker.storage import FileTooLarge

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (UnknownStation, 404, "not_found"),
    (StationExists, 409, "conflict"),
    (RemoteRefused, 409, "refused"),
    (StationOffline, 409, "station_offline"),
    # Redis away in a cluster: the station may be fine, we cannot reach its gateway right now
    (ClusterUnavailable, 503, "cluster_unavailable"),
    # the same for what is shared through Redis rather than routed (e.g. a helpdesk flow)
    (ClusterMessagingUnavailable, 503, "cluster_unavailable"),
    # the call reached the station, whose connection closed before it answered: not offline,
    # and not a failure either (a station that resets often reboots without answering)
    (OutcomeUnknown, 202, "outcome_unknown"),
    (CommandTimeout, 504, "station_timeout"),
    (StationCallError, 502, "station_error"),
    (CommandNotSupported, 422, "not_supported"),
    (TokenError, 404, "not_found"),
    (UnknownGroup, 404, "not_found"),
    (UnknownFunction, 404, "not_found"),
    (InvalidArguments, 422, "invalid_arguments"),
    (InventoryNotFound, 404, "not_found"),
    (InventoryConflict, 409, "conflict"),
    (InvalidInventory, 422, "invalid"),
    (InvalidSecurityProfile, 422, "invalid"),
    (BadQuery, 422, "invalid_query"),
    (FlowAlreadyRunning, 409, "conflict"),
    (DiagnosticsNotFound, 404, "not_found"),
    (EmptySelection, 422, "empty_selection"),
    (UploadNotFound, 404, "not_found"),
    (UploadAlreadyReceived, 409, "already_uploaded"),
    (UploadInProgress, 409, "upload_in_progress"),
    (UploadExpired, 410, "expired"),
    (FileTooLarge, 413, "too_large"),
    (MultipartError, 400, "bad_multipart"),
    (ClientDisconnect, 400, "client_disconnected"),  # an upload broken off (nobody reads this)
    (UserNotFound, 404, "not_found"),
    (UserConflict, 409, "conflict"),
    (NotPermitted, 403, "forbidden"),
    (JobNotFound, 404, "not_found"),
    (JobFinished, 409, "job_finished"),
    (NothingSelected, 422, "empty_selection"),
    (TemplateNotFound, 404, "not_found"),
    (TemplateExists, 409, "conflict"),
    (InvalidTemplate, 422, "invalid_template"),
    (service_errors.Missing, 404, "not_found"),
    (service_errors.Conflict, 409, "conflict"),
    (service_errors.Invalid, 422, "invalid"),
    (service_errors.Forbidden, 403, "forbidden"),
]


def _is_bad_value(exc: BaseException) -> bool:
    """A value the database cannot hold (an id beyond 64 bits, NUL in text): the caller's
    mistake, not an outage. SQLSTATE class 22 is PostgreSQL's "data exception"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ValueError | OverflowError):
            return True
        if str(getattr(current, "sqlstate", "") or "").startswith("22"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    if _is_bad_value(exc):
        return JSONResponse(
            {"error": "invalid_value", "detail": "a value is out of range or cannot be stored"},
            status_code=422,
        )
    log.error("database error: %s", exc)
    return JSONResponse(
        {"error": "database_unavailable", "detail": "the database could not answer; retry later"},
        status_code=503,
    )


def install(app: FastAPI) -> None:
    # OverflowError: SQLite's driver refusing an integer beyond 64 bits before any SQL runs
    app.add_exception_handler(StatementError, _database_error)
    app.add_exception_handler(OverflowError, _database_error)
    for exc_type, code, kind in _STATUS:

        def handler(_request: Request, exc: Exception, code: int = code, kind: str = kind) -> JSONResponse:
            return JSONResponse({"error": kind, "detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)
