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
import uuid
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


def partner_headers(party: tuple[str, str], partner: OcpiPartner) -> dict[str, str]:
    """The headers of every request we make to a registered partner: its token for us,
    encoded as it wants, a request id, and the OCPI routing headers from us (`party`) to it."""
    assert partner.outgoing_token is not None
    country, party_id = party
    request_id = str(uuid.uuid4())
    return {
        "Authorization": encode_token(partner.outgoing_token, partner.raw_token),
        "X-Request-ID": request_id,
        "X-Correlation-ID": request_id,
        "OCPI-from-country-code": country,
        "OCPI-from-party-id": party_id,
        "OCPI-to-country-code": partner.country_code or "",
        "OCPI-to-party-id": partner.party_id or "",
    }


def _headers(token: str, raw: bool) -> dict[str, str]:
    return {"Authorization": encode_token(token, raw)}


async def _call(
    client: httpx.AsyncClient, method: str, url: str, token: str, raw: bool, body: Any | None = None
) -> Any:
    """The `data` of a partner's OCPI answer; PartnerUnreachable says what went wrong."""
    try:
        response = await client.request(method, url, json=body, headers=_headers(token, raw))
    except httpx.HTTPError as exc:
        raise PartnerUnreachable(f"could not reach {url}: {exc.__class__.__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        raise PartnerUnreachable(f"{url} answered HTTP {response.status_code} without OCPI JSON") from None
    if response.status_code != 200 or not isinstance(answer, dict) or answer.get("status_code") != 1000:
        status = answer.get("status_code") if isinstance(answer, dict) else None
        raise PartnerUnreachable(f"{url} answered HTTP {response.status_code}, OCPI status {status}")
    return answer.get("data")


async def discover(
    ctx: ServiceContext, versions_url: str, token: str, raw: bool, client: httpx.AsyncClient | None = None
) -> tuple[str, dict[str, str]]:
    """The partner's 2.2.1 details URL and its endpoints keyed "module:ROLE"."""
    own = client is None
    http = client or httpx.AsyncClient(timeout=ctx.settings.ocpi_partner_timeout)
    try:
        versions = await _call(http, "GET", versions_url, token, raw)
        if not isinstance(versions, list):
            raise PartnerUnreachable(f"{versions_url} did not list versions")
        match = next((v for v in versions if isinstance(v, dict) and v.get("version") == OCPI_VERSION), None)
        if match is None or not isinstance(match.get("url"), str):
            raise PartnerUnreachable(f"the partner offers no OCPI {OCPI_VERSION} (3002 unsupported version)")
        details = await _call(http, "GET", match["url"], token, raw)
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


def our_credentials(ctx: ServiceContext, token: str, versions_url: str) -> dict[str, Any]:
    """Our credentials object (OCPI 2.2.1): the token a partner calls us with, our versions
    URL, our CPO role."""
    country, party = ctx.settings.party
    return {
        "token": token,
        "url": versions_url,
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": ctx.settings.business_name},
                "party_id": party,
                "country_code": country,
            }
        ],
    }


def _their_credentials(data: Any) -> TheirCredentials:
    if not isinstance(data, dict):
        raise PartnerUnreachable("the partner answered our credentials without a credentials object")
    token, url, roles = data.get("token"), data.get("url"), data.get("roles")
    if not isinstance(token, str) or not token or len(token) > 64:
        raise PartnerUnreachable("the partner's credentials carry no usable token")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PartnerUnreachable("the partner's credentials carry no versions URL")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, dict) for r in roles):
        raise PartnerUnreachable("the partner's credentials carry no roles")
    return TheirCredentials(token, url, tuple(roles))


async def _post_ours(
    ctx: ServiceContext,
    http: httpx.AsyncClient,
    target: str,
    token_a: str,
    raw_token: bool,
    ours: str,
    our_versions_url: str,
) -> tuple[TheirCredentials, dict[str, str]]:
    """POST our credentials with token A; the partner's credentials and its endpoints as its
    token C sees them."""
    data = await _call(http, "POST", target, token_a, raw_token, our_credentials(ctx, ours, our_versions_url))
    theirs = _their_credentials(data)
    _, endpoints = await discover(ctx, theirs.versions_url, theirs.token, raw_token, http)
    return theirs, endpoints


async def _registration_failed(ctx: ServiceContext, partner_id: int, actor: str, why: str) -> None:
    """The half-made partner of a failed registration: unregistered, so its token opens nothing."""
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        row = await db.get(OcpiPartner, partner_id)
        if row is not None:
            row.status = PartnerStatus.UNREGISTERED
            audit(
                db, actor=actor, action="ocpi.partner.registration_failed", object_type="ocpi_partner",
                object_id=row.id, at=now, result="failed", reason=why[:500],
            )  # fmt: skip

    await ctx.write(job)


