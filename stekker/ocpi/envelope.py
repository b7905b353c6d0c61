"""The OCPI response envelope and status codes (OCPI 2.2.1, transport and format).

Every answer under /ocpi is `{data, status_code, status_message, timestamp}`. Client errors
are 2xxx, errors talking to the partner's side 3xxx; a request we cannot parse is 2001, never
a bare 500.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
UNKNOWN_TOKEN = 2004
SERVER_ERROR = 3000
UNABLE_TO_USE_CLIENT_API = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003

PREFIX = "/ocpi"


class OcpiError(Exception):
    """A request we refuse: OCPI `status_code` (2xxx/3xxx), a message for the partner's
    integrator, and the HTTP status it travels with."""

    def __init__(self, status_code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status


def ocpi_time(moment: datetime) -> str:
    """OCPI DateTime: UTC, whole seconds, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _jsonable(value: Any) -> Any:
    return jsonable_encoder(
        value,
        custom_encoder={
            datetime: ocpi_time,
            Decimal: lambda d: int(d) if d == d.to_integral_value() else float(d),
        },
    )


def envelope(data: Any, status_code: int = SUCCESS, message: str = "Success") -> dict[str, Any]:
    body: dict[str, Any] = {
        "status_code": status_code,
        "status_message": message,
        "timestamp": ocpi_time(datetime.now(UTC)),
    }
    if data is not None:
        body["data"] = _jsonable(data)
    return body


def ocpi_response(
    data: Any,
    *,
    headers: dict[str, str] | None = None,
    status_code: int = SUCCESS,
    message: str = "Success",
    http_status: int = 200,
) -> JSONResponse:
    return JSONResponse(envelope(data, status_code, message), status_code=http_status, headers=headers)


def _under_ocpi(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def install(app: FastAPI) -> None:
    """OCPI envelopes for OcpiError everywhere, and for bad requests under /ocpi (elsewhere
    the operator API keeps FastAPI's usual 422)."""
    from fastapi.exception_handlers import request_validation_exception_handler

    async def ocpi_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OcpiError)
        return ocpi_response(
            None, status_code=exc.status_code, message=exc.message, http_status=exc.http_status
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if not _under_ocpi(request):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()[:10]
        )
        return ocpi_response(
            None, status_code=INVALID_PARAMETERS, message=f"invalid or missing parameters: {problems}"[:500],
            http_status=400,
        )  # fmt: skip

    app.add_exception_handler(OcpiError, ocpi_error)
    app.add_exception_handler(RequestValidationError, invalid)
