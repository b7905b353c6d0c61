"""CDRs: the immutable bill of every finished session, and corrections as credit + new CDR.

A session that ends (`session.stopped`) gets its CDR from `CdrWorker`; a housekeeping sweep
(`build_missing`) catches the ones a crash left without. Building is idempotent: the first
CDR of a session is sequence 1 (unique with the session), so a repeated stop, a retried
event and the sweep all end at the same row.

The price: the tariff version in effect at the session's START (never a later one), on
the periods derived from the session's registers and states
(`stekker.domain.charging_periods`), capped by the municipality's cap in force at the
start. No tariff: the CDR still exists, costs 0, says so, and the station's timeline tells
the operator. A correction never edits: it adds a credit CDR cancelling the old one and a
new CDR priced on the corrected facts, with the same tariff version and cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import (
    ChargingSession,
    ChargingStation,
    Connector,
    Evse,
    Location,
    MeterValue,
    SessionStatus,
    StatusHistory,
    Token,
    TransactionEvent,
)
from stekker.db.models_tariffs import Cdr, CdrKind, PriceCap, TariffVersion
from stekker.domain.authorization import UNDECIDED, AuthStatus, refused
from stekker.domain.billing import Bill, bill
from stekker.domain.cdr_document import (
    CdrFacts,
    CdrLocation,
    CdrToken,
    build_document,
    credit_document,
    number,
    timestamp,
    with_ocpi_times,
)
from stekker.domain.charging_periods import (
    DerivedPeriods,
    SessionWindow,
    StateChange,
    charging_from_charging_state,
    charging_from_status,
    derive_periods,
)
from stekker.domain.metering import SampledValue
from stekker.domain.price_caps import CapOutcome, PriceCapRule, apply_cap
from stekker.domain.pricing import PricedSession, price_session
from stekker.domain.tariffs import DimensionType, PriceComponent, Tariff, TariffElement
from stekker.services import paging, tariff_lookup
from stekker.services.audit import audit, station_event
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Invalid, Missing

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
#: The sweep leaves sessions this young to the worker that is building them right now.
MISSING_AFTER = timedelta(seconds=5)
SWEEP_BATCH = 200
NO_TARIFF_REMARK = "no tariff applied: this session is not charged"
_TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})


@dataclass(frozen=True, slots=True)
class CdrView:
    """A CDR as the API and CLI show it: our columns plus the OCPI document (`data`)."""

    id: int
    cdr_uid: str
    session_id: int
    sequence: int
    kind: str
    credits_cdr_uid: str | None
    replaces_cdr_uid: str | None
    credited_by_cdr_uid: str | None
    station_id: str
    location_id: int | None
    evse_uid: str | None
    token_uid: str | None
    party: str | None
    tariff_version_id: int | None
    price_cap_id: int | None
    currency: str
    start_time: datetime
    end_time: datetime
    total_energy_wh: int
    total_time_s: int
    total_parking_time_s: int
    total_cost_excl_vat: Decimal
    total_cost_incl_vat: Decimal
    capped_by: str | None
    energy_supplier: str | None
    energy_contract_id: str | None
    reason: str | None
    readings: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CdrFilter:
    """Which CDRs to list: every given criterion must hold; `since`/`until` bound `end_time`
    (since inclusive, until exclusive). Newest first; `before_id` continues a page (keyset)."""

    station_id: str | None = None
    location_id: int | None = None
    party: str | None = None
    session_id: int | None = None
    kind: CdrKind | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100
    offset: int = 0


# --- gathering what a session rests on -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionPrice:
    """One session priced, with everything the CDR row and document (and the OCPI Session
    object, `price_so_far`) need."""

    derived: DerivedPeriods
    priced: PricedSession
    outcome: CapOutcome
    bill: Bill
    tariff: tariff_lookup.ResolvedTariff | None
    cap_id: int | None
    facts: CdrFacts
    party: str | None
    location_id: int | None


def _free_tariff(currency: str) -> Tariff:
    """What prices a session no tariff applies to: nothing (it yields the periods, at 0)."""
    return Tariff(
        id="",
        currency=currency,
        elements=(TariffElement((PriceComponent(DimensionType.ENERGY, Decimal(0)),)),),
    )


async def _samples(db: AsyncSession, session_id: int) -> list[SampledValue]:
    rows = (
        await db.execute(
            select(MeterValue).where(MeterValue.session_id == session_id).order_by(MeterValue.timestamp)
        )
    ).scalars()
    return [
        SampledValue(
            timestamp=r.timestamp,
            value=r.value,
            measurand=r.measurand,
            phase=r.phase,
            unit=r.unit,
            context=r.context,
            location=r.location,
            format=r.format,
        )
        for r in rows
    ]


async def _states(db: AsyncSession, session: ChargingSession, end: datetime) -> list[StateChange]:
    """Charging or not over time: a 2.0.1 transaction's chargingState when it reported one
    (its connector status, Occupied, says nothing about charging), else the 1.6 connector's
    StatusNotifications, including the one in force at the start."""
    events = (
        await db.execute(
            select(TransactionEvent.timestamp, TransactionEvent.seq_no, TransactionEvent.payload)
            .where(TransactionEvent.session_id == session.id)
            .order_by(TransactionEvent.timestamp, TransactionEvent.seq_no)
        )
    ).all()
    if events:
        changes = []
        for at, _seq, payload in events:
            info = payload.get("transactionInfo") if isinstance(payload, dict) else None
            state = info.get("chargingState") if isinstance(info, dict) else None
            charging = charging_from_charging_state(state if isinstance(state, str) else None)
            if charging is not None:
                changes.append(StateChange(at, charging))
        return changes
    where = (
        StatusHistory.station_id == session.station_id,
        StatusHistory.evse_number == session.evse_number,
    )
    before = (
        await db.execute(
            select(StatusHistory.timestamp, StatusHistory.status)
            .where(*where, StatusHistory.timestamp <= session.start_time)
            .order_by(StatusHistory.timestamp.desc(), StatusHistory.id.desc())
            .limit(1)
        )
    ).all()
    during = (
        await db.execute(
            select(StatusHistory.timestamp, StatusHistory.status)
            .where(*where, StatusHistory.timestamp > session.start_time, StatusHistory.timestamp <= end)
            .order_by(StatusHistory.timestamp, StatusHistory.id)
        )
    ).all()
    return [StateChange(at, charging_from_status(status)) for at, status in [*before, *during]]


def auth_method(session: ChargingSession, token: Token | None) -> str:
    """OCPI AuthMethod: COMMAND for a remote start, WHITELIST when the station decided
    offline or we decided on a roaming partner's token from the copy it pushed us (no
    request reached its eMSP), AUTH_REQUEST for our own central authorization."""
    if session.remote_start_id is not None:
        return "COMMAND"
    if session.offline or (token is not None and token.whitelist is not None):
        return "WHITELIST"
    return "AUTH_REQUEST"


async def session_place(
    db: AsyncSession, session: ChargingSession
) -> tuple[CdrLocation, int | None, str | None]:
    """The CDR location, the location id and the station's meter serial number."""
    station = await db.get(ChargingStation, session.station_id)
    location = None
    if station is not None and station.location_id is not None:
        location = await db.get(Location, station.location_id)
    evse = await db.get(Evse, session.evse_pk) if session.evse_pk is not None else None
    connector = None
    if evse is not None:
        connector = (
            await db.execute(
                select(Connector).where(
                    Connector.evse_id == evse.id, Connector.connector_number == session.connector_number
                )
            )
        ).scalar_one_or_none()
    evse_id = (evse.evse_id if evse is not None else None) or f"{session.station_id}*{session.evse_number}"
    place = CdrLocation(
        id=str(location.id) if location is not None else session.station_id,
        name=location.name if location is not None else None,
        address=location.address if location is not None else "",
        city=location.city if location is not None else "",
        postal_code=location.postal_code if location is not None else None,
        country=location.country if location is not None else "NLD",
        latitude=location.latitude if location is not None else None,
        longitude=location.longitude if location is not None else None,
        evse_uid=evse_id,
        evse_id=evse_id,
        connector_id=str(session.connector_number),
        connector_standard=connector.standard if connector is not None else "IEC_62196_T2",
        connector_format=connector.format if connector is not None else "SOCKET",
        connector_power_type=connector.power_type if connector is not None else "AC_3_PHASE",
    )
    meter_id = station.meter_serial_number if station is not None else None
    return place, (location.id if location is not None else None), meter_id


