"""Station lifecycle: admission, connect/disconnect, boot, heartbeat, status, reported events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, Update, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.config import UnknownStationPolicy
from stekker.db.models import ChargingStation, Connector, Evse, StationEvent, StatusHistory
from stekker.db.writer import defer
from stekker.domain.health import DisconnectCause
from stekker.domain.identifiers import evse_emi3_id
from stekker.domain.passwords import verify_password
from stekker.domain.station_auth import NO_AUTHENTICATION_PROFILE, Authentication, authentication_of
from stekker.domain.storage_budget import WINDOW, Spend, cut_detail, detail_size
from stekker.services.audit import record_station_event, station_event
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog, database_unavailable

log = logging.getLogger(__name__)


class Admission(StrEnum):
    """Whether a WebSocket handshake from a station may proceed."""

    ADMIT = "admit"
    UNKNOWN = "unknown"
    BAD_CREDENTIALS = "bad_credentials"
    RETIRED = "retired"
    INSECURE_TRANSPORT = "insecure_transport"  # below the station's security profile
    BAD_CERTIFICATE = "bad_certificate"  # a client certificate that names another station


@dataclass(frozen=True, slots=True)
class Transport:
    """How a station's handshake arrived, as the gateway saw it; `admit` judges it.

    `client_cn` is the subject CN of a client certificate the TLS layer verified against
    our client CA (None: no certificate, or no CA configured).
    """

    tls: bool = False
    client_cn: str | None = None

    @property
    def scheme(self) -> str:
        return "wss" if self.tls else "ws"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to a handshake. `reason` says why a refusal happened (shown to the station
    and recorded for the operator); `security_profile` is the profile an admitted connection
    reached: 0 no authentication, 1 password over ws, 2 password over wss, 3 client certificate."""

    admission: Admission
    reason: str = ""
    security_profile: int | None = None


async def admit(
    ctx: ServiceContext, station_id: str, password: str | None, transport: Transport | None = None
) -> Verdict:
    """Check a connecting station: known (or accepted as new), not retired, and at or above
    its security profile.

    The profile stored with the station is a minimum, so a station can be moved up (OCPP's
    upgrade path) before it reconnects at the new profile: 1 needs the password, 2 the
    password over TLS, 3 a client certificate verified by our CA whose CN is the station id
    (no password then). Without a stored profile a stored password must be presented. Only a
    station registered explicitly without authentication (profile 0, for trials and closed
    networks) connects without credentials: one with none that is not marked so is refused,
    as anyone knowing its id could take its place (`stekker.domain.station_auth`). A station
    accepted by the unknown-stations policy is registered so, and says so in its timeline.
    The lookup is a pooled read, never queued behind the writer: in a boot storm the writer
    is busy with the set-up of the stations already in, and a handshake that waited there
    timed out (websockets' 10 s) with nothing in our log. Only what must be written (a station
    registered by policy, a sampled refusal) goes through the writer. The scrypt check
    happens outside any transaction.
    """
    now = ctx.now()
    transport = transport or Transport()
    certified = transport.tls and transport.client_cn == station_id

    async with ctx.db() as db:
        station = await db.get(ChargingStation, station_id)
    if station is None:
        if ctx.settings.unknown_stations is not UnknownStationPolicy.ACCEPT:
            await _record_refusal(ctx, station_id, now, reason="unknown station")
            return Verdict(Admission.UNKNOWN, f"unknown station {station_id}")
        return await _register_by_policy(ctx, station_id, certified, now)
    verdict, stored = _judge(station, station_id, transport, certified)
    if verdict.admission is not Admission.ADMIT:
        by_transport = verdict.admission in (Admission.INSECURE_TRANSPORT, Admission.BAD_CERTIFICATE)
        detail = {"transport": transport.scheme} if by_transport else {}
        # the timeline names no station id: it is the station's own
        recorded = "station is retired" if verdict.admission is Admission.RETIRED else verdict.reason
        await _record_refusal(ctx, station_id, now, reason=recorded, **detail)
        return verdict
    if stored is None:
        return verdict
    if not await _password_ok(ctx, station_id, stored, password):
        reason = "bad or missing credentials"
        await _record_refusal(ctx, station_id, now, reason=reason, transport=transport.scheme)
        return Verdict(Admission.BAD_CREDENTIALS, reason)
    return Verdict(Admission.ADMIT, security_profile=2 if transport.tls else 1)


