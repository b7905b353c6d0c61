"""Our charging sessions as OCPI 2.2.1 Session objects (CPO, sender side), and who may see them.

The GET handler (`stekker.ocpi.sessions`) and the pushes (`stekker.services.roaming_pushes`)
build the same objects here. Where the figures come from:
- `kwh`: the session's registers (`energy_wh` once settled, else last - start reading);
- `total_cost`, `charging_periods`, place, `auth_method`, `meter_id`: a session that has its
  CDR shows the CDR's (the bill, corrections included); any other is priced now by the CDR's
  own rules (`stekker.services.cdrs.price_so_far`: tariff and cap in force at its start), so
  what a driver watches in the app is what the CDR will say;
- `status`: PENDING until our authorization decided, INVALID when it refused the token (then
  `total_cost` is 0 and no CDR follows: a refused session is never billed),
  ACTIVE while running, COMPLETED after the stop;
- `last_updated`: the session row's `updated_at` (every start, reading and stop moves it),
  the same moment the GET's date_from/date_to filter on.

Visibility: a session belongs to the partner whose driver's token started it. A token a
partner pushed (`Token.ocpi_partner_id`) is that partner's alone; a token registered here for
an eMSP party (no partner id) belongs to the partners that registered that party. Our own
party's tokens belong to no partner.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from sqlalchemy import ColumnElement, and_, false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingSession, SessionStatus, Token
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.db.models_tariffs import Cdr, CdrKind
from stekker.domain.authorization import refused
from stekker.domain.cdr_document import charging_periods, number, with_ocpi_times
from stekker.domain.metering import session_energy_wh
from stekker.ocpi.envelope import ocpi_time
from stekker.ocpi.token_objects import ProfileType  # one enum, one name in the OpenAPI document
from stekker.services import cdrs
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

OcpiDateTime = Annotated[datetime, PlainSerializer(ocpi_time, return_type=str)]
_TOKEN_TYPES = frozenset({"AD_HOC_USER", "APP_USER", "OTHER", "RFID"})
#: Our authorization decisions that let a session run (OCPP AuthorizationStatus names).
_ACCEPTED = "Accepted"
_UNDECIDED = "Pending"


class OcpiSessionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object a partner receives (absent optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class OcpiPrice(_Wire):
    excl_vat: float
    incl_vat: float | None = None


class OcpiCdrToken(_Wire):
    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)
    uid: str = Field(max_length=36)
    type: str
    contract_id: str = Field(max_length=36)


class OcpiCdrDimension(_Wire):
    type: str
    volume: float


class OcpiChargingPeriod(_Wire):
    start_date_time: OcpiDateTime
    dimensions: list[OcpiCdrDimension]
    tariff_id: str | None = None


class OcpiSession(_Wire):
    """The OCPI 2.2.1 Session object."""

    country_code: str
    party_id: str
    id: str
    start_date_time: OcpiDateTime
    end_date_time: OcpiDateTime | None = None
    kwh: float
    cdr_token: OcpiCdrToken
    auth_method: str
    authorization_reference: str | None = None
    location_id: str
    evse_uid: str
    connector_id: str
    meter_id: str | None = None
    currency: str
    charging_periods: list[OcpiChargingPeriod] | None = None
    total_cost: OcpiPrice | None = None
    status: OcpiSessionStatus
    last_updated: OcpiDateTime


class ChargingPreferencesResponse(StrEnum):
    """OCPI 2.2.1 ChargingPreferencesResponse (mod_sessions)."""

    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


class ChargingPreferences(BaseModel):
    """What an eMSP sends on behalf of its driver (OCPI ChargingPreferences); validated, then
    answered (we do no preference-based smart charging yet)."""

    model_config = ConfigDict(extra="ignore")

    profile_type: ProfileType
    departure_time: datetime | None = None
    energy_need: float | None = Field(default=None, ge=0, le=10_000)
    discharge_allowed: bool | None = None


# --- pure pieces -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionBill:
    """What a session costs and where it ran, from its CDR or priced now."""

    location_id: str
    evse_uid: str
    connector_id: str
    meter_id: str | None
    auth_method: str
    currency: str
    total_excl_vat: float | int | None
    total_incl_vat: float | int | None
    charging_periods: tuple[Mapping[str, Any], ...]


def bill_from_price(price: cdrs.SessionPrice) -> SessionBill:
    facts = price.facts
    tariff_id = None if facts.tariff is None else str(facts.tariff.get("id"))
    return SessionBill(
        location_id=facts.location.id,
        evse_uid=facts.location.evse_uid,
        connector_id=facts.location.connector_id,
        meter_id=facts.meter_id,
        auth_method=facts.auth_method,
        currency=facts.currency,
        total_excl_vat=number(price.bill.total_excl_vat),
        total_incl_vat=number(price.bill.total_incl_vat),
        charging_periods=tuple(charging_periods(price.priced.charging_periods, facts.periods_end, tariff_id)),
    )


def bill_from_cdr(document: Mapping[str, Any]) -> SessionBill:
    """The figures of a session's current CDR (its OCPI document)."""
    place = document.get("cdr_location") or {}
    total = document.get("total_cost") or {}
    return SessionBill(
        location_id=str(place.get("id", "")),
        evse_uid=str(place.get("evse_uid", "")),
        connector_id=str(place.get("connector_id", "")),
        meter_id=document.get("meter_id"),
        auth_method=str(document.get("auth_method", "AUTH_REQUEST")),
        currency=str(document.get("currency", "EUR")),
        total_excl_vat=total.get("excl_vat", 0),
        total_incl_vat=total.get("incl_vat", total.get("excl_vat", 0)),
        charging_periods=tuple(with_ocpi_times(list(document.get("charging_periods") or ()))),
    )