async def _token_row(db: AsyncSession, session: ChargingSession) -> Token | None:
    return await db.get(Token, session.token_id) if session.token_id is not None else None


def _token(session: ChargingSession, token: Token | None) -> CdrToken:
    uid = session.token_uid or "UNKNOWN"
    if token is None:
        return CdrToken(uid=uid, type="OTHER")
    kind = token.type if token.type in _TOKEN_TYPES else "OTHER"
    return CdrToken(uid=uid, type=kind, contract_id=token.contract_id)


def _tariff_object(
    ctx: ServiceContext, resolved: tariff_lookup.ResolvedTariff, content: dict[str, Any]
) -> dict[str, Any]:
    """The OCPI Tariff object of the version that priced the session."""
    country, party = ctx.settings.party
    return {
        **content,
        "country_code": country,
        "party_id": party,
        "id": resolved.code,
        "currency": resolved.tariff.currency,
        "last_updated": timestamp(resolved.effective_from),
    }


async def _price(
    db: AsyncSession,
    ctx: ServiceContext,
    session: ChargingSession,
    cdr_uid: str,
    *,
    resolved: tariff_lookup.ResolvedTariff | None,
    cap: tuple[int, PriceCapRule] | None,
    stop: datetime | None,
    energy_override_wh: int | None = None,
    remark: str | None = None,
) -> SessionPrice:
    """Derive the periods, price them with `resolved`, cap them, and describe the CDR."""
    end_hint = stop or session.stop_time or ctx.now()
    window = SessionWindow(session.start_time, stop, session.meter_start_wh, session.meter_stop_wh)
    derived = derive_periods(
        window,
        await _samples(db, session.id),
        await _states(db, session, end_hint),
        grace=resolved.parking_grace if resolved is not None else timedelta(0),
        start_grace=timedelta(seconds=ctx.settings.charge_start_grace_seconds),
        energy_override_wh=energy_override_wh,
    )
    tz = await tariff_lookup.station_time_zone(db, session.station_id)
    currency = resolved.tariff.currency if resolved is not None else (cap[1].currency if cap else "EUR")
    tariff = resolved.tariff if resolved is not None else _free_tariff(currency)
    priced = price_session(tariff, derived.periods, tz)
    if resolved is None:
        outcome = CapOutcome(Decimal(0), Decimal(0), None, None)
        remark = "; ".join(r for r in (remark, NO_TARIFF_REMARK) if r)
    else:
        outcome = apply_cap(priced, cap[1] if cap is not None else None)
    place, location_id, meter_id = await session_place(db, session)
    tariff_object = None
    if resolved is not None:
        version = await db.get(TariffVersion, resolved.version_id)
        tariff_object = _tariff_object(ctx, resolved, dict(version.content) if version is not None else {})
    country, party_id = ctx.settings.party
    token = await _token_row(db, session)
    facts = CdrFacts(
        country_code=country,
        party_id=party_id,
        cdr_id=cdr_uid,
        session_id=str(session.id),
        start=derived.start,
        end=derived.end,
        periods_end=derived.periods[-1].end,
        token=_token(session, token),
        auth_method=auth_method(session, token),
        location=place,
        currency=currency,
        tariff=tariff_object,
        last_updated=ctx.now(),
        meter_id=meter_id,
        remark=remark,
    )
    party, _supplier = await tariff_lookup.session_customer(db, session)
    billed = bill(priced, outcome, resolved.tariff.max_price if resolved is not None else None)
    return SessionPrice(
        derived, priced, outcome, billed, resolved, cap[0] if cap else None, facts, party, location_id
    )


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _row(
    session: ChargingSession,
    cdr_uid: str,
    sequence: int,
    priced: SessionPrice,
    *,
    created_by: str,
    reason: str | None = None,
    replaces: int | None = None,
) -> Cdr:
    derived = priced.derived
    parked = sum((p.end - p.start for p in derived.periods if not p.charging), timedelta(0))
    return Cdr(
        cdr_uid=cdr_uid,
        session_id=session.id,
        sequence=sequence,
        kind=CdrKind.CHARGE,
        replaces_cdr_id=replaces,
        station_id=session.station_id,
        location_id=priced.location_id,
        evse_uid=priced.facts.location.evse_uid,
        token_uid=session.token_uid,
        party=priced.party,
        tariff_version_id=priced.tariff.version_id if priced.tariff is not None else None,
        price_cap_id=priced.cap_id,
        currency=priced.facts.currency,
        start_time=derived.start,
        end_time=derived.end,
        total_energy_wh=derived.energy_wh,
        total_time_s=_seconds(derived.end - derived.start),
        total_parking_time_s=_seconds(parked),
        total_cost_excl_vat=priced.bill.total_excl_vat,
        total_cost_incl_vat=priced.bill.total_incl_vat,
        capped_by=priced.bill.capped_by,
        energy_supplier=session.energy_supplier,
        energy_contract_id=session.energy_contract_id,
        reason=reason,
        data=build_document(priced.facts, priced.priced, priced.bill),
        readings=[{"at": timestamp(r.at), "wh": r.wh, "kind": r.kind} for r in derived.readings],
        created_by=created_by,
    )


