"""Roaming partners over OCPI: issuing a registration token, the credentials handshake in both
directions, and ending a connection.

The handshake (OCPI 2.2.1 credentials module): a partner that holds a registration token A
we issued POSTs its credentials (its token B for us, its versions URL, its roles); we read
its versions and endpoints with token B, and answer with our credentials carrying a new token
C that replaces A. The other way round we do the same towards the partner
(`register_with`). Only SHA-256 hashes of the tokens partners use with us are kept.

Which parties (country code, party id) a partner acts for is the operator's grant, stated
when it invites the partner or registers with it, and changed only by the operator
(`set_parties`): credentials naming a party outside the grant are refused, so a partner can
never claim another partner's drivers by declaring their party. The partner's `roles` as
stored are always within its grant.

Every request to a partner goes through `partner_http.partner_client` (no loopback or private
addresses unless allowed). Toward a partner that holds only a registration token, a failure
to read its URLs is one generic message (the detail is in our log and audit), and its
attempts are counted (`ocpi_registration_attempts` a minute).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import AuditEntry
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.domain.partner_urls import url_problem
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Forbidden, Invalid, Missing
from stekker.services.partner_http import correlated, id_headers, partner_client, refused

log = logging.getLogger(__name__)

OCPI_VERSION = "2.2.1"
ROLES = ("EMSP", "HUB", "NAP", "OTHER", "CPO", "NSP", "SCSP")
MAX_PARTIES = 100
ATTEMPT_WINDOW = timedelta(minutes=1)
#: all a partner learns of why we could not read its URLs: which failure it was (refused
#: address, closed port, not HTTP, a timeout, wrong answer) would map our network for it
CANNOT_FETCH = (
    "could not fetch the versions URL or its OCPI 2.2.1 endpoints with your token; check both "
    "(the operator sees why)"
)

Party = tuple[str, str]
_PARTY = re.compile(r"^([A-Za-z]{2})/([A-Za-z0-9]{3})$")


class PartnerNotFound(Missing):
    pass


class PartnerUnreachable(Conflict):
    """The partner's OCPI server did not answer as OCPI requires (status 3001 towards it)."""


class BadCredentials(Invalid):
    pass


class PartyNotGranted(Forbidden):
    """Credentials name a party the operator did not grant the partner."""


class TooManyAttempts(Conflict):
    """More credentials attempts by one partner token than `ocpi_registration_attempts` a minute."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_party(text: str) -> Party:
    """ "NL/ABC" (any case) as ("NL", "ABC"); Invalid otherwise."""
    match = _PARTY.match(text.strip())
    if match is None:
        raise Invalid(f"a party is written country code/party id, e.g. NL/ABC (not {text[:20]!r})")
    return match.group(1).upper(), match.group(2).upper()


def party_text(party: Party) -> str:
    return f"{party[0]}/{party[1]}"


def grant_of(ctx: ServiceContext, parties: Iterable[str]) -> list[str]:
    """The operator's grant as stored: sorted "CC/PID" texts, at least one, never our own."""
    grant = sorted({party_text(parse_party(p)) for p in parties})
    if not grant:
        raise Invalid("name at least one party the partner acts for, e.g. NL/ABC")
    if len(grant) > MAX_PARTIES:
        raise Invalid(f"at most {MAX_PARTIES} parties")
    ours = party_text(ctx.settings.party)
    if ours in grant:
        raise Invalid(f"{ours} is our own party; no partner may act for it")
    return grant


def granted(row: OcpiPartner) -> set[Party]:
    """The parties the operator granted the partner."""
    result: set[Party] = set()
    for text in row.granted_parties or ():
        country, _, party = str(text).partition("/")
        result.add((country.upper(), party.upper()))
    return result


def role_party(role: dict[str, Any]) -> Party:
    return str(role.get("country_code") or "").upper(), str(role.get("party_id") or "").upper()