def session_status(status: str, auth_status: str) -> OcpiSessionStatus:
    """Our session's OCPI status: refused by our authorization → INVALID (never billed to the
    eMSP), not yet decided → PENDING, then ACTIVE until the stop, COMPLETED after."""
    if auth_status not in (_ACCEPTED, _UNDECIDED):
        return OcpiSessionStatus.INVALID
    if status == SessionStatus.COMPLETED:
        return OcpiSessionStatus.COMPLETED
    if auth_status == _UNDECIDED:
        return OcpiSessionStatus.PENDING
    return OcpiSessionStatus.ACTIVE


def energy_kwh(session: ChargingSession) -> float | int:
    """kWh charged: the settled energy, else what the registers say so far (0 when unknown)."""
    wh = session.energy_wh
    if wh is None:
        wh = session_energy_wh(session.meter_start_wh, session.meter_last_wh)
    return number(Decimal(wh or 0) / 1000)


def cdr_token(session: ChargingSession, token: Token | None, ours: tuple[str, str]) -> OcpiCdrToken:
    """The driver's token as OCPI CdrToken: its eMSP's party, uid, type and contract id (a
    token we do not know is under our own party: nobody else issued it)."""
    uid = (session.token_uid or "UNKNOWN")[:36]
    if token is None:
        return OcpiCdrToken(country_code=ours[0], party_id=ours[1], uid=uid, type="OTHER", contract_id=uid)
    kind = token.type if token.type in _TOKEN_TYPES else "OTHER"
    return OcpiCdrToken(
        country_code=token.country_code.upper(),
        party_id=token.party_id.upper(),
        uid=uid,
        type=kind,
        contract_id=(token.contract_id or token.uid)[:36],
    )


def session_object(
    ours: tuple[str, str], session: ChargingSession, token: Token | None, bill: SessionBill
) -> OcpiSession:
    """The OCPI Session of one of our sessions (`ours`: our country code and party id)."""
    completed = session.status == SessionStatus.COMPLETED
    return OcpiSession(
        country_code=ours[0],
        party_id=ours[1],
        id=str(session.id),
        start_date_time=session.start_time,
        end_date_time=session.stop_time if completed else None,
        kwh=energy_kwh(session),
        cdr_token=cdr_token(session, token, ours),
        auth_method=bill.auth_method,
        location_id=bill.location_id[:36],
        evse_uid=bill.evse_uid[:36],
        connector_id=bill.connector_id[:36],
        meter_id=bill.meter_id,
        currency=bill.currency,
        charging_periods=[OcpiChargingPeriod.model_validate(p) for p in bill.charging_periods] or None,
        total_cost=None
        if bill.total_excl_vat is None
        else OcpiPrice(excl_vat=0, incl_vat=0)  # refused: INVALID, never billed (no CDR either)
        if refused(session.auth_status)
        else OcpiPrice(excl_vat=bill.total_excl_vat, incl_vat=bill.total_incl_vat),
        status=session_status(session.status, session.auth_status),
        last_updated=session.updated_at,
    )


