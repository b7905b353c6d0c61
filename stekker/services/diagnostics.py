"""Diagnostics and log files (requirement 51): ask stations to upload them to our own HTTP
server, follow their progress, receive and keep the file, hand it out for download.

A request gives the station a single-use upload URL that expires; its secret is the only
credential of the upload (stations have no API token), so only its SHA-256 is stored and
it is compared in constant time. The station's answer and its status notifications move the
request along; the file's arrival makes it `uploaded`. No file by the deadline: `expired`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingStation
from stekker.db.models_diagnostics import OPEN_STATES, DiagnosticsRequest, DiagnosticsState
from stekker.services.audit import audit, station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.functions import FunctionArgs, FunctionSpec, register, validate_args
from stekker.services.ports import CommandError, StationCommand
from stekker.storage import FileStorage, LocalDiskStorage, StoredFile, safe_file_name

LogType = Literal["DiagnosticsLog", "SecurityLog"]
# a crashed upload's claim is given up after this long, so the station can try again
_STALE_CLAIM = timedelta(hours=1)
_DUMMY_HASH = hashlib.sha256(b"no such request").hexdigest()


class GetDiagnosticsArgs(FunctionArgs):
    """GetDiagnostics (1.6) / GetLog (2.0.1, and the 1.6 security extension for SecurityLog)."""

    location: str | None = Field(
        default=None,
        pattern=r"^(https?|ftps?|sftp)://\S+$",
        max_length=512,
        description="Where the station uploads; unset: to Stekker, tracked (GET /api/diagnostics).",
    )
    log_type: LogType = "DiagnosticsLog"
    request_id: int | None = Field(default=None, ge=0, le=2**31 - 1)
    start: AwareDatetime | None = None
    stop: AwareDatetime | None = None
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_interval: int | None = Field(default=None, ge=0, le=86_400)

    @model_validator(mode="after")
    def _window(self) -> GetDiagnosticsArgs:
        if self.start and self.stop and self.start > self.stop:
            raise ValueError("start is after stop")
        return self


async def _run_get_diagnostics(
    ctx: ServiceContext, actor: str, station_id: str, args: GetDiagnosticsArgs, timeout: float | None
) -> dict[str, Any]:
    """As a remote function (bulk jobs): to Stekker and tracked, unless a location is given."""
    assert ctx.commands is not None
    if args.location is not None:
        command = StationCommand("get_diagnostics", args.model_dump(exclude_none=True))
        return await ctx.commands.send(station_id, command, timeout)
    order = DiagnosticsOrder(args.log_type, args.start, args.stop)
    row = await _request_one(ctx, actor, station_id, order, default_base_url(ctx), raise_errors=True)
    took = row.state in (DiagnosticsState.ACCEPTED, DiagnosticsState.UPLOADING, DiagnosticsState.UPLOADED)
    status = "Accepted" if took else row.station_status or row.state
    return {"status": status, "request_id": row.id, "state": row.state, "reason": row.reason}


register(
    FunctionSpec(
        "get_diagnostics",
        "Have the station upload a diagnostics or security log; without `location` it goes to "
        "Stekker and is tracked and kept (GET /api/diagnostics), which POST /api/diagnostics also does.",
        GetDiagnosticsArgs,
        accepted=frozenset({"Accepted", "AcceptedCanceled"}),
        changes=False,
        tags=("diagnostics",),
        roles=("operator", "municipality"),
        run=_run_get_diagnostics,
    )
)


class DiagnosticsNotFound(LookupError):
    """No diagnostics request with that id, or it has no file (yet)."""


class EmptySelection(ValueError):
    """A request for diagnostics must name stations: never the whole network by accident."""


class UploadNotFound(LookupError):
    """Unknown request or wrong secret: the same answer for both."""


class UploadAlreadyReceived(Exception):
    """A file already came in for this URL; it is not replaced."""


class UploadInProgress(Exception):
    """Another upload to this URL is being received right now."""


class UploadExpired(Exception):
    """The upload URL's deadline has passed."""


@dataclass(frozen=True, slots=True)
class DiagnosticsOrder:
    """What a user asks for: the kind of log and an optional time window."""

    log_type: LogType = "DiagnosticsLog"
    start: datetime | None = None
    stop: datetime | None = None


