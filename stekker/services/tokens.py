"""The token store and the versioned local authorization list derived from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, Counter, Token, TokenStatus
from stekker.domain.authorization import decidable_here
from stekker.services.audit import audit
from stekker.services.authorization import preferred_token, usable
from stekker.services.context import ServiceContext
from stekker.services.errors import Invalid
from stekker.services.inventory import apply_changes

LOCAL_LIST_COUNTER = "local_list_version"

#: Supplier name and contract id (OCPI Token energy_contract): 1-64 characters, no control
#: characters, no leading or trailing space (they end up in CSV reports and partner feeds).
ENERGY_CONTRACT_MAX = 64
ENERGY_CONTRACT_TEXT = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
# What stations never see: changing only these needs no new local authorization list.
_OFF_STATION_FIELDS = frozenset({"energy_supplier", "energy_contract_id"})


def energy_contract_problem(name: str, value: str | None) -> str | None:
    """Why `value` cannot be a token's energy supplier or contract id, or None if it can."""
    if value is None:
        return None
    if len(value) > ENERGY_CONTRACT_MAX:
        return f"{name} has more than {ENERGY_CONTRACT_MAX} characters"
    if not re.fullmatch(ENERGY_CONTRACT_TEXT, value):
        return f"{name} must be text without control characters or surrounding spaces"
    return None


def _check_energy_contract(supplier: str | None, contract_id: str | None) -> None:
    for name, value in (("energy_supplier", supplier), ("energy_contract_id", contract_id)):
        problem = energy_contract_problem(name, value)
        if problem:
            raise Invalid(problem)
    if contract_id is not None and supplier is None:
        raise Invalid("energy_contract_id needs an energy_supplier (whose contract is it?)")


async def stamp_energy_contract(db: AsyncSession, session: ChargingSession, token_id: int | None) -> None:
    """Record on `session` the supplier contract of its token as it is now, at the start: the
    energy report must not change when the driver later switches supplier."""
    token = None if token_id is None else await db.get(Token, token_id)
    session.energy_supplier = None if token is None else token.energy_supplier
    session.energy_contract_id = None if token is None else token.energy_contract_id


class TokenError(ValueError):
    """A token operation that cannot be done as asked."""


async def _next_list_version(db: AsyncSession) -> int:
    counter = await db.get(Counter, LOCAL_LIST_COUNTER, with_for_update=True)
    if counter is None:
        counter = Counter(name=LOCAL_LIST_COUNTER, value=0)
        db.add(counter)
    counter.value += 1
    return counter.value


async def current_list_version(db: AsyncSession) -> int:
    counter = await db.get(Counter, LOCAL_LIST_COUNTER)
    return 0 if counter is None else counter.value


@dataclass(frozen=True, slots=True)
class TokenInput:
    """The fields an operator sets on a token."""

    uid: str
    type: str = "RFID"
    contract_id: str | None = None
    visual_number: str | None = None
    issuer: str | None = None
    country_code: str = "NL"
    party_id: str = "STK"
    group_id: str | None = None
    status: TokenStatus = TokenStatus.ACTIVE
    expires_at: datetime | None = None
    allow_concurrent: bool = False
    energy_supplier: str | None = None
    energy_contract_id: str | None = None


async def upsert_token(ctx: ServiceContext, actor: str, data: TokenInput) -> Token:
    """Create or update a token (keyed by country, party and uid) and bump the list version."""
    _check_energy_contract(data.energy_supplier, data.energy_contract_id)

    async def job(db: AsyncSession) -> Token:
        token = (
            await db.execute(
                select(Token).where(
                    Token.country_code == data.country_code,
                    Token.party_id == data.party_id,
                    Token.uid == data.uid,
                )
            )
        ).scalar_one_or_none()
        created = token is None
        if token is None:
            token = Token(uid=data.uid, country_code=data.country_code, party_id=data.party_id)
            db.add(token)
        token.type = data.type
        token.contract_id = data.contract_id
        token.visual_number = data.visual_number
        token.issuer = data.issuer
        token.group_id = data.group_id
        token.status = data.status
        token.expires_at = data.expires_at
        token.allow_concurrent = data.allow_concurrent
        token.energy_supplier = data.energy_supplier
        token.energy_contract_id = data.energy_contract_id
        token.list_version = await _next_list_version(db)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="token.created" if created else "token.updated",
            object_type="token",
            object_id=token.id,
            at=ctx.now(),
            uid=data.uid,
            status=data.status.value,
        )
        return token

    token = await ctx.write(job)
    await ctx.bus.publish(Event("token.changed", {"token_id": token.id, "uid": token.uid}))
    return token


