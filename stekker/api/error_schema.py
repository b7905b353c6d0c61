"""One error schema for every error answer of the operator API, and its place in OpenAPI.

Every 4xx/5xx of the operator API (service errors, 401/403 from authentication, 404 for unknown
routes, 405, 413, 422 validation errors, 503) is an `ApiError`: `{"error": kind, "detail":
"what is wrong", "errors": [...]}` (field errors only for 422). A validation error never echoes
the request: at most `MAX_FIELD_ERRORS` entries, each with `loc`, `msg` and `type`, every text
cut to `MAX_TEXT` characters, no `input` and no `ctx`.

OCPI (/ocpi) answers OCPI envelopes and keeps its own handlers; open data (/opendata) shares
the error body but is left out of the per-operation documentation.
"""

from __future__ import annotations

import http
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from stekker.api.body_limit import BodyTooLarge

__all__ = ["MAX_FIELD_ERRORS", "MAX_TEXT", "ApiError", "FieldError", "document", "install"]

MAX_FIELD_ERRORS = 20
MAX_TEXT = 100
OCPI_PREFIX = "/ocpi"

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


class FieldError(BaseModel):
    """One thing wrong with the request: where (`loc`: "body", "query", "path" or "header",
    then the field names and list positions), what (`msg`) and its kind (`type`, pydantic's
    error type such as `missing`, `string_too_long`, `datetime_from_date_parsing`)."""

    loc: list[str | int]
    msg: str
    type: str


class ApiError(BaseModel):
    """The body of every error answer of the operator API. `error` is a stable machine-readable
    kind (`not_found`, `conflict`, `unauthorized`, `invalid_request`, `too_large`, ...);
    `detail` says in words what is wrong; `errors` lists the fields at fault (422 only, at
    most 20)."""

    error: str = Field(examples=["not_found"])
    detail: str = Field(examples=["no station CP1"])
    errors: list[FieldError] | None = None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _field_errors(raw: Iterable[Any]) -> tuple[list[dict[str, Any]], int]:
    """The first MAX_FIELD_ERRORS errors without their input, and how many there were."""
    kept: list[dict[str, Any]] = []
    total = 0
    for error in raw:
        total += 1
        if len(kept) >= MAX_FIELD_ERRORS:
            continue
        loc = [p if isinstance(p, int) else _cut(str(p)) for p in error.get("loc", ())[:10]]
        msg, kind = _cut(str(error.get("msg", "invalid"))), _cut(str(error.get("type", "")))
        kept.append({"loc": loc, "msg": msg, "type": kind})
    return kept, total


def validation_error_body(raw: Iterable[Any]) -> dict[str, Any]:
    errors, total = _field_errors(raw)
    where = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3]
    )  # fmt: skip
    more = f" (and {total - 3} more)" if total > 3 else ""
    return {"error": "invalid_request", "detail": f"invalid request: {where}{more}", "errors": errors}


def _kind(status: int) -> str:
    known = {401: "unauthorized", 413: "too_large", 422: "invalid_request", 429: "too_many_requests"}
    if status in known:
        return known[status]
    try:
        return http.HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _under_ocpi(request: Request) -> bool:
    path = request.url.path
    return path == OCPI_PREFIX or path.startswith(OCPI_PREFIX + "/")


def install(app: FastAPI) -> None:
    """ApiError answers for validation errors and HTTPExceptions outside /ocpi. Call after
    OCPI installed its handlers: for /ocpi paths the handlers found here keep answering."""
    ocpi_invalid: Handler = app.exception_handlers.get(
        RequestValidationError, request_validation_exception_handler
    )
    ocpi_http: Handler = app.exception_handlers.get(HTTPException, http_exception_handler)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _under_ocpi(request):
            answer = ocpi_invalid(request, exc)
            return answer if isinstance(answer, Response) else await answer
        return JSONResponse(validation_error_body(exc.errors()), status_code=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc, BodyTooLarge):
            raise exc  # the body-limit middleware answers it, in the path's format, and closes
        if _under_ocpi(request):
            answer = ocpi_http(request, exc)
            return answer if isinstance(answer, Response) else await answer
        if exc.status_code in (204, 304) or exc.status_code < 200:
            return Response(status_code=exc.status_code, headers=exc.headers)
        body = {"error": _kind(exc.status_code), "detail": _cut_detail(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)


def _cut_detail(detail: Any) -> str:
    text = detail if isinstance(detail, str) else str(detail)
    return text if len(text) <= 1000 else text[:999] + "…"


# ---- OpenAPI ------------------------------------------------------------------------------------

# Operations that send a command to a station and wait for its answer: 409 (offline, refused),
# 502 (the station answered with an error), 504 (no answer in time).
_STATION_CALLS = [
    re.compile(
        r"^/api/stations/\{station_id\}/(functions/\{name\}|remote-start|variables/(get|set)|reports)$"
    ),
    re.compile(r"^/api/sessions/\{session_id\}/remote-stop$"),
]
_WRITES = {"post", "put", "patch", "delete"}
_DESCRIPTIONS = {
    401: "No valid API token (`Authorization: Bearer ...`).",
    403: "The caller's role may not do this.",
    404: "No such resource (or no such route).",
    202: "`outcome_unknown`: the call reached the station, then its connection closed before it "
    "answered; the station may have done it.",
    409: "Conflicts with the current state (exists already, station offline, refused, ...).",
    413: "The request body is over its limit (checked before it is read).",
    422: "The request is not valid: `errors` lists the fields at fault.",
    502: "The station answered with an error.",
    503: "The database could not answer; retry later.",
    504: "The station did not answer in time.",
}


def _operator_path(path: str) -> bool:
    return path.startswith(("/api/", "/upload/")) or path == "/api"


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, derived from what it takes."""
    found = {503}
    if operation.get("security") or operation.get("x-roles"):
        found |= {401, 403}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        found.add(404)
    if "requestBody" in operation or method in _WRITES:
        found.add(413)
    if parameters or "requestBody" in operation:
        found.add(422)
    if method in _WRITES and (found & {401, 404}):  # changes something that exists, or as someone
        found.add(409)
    if method == "post" and any(p.match(path) for p in _STATION_CALLS):
        found |= {202, 409, 502, 504}
    return found


def _with_errors(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    api_error = ApiError.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(api_error.pop("$defs", {}))
    schemas["ApiError"] = api_error
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            if path.startswith(OCPI_PREFIX):
                # OCPI answers a bad request with HTTP 400 and an OCPI envelope (status 2001)
                if responses.pop("422", None) is not None:
                    responses["400"] = {"description": "Invalid parameters: OCPI envelope, status_code 2001."}
                continue
            if not _operator_path(path):
                if "422" in responses:  # open data: the same bounded 422 body
                    responses["422"] = {"description": _DESCRIPTIONS[422], "content": ref}
                if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                    responses["404"] = {"description": _DESCRIPTIONS[404], "content": ref}
                continue
            for status in sorted(_statuses(path, method, operation) | _declared_errors(responses)):
                entry = responses.setdefault(str(status), {})
                entry.setdefault("description", _DESCRIPTIONS.get(status, http.HTTPStatus(status).phrase))
                entry["content"] = ref
    return document


def _declared_errors(responses: dict[str, Any]) -> set[int]:
    return {int(code) for code in responses if code.isdigit() and int(code) >= 400}


def document(app: FastAPI) -> None:
    """Make the OpenAPI document list, per operation of the operator API, each error status it
    can answer with the ApiError schema (instead of FastAPI's HTTPValidationError). Call after
    every route is included."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.openapi_schema = None
