"""Diagnostics and log files: request, upload, download.

Operators and the municipality request files from one station or a selection and download
them; stations upload to `/upload/diagnostics/{id}/{secret}[/{file name}]` with HTTP PUT (raw
body) or POST (multipart/form-data or raw). The upload takes no bearer token: the secret in
the URL, single-use and expiring, is the credential. FTP upload URLs are not offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stekker.api.deps import DIAGNOSTICS, READ, Caller, allow, get_ctx
from stekker.api.multipart import MultipartReader, boundary_of
from stekker.db.models_diagnostics import DiagnosticsRequest, DiagnosticsState
from stekker.services import diagnostics
from stekker.services.context import ServiceContext
from stekker.services.selection import Selection, resolve
from stekker.storage import FileTooLarge

router = APIRouter(tags=["diagnostics"])

STATION_ID = r"^[A-Za-z0-9._:*\-]{1,48}$"
RequestId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The diagnostics request's id.")]
# multipart framing around the file: a little more than the file itself may arrive
_MULTIPART_SLACK = 64 * 1024


class DiagnosticsIn(BaseModel):
    """Which stations (ids and/or a selection: every criterion given must hold) and what to upload."""

    model_config = ConfigDict(extra="forbid")

    station_ids: list[Annotated[str, Field(pattern=STATION_ID)]] = Field(
        default_factory=list, max_length=1000
    )
    group: str | None = Field(default=None, min_length=1, max_length=100)
    location_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    vendor: str | None = Field(default=None, max_length=50)
    model: str | None = Field(default=None, max_length=50)
    ocpp_version: str | None = Field(default=None, max_length=20)
    online: bool | None = None
    log_type: diagnostics.LogType = "DiagnosticsLog"
    start: datetime | None = Field(default=None, description="Oldest log entries wanted (UTC if no offset).")
    stop: datetime | None = Field(default=None, description="Newest log entries wanted.")

    @field_validator("start", "stop")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _check(self) -> DiagnosticsIn:
        if self.start and self.stop and self.start > self.stop:
            raise ValueError("start is after stop")
        return self

    def selection(self) -> Selection:
        return Selection(
            station_ids=tuple(self.station_ids),
            location_id=self.location_id,
            group=self.group,
            vendor=self.vendor,
            model=self.model,
            ocpp_version=self.ocpp_version,
            online=self.online,
        )


class DiagnosticsOut(BaseModel):
    id: int
    station_id: str
    requested_by: str
    log_type: str
    start: datetime | None
    stop: datetime | None
    state: str
    reason: str | None
    station_status: str | None = Field(description="The station's last answer or status notification.")
    file_name: str | None
    file_size: int | None
    file_sha256: str | None
    content_type: str | None
    download: str | None = Field(description="Where to download the file, once it arrived.")
    expires_at: datetime
    requested_at: datetime
    answered_at: datetime | None
    status_at: datetime | None
    uploaded_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: DiagnosticsRequest) -> DiagnosticsOut:
        return cls(
            id=row.id,
            station_id=row.station_id,
            requested_by=row.requested_by,
            log_type=row.log_type,
            start=row.window_start,
            stop=row.window_stop,
            state=row.state,
            reason=row.reason,
            station_status=row.station_status,
            file_name=row.file_name,
            file_size=row.file_size,
            file_sha256=row.file_sha256,
            content_type=row.content_type,
            download=f"/api/diagnostics/{row.id}/file" if row.storage_key else None,
            expires_at=row.expires_at,
            requested_at=row.requested_at,
            answered_at=row.answered_at,
            status_at=row.status_at,
            uploaded_at=row.uploaded_at,
            closed_at=row.closed_at,
        )


class UploadOut(BaseModel):
    request_id: int
    file_name: str
    size: int
    sha256: str


def public_base_url(request: Request, ctx: ServiceContext) -> str:
    """Where stations reach our HTTP port: STEKKER_PUBLIC_URL, else this listener's address."""
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    server = request.scope.get("server") or (ctx.settings.host, ctx.settings.http_port)
    host = ctx.settings.host if ctx.settings.host not in ("0.0.0.0", "::", "") else str(server[0])
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server[1]}"


@router.post("/api/diagnostics", status_code=201, response_model=list[DiagnosticsOut])
async def request_diagnostics(
    body: DiagnosticsIn,
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DIAGNOSTICS)),
) -> list[DiagnosticsOut]:
    """Ask each selected station to upload its diagnostics (1.6 GetDiagnostics) or a log (GetLog)
    to Stekker; one request per station with the station's immediate answer. An offline station
    is not waited for: its request ends `failed` with the reason."""
    selection = body.selection()
    if selection == Selection(online=selection.online):
        raise diagnostics.EmptySelection(
            "name stations: station_ids, group, location_id, vendor, model or ocpp_version"
        )
    if body.station_ids:
        await diagnostics.check_stations(ctx, body.station_ids)
    async with ctx.db() as db:
        station_ids = await resolve(db, selection, ctx.commands)
    if not station_ids:
        raise diagnostics.EmptySelection("no station matches the selection")
    order = diagnostics.DiagnosticsOrder(body.log_type, body.start, body.stop)
    rows = await diagnostics.request_diagnostics(
        ctx, caller.actor, station_ids, order, public_base_url(request, ctx)
    )
    return [DiagnosticsOut.of(r) for r in rows]