async def _rules(
    db: AsyncSession, session: ChargingSession
) -> tuple[tariff_lookup.ResolvedTariff | None, tuple[int, PriceCapRule] | None]:
    """What prices a session: the tariff version for its place and customer, and the
    municipality's cap, both as in force at its start."""
    party, supplier = await tariff_lookup.session_customer(db, session)
    resolved = await tariff_lookup.resolve_tariff(
        db,
        station_id=session.station_id,
        evse_number=session.evse_number,
        connector_number=session.connector_number,
        party=party,
        energy_supplier=supplier,
        at=session.start_time,
    )
    return resolved, await tariff_lookup.cap_at(db, session.start_time)


async def price_so_far(db: AsyncSession, ctx: ServiceContext, session: ChargingSession) -> SessionPrice:
    """A session priced by its CDR's rules (the tariff version and cap in force at its start)
    on what is known now: a running session up to now, a finished one up to its stop. For
    live views (the OCPI Session's kwh and total_cost); the CDR stays the bill."""
    resolved, cap = await _rules(db, session)
    stop = session.stop_time
    if stop is None or session.status != SessionStatus.COMPLETED:
        stop = max(ctx.now(), session.start_time)
    return await _price(db, ctx, session, _uid(session.id, 0), resolved=resolved, cap=cap, stop=stop)


