"""Which partner is calling: the OCPI `Authorization: Token ...` header.

OCPI 2.2.1 sends the token base64-encoded; some partners send it as it is, which is a
per-partner setting (`raw_token`). We keep only the SHA-256 of a partner's incoming token,
so we look up both readings of the header: the decoded one and the header as sent. What we
send to a partner follows its setting (`encode_token`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import select

from stekker.api.deps import get_ctx
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.ocpi.envelope import CLIENT_ERROR, OcpiError
from stekker.services.context import ServiceContext
from stekker.services.ocpi_partners import granted, role_party, token_hash

_MAX_HEADER = 1024


@dataclass(frozen=True, slots=True)
class PartnerAuth:
    """The partner behind a request: its main role and every (country, party, role) it
    registered, limited to the parties the operator granted it."""

    id: int
    name: str
    status: str
    role: str
    country_code: str | None
    party_id: str | None
    roles: tuple[tuple[str, str, str], ...]

    def owns(self, country_code: str, party_id: str) -> bool:
        """Whether the party is one of the partner's (a hub speaks for many)."""
        wanted = (country_code.upper(), party_id.upper())
        return any((c, p) == wanted for c, p, _ in self.roles) or (
            (self.country_code or "", self.party_id or "") == wanted
        )


def candidates(header: str | None) -> list[tuple[str, bool]]:
    """(token, sent raw?) readings of the header, the base64 one first."""
    if not header or len(header) > _MAX_HEADER:
        return []
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    readings: list[tuple[str, bool]] = []
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        if decoded and decoded.isprintable():
            readings.append((decoded, False))
    except (binascii.Error, UnicodeDecodeError):
        pass
    readings.append((value, True))
    return readings


def _unauthorized(message: str) -> OcpiError:
    return OcpiError(CLIENT_ERROR, message, http_status=401)


async def _partner(request: Request, ctx: ServiceContext, statuses: tuple[PartnerStatus, ...]) -> PartnerAuth:
    readings = candidates(request.headers.get("authorization"))
    if not readings:
        raise _unauthorized("send Authorization: Token <base64 of your token>")
    async with ctx.db() as db:
        rows = {
            row.incoming_token_sha256: row
            for row in (
                await db.execute(
                    select(OcpiPartner).where(
                        OcpiPartner.incoming_token_sha256.in_([token_hash(t) for t, _ in readings])
                    )
                )
            ).scalars()
        }
    # either reading of the header opens the partner's account: a raw token sent by a partner
    # set up for base64 (or the reverse) is still its secret, not worth failing an integration
    for token, _sent_raw in readings:
        row = rows.get(token_hash(token))
        if row is None:
            continue
        if row.status not in statuses:
            raise _unauthorized(f"this token belongs to a partner that is {row.status}")
        # the stored roles stay within the grant; checked here too, so no path can widen it
        grant = granted(row)
        main = ((row.country_code or "").upper(), (row.party_id or "").upper())
        return PartnerAuth(
            id=row.id,
            name=row.name,
            status=row.status,
            role=row.role,
            country_code=row.country_code if main in grant else None,
            party_id=row.party_id if main in grant else None,
            roles=tuple(
                (*role_party(r), str(r.get("role", "")))
                for r in row.roles or ()
                if isinstance(r, dict) and role_party(r) in grant
            ),
        )
    raise _unauthorized("unknown token")


async def registered_partner(request: Request, ctx: ServiceContext = Depends(get_ctx)) -> PartnerAuth:
    """A registered partner (data modules)."""
    return await _partner(request, ctx, (PartnerStatus.REGISTERED,))


async def any_partner(request: Request, ctx: ServiceContext = Depends(get_ctx)) -> PartnerAuth:
    """A pending or registered partner (versions and credentials: the handshake itself)."""
    return await _partner(request, ctx, (PartnerStatus.PENDING, PartnerStatus.REGISTERED))