def _sample_refusal(ctx: ServiceContext, station_id: str, reason: str, now: datetime) -> int | None:
    """Refused handshakes are counted, and recorded at most once a minute per station id and
    reason, with how many refusals the record stands for; a summary line is logged once a
    minute."""
    refusals = ctx.refusals.offer(f"{station_id}\x00{reason}", now)
    summary = ctx.refusals.summary(now)
    if summary is not None:
        log.warning("refused %d station handshakes (%d station id and reason pairs) in %.0f s", *summary)
    return refusals


async def guessing_throttled(ctx: ServiceContext, station_id: str, address: str, wait: int) -> None:
    """A handshake refused before its password was checked, because wrong passwords came
    from its address; recorded like the other refusals (sampled), so the timeline shows it."""
    reason = "too many wrong passwords from this address"
    await _record_refusal(ctx, station_id, ctx.now(), reason=reason, address=address, retry_after=wait)


def _judge(
    station: ChargingStation, station_id: str, transport: Transport, certified: bool
) -> tuple[Verdict, str | None]:
    """A known station's verdict before its password, and the password hash still to check."""
    if station.retired_at is not None:
        return Verdict(Admission.RETIRED, f"station {station_id} is retired"), None
    refusal = _below_profile(station_id, station.security_profile, transport)
    if refusal is not None:
        return refusal, None
    if certified:  # a verified certificate naming this station outranks any password
        return Verdict(Admission.ADMIT, security_profile=3), None
    if station.password_hash is None and (station.security_profile or 0) > 0:
        reason = f"station {station_id} has security profile {station.security_profile} but no password"
        return Verdict(Admission.BAD_CREDENTIALS, reason), None
    if authentication_of(station.security_profile, station.password_hash is not None) is (
        Authentication.MISSING
    ):
        reason = (
            f"station {station_id} has no credentials and is not registered without authentication: "
            "give it a password or a certificate"
        )
        return Verdict(Admission.BAD_CREDENTIALS, reason), None
    return Verdict(Admission.ADMIT, security_profile=0), station.password_hash


async def _register_by_policy(
    ctx: ServiceContext, station_id: str, certified: bool, now: datetime
) -> Verdict:
    """An unknown station the policy accepts: registered (once, if two handshakes race)."""
    profile = 3 if certified else NO_AUTHENTICATION_PROFILE

    async def job(db: AsyncSession) -> None:
        if await db.get(ChargingStation, station_id) is not None:
            return
        db.add(ChargingStation(id=station_id, created_at=now, security_profile=profile))
        station_event(
            db,
            station_id,
            "registered",
            now,
            reason="unknown station accepted by policy",
            authentication=authentication_of(profile, False).value,
        )

    await ctx.write(job)
    return Verdict(Admission.ADMIT, security_profile=3 if certified else 0)


async def _record_refusal(
    ctx: ServiceContext, station_id: str, now: datetime, reason: str, **detail: Any
) -> None:
    refusals = _sample_refusal(ctx, station_id, reason, now)
    if refusals is not None:
        await record_station_event(
            ctx, station_id, "connection_refused", reason=reason, refusals=refusals, **detail
        )


def _below_profile(station_id: str, profile: int | None, transport: Transport) -> Verdict | None:
    """A refusal when the transport alone cannot reach the station's profile (2: TLS; 3: TLS
    and a certificate naming the station); the password is checked afterwards."""
    if profile is None or profile < 2:
        return None
    if not transport.tls:
        return Verdict(
            Admission.INSECURE_TRANSPORT,
            f"station {station_id} must connect over TLS (security profile {profile})",
        )
    if profile < 3 or transport.client_cn == station_id:
        return None
    if transport.client_cn is None:
        return Verdict(
            Admission.INSECURE_TRANSPORT,
            f"station {station_id} must present a client certificate (security profile 3)",
        )
    return Verdict(
        Admission.BAD_CERTIFICATE,
        f"client certificate is for {transport.client_cn!r}, not station {station_id} (security profile 3)",
    )


