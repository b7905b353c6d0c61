"""Service exceptions → HTTP answers that say what is wrong (never a bare 500)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from stekker.services.device_model import UnknownStation
from stekker.services.functions import InvalidArguments, UnknownFunction
from stekker.services.inventory import StationExists
from stekker.services.ports import (
    CommandNotSupported,
    CommandTimeout,
    StationCallError,
    StationOffline,
)
from stekker.services.remote import NotFound, RemoteRefused
from stekker.services.selection import UnknownGroup
from stekker.services.tokens import TokenError

_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (UnknownStation, 404, "not_found"),
    (StationExists, 409, "conflict"),
    (RemoteRefused, 409, "refused"),
    (StationOffline, 409, "station_offline"),
    (CommandTimeout, 504, "station_timeout"),
    (StationCallError, 502, "station_error"),
    (CommandNotSupported, 422, "not_supported"),
    (TokenError, 404, "not_found"),
    (UnknownGroup, 404, "not_found"),
    (UnknownFunction, 404, "not_found"),
    (InvalidArguments, 422, "invalid_arguments"),
]


def install(app: FastAPI) -> None:
    for exc_type, code, kind in _STATUS:

        def handler(_request: Request, exc: Exception, code: int = code, kind: str = kind) -> JSONResponse:
            return JSONResponse({"error": kind, "detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)
