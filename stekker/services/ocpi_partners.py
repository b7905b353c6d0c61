"""Roaming partners over OCPI: issuing a registration token, the credentials handshake in both
directions, and ending a connection.

The handshake (OCPI 2.2.1 credentials module): a partner that holds a registration token A
we issued POSTs its credentials (its token B for us, its versions URL, its roles); we read
its versions and endpoints with token B, and answer with our credentials carrying a new token
C that replaces A. The other way round we do the same towards the partner
(`register_with`). Only SHA-256 hashes of the tokens partners use with us are kept.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Invalid, Missing

OCPI_VERSION = "2.2.1"
ROLES = ("EMSP", "HUB", "NAP", "OTHER", "CPO", "NSP", "SCSP")


class PartnerNotFound(Missing):
    pass


class PartnerUnreachable(Conflict):
    """The partner's OCPI server did not answer as OCPI requires (status 3001 towards it)."""


class BadCredentials(Invalid):
    pass


@dataclass(frozen=True, slots=True)
class TheirCredentials:
    """What a partner sent in its credentials object, stripped of the wire format."""

    token: str
    versions_url: str
    roles: tuple[dict[str, Any], ...]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """How a partner's token to us is stored: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def encode_token(token: str, raw: bool) -> str:
    """The Authorization header value for `token`: base64 (OCPI 2.2.1) unless the partner wants it raw."""
    return f"Token {token if raw else base64.b64encode(token.encode()).decode()}"


def partner_view(row: OcpiPartner) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "role": row.role,
        "country_code": row.country_code,
        "party_id": row.party_id,
        "roles": row.roles,
        "raw_token": row.raw_token,
        "versions_url": row.versions_url,
        "version": row.version,
        "endpoints": row.endpoints,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "registered_at": row.registered_at,
    }


async def issue_registration(
    ctx: ServiceContext, *, actor: str, name: str, role: str = "EMSP", raw_token: bool = False
) -> tuple[dict[str, Any], str]:
    """A pending partner and its registration token A (shown once, never stored in clear)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise Invalid("a partner needs a name of 1-100 characters")
    token = new_token()
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        row = OcpiPartner(
            name=name.strip(),
            role=role,
            status=PartnerStatus.PENDING,
            roles=[],
            endpoints={},
            incoming_token_sha256=token_hash(token),
            raw_token=raw_token,
            created_by=actor,
            created_at=now,
        )
        db.add(row)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="ocpi.partner.invited",
            object_type="ocpi_partner",
            object_id=row.id,
            at=now,
        )
        return partner_view(row)

    return await ctx.write(job), token


async def add_registered_partner(
    ctx: ServiceContext,
    *,
    name: str,
    country_code: str,
    party_id: str,
    role: str = "EMSP",
    token: str,
    raw_token: bool = False,
    extra_roles: Sequence[tuple[str, str, str]] = (),
    endpoints: dict[str, str] | None = None,
    outgoing_token: str | None = None,
) -> int:
    """A partner registered out of band (a test, or a partner set up by hand): `token` is
    what it calls us with."""
    roles = [{"country_code": country_code, "party_id": party_id, "role": role}] + [
        {"country_code": c, "party_id": p, "role": r} for c, p, r in extra_roles
    ]
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        row = OcpiPartner(
            name=name,
            role=role,
            status=PartnerStatus.REGISTERED,
            country_code=country_code,
            party_id=party_id,
            roles=roles,
            endpoints=endpoints or {},
            incoming_token_sha256=token_hash(token),
            outgoing_token=outgoing_token,
            raw_token=raw_token,
            version=OCPI_VERSION,
            created_by="setup",
            created_at=now,
            registered_at=now,
        )
        db.add(row)
        await db.flush()
        return row.id

    return await ctx.write(job)


def _headers(token: str, raw: bool) -> dict[str, str]:
    return {"Authorization": encode_token(token, raw)}