# --- views ---------------------------------------------------------------------------------------


async def _views(db: AsyncSession, rows: Sequence[Cdr]) -> list[CdrView]:
    ids = {i for r in rows for i in (r.credits_cdr_id, r.replaces_cdr_id) if i is not None}
    uids: dict[int, str] = {}
    if ids:
        uids = {
            row.id: row.cdr_uid
            for row in await db.execute(select(Cdr.id, Cdr.cdr_uid).where(Cdr.id.in_(ids)))
        }
    credited: dict[int, str] = {}
    if rows:
        found = await db.execute(
            select(Cdr.credits_cdr_id, Cdr.cdr_uid).where(Cdr.credits_cdr_id.in_([r.id for r in rows]))
        )
        for row in found:
            if row.credits_cdr_id is not None:
                credited[row.credits_cdr_id] = row.cdr_uid
    return [
        CdrView(
            id=r.id,
            cdr_uid=r.cdr_uid,
            session_id=r.session_id,
            sequence=r.sequence,
            kind=r.kind,
            credits_cdr_uid=uids.get(r.credits_cdr_id) if r.credits_cdr_id is not None else None,
            replaces_cdr_uid=uids.get(r.replaces_cdr_id) if r.replaces_cdr_id is not None else None,
            credited_by_cdr_uid=credited.get(r.id),
            station_id=r.station_id,
            location_id=r.location_id,
            evse_uid=r.evse_uid,
            token_uid=r.token_uid,
            party=r.party,
            tariff_version_id=r.tariff_version_id,
            price_cap_id=r.price_cap_id,
            currency=r.currency,
            start_time=r.start_time,
            end_time=r.end_time,
            total_energy_wh=r.total_energy_wh,
            total_time_s=r.total_time_s,
            total_parking_time_s=r.total_parking_time_s,
            total_cost_excl_vat=r.total_cost_excl_vat,
            total_cost_incl_vat=r.total_cost_incl_vat,
            capped_by=r.capped_by,
            energy_supplier=r.energy_supplier,
            energy_contract_id=r.energy_contract_id,
            reason=r.reason,
            readings=list(r.readings or []),
            created_by=r.created_by,
            created_at=r.created_at,
            data=with_ocpi_times(dict(r.data)),  # older CDRs were stored with microseconds
        )
        for r in rows
    ]