async def _password_ok(ctx: ServiceContext, station_id: str, stored: str, password: str | None) -> bool:
    if password is None:
        return False
    if ctx.credentials.known(station_id, stored, password):
        return True
    # scrypt is slow on purpose: keep it off the event loop
    if not await asyncio.to_thread(verify_password, password, stored):
        return False
    ctx.credentials.remember(station_id, stored, password)
    return True


async def warn_weak_admission(ctx: ServiceContext) -> int:
    """At start, warn what lets a station in without credentials: stations registered without
    authentication (counted), and the policy that accepts unknown stations. Returns the count."""
    async with ctx.db() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(ChargingStation)
            .where(
                ChargingStation.retired_at.is_(None),
                ChargingStation.security_profile == NO_AUTHENTICATION_PROFILE,
            )
        )
    unauthenticated = int(count or 0)
    if unauthenticated:
        log.warning(
            "%d station(s) are registered without authentication: anyone who knows such a station's id "
            'can connect in its place (GET /api/stations shows authentication "none"; give each a '
            "password with PATCH /api/stations/{id})",
            unauthenticated,
        )
    if ctx.settings.unknown_stations is UnknownStationPolicy.ACCEPT:
        log.warning(
            "STEKKER_UNKNOWN_STATIONS=accept: any station that connects is registered, without "
            "authentication; meant for demos and onboarding, set it to reject in production"
        )
    return unauthenticated


async def mark_all_offline(ctx: ServiceContext) -> int:
    """At gateway start no station is connected yet, whatever a crash left in the table.
    A station left online gets the disconnect the dead process never wrote, dated at its last
    sign of life. Only for a single gateway (no Redis): in a cluster the other gateways hold
    their stations, and `mark_orphans_offline` finds those of a gateway that died."""
    now = ctx.now()
    table = cast(Table, ChargingStation.__table__)
    close = (
        table.update()
        .where(table.c.id == bindparam("b_id"))
        .values(online=False, disconnected_at=bindparam("b_at"))
    )

    async def job(db: AsyncSession) -> int:
        left = (
            await db.execute(
                select(ChargingStation.id, ChargingStation.last_seen).where(ChargingStation.online.is_(True))
            )
        ).all()
        if not left:
            return 0
        await db.execute(close, [{"b_id": sid, "b_at": seen or now} for sid, seen in left])
        await db.execute(
            insert(StationEvent),
            [
                {
                    "station_id": sid,
                    "kind": "disconnected",
                    "detail": {
                        "code": None,
                        "reason": "the central system stopped without closing the connection",
                        "cause": DisconnectCause.GATEWAY_RESTART.value,
                    },
                    "occurred_at": seen or now,
                }
                for sid, seen in left
            ],
        )
        return len(left)

    return await ctx.write(job)


class OwnerLookup(Protocol):
    """What the orphan sweep asks the station registry (stekker.cluster.registry)."""

    async def live_owners(self, station_ids: list[str]) -> Mapping[str, object]: ...