def _check_granted(row: OcpiPartner, roles: Sequence[dict[str, Any]]) -> None:
    grant = granted(row)
    outside = sorted({party_text(role_party(r)) for r in roles} - {party_text(p) for p in grant})
    if outside:
        allowed = ", ".join(sorted(party_text(p) for p in grant)) or "none yet"
        raise PartyNotGranted(
            f"party {', '.join(outside)} is not granted to you (granted: {allowed}); "
            "the operator grants the parties a partner acts for"
        )


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
        "parties": list(row.granted_parties or []),
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
    ctx: ServiceContext,
    *,
    actor: str,
    name: str,
    parties: Sequence[str],
    role: str = "EMSP",
    raw_token: bool = False,
) -> tuple[dict[str, Any], str]:
    """A pending partner and its registration token A (shown once, never stored in clear),
    granted `parties` ("NL/ABC"): the only ones its credentials may name."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise Invalid("a partner needs a name of 1-100 characters")
    grant = grant_of(ctx, parties)
    token = new_token()
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        row = OcpiPartner(
            name=name.strip(),
            role=role,
            status=PartnerStatus.PENDING,
            roles=[],
            granted_parties=grant,
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
            parties=grant,
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
            granted_parties=sorted({f"{r['country_code']}/{r['party_id']}".upper() for r in roles}),
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
    return {
        "Authorization": encode_token(partner.outgoing_token, partner.raw_token),
        **id_headers(),
        "OCPI-from-country-code": country,
        "OCPI-from-party-id": party_id,
        "OCPI-to-country-code": partner.country_code or "",
        "OCPI-to-party-id": partner.party_id or "",
    }


def _headers(token: str, raw: bool) -> dict[str, str]:
    return {"Authorization": encode_token(token, raw), **id_headers()}


async def _call(
    client: httpx.AsyncClient, method: str, url: str, token: str, raw: bool, body: Any | None = None
) -> Any:
    """The `data` of a partner's OCPI answer; PartnerUnreachable says what went wrong."""
    problem = url_problem(url)
    if problem is not None:
        raise PartnerUnreachable(f"cannot use {url[:100]!r}: {problem}")
    try:
        response = await client.request(method, url, json=body, headers=_headers(token, raw))
    except httpx.HTTPError as exc:
        if refused(exc):
            raise PartnerUnreachable(f"refused to call {url}: {exc}") from None
        raise PartnerUnreachable(f"could not reach {url}: {exc.__class__.__name__}") from None
    except httpx.InvalidURL as exc:
        raise PartnerUnreachable(f"cannot use {url[:100]!r}: {exc}") from None
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
    http = client or partner_client(ctx.settings)
    try:
        with correlated():  # both GETs are one exchange (or part of the handshake that called us)
            versions = await _call(http, "GET", versions_url, token, raw)
            if not isinstance(versions, list):
                raise PartnerUnreachable(f"{versions_url} did not list versions")
            match = next(
                (v for v in versions if isinstance(v, dict) and v.get("version") == OCPI_VERSION), None
            )
            if match is None or not isinstance(match.get("url"), str):
                raise PartnerUnreachable(
                    f"the partner offers no OCPI {OCPI_VERSION} (3002 unsupported version)"
                )
            details = await _call(http, "GET", match["url"], token, raw)
    finally:
        if own:
            await http.aclose()
    endpoints: dict[str, str] = {}
    for item in (details or {}).get("endpoints") or ():
        # an endpoint we could never call is left out here, not found out at every push
        if isinstance(item, dict) and isinstance(item.get("url"), str) and url_problem(item["url"]) is None:
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


async def _count_attempt(ctx: ServiceContext, partner_id: int, theirs: TheirCredentials) -> None:
    """Before we fetch anything for a partner: its credentials stay within its grant, and it
    has attempts left this minute (counted in the audit log, so every process counts alike;
    the partner's row is locked meanwhile, so concurrent attempts are counted one by one)."""
    now = ctx.now()
    limit = ctx.settings.ocpi_registration_attempts

    async def job(db: AsyncSession) -> None:
        row = (
            await db.execute(select(OcpiPartner).where(OcpiPartner.id == partner_id).with_for_update())
        ).scalar_one_or_none()
        if row is None:
            raise PartnerNotFound(f"no partner {partner_id}")
        _check_granted(row, theirs.roles)
        recent = (
            await db.execute(
                select(func.count(), func.min(AuditEntry.occurred_at)).where(
                    AuditEntry.object_type == "ocpi_partner",
                    AuditEntry.object_id == str(partner_id),
                    AuditEntry.action == "ocpi.partner.credentials_attempt",
                    AuditEntry.occurred_at > now - ATTEMPT_WINDOW,
                )
            )
        ).one()
        count, oldest = int(recent[0]), recent[1]
        if count >= limit:
            wait = (oldest + ATTEMPT_WINDOW - now).total_seconds() if oldest is not None else 60
            raise TooManyAttempts(
                f"too many credentials attempts: at most {limit} a minute; try again in "
                f"{max(1, int(wait) + 1)} s",
                retry_after=max(1, int(wait) + 1),
            )
        audit(
            db, actor=f"ocpi:{row.name}", action="ocpi.partner.credentials_attempt",
            object_type="ocpi_partner", object_id=row.id, at=now, versions_url=theirs.versions_url[:255],
        )  # fmt: skip

    await ctx.write(job)


async def _fetch_failed(ctx: ServiceContext, partner_id: int, why: str) -> None:
    """Why a partner's URLs could not be read: for our log and audit, not for the partner."""
    log.warning("OCPI partner %s: %s", partner_id, why)
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        audit(
            db, actor="ocpi", action="ocpi.partner.credentials_failed", object_type="ocpi_partner",
            object_id=partner_id, at=now, result="failed", reason=why[:500],
        )  # fmt: skip

    await ctx.write(job)


