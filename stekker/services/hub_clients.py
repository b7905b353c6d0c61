"""The parties a roaming hub connects us with, and whether it can reach them now (OCPI
HubClientInfo, receiver side: the hub pushes, we keep its word).

A hub owns these objects: it creates and replaces them, never deletes them (a party that
left is SUSPENDED). We keep the newest per (hub, country code, party id); a copy older than
the one we hold is acknowledged but not applied, like partner tokens.

What they are for: a party the hub reports as not CONNECTED cannot be reached through it,
and the spec says not to queue pushes for it ("Do not queue Push messages. When the other
party comes back online, it is their responsibility to do a GET"). `client_statuses` gives
the outbox what each hub said.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models_ocpi import ClientStatus, OcpiClientInfo
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict

#: Roles a ClientInfo may name (OCPI Role).
ROLES = frozenset({"CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"})


class NotAHub(Conflict):
    """Only a partner that registered the HUB role tells us about other parties."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One party behind a hub: its role and connection status, as of the hub's `last_updated`."""

    country_code: str
    party_id: str
    role: str
    status: ClientStatus
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """The ClientInfo we now hold; `applied` False when the push was older (then `note` says so)."""

    info: ClientInfo
    applied: bool
    note: str | None = None


def _view(row: OcpiClientInfo) -> ClientInfo:
    return ClientInfo(row.country_code, row.party_id, row.role, ClientStatus(row.status), row.last_updated)


async def _stored(db: AsyncSession, hub_id: int, country_code: str, party_id: str) -> OcpiClientInfo | None:
    query = select(OcpiClientInfo).where(
        OcpiClientInfo.hub_partner_id == hub_id,
        OcpiClientInfo.country_code == country_code.upper(),
        OcpiClientInfo.party_id == party_id.upper(),
    )
    return (await db.execute(query)).scalar_one_or_none()


async def put_client_info(ctx: ServiceContext, hub_id: int, actor: str, info: ClientInfo) -> PutOutcome:
    """Create or replace what the hub says about one party."""
    country_code, party_id = info.country_code.upper(), info.party_id.upper()

    async def job(db: AsyncSession) -> tuple[PutOutcome, bool]:
        row = await _stored(db, hub_id, country_code, party_id)
        if row is not None and info.last_updated < row.last_updated:
            note = f"we hold a newer ClientInfo (last_updated {row.last_updated.isoformat()})"
            return PutOutcome(_view(row), False, note), False
        before = None if row is None else (row.role, row.status)
        if row is None:
            row = OcpiClientInfo(hub_partner_id=hub_id, country_code=country_code, party_id=party_id)
            db.add(row)
        row.role, row.status, row.last_updated = info.role, info.status.value, info.last_updated
        changed = before != (row.role, row.status)
        if changed:
            audit(
                db, actor=actor, action="ocpi.client_info.changed", object_type="ocpi_partner",
                object_id=hub_id, at=ctx.now(), result=info.status.value, party=f"{country_code}/{party_id}",
                role=info.role, before=None if before is None else list(before),
            )  # fmt: skip
        return PutOutcome(_view(row), True), changed

    outcome, changed = await ctx.write(job)
    if changed:
        payload = {"hub_partner_id": hub_id, "country_code": country_code, "party_id": party_id}
        await ctx.bus.publish(
            Event("ocpi.client_info.changed", {**payload, "status": outcome.info.status.value})
        )
    return outcome


async def get_client_info(
    ctx: ServiceContext, hub_id: int, country_code: str, party_id: str
) -> ClientInfo | None:
    """What the hub told us about the party, if anything."""
    async with ctx.db() as db:
        row = await _stored(db, hub_id, country_code, party_id)
    return None if row is None else _view(row)


async def client_statuses(
    db: AsyncSession, hub_ids: Iterable[int]
) -> dict[int, dict[tuple[str, str], ClientStatus]]:
    """Per hub, the status it reported for each party behind it. A party reported as anything
    but CONNECTED cannot be reached through that hub: pushes for it are not queued there."""
    ids = list(hub_ids)
    found: dict[int, dict[tuple[str, str], ClientStatus]] = {}
    if not ids:
        return found
    rows = await db.execute(
        select(
            OcpiClientInfo.hub_partner_id,
            OcpiClientInfo.country_code,
            OcpiClientInfo.party_id,
            OcpiClientInfo.status,
        ).where(OcpiClientInfo.hub_partner_id.in_(ids))
    )
    for hub, country_code, party_id, status in rows:
        found.setdefault(hub, {})[(country_code, party_id)] = ClientStatus(status)
    return found