# --- who sees what -----------------------------------------------------------------------------


def partner_parties(
    country_code: str | None,
    party_id: str | None,
    roles: Sequence[tuple[str, str, str]],
    ours: tuple[str, str],
) -> set[tuple[str, str]]:
    """A partner's (country, party) pairs, never ours (a partner claiming our party must not
    read our own drivers' sessions)."""
    pairs = {((country_code or "").upper(), (party_id or "").upper())}
    pairs |= {(c.upper(), p.upper()) for c, p, _ in roles}
    return {(c, p) for c, p in pairs if len(c) == 2 and len(p) == 3 and (c, p) != ours}


def visible_to(partner_id: int, parties: set[tuple[str, str]]) -> ColumnElement[bool]:
    """SQL on `Token`: the token is the partner's (see the module docstring)."""
    by_party: ColumnElement[bool] = (
        and_(Token.ocpi_partner_id.is_(None), tuple_(Token.country_code, Token.party_id).in_(sorted(parties)))
        if parties
        else false()
    )
    return or_(Token.ocpi_partner_id == partner_id, by_party)


async def audience(db: AsyncSession, token: Token | None, ours: tuple[str, str]) -> list[OcpiPartner]:
    """The registered partners a session or CDR of `token` goes to."""
    if token is None:
        return []
    partners = (
        (await db.execute(select(OcpiPartner).where(OcpiPartner.status == PartnerStatus.REGISTERED)))
        .scalars()
        .all()
    )
    if token.ocpi_partner_id is not None:
        return [p for p in partners if p.id == token.ocpi_partner_id]
    party = (token.country_code.upper(), token.party_id.upper())
    result = []
    for p in partners:
        roles = [
            (str(r.get("country_code", "")), str(r.get("party_id", "")), "")
            for r in p.roles or ()
            if isinstance(r, dict)
        ]
        if party in partner_parties(p.country_code, p.party_id, roles, ours):
            result.append(p)
    return result


# --- reading the rows --------------------------------------------------------------------------


async def _current_cdrs(db: AsyncSession, session_ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """The document of each session's current CDR: its newest charge CDR not credited."""
    if not session_ids:
        return {}
    credited = select(Cdr.credits_cdr_id).where(Cdr.credits_cdr_id.is_not(None))
    rows = await db.execute(
        select(Cdr.session_id, Cdr.data)
        .where(Cdr.session_id.in_(session_ids), Cdr.kind == CdrKind.CHARGE, Cdr.id.not_in(credited))
        .order_by(Cdr.sequence)
    )
    return {session_id: data for session_id, data in rows}  # the newest sequence wins


async def _bill_now(
    db: AsyncSession, ctx: ServiceContext, session: ChargingSession, token: Token | None
) -> SessionBill:
    """The session priced now; facts the engine cannot price (it says why) give a Session
    without total_cost, which OCPI reads as "price not known", never as free."""
    try:
        return bill_from_price(await cdrs.price_so_far(db, ctx, session))
    except ValueError as exc:
        log.warning("session %s cannot be priced for its OCPI Session: %s", session.id, exc)
    place, _location_id, meter_id = await cdrs.session_place(db, session)
    return SessionBill(
        location_id=place.id,
        evse_uid=place.evse_uid,
        connector_id=place.connector_id,
        meter_id=meter_id,
        auth_method=cdrs.auth_method(session, token),
        currency="EUR",
        total_excl_vat=None,
        total_incl_vat=None,
        charging_periods=(),
    )


async def session_objects(
    db: AsyncSession, ctx: ServiceContext, sessions: Sequence[ChargingSession]
) -> list[OcpiSession]:
    """The OCPI Session of each of `sessions`, in their order."""
    ours = ctx.settings.party
    token_ids = {s.token_id for s in sessions if s.token_id is not None}
    tokens: dict[int, Token] = {}
    if token_ids:
        tokens = {t.id: t for t in (await db.execute(select(Token).where(Token.id.in_(token_ids)))).scalars()}
    billed = await _current_cdrs(db, [s.id for s in sessions if s.status == SessionStatus.COMPLETED])
    result = []
    for session in sessions:
        document = billed.get(session.id)
        token = tokens.get(session.token_id) if session.token_id is not None else None
        bill = bill_from_cdr(document) if document is not None else await _bill_now(db, ctx, session, token)
        result.append(session_object(ours, session, token, bill))
    return result