def storage_of(ctx: ServiceContext) -> FileStorage:
    return LocalDiskStorage(ctx.settings.storage_directory)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def default_base_url(ctx: ServiceContext) -> str:
    """Where stations reach our HTTP port when no request tells us: STEKKER_PUBLIC_URL, else
    http://{host}:{http_port} (the API uses the address the caller reached it at instead)."""
    settings = ctx.settings
    return (settings.public_url or f"http://{settings.host}:{settings.http_port}").rstrip("/")


def upload_url(base_url: str, request_id: int, secret: str) -> str:
    """The directory-like URL a station uploads to (1.6 stations append their file name)."""
    return f"{base_url.rstrip('/')}/upload/diagnostics/{request_id}/{secret}"


def _close(row: DiagnosticsRequest, state: DiagnosticsState, at: datetime, reason: str | None) -> None:
    row.state = state
    row.reason = reason
    row.closed_at = at


# ---- requesting --------------------------------------------------------------------------------


async def check_stations(ctx: ServiceContext, station_ids: Sequence[str]) -> None:
    """UnknownStation naming every id that is not a registered station."""
    if not station_ids:
        raise EmptySelection("no stations selected")
    async with ctx.db() as db:
        known = set(
            (
                await db.execute(select(ChargingStation.id).where(ChargingStation.id.in_(station_ids)))
            ).scalars()
        )
    missing = [s for s in station_ids if s not in known]
    if missing:
        raise UnknownStation(f"no station {', '.join(repr(m) for m in missing[:10])}")


async def request_diagnostics(
    ctx: ServiceContext, actor: str, station_ids: Sequence[str], order: DiagnosticsOrder, base_url: str
) -> list[DiagnosticsRequest]:
    """One request per station, sent to all of them at once; each row holds the station's
    immediate answer (an offline or failing station ends `failed` with the reason)."""
    _arguments(order, "http://check/", 0)  # InvalidArguments before anything is written
    await check_stations(ctx, station_ids)
    limiter = ctx.limiter("diagnostics.request", 32)

    async def one(station_id: str) -> DiagnosticsRequest:
        async with limiter:
            return await _request_one(ctx, actor, station_id, order, base_url)

    return list(await asyncio.gather(*(one(s) for s in dict.fromkeys(station_ids))))


def _arguments(order: DiagnosticsOrder, location: str, request_id: int) -> FunctionArgs:
    """The function's arguments, checked (InvalidArguments for e.g. a window the wrong way round)."""
    return validate_args(
        "get_diagnostics",
        {
            "location": location,
            "log_type": order.log_type,
            "request_id": request_id,
            "start": order.start,
            "stop": order.stop,
        },
    )


async def _request_one(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    order: DiagnosticsOrder,
    base_url: str,
    raise_errors: bool = False,
    timeout: float | None = None,
) -> DiagnosticsRequest:
    assert ctx.commands is not None
    secret = secrets.token_urlsafe(32)
    now = ctx.now()
    # known before sending: a station may report progress before its answer is recorded
    protocol = ctx.commands.protocol(station_id)
    action = None
    if protocol is not None:
        action = (
            "GetDiagnostics" if protocol == "ocpp1.6" and order.log_type == "DiagnosticsLog" else "GetLog"
        )

    async def create(db: AsyncSession) -> DiagnosticsRequest:
        row = DiagnosticsRequest(
            station_id=station_id,
            requested_by=actor,
            log_type=order.log_type,
            window_start=order.start,
            window_stop=order.stop,
            state=DiagnosticsState.REQUESTED,
            secret_sha256=_hash(secret),
            expires_at=now + timedelta(seconds=ctx.settings.upload_url_lifetime),
            requested_at=now,
            action=action,
        )
        db.add(row)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="diagnostics.requested",
            object_type="station",
            object_id=station_id,
            at=now,
            request_id=row.id,
            log_type=order.log_type,
        )
        return row

    row = await ctx.write(create)
    args = _arguments(order, upload_url(base_url, row.id, secret), row.id)
    command = StationCommand("get_diagnostics", args.model_dump(exclude_none=True))
    reply: dict[str, Any] = {}
    error: CommandError | None = None
    try:
        reply = await ctx.commands.send(station_id, command, timeout)
    except CommandError as exc:
        error = exc

    async def answered(db: AsyncSession) -> DiagnosticsRequest:
        current = await db.get(DiagnosticsRequest, row.id, with_for_update=True)
        assert current is not None
        at = ctx.now()
        current.answered_at = at
        if error is not None:
            _close(current, DiagnosticsState.FAILED, at, f"{type(error).__name__}: {error}")
            result = type(error).__name__
        else:
            current.action = reply.get("action") or current.action
            current.station_status = str(reply.get("status"))
            if reply.get("file_name") and not current.file_name:
                current.file_name = str(reply["file_name"])[:255]
            if current.state == DiagnosticsState.REQUESTED:
                if reply.get("status") in ("Accepted", "AcceptedCanceled"):
                    current.state = DiagnosticsState.ACCEPTED
                else:
                    _close(current, DiagnosticsState.REJECTED, at, reply.get("reason") or "station rejected")
            result = current.station_status
        audit(
            db,
            actor=actor,
            action="diagnostics.sent",
            object_type="station",
            object_id=station_id,
            at=at,
            result=result,
            request_id=row.id,
            **({"error": str(error)} if error else {}),
        )
        return current

    final = await ctx.write(answered)
    await ctx.bus.publish(Event("diagnostics.requested", {"station_id": station_id, "request_id": row.id}))
    if error is not None and raise_errors:
        raise error
    return final