@router.get("/api/diagnostics", response_model=list[DiagnosticsOut])
async def list_diagnostics(
    station_id: Annotated[str | None, Query(pattern=STATION_ID)] = None,
    state: DiagnosticsState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> list[DiagnosticsOut]:
    """Diagnostics requests, newest first."""
    rows = await diagnostics.list_requests(ctx, station_id, state, limit)
    return [DiagnosticsOut.of(r) for r in rows]


@router.get("/api/diagnostics/{request_id}", response_model=DiagnosticsOut)
async def get_diagnostics(
    request_id: RequestId,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> DiagnosticsOut:
    return DiagnosticsOut.of(await diagnostics.get_request(ctx, request_id))


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@router.get("/api/diagnostics/{request_id}/file", response_class=StreamingResponse)
async def download_diagnostics(
    request_id: RequestId,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DIAGNOSTICS)),
) -> StreamingResponse:
    """The uploaded file, streamed as it was received (always application/octet-stream)."""
    row, chunks = await diagnostics.open_file(ctx, caller.actor, request_id)
    headers = {
        "Content-Disposition": _disposition(row.file_name or f"diagnostics-{row.id}.log"),
        "X-Content-Type-Options": "nosniff",
        "X-Content-SHA256": row.file_sha256 or "",
    }
    if row.file_size is not None:
        headers["Content-Length"] = str(row.file_size)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


# ---- the stations' upload ----------------------------------------------------------------------


def _request_id(text: str) -> int:
    # a malformed id gets the same 404 as a wrong secret: nothing about which requests exist
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise diagnostics.UploadNotFound("no such upload URL")
    return int(text)


async def _receive(
    request: Request, ctx: ServiceContext, request_id: str, secret: str, url_name: str | None
) -> UploadOut:
    number = _request_id(request_id)
    if len(secret) > 128:
        raise diagnostics.UploadNotFound("no such upload URL")
    limit = ctx.settings.upload_max_bytes
    content_type = request.headers.get("content-type", "")
    multipart = content_type.lower().startswith("multipart/form-data")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + (_MULTIPART_SLACK if multipart else 0):
        raise FileTooLarge(f"the file is larger than {limit} bytes")
    file_name, file_type = url_name, content_type or None
    chunks: AsyncIterator[bytes] = request.stream()
    if multipart:
        part, chunks = await MultipartReader(request.stream(), boundary_of(content_type)).file()
        file_name, file_type = part.filename or url_name, part.content_type
    row = await diagnostics.receive_upload(ctx, number, secret, file_name, file_type, chunks)
    assert row.file_name is not None and row.file_size is not None and row.file_sha256 is not None
    return UploadOut(request_id=row.id, file_name=row.file_name, size=row.file_size, sha256=row.file_sha256)


_UPLOAD_DOC: dict[str, Any] = {
    "status_code": 201,
    "response_model": UploadOut,
    "description": "For stations: the file of a diagnostics request, as a raw body (PUT/POST) or "
    "the first file of a multipart/form-data POST. No bearer token: the URL's secret is the "
    "credential. 404 wrong URL, 409 already received, 410 expired, 413 too large.",
}


async def upload(
    request: Request, request_id: str, secret: str, ctx: ServiceContext = Depends(get_ctx)
) -> UploadOut:
    return await _receive(request, ctx, request_id, secret, None)


async def upload_named(
    request: Request, request_id: str, secret: str, file_name: str, ctx: ServiceContext = Depends(get_ctx)
) -> UploadOut:
    return await _receive(request, ctx, request_id, secret, file_name)


# PUT and POST, with and without the station's file name appended (1.6 stations treat the
# location as a directory), and with a trailing slash answered here rather than redirected.
for _method in ("PUT", "POST"):
    for _path, _endpoint, _shown in (
        ("/upload/diagnostics/{request_id}/{secret}", upload, True),
        ("/upload/diagnostics/{request_id}/{secret}/", upload, False),
        ("/upload/diagnostics/{request_id}/{secret}/{file_name}", upload_named, True),
    ):
        router.add_api_route(
            _path,
            _endpoint,
            methods=[_method],
            operation_id=f"{_endpoint.__name__}_diagnostics_{_method.lower()}",
            include_in_schema=_shown,
            **_UPLOAD_DOC,
        )