async def set_token_status(ctx: ServiceContext, actor: str, token_id: int, status: TokenStatus) -> Token:
    async def job(db: AsyncSession) -> Token:
        token = await db.get(Token, token_id)
        if token is None:
            raise TokenError(f"no token with id {token_id}")
        old = token.status
        token.status = status
        token.list_version = await _next_list_version(db)
        audit(
            db,
            actor=actor,
            action=f"token.{status.value}",
            object_type="token",
            object_id=token_id,
            at=ctx.now(),
            uid=token.uid,
            previous=old,
        )
        return token

    token = await ctx.write(job)
    await ctx.bus.publish(Event("token.changed", {"token_id": token.id, "uid": token.uid}))
    return token


TOKEN_FIELDS = (
    "type",
    "status",
    "expires_at",
    "group_id",
    "contract_id",
    "visual_number",
    "issuer",
    "allow_concurrent",
    "energy_supplier",
    "energy_contract_id",
)


async def next_list_version(db: AsyncSession) -> int:
    """The next local-list version, for changes to tokens made outside this module (imports)."""
    return await _next_list_version(db)


async def update_token(ctx: ServiceContext, actor: str, token_id: int, changes: dict[str, Any]) -> Token:
    """Change some fields of a token. A real change is published; one that stations see bumps
    the local-list version, so connected stations get the differential list (the energy
    contract is not on stations)."""

    async def job(db: AsyncSession) -> tuple[Token, bool]:
        token = await db.get(Token, token_id)
        if token is None:
            raise TokenError(f"no token with id {token_id}")
        changed = apply_changes(token, {k: v for k, v in changes.items() if k in TOKEN_FIELDS})
        if changed.keys() & {"energy_supplier", "energy_contract_id"}:
            _check_energy_contract(token.energy_supplier, token.energy_contract_id)  # as it ends up
        if changed.keys() - _OFF_STATION_FIELDS:
            token.list_version = await _next_list_version(db)
        if changed:
            audit(
                db,
                actor=actor,
                action="token.updated",
                object_type="token",
                object_id=token_id,
                at=ctx.now(),
                uid=token.uid,
                changes=changed,
            )
        return token, bool(changed)

    token, changed = await ctx.write(job)
    if changed:
        await ctx.bus.publish(Event("token.changed", {"token_id": token.id, "uid": token.uid}))
    return token


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    """One entry of a local authorization list. `status` None removes the entry."""

    uid: str
    status: str | None
    expires_at: datetime | None = None
    group_id: str | None = None
    token_type: str = "RFID"


@dataclass(frozen=True, slots=True)
class LocalListUpdate:
    """What to send a station: a full list, or the changes since the version it holds."""

    version: int
    full: bool
    entries: list[LocalListEntry]


def _entry(token: Token, now: datetime) -> LocalListEntry:
    if token.status == TokenStatus.RETIRED or not decidable_here(token.whitelist):
        # a partner's token its eMSP wants decided in real time (NEVER) is not for offline use
        return LocalListEntry(token.uid, None, token_type=token.type)
    if token.status == TokenStatus.BLOCKED:
        return LocalListEntry(token.uid, "Blocked", token_type=token.type)
    status = "Expired" if token.expires_at is not None and token.expires_at <= now else "Accepted"
    return LocalListEntry(token.uid, status, token.expires_at, token.group_id, token.type)


async def local_list_update(ctx: ServiceContext, station_version: int | None) -> LocalListUpdate | None:
    """The update that brings a station from `station_version` to ours; None if it is current.

    Full when the station's version is unknown or not one of ours; otherwise differential,
    carrying exactly the uids whose tokens changed since (removals as entries without a
    status). Tokens of several parties may share a uid: each uid gets one entry, for the token
    central authorization would pick (`preferred_token`).
    """
    now = ctx.now()
    async with ctx.db() as db:
        version = await current_list_version(db)
        if station_version == version:
            return None
        if station_version is None or station_version <= 0 or station_version > version:
            uids = select(Token.uid).where(Token.status == TokenStatus.ACTIVE)
            entries = [e for e in await _entries(db, uids, now) if e.status == "Accepted"]
            return LocalListUpdate(version, True, entries)
        uids = select(Token.uid).where(Token.list_version > station_version)
        return LocalListUpdate(version, False, await _entries(db, uids, now))


async def _entries(db: AsyncSession, uids: Select[str], now: datetime) -> list[LocalListEntry]:
    """One entry per uid in `uids`, from the token a station means by it (none usable: a removal)."""
    usable_ids = set((await db.execute(usable(select(Token.id).where(Token.uid.in_(uids))))).scalars())
    by_uid: dict[str, list[Token]] = {}
    for token in (await db.execute(select(Token).where(Token.uid.in_(uids)).order_by(Token.id))).scalars():
        by_uid.setdefault(token.uid, []).append(token)
    entries = []
    for uid, tokens in by_uid.items():
        meant = preferred_token([t for t in tokens if t.id in usable_ids])
        entries.append(
            LocalListEntry(uid, None, token_type=tokens[0].type) if meant is None else _entry(meant, now)
        )
    return entries