async def register_with(
    ctx: ServiceContext,
    *,
    actor: str,
    name: str,
    versions_url: str,
    token_a: str,
    our_versions_url: str,
    role: str = "EMSP",
    raw_token: bool = False,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """We register with a partner that gave us a registration token A and its versions URL:
    read its endpoints with A, POST our credentials (a fresh token for it to call us with) to
    its credentials module, and keep the token C it answers with for calling it."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    own = client is None
    http = client or httpx.AsyncClient(timeout=ctx.settings.ocpi_partner_timeout)
    ours = new_token()
    now = ctx.now()
    try:
        _, endpoints = await discover(ctx, versions_url, token_a, raw_token, http)
        target = endpoints.get("credentials:RECEIVER") or endpoints.get("credentials:SENDER")
        if target is None:
            raise PartnerUnreachable("the partner's version details list no credentials module")

        async def pending(db: AsyncSession) -> int:
            row = OcpiPartner(
                name=name.strip()[:100] or "partner", role=role, status=PartnerStatus.PENDING, roles=[],
                endpoints=endpoints, incoming_token_sha256=token_hash(ours), raw_token=raw_token,
                versions_url=versions_url, created_by=actor, created_at=now,
            )  # fmt: skip
            db.add(row)
            await db.flush()
            return row.id

        # the partner calls our versions with our token while it handles the POST: it must work
        partner_id = await ctx.write(pending)
        try:
            theirs, endpoints = await _post_ours(
                ctx, http, target, token_a, raw_token, ours, our_versions_url
            )
        except PartnerUnreachable as exc:
            await _registration_failed(ctx, partner_id, actor, str(exc))
            raise
    finally:
        if own:
            await http.aclose()
    country, party, main_role = _main_role(theirs.roles)

    async def registered(db: AsyncSession) -> dict[str, Any]:
        row = await db.get(OcpiPartner, partner_id)
        assert row is not None
        row.status = PartnerStatus.REGISTERED
        row.outgoing_token = theirs.token
        row.versions_url = theirs.versions_url
        row.version = OCPI_VERSION
        row.endpoints = endpoints
        row.roles = list(theirs.roles)
        row.country_code, row.party_id, row.role = country, party, main_role
        row.registered_at = now
        audit(
            db, actor=actor, action="ocpi.partner.registered", object_type="ocpi_partner", object_id=row.id,
            at=now, direction="we registered with the partner", roles=row.roles,
        )  # fmt: skip
        return partner_view(row)

    view = await ctx.write(registered)
    await ctx.bus.publish(Event("ocpi.partner.registered", {"partner_id": partner_id}))
    return view


async def unregister(
    ctx: ServiceContext, partner_id: int, actor: str, *, tell_partner: bool = False
) -> str | None:
    """End the connection: the partner's token opens nothing any more; its history stays.
    With `tell_partner` (our operator ends it, not the partner) we first DELETE our credentials
    at the partner; if that fails we end it anyway and return why, for the operator."""
    now = ctx.now()
    problem: str | None = None
    if tell_partner:
        problem = await _delete_ours_at(ctx, partner_id)

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
            partner_told=tell_partner and problem is None,
            problem=problem,
        )

    await ctx.write(job)
    await ctx.bus.publish(Event("ocpi.partner.unregistered", {"partner_id": partner_id}))
    return problem


async def _delete_ours_at(ctx: ServiceContext, partner_id: int) -> str | None:
    """DELETE our credentials at the partner's credentials module; None when it took it."""
    async with ctx.db() as db:
        row = await db.get(OcpiPartner, partner_id)
        if row is None or row.status != PartnerStatus.REGISTERED or not row.outgoing_token:
            return None
        url = (row.endpoints or {}).get("credentials:RECEIVER") or (row.endpoints or {}).get(
            "credentials:SENDER"
        )
        token, raw = row.outgoing_token, row.raw_token
    if url is None:
        return "the partner lists no credentials module to tell"
    async with httpx.AsyncClient(timeout=ctx.settings.ocpi_partner_timeout) as http:
        try:
            await _call(http, "DELETE", url, token, raw)
        except PartnerUnreachable as exc:
            return str(exc)
    return None


async def list_partners(ctx: ServiceContext) -> list[dict[str, Any]]:
    async with ctx.db() as db:
        return [
            partner_view(r)
            for r in (await db.execute(select(OcpiPartner).order_by(OcpiPartner.id))).scalars()
        ]