# ---- the station's progress --------------------------------------------------------------------


async def station_status(
    ctx: ServiceContext, station_id: str, kind: str, status: str, request_id: int | None
) -> None:
    """A DiagnosticsStatusNotification (`kind` diagnostics_status, no request id) or
    LogStatusNotification (`kind` log_status): stored as a station event and applied to the
    request it is about (by id, else the station's latest one sent with that action)."""
    action = "GetDiagnostics" if kind == "diagnostics_status" else "GetLog"
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        detail: dict[str, Any] = {"status": status}
        if request_id is not None:
            detail["requestId"] = request_id
        station_event(db, station_id, kind, at, **detail)
        query = select(DiagnosticsRequest).where(DiagnosticsRequest.station_id == station_id)
        if request_id is not None:
            query = query.where(DiagnosticsRequest.id == request_id)
        else:
            query = query.where(
                DiagnosticsRequest.action == action,
                DiagnosticsRequest.state.not_in((DiagnosticsState.FAILED, DiagnosticsState.EXPIRED)),
            )
        row = (await db.execute(query.order_by(DiagnosticsRequest.id.desc()).limit(1))).scalar()
        if row is None:
            return
        row.station_status = status[:40]
        row.status_at = at
        if status == "Uploading" and row.state in (*OPEN_STATES, DiagnosticsState.UPLOAD_FAILED):
            row.state = DiagnosticsState.UPLOADING
            row.reason, row.closed_at = None, None
        elif status not in ("Uploading", "Uploaded", "Idle") and row.state in OPEN_STATES:
            _close(row, DiagnosticsState.UPLOAD_FAILED, at, f"station reported {status}")

    await ctx.write(job)


# ---- expiry ------------------------------------------------------------------------------------


async def expire_overdue(ctx: ServiceContext) -> int:
    """Mark open requests whose URL passed its deadline without a file as expired; returns
    how many. Run lazily before reads (cheap when there is nothing to do)."""
    now = ctx.now()
    overdue = (
        DiagnosticsRequest.state.in_(OPEN_STATES),
        DiagnosticsRequest.expires_at <= now,
        DiagnosticsRequest.storage_key.is_(None),
        DiagnosticsRequest.receiving_since.is_(None),
    )
    async with ctx.db() as db:
        if await db.scalar(select(DiagnosticsRequest.id).where(*overdue).limit(1)) is None:
            return 0

    async def job(db: AsyncSession) -> int:
        rows = list(
            (await db.execute(select(DiagnosticsRequest).where(*overdue).with_for_update())).scalars()
        )
        for row in rows:
            reason = "no file arrived before the upload URL expired"
            if row.station_status == "Uploaded":
                reason += " (the station said it uploaded one)"
            _close(row, DiagnosticsState.EXPIRED, now, reason)
            audit(
                db,
                actor="system",
                action="diagnostics.expired",
                object_type="station",
                object_id=row.station_id,
                at=now,
                request_id=row.id,
            )
        return len(rows)

    return await ctx.write(job)


# ---- receiving the file ------------------------------------------------------------------------


async def _claim(ctx: ServiceContext, request_id: int, secret: str) -> DiagnosticsRequest:
    now = ctx.now()

    async def job(db: AsyncSession) -> DiagnosticsRequest:
        row = await db.get(DiagnosticsRequest, request_id, with_for_update=True)
        stored = row.secret_sha256 if row is not None else _DUMMY_HASH
        if not hmac.compare_digest(stored, _hash(secret)) or row is None:
            raise UploadNotFound("no such upload URL")
        if row.storage_key is not None:
            raise UploadAlreadyReceived("a file was already received for this upload URL; it is kept")
        if now >= row.expires_at:
            raise UploadExpired("this upload URL has expired")
        if row.receiving_since is not None and now - row.receiving_since < _STALE_CLAIM:
            raise UploadInProgress("another upload to this URL is in progress")
        row.receiving_since = now
        return row

    return await ctx.write(job)


