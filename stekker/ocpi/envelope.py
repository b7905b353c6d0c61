"""The OCPI response envelope and status codes (OCPI 2.2.1, transport and format).

Every answer under /ocpi is `{data, status_code, status_message, timestamp}`: our routes',
unknown paths (HTTP 404, 2000), wrong methods (405, 2000), the operator API's service errors
and database errors raised on an OCPI route (their HTTP status, 2000 or 3000). Client errors
are 2xxx, errors talking to the partner's side 3xxx; never a bare 500.

HTTP status follows OCPI 2.2.1 "Status codes": the transport layer ends once the body parses
as JSON. A body that is not JSON is HTTP 400 (2001); a request that parses and reaches an
existing route gets no HTTP error for its content, so invalid or missing parameters (query,
path or body fields) are HTTP 200 with 2001. Unknown objects stay HTTP 404, as the spec allows.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

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

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


class OcpiError(Exception):
    """A request we refuse: OCPI `status_code` (2xxx/3xxx), a message for the partner's
    integrator, and the HTTP status it travels with (200 unless the refusal is about the
    transport: authentication, an unknown object, a rate limit)."""

    def __init__(self, status_code: int, message: str, http_status: int = 200) -> None:
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


#: what the router's own 404 and 405 say in the envelope
_ROUTING = {404: "no such OCPI endpoint", 405: "method not allowed on this OCPI endpoint"}


def _malformed_json(exc: RequestValidationError) -> bool:
    """Whether the body did not parse as JSON (the transport layer's error, HTTP 400): broken
    JSON, or a body FastAPI left as bytes because it was not sent as application/json."""
    return any(
        error.get("type") == "json_invalid" or isinstance(error.get("input"), bytes | bytearray)
        for error in exc.errors()
    )


async def _answered(handler: Handler, request: Request, exc: Exception) -> Response:
    answer = handler(request, exc)
    return answer if isinstance(answer, Response) else await answer


def _detail(response: Response) -> str:
    """The message of another handler's JSON answer (`detail`), for the envelope."""
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return http.HTTPStatus(response.status_code).phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail)[:500] if detail else http.HTTPStatus(response.status_code).phrase


def install(app: FastAPI) -> None:
    """OCPI envelopes for OcpiError everywhere, and for every other error under /ocpi: bad
    requests, unknown paths and methods, and the handlers installed before us (the operator
    API's service and database errors), whose answers keep their HTTP status outside /ocpi."""
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler

    async def ocpi_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OcpiError)
        return ocpi_response(
            None, status_code=exc.status_code, message=exc.message, http_status=exc.http_status
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if not _under_ocpi(request):
            return await request_validation_exception_handler(request, exc)
        if _malformed_json(exc):
            return ocpi_response(
                None, status_code=INVALID_PARAMETERS, message="the body is not valid JSON", http_status=400
            )
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.errors()[:10]
        )
        # parsed and routed: the OCPI layer answers, with HTTP 200 (OCPI 2.2.1, status codes)
        return ocpi_response(
            None, status_code=INVALID_PARAMETERS, message=f"invalid or missing parameters: {problems}"[:500]
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not _under_ocpi(request) or exc.status_code < 400:
            return await http_exception_handler(request, exc)
        message = str(exc.detail)[:500]
        if message == http.HTTPStatus(exc.status_code).phrase:  # Starlette's routing, no detail of ours
            message = _ROUTING.get(exc.status_code, message)
        code = CLIENT_ERROR if exc.status_code < 500 else SERVER_ERROR
        return ocpi_response(None, status_code=code, message=message, http_status=exc.status_code,
                             headers=dict(exc.headers or {}))  # fmt: skip

    def enveloped(original: Handler) -> Handler:
        async def handler(request: Request, exc: Exception) -> Response:
            answer = await _answered(original, request, exc)
            if not _under_ocpi(request) or answer.status_code < 400:
                return answer
            code = CLIENT_ERROR if answer.status_code < 500 else SERVER_ERROR
            status = answer.status_code
            return ocpi_response(None, status_code=code, message=_detail(answer), http_status=status)

        return handler

    # the handlers installed before us answer the operator API's schema; under /ocpi, an envelope
    for key, original in list(app.exception_handlers.items()):
        if isinstance(key, type) and key not in (OcpiError, RequestValidationError, HTTPException):
            app.add_exception_handler(key, enveloped(original))
    app.add_exception_handler(OcpiError, ocpi_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