async def accept_credentials(
    ctx: ServiceContext, partner_id: int, theirs: TheirCredentials, *, client: httpx.AsyncClient | None = None
) -> str:
    """A partner's POST (or PUT) of its credentials: read its endpoints with its token, switch
    it to a fresh token of ours, and return that token (C).

    Refused before anything is fetched: a party outside the partner's grant
    (`PartyNotGranted`), a URL we would never call (`BadCredentials`), a partner out of
    attempts (`TooManyAttempts`). A fetch that fails is `PartnerUnreachable` with
    `CANNOT_FETCH`; the reason goes to our log and audit only."""
    if not theirs.roles:
        raise BadCredentials("credentials need at least one role")
    problem = url_problem(theirs.versions_url)
    if problem is not None:
        raise BadCredentials(f"url: {problem}")
    await _count_attempt(ctx, partner_id, theirs)
    try:
        details_url, endpoints = await discover(ctx, theirs.versions_url, theirs.token, False, client)
    except PartnerUnreachable as exc:
        await _fetch_failed(ctx, partner_id, str(exc))
        raise PartnerUnreachable(CANNOT_FETCH) from None
    token = new_token()
    now = ctx.now()
    country, party, role = _main_role(theirs.roles)

    async def job(db: AsyncSession) -> None:
        row = await db.get(OcpiPartner, partner_id)
        if row is None:
            raise PartnerNotFound(f"no partner {partner_id}")
        _check_granted(row, theirs.roles)  # the operator may have changed the grant meanwhile
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
    if not isinstance(url, str) or url_problem(url) is not None:
        raise PartnerUnreachable("the partner's credentials carry no usable versions URL")
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
    with correlated():  # the POST and the discovery after it: one exchange
        body = our_credentials(ctx, ours, our_versions_url)
        data = await _call(http, "POST", target, token_a, raw_token, body)
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
    parties: Sequence[str],
    role: str = "EMSP",
    raw_token: bool = False,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """We register with a partner that gave us a registration token A and its versions URL:
    read its endpoints with A, POST our credentials (a fresh token for it to call us with) to
    its credentials module, and keep the token C it answers with for calling it. `parties`
    is the operator's grant: a partner whose credentials name another party is refused."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    grant = grant_of(ctx, parties)
    problem = url_problem(versions_url)
    if problem is not None:
        raise Invalid(f"versions_url: {problem}")
    own = client is None
    http = client or partner_client(ctx.settings)
    ours = new_token()
    now = ctx.now()
    # one exchange: the discovery with A, our POST and the discovery with C share a correlation ID
    with correlated():
        try:
            _, endpoints = await discover(ctx, versions_url, token_a, raw_token, http)
            target = endpoints.get("credentials:RECEIVER") or endpoints.get("credentials:SENDER")
            if target is None:
                raise PartnerUnreachable("the partner's version details list no credentials module")

            async def pending(db: AsyncSession) -> int:
                row = OcpiPartner(
                    name=name.strip()[:100] or "partner", role=role, status=PartnerStatus.PENDING, roles=[],
                    granted_parties=grant, endpoints=endpoints, incoming_token_sha256=token_hash(ours),
                    raw_token=raw_token,
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
                outside = sorted({party_text(role_party(r)) for r in theirs.roles} - set(grant))
                if outside:
                    raise PartnerUnreachable(
                        f"the partner's credentials name party {', '.join(outside)}, which is not "
                        f"among the parties granted ({', '.join(grant)})"
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
    async with partner_client(ctx.settings) as http:
        try:
            await _call(http, "DELETE", url, token, raw)
        except PartnerUnreachable as exc:
            return str(exc)
    return None


async def set_parties(
    ctx: ServiceContext, partner_id: int, parties: Sequence[str], actor: str
) -> dict[str, Any]:
    """The operator's new grant for a partner: from now on it acts for these parties only.
    Roles it declared for parties no longer granted are dropped at once (its main party
    follows); the partner's next credentials must stay within the grant."""
    grant = grant_of(ctx, parties)
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        row = await db.get(OcpiPartner, partner_id)
        if row is None:
            raise PartnerNotFound(f"no partner {partner_id}")
        was = list(row.granted_parties or [])
        row.granted_parties = grant
        kept = [r for r in row.roles or () if isinstance(r, dict) and party_text(role_party(r)) in grant]
        if len(kept) != len(row.roles or ()):
            row.roles = kept
            if kept:
                row.country_code, row.party_id, row.role = _main_role(kept)
            else:
                row.country_code = row.party_id = None
        audit(
            db, actor=actor, action="ocpi.partner.parties_granted", object_type="ocpi_partner",
            object_id=row.id, at=now, parties=grant, were=was,
        )  # fmt: skip
        return partner_view(row)

    view = await ctx.write(job)
    # pushes (locations, tariffs) follow the parties: as after a (re)registration
    await ctx.bus.publish(Event("ocpi.partner.registered", {"partner_id": partner_id}))
    return view


async def list_partners(ctx: ServiceContext) -> list[dict[str, Any]]:
    async with ctx.db() as db:
        return [
            partner_view(r)
            for r in (await db.execute(select(OcpiPartner).order_by(OcpiPartner.id))).scalars()
        ]