async def mark_orphans_offline(
    ctx: ServiceContext,
    registry: OwnerLookup,
    suspects: dict[str, datetime],
    grace: timedelta,
) -> list[str]:
    """A cluster's replacement for `mark_all_offline`: a station `online` in the database that
    no live gateway holds (no owner in the registry, or an owner whose heartbeat expired: a
    killed gateway) gets the disconnect its gateway never wrote, dated at its last sign of
    life, cause `gateway_lost`. Returns the station ids marked offline.

    A station must stay an orphan for `grace` (two sweeps at least) before it is marked:
    a socket closing normally is released a moment before its disconnect is written, and a
    Redis that restarted empty is refilled by the gateways' resync within seconds. `suspects`
    (station → when first seen orphaned) is the caller's memory between sweeps. A station that
    connected again since it was first suspected (connected_at later) is left alone, so a
    reconnect racing the sweep is never undone; that check also leaves `grace` of margin for
    clocks that differ between machines.
    """
    now = ctx.now()
    async with ctx.db() as db:
        online = [
            str(sid) for sid in (await db.scalars(select(ChargingStation.id).where(ChargingStation.online)))
        ]
    held = await registry.live_owners(online)
    orphans = {sid for sid in online if sid not in held}
    for sid in list(suspects):
        if sid not in orphans:
            del suspects[sid]  # back online, or offline by its own gateway's hand
    due: dict[datetime, list[str]] = {}
    for sid in sorted(orphans):
        first = suspects.setdefault(sid, now)
        if now - first >= grace:
            due.setdefault(first, []).append(sid)
    if not due:
        return []
    reason = "the gateway holding the connection stopped without closing it"

    async def job(db: AsyncSession) -> list[tuple[str, datetime | None]]:
        closed: list[tuple[str, datetime | None]] = []
        for first, ids in due.items():
            rows = await db.execute(
                update(ChargingStation)
                .where(
                    ChargingStation.id.in_(ids),
                    ChargingStation.online.is_(True),
                    (ChargingStation.connected_at.is_(None)) | (ChargingStation.connected_at < first),
                )
                .values(online=False, disconnected_at=func.coalesce(ChargingStation.last_seen, now))
                .returning(ChargingStation.id, ChargingStation.last_seen)
                .execution_options(synchronize_session=False)
            )
            closed.extend((str(sid), seen) for sid, seen in rows.all())
        if closed:
            await db.execute(
                insert(StationEvent),
                [
                    {
                        "station_id": sid,
                        "kind": "disconnected",
                        "detail": {
                            "code": None,
                            "reason": reason,
                            "cause": DisconnectCause.GATEWAY_LOST.value,
                        },
                        "occurred_at": seen or now,
                    }
                    for sid, seen in closed
                ],
            )
        return closed

    closed = await ctx.write(job)
    for ids in due.values():
        for sid in ids:
            suspects.pop(sid, None)
    if closed:
        log.warning("%d station(s) held by a gateway that is gone marked offline", len(closed))
    for sid, _seen in closed:
        await ctx.bus.publish(Event("station.disconnected", {"station_id": sid}))
    return [sid for sid, _seen in closed]


@dataclass(frozen=True, slots=True)
class ConnectionEnd:
    """How one WebSocket of a station ended, for its timeline and health (requirement 96).

    `code`/`reason` are the close frame the station sent (1006 and "": none); `sent_code` is
    the one we sent, if any; `missed_heartbeats` counts the heartbeat intervals it was silent
    before the end (see `stekker.domain.health.missed_heartbeats`), from `silent_since`.
    """

    cause: DisconnectCause
    code: int | None = None
    reason: str = ""
    sent_code: int | None = None
    duration_s: float | None = None
    missed_heartbeats: int = 0
    silent_since: datetime | None = None


def _record_end(db: AsyncSession, station_id: str, end: ConnectionEnd, at: datetime) -> None:
    """A `disconnected` event, or `connection_replaced` when a newer socket took over (the
    station stays online then)."""
    detail: dict[str, Any] = {"code": end.code, "reason": end.reason, "cause": end.cause.value}
    if end.sent_code is not None:
        detail["sent_code"] = end.sent_code
    if end.duration_s is not None:
        detail["duration_s"] = round(end.duration_s, 3)
    if end.missed_heartbeats and end.silent_since is not None:  # the gap belongs to this connection
        station_event(
            db,
            station_id,
            "heartbeat_missed",
            at,
            missed=end.missed_heartbeats,
            silent_since=end.silent_since.isoformat(),
            silent_s=round((at - end.silent_since).total_seconds(), 3),
            ended_by="disconnect",
        )
    kind = "connection_replaced" if end.cause is DisconnectCause.REPLACED else "disconnected"
    station_event(db, station_id, kind, at, **detail)