async def _view(db: AsyncSession, row: Cdr) -> CdrView:
    return (await _views(db, [row]))[0]


def _uid(session_id: int, sequence: int) -> str:
    return f"CDR-{session_id}-{sequence}"


async def _first_cdr(db: AsyncSession, session_id: int) -> Cdr | None:
    return (
        await db.execute(select(Cdr).where(Cdr.session_id == session_id, Cdr.sequence == 1))
    ).scalar_one_or_none()


async def _publish(ctx: ServiceContext, view: CdrView) -> None:
    await ctx.bus.publish(
        Event(
            "cdr.created",
            {
                "cdr_uid": view.cdr_uid,
                "session_id": view.session_id,
                "kind": view.kind,
                "total": str(view.total_cost_incl_vat),
                "total_excl_vat": str(view.total_cost_excl_vat),
                "currency": view.currency,
            },
        )
    )


# --- building ------------------------------------------------------------------------------------


async def build_cdr(ctx: ServiceContext, session_id: int, actor: str = "system") -> CdrView | None:
    """The CDR of a finished session, built once: a second call returns the existing one.

    None when the session is still running (its CDR comes when it ends) or when our
    authorization refused its token (OCPI INVALID: never billed). Missing when there is no
    such session.
    """
    async with ctx.db() as db:
        existing = await _first_cdr(db, session_id)
        if existing is not None:
            return await _view(db, existing)
        session = await db.get(ChargingSession, session_id)
        if session is None:
            raise Missing(f"session {session_id} does not exist")
        if session.status != SessionStatus.COMPLETED:
            return None
        if refused(session.auth_status):
            return None  # kept with its reason for the record, never billed
        resolved, cap = await _rules(db, session)
        cdr_uid = _uid(session.id, 1)
        priced = await _price(db, ctx, session, cdr_uid, resolved=resolved, cap=cap, stop=session.stop_time)
        row = _row(session, cdr_uid, 1, priced, created_by=actor)
        db.expunge_all()
    now = ctx.now()
    stop_time = session.stop_time

    async def job(db: AsyncSession) -> tuple[CdrView, bool]:
        found = await _first_cdr(db, session_id)
        if found is not None:
            return await _view(db, found), False
        db.add(row)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="cdr.created",
            object_type="cdr",
            object_id=row.cdr_uid,
            at=now,
            session_id=session_id,
            total_incl_vat=str(row.total_cost_incl_vat),
            tariff_version_id=row.tariff_version_id,
            capped_by=row.capped_by,
            notes=list(priced.derived.notes),
        )
        if resolved is None:
            # stamped at the session's end, where it belongs in the station's timeline
            station_event(
                db,
                row.station_id,
                "cdr_without_tariff",
                row.end_time,
                session_id=session_id,
                cdr_uid=row.cdr_uid,
                reason="no approved tariff applies to this EVSE and customer at the session's start",
            )
        return await _view(db, row), True

    try:
        view, created = await ctx.write(job)
    except IntegrityError:  # a concurrent build of the same session won
        async with ctx.db() as db:
            found = await _first_cdr(db, session_id)
            if found is None:
                raise
            return await _view(db, found)
    if created:
        if resolved is None:
            log.warning(
                "session %s ended without an applicable tariff: CDR %s costs 0", session_id, view.cdr_uid
            )
        log.debug("CDR %s for session %s (stop %s)", view.cdr_uid, session_id, stop_time)
        await _publish(ctx, view)
    return view