async def _release(ctx: ServiceContext, request_id: int) -> None:
    async def job(db: AsyncSession) -> None:
        row = await db.get(DiagnosticsRequest, request_id, with_for_update=True)
        if row is not None:
            row.receiving_since = None

    await ctx.write(job)


async def receive_upload(
    ctx: ServiceContext,
    request_id: int,
    secret: str,
    file_name: str | None,
    content_type: str | None,
    chunks: AsyncIterator[bytes],
) -> DiagnosticsRequest:
    """Store the file a station uploads, streaming, at most `upload_max_bytes`. Raises
    UploadNotFound, UploadAlreadyReceived, UploadInProgress, UploadExpired, or the storage's
    FileTooLarge (nothing kept, and the URL stays usable for a retry)."""
    row = await _claim(ctx, request_id, secret)
    name = safe_file_name(file_name or row.file_name, f"diagnostics-{row.id}.log")
    key = f"diagnostics/{row.id}/{name}"
    storage = storage_of(ctx)
    try:
        stored = await storage.put(key, chunks, ctx.settings.upload_max_bytes)
    except BaseException:
        await _release(ctx, request_id)
        raise
    return await _finish(ctx, request_id, stored, name, content_type)


async def _finish(
    ctx: ServiceContext, request_id: int, stored: StoredFile, name: str, content_type: str | None
) -> DiagnosticsRequest:
    at = ctx.now()

    async def job(db: AsyncSession) -> DiagnosticsRequest:
        row = await db.get(DiagnosticsRequest, request_id, with_for_update=True)
        assert row is not None
        row.storage_key, row.file_name = stored.key, name
        row.file_size, row.file_sha256 = stored.size, stored.sha256
        row.content_type = (content_type or "application/octet-stream")[:100]
        row.receiving_since = None
        row.uploaded_at = at
        _close(row, DiagnosticsState.UPLOADED, at, None)
        audit(
            db,
            actor=f"station:{row.station_id}",
            action="diagnostics.file.received",
            object_type="station",
            object_id=row.station_id,
            at=at,
            request_id=row.id,
            size=stored.size,
            sha256=stored.sha256,
        )
        return row

    row = await ctx.write(job)
    await ctx.bus.publish(
        Event(
            "diagnostics.uploaded",
            {"station_id": row.station_id, "request_id": row.id, "size": row.file_size},
        )
    )
    return row


# ---- reading -----------------------------------------------------------------------------------


async def list_requests(
    ctx: ServiceContext, station_id: str | None = None, state: str | None = None, limit: int = 100
) -> list[DiagnosticsRequest]:
    await expire_overdue(ctx)
    query = select(DiagnosticsRequest)
    if station_id is not None:
        query = query.where(DiagnosticsRequest.station_id == station_id)
    if state is not None:
        query = query.where(DiagnosticsRequest.state == state)
    async with ctx.db() as db:
        return list((await db.execute(query.order_by(DiagnosticsRequest.id.desc()).limit(limit))).scalars())


async def get_request(ctx: ServiceContext, request_id: int) -> DiagnosticsRequest:
    await expire_overdue(ctx)
    async with ctx.db() as db:
        row = await db.get(DiagnosticsRequest, request_id)
    if row is None:
        raise DiagnosticsNotFound(f"no diagnostics request {request_id}")
    return row


async def open_file(
    ctx: ServiceContext, actor: str, request_id: int
) -> tuple[DiagnosticsRequest, AsyncIterator[bytes]]:
    """The stored file as a stream, for a download that is audited."""
    row = await get_request(ctx, request_id)
    storage = storage_of(ctx)
    if row.storage_key is None or await storage.size(row.storage_key) is None:
        raise DiagnosticsNotFound(f"diagnostics request {request_id} has no file (state {row.state})")
    key = row.storage_key

    async def job(db: AsyncSession) -> None:
        audit(
            db,
            actor=actor,
            action="diagnostics.file.downloaded",
            object_type="station",
            object_id=row.station_id,
            at=ctx.now(),
            request_id=row.id,
        )

    await ctx.write(job)
    return row, storage.open(key)