async def connected(
    ctx: ServiceContext,
    station_id: str,
    protocol: str,
    remote: str,
    transport: Transport | None = None,
    security_profile: int | None = None,
    replaced: ConnectionEnd | None = None,
    at: datetime | None = None,
) -> None:
    """Mark the station online; its timeline records how it came in (ws/wss, profile, CN).

    `replaced`: the station still had a socket here (a zombie, or a reconnect we had not
    noticed yet); its end is recorded first, in the same transaction. `at`: the time to record
    (the gateway passes it, to name this connection in `disconnected`).
    """
    now = at or ctx.now()
    link: dict[str, Any] = {}
    if transport is not None:
        link["transport"] = transport.scheme
        if transport.client_cn is not None:
            link["client_cn"] = transport.client_cn
    if security_profile is not None:
        link["security_profile"] = security_profile

    async def job(db: AsyncSession) -> None:
        if replaced is not None:
            _record_end(db, station_id, replaced, now)
        await db.execute(
            update(ChargingStation)
            .where(ChargingStation.id == station_id)
            .values(
                online=True,
                ocpp_version=protocol,
                connected_at=now,
                last_seen=now,
                # the first connection is not a reconnect: only count once it connected before
                reconnect_count=case(
                    (ChargingStation.connected_at.is_(None), ChargingStation.reconnect_count),
                    else_=ChargingStation.reconnect_count + 1,
                ),
            )
        )
        station_event(db, station_id, "connected", now, protocol=protocol, remote=remote, **link)

    await ctx.write(job)
    await ctx.bus.publish(Event("station.connected", {"station_id": station_id, "protocol": protocol}))


async def disconnected(
    ctx: ServiceContext,
    station_id: str,
    code: int | None,
    reason: str,
    end: ConnectionEnd | None = None,
    connected_at: datetime | None = None,
) -> None:
    """Mark the station offline; its timeline records why (`end`, when the gateway knows).

    `connected_at`: when the connection that ended was recorded as connected. A newer one (the
    station reconnected to another gateway of the cluster within milliseconds, and that
    gateway's `connected` committed first) keeps the station online."""
    now = ctx.now()
    end = end or ConnectionEnd(DisconnectCause.CONNECTION_LOST, code, reason)
    newer = ChargingStation.connected_at.is_not(None) & (ChargingStation.connected_at > connected_at)

    async def job(db: AsyncSession) -> None:
        await db.execute(
            update(ChargingStation)
            .where(ChargingStation.id == station_id, *(() if connected_at is None else (~newer,)))
            .values(online=False, disconnected_at=now)
        )
        _record_end(db, station_id, end, now)

    await ctx.write(job)
    await ctx.bus.publish(Event("station.disconnected", {"station_id": station_id}))


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a station tells about itself at boot, version-neutral."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BootResult:
    status: str
    interval: int
    current_time: datetime


async def boot(ctx: ServiceContext, station_id: str, info: BootInfo) -> BootResult:
    """Record a boot. The registration status is the station's stored one (operators can
    hold a station in Pending, e.g. before commissioning)."""
    now = ctx.now()

    async def job(db: AsyncSession) -> str:
        station = await db.get(ChargingStation, station_id)
        if station is None:  # admitted but deleted meanwhile
            return "Rejected"
        station.vendor = info.vendor
        station.model = info.model
        station.serial_number = info.serial_number
        station.firmware_version = info.firmware_version
        station.iccid = info.iccid
        station.imsi = info.imsi
        station.meter_type = info.meter_type
        station.meter_serial_number = info.meter_serial_number
        station.last_boot_at = now
        station.last_seen = now
        station_event(
            db,
            station_id,
            "boot",
            now,
            status=station.registration_status,
            reason=info.reason,
            vendor=info.vendor,
            model=info.model,
            firmware=info.firmware_version,
        )
        return station.registration_status

    status = await ctx.write(job)
    await ctx.bus.publish(Event("station.booted", {"station_id": station_id, "status": status}))
    return BootResult(status, ctx.settings.heartbeat_interval, now)