async def build_missing(ctx: ServiceContext) -> int:
    """Housekeeping: build the CDRs of finished sessions that have none (a crash between the
    stop and its CDR). Sessions that ended in the last few seconds are left to the worker."""
    cutoff = ctx.now() - MISSING_AFTER
    async with ctx.db() as db:
        ids = list(
            (
                await db.execute(
                    select(ChargingSession.id)
                    .where(
                        ChargingSession.status == SessionStatus.COMPLETED,
                        # a refused session never gets a CDR: left out, it cannot clog the batch
                        ChargingSession.auth_status.in_((AuthStatus.ACCEPTED.value, UNDECIDED)),
                        ChargingSession.updated_at <= cutoff,
                        ~exists().where(Cdr.session_id == ChargingSession.id),
                    )
                    .order_by(ChargingSession.id)
                    .limit(SWEEP_BATCH)
                )
            ).scalars()
        )
    built = 0
    for session_id in ids:
        try:
            if await build_cdr(ctx, session_id) is not None:
                built += 1
        except Exception:  # one bad session must not stop the sweep
            log.exception("could not build the CDR of session %s", session_id)
    return built


async def reconcile(ctx: ServiceContext, session_id: int) -> tuple[CdrView, CdrView] | None:
    """Correct the CDR of a session whose end changed after the CDR was made: a station that
    reports the real stop of a session we had closed when the next one started (`Superseded`).
    The correction is a credit and a new CDR, like any other; None when nothing changed."""
    async with ctx.db() as db:
        session = await db.get(ChargingSession, session_id)
        if session is None or session.status != SessionStatus.COMPLETED or session.stop_time is None:
            return None
        credited = select(Cdr.credits_cdr_id).where(Cdr.credits_cdr_id.is_not(None))
        current = (
            await db.execute(
                select(Cdr)
                .where(Cdr.session_id == session_id, Cdr.kind == CdrKind.CHARGE, Cdr.id.not_in(credited))
                .order_by(Cdr.sequence.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if current is None or current.end_time == session.stop_time:
            return None
        uid = current.cdr_uid
        stop = session.stop_time
    return await correct_cdr(
        ctx,
        uid,
        actor="system",
        reason="the station reported the real end of the session after its CDR was made",
        stop_time=stop,
    )


# --- corrections ---------------------------------------------------------------------------------


async def correct_cdr(
    ctx: ServiceContext,
    cdr_uid: str,
    *,
    actor: str,
    reason: str,
    energy_wh: int | None = None,
    stop_time: datetime | None = None,
) -> tuple[CdrView, CdrView]:
    """Correct a CDR: a credit CDR cancelling it (every amount negated) and a new CDR priced
    on the corrected energy and/or stop time, with the same tariff version and cap.
    Returns (credit, new). A credited or credit CDR cannot be corrected (Conflict)."""
    reason = reason.strip()
    if not reason:
        raise Invalid("a correction needs a reason")
    if energy_wh is not None and energy_wh < 0:
        raise Invalid(f"energy cannot be negative: {energy_wh} Wh")
    if stop_time is not None:
        if stop_time.tzinfo is None:
            raise Invalid("stop_time needs a UTC offset")
        stop_time = stop_time.astimezone(UTC)
    async with ctx.db() as db:
        original = (await db.execute(select(Cdr).where(Cdr.cdr_uid == cdr_uid))).scalar_one_or_none()
        if original is None:
            raise Missing(f"CDR {cdr_uid} does not exist")
        if original.kind == CdrKind.CREDIT:
            raise Conflict(f"CDR {cdr_uid} is a credit CDR; correct the CDR it credits instead")
        credit_uid = await db.scalar(select(Cdr.cdr_uid).where(Cdr.credits_cdr_id == original.id))
        if credit_uid is not None:
            raise Conflict(f"CDR {cdr_uid} was already credited by {credit_uid}; correct its replacement")
        session = await db.get(ChargingSession, original.session_id)
        if session is None:
            raise Missing(f"the session of CDR {cdr_uid} does not exist")
        stop = stop_time or original.end_time
        if stop < session.start_time:
            raise Invalid(
                f"stop_time {stop.isoformat()} is before the session start {session.start_time.isoformat()}"
            )
        resolved = None
        if original.tariff_version_id is not None:
            resolved = await tariff_lookup.resolved(db, original.tariff_version_id)
        cap = None
        if original.price_cap_id is not None:
            cap_row = await db.get(PriceCap, original.price_cap_id)
            if cap_row is not None:
                cap = (cap_row.id, tariff_lookup.cap_rule(cap_row))
        top = await db.scalar(select(func.max(Cdr.sequence)).where(Cdr.session_id == session.id)) or 1
        credit_seq, new_seq = top + 1, top + 2
        new_uid, credit_uid = _uid(session.id, new_seq), _uid(session.id, credit_seq)
        try:
            priced = await _price(
                db,
                ctx,
                session,
                new_uid,
                resolved=resolved,
                cap=cap,
                stop=stop,
                energy_override_wh=energy_wh,
                remark=f"corrects {cdr_uid}",
            )
        except ValueError as exc:
            raise Invalid(f"the corrected session cannot be priced: {exc}") from exc
        new_row = _row(
            session, new_uid, new_seq, priced, created_by=actor, reason=reason, replaces=original.id
        )
        now = ctx.now()
        credit_row = Cdr(
            cdr_uid=credit_uid,
            session_id=session.id,
            sequence=credit_seq,
            kind=CdrKind.CREDIT,
            credits_cdr_id=original.id,
            station_id=original.station_id,
            location_id=original.location_id,
            evse_uid=original.evse_uid,
            token_uid=original.token_uid,
            party=original.party,
            tariff_version_id=original.tariff_version_id,
            price_cap_id=original.price_cap_id,
            currency=original.currency,
            start_time=original.start_time,
            end_time=original.end_time,
            total_energy_wh=original.total_energy_wh,
            total_time_s=original.total_time_s,
            total_parking_time_s=original.total_parking_time_s,
            total_cost_excl_vat=-original.total_cost_excl_vat,
            total_cost_incl_vat=-original.total_cost_incl_vat,
            capped_by=original.capped_by,
            energy_supplier=original.energy_supplier,
            energy_contract_id=original.energy_contract_id,
            reason=reason,
            data=credit_document(
                original.data, cdr_id=credit_uid, remark=f"credits {cdr_uid}: {reason}", last_updated=now
            ),
            readings=list(original.readings or []),
            created_by=actor,
        )
        original_id = original.id
        db.expunge_all()

    async def job(db: AsyncSession) -> tuple[CdrView, CdrView]:
        if await db.scalar(select(Cdr.id).where(Cdr.credits_cdr_id == original_id)) is not None:
            raise Conflict(f"CDR {cdr_uid} was credited meanwhile")
        db.add(credit_row)
        db.add(new_row)
        await db.flush()
        for action, uid in (("cdr.credited", credit_uid), ("cdr.corrected", new_uid)):
            audit(
                db,
                actor=actor,
                action=action,
                object_type="cdr",
                object_id=cdr_uid,
                at=now,
                reason=reason,
                cdr_uid=uid,
                energy_wh=energy_wh,
                stop_time=None if stop_time is None else timestamp(stop_time),
            )
        return await _view(db, credit_row), await _view(db, new_row)

    try:
        credit, new = await ctx.write(job)
    except IntegrityError:
        raise Conflict(f"CDR {cdr_uid} was corrected at the same time; reload it") from None
    await _publish(ctx, credit)
    await _publish(ctx, new)
    return credit, new


# --- reading -------------------------------------------------------------------------------------


def _listing(f: CdrFilter) -> Select[Any]:
    query = select(Cdr)
    conditions = []
    if f.station_id is not None:
        conditions.append(Cdr.station_id == f.station_id)
    if f.location_id is not None:
        conditions.append(Cdr.location_id == f.location_id)
    if f.party is not None:
        conditions.append(Cdr.party == f.party)
    if f.session_id is not None:
        conditions.append(Cdr.session_id == f.session_id)
    if f.kind is not None:
        conditions.append(Cdr.kind == f.kind.value)
    if f.since is not None:
        conditions.append(Cdr.end_time >= f.since)
    if f.until is not None:
        conditions.append(Cdr.end_time < f.until)
    if f.before_id is not None:
        conditions.append(Cdr.id < f.before_id)
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(Cdr.id.desc())


async def list_cdrs(ctx: ServiceContext, f: CdrFilter) -> list[CdrView]:
    """CDRs matching the filter, newest first (at most MAX_LIMIT; offset at most MAX_OFFSET)."""
    if not 1 <= f.limit <= MAX_LIMIT + paging.PEEK:  # a page, and the row that says "more"
        raise Invalid(f"limit must be 1..{MAX_LIMIT}")
    if not 0 <= f.offset <= MAX_OFFSET:
        raise Invalid(f"offset must be 0..{MAX_OFFSET}; continue with after (the Link header's next page)")
    for moment in (f.since, f.until):
        if moment is not None and moment.tzinfo is None:
            raise Invalid("from/to need a UTC offset")
    if f.since is not None and f.until is not None and f.until < f.since:
        raise Invalid("'to' is before 'from'")
    async with ctx.db() as db:
        rows: list[Cdr] = list((await db.execute(_listing(f).limit(f.limit).offset(f.offset))).scalars())
        return await _views(db, rows)


async def get_cdr(ctx: ServiceContext, cdr_uid: str) -> CdrView:
    async with ctx.db() as db:
        row = (await db.execute(select(Cdr).where(Cdr.cdr_uid == cdr_uid))).scalar_one_or_none()
        if row is None:
            raise Missing(f"CDR {cdr_uid} does not exist")
        return await _view(db, row)


def summary(view: CdrView) -> dict[str, Any]:
    """The CDR's key figures as JSON numbers (what lists show)."""
    return {
        "cdr_uid": view.cdr_uid,
        "kind": view.kind,
        "total_incl_vat": number(view.total_cost_incl_vat),
        "total_excl_vat": number(view.total_cost_excl_vat),
    }


# --- the worker ----------------------------------------------------------------------------------


class CdrWorker:
    """Builds the CDR of every session that ends (`session.stopped`).

    In a cluster it listens as the consumer group "cdr": each stop is handled by one worker,
    and by another when that worker dies before acknowledging it. Two builds of one session
    (such a redelivery racing the first, or the `build_missing` sweep) end at the same row:
    the first CDR of a session is sequence 1, unique with the session in the database, so
    the loser's insert fails and it returns the winner's CDR without announcing it again
    (`cdr.created` is published by the build that inserted). A failure is logged and left to
    the sweep; `stop` abandons builds in flight (their sessions are swept later).
    """

    GROUP = "cdr"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.ctx.bus.subscribe("session.stopped", self._on_stopped, group=self.GROUP)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            with contextlib.suppress(ValueError):
                self._unsubscribe()
            self._unsubscribe = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()

    async def _on_stopped(self, event: Event) -> None:
        session_id = event.data.get("session_id")
        if not isinstance(session_id, int) or self._unsubscribe is None:
            return
        task = asyncio.create_task(self._build(session_id), name=f"cdr-{session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.wait([task])

    async def _build(self, session_id: int) -> None:
        try:
            await build_cdr(self.ctx, session_id)
            await reconcile(self.ctx, session_id)  # a later, real stop of a session already billed
        except Exception:
            log.exception("could not build the CDR of session %s (the sweep retries)", session_id)