async def _get_data(client: httpx.AsyncClient, url: str, token: str, raw: bool) -> Any:
    try:
        response = await client.get(url, headers=_headers(token, raw))
    except httpx.HTTPError as exc:
        raise PartnerUnreachable(f"could not reach {url}: {exc.__class__.__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise PartnerUnreachable(f"{url} answered HTTP {response.status_code} without OCPI JSON") from None
    if response.status_code != 200 or not isinstance(body, dict) or body.get("status_code") != 1000:
        status = body.get("status_code") if isinstance(body, dict) else None
        raise PartnerUnreachable(f"{url} answered HTTP {response.status_code}, OCPI status {status}")
    return body.get("data")


async def discover(
    ctx: ServiceContext, versions_url: str, token: str, raw: bool, client: httpx.AsyncClient | None = None
) -> tuple[str, dict[str, str]]:
    """The partner's 2.2.1 details URL and its endpoints keyed "module:ROLE"."""
    own = client is None
    http = client or httpx.AsyncClient(timeout=ctx.settings.ocpi_partner_timeout)
    try:
        versions = await _get_data(http, versions_url, token, raw)
        if not isinstance(versions, list):
            raise PartnerUnreachable(f"{versions_url} did not list versions")
        match = next((v for v in versions if isinstance(v, dict) and v.get("version") == OCPI_VERSION), None)
        if match is None or not isinstance(match.get("url"), str):
            raise PartnerUnreachable(f"the partner offers no OCPI {OCPI_VERSION} (3002 unsupported version)")
        details = await _get_data(http, match["url"], token, raw)
    finally:
        if own:
            await http.aclose()
    endpoints: dict[str, str] = {}
    for item in (details or {}).get("endpoints") or ():
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            endpoints[f"{item.get('identifier')}:{item.get('role', 'SENDER')}"] = item["url"]
    if not endpoints:
        raise PartnerUnreachable(
            "the partner's version details list no endpoints (3003 no matching endpoints)"
        )
    return match["url"], endpoints


def _main_role(roles: Sequence[dict[str, Any]]) -> tuple[str | None, str | None, str]:
    for wanted in ("EMSP", "HUB", "NAP", "OTHER"):
        for item in roles:
            if item.get("role") == wanted:
                return str(item.get("country_code") or "")[:2], str(item.get("party_id") or "")[:3], wanted
    first = roles[0] if roles else {}
    return first.get("country_code"), first.get("party_id"), str(first.get("role") or "OTHER")


async def accept_credentials(
    ctx: ServiceContext, partner_id: int, theirs: TheirCredentials, *, client: httpx.AsyncClient | None = None
) -> str:
    """A partner's POST (or PUT) of its credentials: read its endpoints with its token, switch
    it to a fresh token of ours, and return that token (C)."""
    if not theirs.roles:
        raise BadCredentials("credentials need at least one role")
    details_url, endpoints = await discover(ctx, theirs.versions_url, theirs.token, False, client)
    token = new_token()
    now = ctx.now()
    country, party, role = _main_role(theirs.roles)

    async def job(db: AsyncSession) -> None:
        row = await db.get(OcpiPartner, partner_id)
        if row is None:
            raise PartnerNotFound(f"no partner {partner_id}")
        was = row.status
        row.status = PartnerStatus.REGISTERED
        row.outgoing_token = theirs.token
        row.versions_url = theirs.versions_url
        row.version = OCPI_VERSION
        row.endpoints = endpoints
        row.roles = list(theirs.roles)
        row.country_code, row.party_id, row.role = country, party, role
        row.incoming_token_sha256 = token_hash(token)
        row.registered_at = row.registered_at or now
        audit(
            db, actor=f"ocpi:{row.name}", action="ocpi.partner.registered" if was != PartnerStatus.REGISTERED
            else "ocpi.partner.credentials_updated", object_type="ocpi_partner", object_id=row.id, at=now,
            details_url=details_url, roles=row.roles,
        )  # fmt: skip

    await ctx.write(job)
    await ctx.bus.publish(Event("ocpi.partner.registered", {"partner_id": partner_id}))
    return token


async def unregister(ctx: ServiceContext, partner_id: int, actor: str) -> None:
    """End the connection: the partner's token opens nothing any more; its history stays."""
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        row = await db.get(OcpiPartner, partner_id)
        if row is None:
            raise PartnerNotFound(f"no partner {partner_id}")
        if row.status == PartnerStatus.UNREGISTERED:
            raise Conflict("the partner is already unregistered")
        row.status = PartnerStatus.UNREGISTERED
        row.outgoing_token = None
        audit(
            db,
            actor=actor,
            action="ocpi.partner.unregistered",
            object_type="ocpi_partner",
            object_id=row.id,
            at=now,
        )

    await ctx.write(job)
    await ctx.bus.publish(Event("ocpi.partner.unregistered", {"partner_id": partner_id}))


async def list_partners(ctx: ServiceContext) -> list[dict[str, Any]]:
    async with ctx.db() as db:
        return [
            partner_view(r)
            for r in (await db.execute(select(OcpiPartner).order_by(OcpiPartner.id))).scalars()
        ]