class LastSeenTracker:
    """Keeps `last_seen` in memory and writes it in batches: a heartbeat of 10,000 stations
    should not be 10,000 transactions. Connect, boot and disconnect write it at once."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._pending: dict[str, datetime] = {}

    def touch(self, station_id: str) -> None:
        self._pending[station_id] = self._ctx.now()

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        table = cast(Table, ChargingStation.__table__)
        statement = (
            table.update().where(table.c.id == bindparam("b_id")).values(last_seen=bindparam("b_seen"))
        )
        # in id order: two transactions that lock the same stations' rows in the same order wait for
        # each other instead of deadlocking (PostgreSQL, several writers, a boot storm)
        rows = [{"b_id": station_id, "b_seen": pending[station_id]} for station_id in sorted(pending)]

        async def job(db: AsyncSession) -> None:
            await db.execute(statement, rows)  # one executemany, not a statement per station

        try:
            await self._ctx.write(job)
        except Exception:
            for station_id, seen in pending.items():  # keep them for the next flush
                self._pending.setdefault(station_id, seen)
            raise

    async def run(self) -> None:
        outage = OutageLog("last_seen writer", log)
        while True:
            await asyncio.sleep(self._ctx.settings.last_seen_flush_interval)
            try:
                await self.flush()
            except Exception as exc:
                if database_unavailable(exc):
                    outage.failed(exc)  # one line per outage, not one per flush
                else:
                    log.exception("could not write last_seen")
            else:
                outage.ok()


async def ensure_evse(db: AsyncSession, ctx: ServiceContext, station_id: str, evse_number: int) -> Evse:
    """The EVSE with this number, created (with its eMI3 id) when first reported."""
    evse = (
        await db.execute(select(Evse).where(Evse.station_id == station_id, Evse.evse_number == evse_number))
    ).scalar_one_or_none()
    if evse is None:
        evse = Evse(
            station_id=station_id,
            evse_number=evse_number,
            evse_id=evse_emi3_id(ctx.settings.evse_id_prefix, station_id, evse_number),
            created_at=ctx.now(),
        )
        db.add(evse)
        await db.flush()
    return evse


async def ensure_connector(db: AsyncSession, evse: Evse, connector_number: int) -> Connector:
    connector = (
        await db.execute(
            select(Connector).where(
                Connector.evse_id == evse.id, Connector.connector_number == connector_number
            )
        )
    ).scalar_one_or_none()
    if connector is None:
        # our placeholder until the station reports its type or an operator enters it
        connector = Connector(evse_id=evse.id, connector_number=connector_number, assumed=True)
        db.add(connector)
        await db.flush()
    return connector


async def resolve_connector(
    db: AsyncSession, ctx: ServiceContext, station_id: str, evse_number: int, connector_number: int
) -> int:
    """The connector's primary key, creating EVSE and connector when first reported.

    Only keys that were already committed are remembered: a key made in this transaction
    could still be rolled back with it.
    """
    pk = (
        await db.execute(
            select(Connector.id)
            .join(Evse, Connector.evse_id == Evse.id)
            .where(
                Evse.station_id == station_id,
                Evse.evse_number == evse_number,
                Connector.connector_number == connector_number,
            )
        )
    ).scalar_one_or_none()
    if pk is not None:
        ctx.directory.remember(station_id, evse_number, connector_number, pk)
        return pk
    connector = await ensure_connector(
        db, await ensure_evse(db, ctx, station_id, evse_number), connector_number
    )
    return connector.id


def _status_statements(table: Table) -> tuple[Update, Update]:
    """Two UPDATEs, built once per table: the first applies a different status, the second
    (only when nothing changed) moves the timestamp of the same status forward. Both skip a
    report older than the one already applied (an offline queue arriving late)."""
    c = table.c
    newer = c.status_at.is_(None) | (c.status_at <= bindparam("b_at"))
    different = c.status.is_distinct_from(bindparam("b_status")) | c.error_code.is_distinct_from(
        bindparam("b_error")
    )
    change = (
        table.update()
        .where(c.id == bindparam("b_key"), newer, different)
        .values(status=bindparam("b_status"), error_code=bindparam("b_error"), status_at=bindparam("b_at"))
    )
    touch = table.update().where(c.id == bindparam("b_key"), newer).values(status_at=bindparam("b_at"))
    return change, touch


_STATUS_UPDATES = {
    "station": _status_statements(cast(Table, ChargingStation.__table__)),
    "connector": _status_statements(cast(Table, Connector.__table__)),
}
_INSERT_STATUS_HISTORY = insert(cast(Table, StatusHistory.__table__))


async def _set_current_status(db: AsyncSession, target: str, key: str | int, report: StatusReport) -> bool:
    """Make the report the current status unless a newer one is known; True if it changed."""
    change, touch = _STATUS_UPDATES[target]
    params = {"b_key": key, "b_at": report.timestamp, "b_status": report.status, "b_error": report.error_code}
    result = await db.execute(change, params)
    if cast(CursorResult[Any], result).rowcount:
        return True
    await db.execute(touch, params)
    return False


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A StatusNotification, version-neutral. evse_number 0 means the whole station."""

    evse_number: int
    connector_number: int
    status: str
    timestamp: datetime
    error_code: str | None = None
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None


async def report_status(ctx: ServiceContext, station_id: str, report: StatusReport) -> None:
    """Store the status in the history, and as current status unless a newer one is known."""
    now = ctx.now()

    async def job(db: AsyncSession) -> bool:
        defer(
            db,
            _INSERT_STATUS_HISTORY,
            [
                {
                    "station_id": station_id,
                    "evse_number": report.evse_number,
                    "connector_number": report.connector_number,
                    "status": report.status,
                    "error_code": report.error_code,
                    "info": report.info,
                    "vendor_id": report.vendor_id,
                    "vendor_error_code": report.vendor_error_code,
                    "timestamp": report.timestamp,
                    "received_at": now,
                }
            ],
        )
        if report.evse_number == 0:
            return await _set_current_status(db, "station", station_id, report)
        number = (station_id, report.evse_number, report.connector_number)
        known = ctx.directory.connector(*number)
        key = known if known is not None else await resolve_connector(db, ctx, *number)
        return await _set_current_status(db, "connector", key, report)

    changed = await ctx.write(job)
    if changed:
        await ctx.bus.publish(
            Event(
                "station.status",
                {
                    "station_id": station_id,
                    "evse_number": report.evse_number,
                    "connector_number": report.connector_number,
                    "status": report.status,
                    "error_code": report.error_code,
                },
            )
        )


async def flooding(ctx: ServiceContext, station_id: str, **detail: Any) -> None:
    """The gateway disconnected the station for sending faster than its share, for too long."""
    await record_station_event(ctx, station_id, "flooding", **detail)


async def record_event(ctx: ServiceContext, station_id: str, kind: str, **detail: Any) -> None:
    """Store something a station reported that has no table of its own (firmware, diagnostics,
    vendor data transfer, security events): cut to `station_event_max_bytes`, and charged to
    the station's storage budget (over it: counted, not stored; see
    `stekker.domain.storage_budget`)."""
    s = ctx.settings
    detail = cut_detail(detail, s.station_event_max_bytes)
    spend = ctx.storage.spend(station_id, detail_size(detail), ctx.now(), s.ocpp_station_storage_per_hour)
    if spend is Spend.OVER:
        return
    if spend is Spend.EXCEEDED:
        kind, detail = "storage_budget_exceeded", budget_notice(ctx, station_id, kind)
    await record_station_event(ctx, station_id, kind, **detail)


def budget_notice(ctx: ServiceContext, station_id: str, what: str) -> dict[str, Any]:
    """The detail of a station's one `storage_budget_exceeded` event of the hour."""
    usage = ctx.storage.usage(station_id, ctx.now())
    budget = ctx.settings.ocpp_station_storage_per_hour
    log.warning(
        "%s: storage budget of %d bytes this hour spent; its %s and what follows until %s is counted, "
        "not stored",
        station_id,
        budget,
        what,
        (usage.window_start + WINDOW).isoformat(),
    )
    return {
        "budget_bytes": budget,
        "used_bytes": usage.used_bytes,
        "window_start": usage.window_start.isoformat(),
        "window_end": (usage.window_start + WINDOW).isoformat(),
        "first_not_stored": what,
    }
