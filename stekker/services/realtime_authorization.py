"""Real-time authorization of roaming partners' tokens at their eMSP (OCPI 2.2.1 tokens module,
"Real-time authorization": `POST {tokens SENDER endpoint}/{token_uid}/authorize?type=...`).

When: at a station's Authorize (OCPP 1.6 Authorize, 2.0.1 Authorize), the moment a driver
waits at the station, for a partner's token whose whitelist asks (`asks_emsp`: NEVER,
ALLOWED_OFFLINE, ALLOWED; never ALWAYS, never our own tokens). We wait at most
`ocpi_authorize_timeout` seconds (default 3) in all, so the station's own call never times
out. The call is made before, and outside, the database transaction that records the
decision (`stekker.services.authorization.authorize`); this module only reads.

What the answer becomes (`read_answer`, pure): AuthorizationInfo.allowed ALLOWED → Accepted,
BLOCKED → Blocked, EXPIRED → Expired, NO_CREDIT and NOT_ALLOWED → Invalid (the reason names
which), and OCPI status 2004 (the eMSP does not know the token) → Invalid: these are the
eMSP's decisions. Anything else is no answer: the eMSP down or too slow, an HTTP error, a body
that is not an OCPI envelope, another status code (e.g. 2002 "not enough information"), no
AuthorizationInfo, an `allowed` value OCPI does not define, an answer about another token.
Then the whitelist decides (`stekker.domain.authorization.decide`): NEVER → Invalid, ALLOWED
and ALLOWED_OFFLINE → our stored copy decides; the reason starts "eMSP not reachable: ...".

The eMSP's decision is recorded as the Authorize's AuthorizationRequest, its reason starting
`ANSWERED` and carrying the eMSP's `authorization_reference` when it gave one; the
StartTransaction or TransactionEvent that follows at the same station within 15 minutes is
judged by that answer, without asking again (`stekker.services.authorization`).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.config import Settings
from stekker.db.models import ChargingStation, Connector, Evse, Token
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.domain.authorization import AuthStatus, EmspAnswer, asks_emsp
from stekker.ocpi.location_objects import evse_uid
from stekker.services.ocpi_partners import partner_headers
from stekker.services.partner_http import partner_client

#: OCPI Allowed → what the station is told.
ALLOWED_STATUS: dict[str, AuthStatus] = {
    "ALLOWED": AuthStatus.ACCEPTED,
    "BLOCKED": AuthStatus.BLOCKED,
    "EXPIRED": AuthStatus.EXPIRED,
    "NO_CREDIT": AuthStatus.INVALID,
    "NOT_ALLOWED": AuthStatus.INVALID,
}
#: OCPI status "Unknown Token": the eMSP's answer that the token is not (or no longer) its.
UNKNOWN_TOKEN = 2004
#: How the reason of an eMSP's decision starts (and how a later start finds it).
ANSWERED = "eMSP answered "
#: How the reason starts when the eMSP gave no usable answer.
UNREACHABLE = "eMSP not reachable: "
#: authorization_reference is a CiString(36): printable ASCII.
_REFERENCE = re.compile(r"^[\x21-\x7e]{1,36}$")
_REFERENCE_IN_REASON = re.compile(r"\(authorization_reference ([\x21-\x7e]{1,36})\)")
#: An AuthorizationInfo (a Token, a few EVSE uids) is a few KiB; a larger answer is refused
#: unread rather than held in memory.
MAX_ANSWER = 64 * 1024
_DETAIL = 150  # characters of an error or of the eMSP's info text kept in a reason (255 in all)


@dataclass(frozen=True, slots=True)
class RealTimeAnswer:
    """The eMSP's answer about one stored token (`token_id`): it applies to that token only,
    should another copy of the uid have become the preferred one in the meantime."""

    token_id: int
    answer: EmspAnswer


@dataclass(frozen=True, slots=True)
class Question:
    """Everything the call needs, read before it (so no database session stays open while we
    wait). `problem` set: we cannot ask at all (no endpoint, no token to present)."""

    token_id: int
    uid: str
    token_type: str
    url: str | None = None
    headers: dict[str, str] | None = None
    location: dict[str, Any] | None = None
    problem: str | None = None


def unreachable(detail: str) -> EmspAnswer:
    return EmspAnswer(None, (UNREACHABLE + detail)[: len(UNREACHABLE) + _DETAIL])


def _text(value: Any, limit: int = _DETAIL) -> str:
    return " ".join(str(value).split())[:limit]


def _info_text(info: Any) -> str | None:
    """The eMSP's DisplayText for the driver ({language, text}), if it is one."""
    if isinstance(info, dict) and isinstance(info.get("text"), str) and info["text"].strip():
        return _text(info["text"], 80)
    return None


def answered(allowed: str, reference: str | None = None, info: str | None = None) -> str:
    """The reason recorded for the eMSP's decision."""
    reason = ANSWERED + allowed
    if reference is not None:
        reason += f" (authorization_reference {reference})"
    if info:
        reason += f": {info}"
    return reason[:255]


def authorization_reference(reason: str) -> str | None:
    """The eMSP's authorization_reference recorded in an AuthorizationRequest's reason, if any
    (for the Session and CDR of the session it authorized)."""
    found = _REFERENCE_IN_REASON.search(reason)
    return None if found is None else found.group(1)


def read_answer(http_status: int, content: bytes, uid: str) -> EmspAnswer:
    """The eMSP's HTTP answer to a real-time authorization, as a decision or as no answer
    (see the module's docstring). Pure: no I/O."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return unreachable(f"HTTP {http_status}, and its answer is not JSON")
    if not isinstance(body, dict):
        return unreachable(f"HTTP {http_status}, and its answer is not an OCPI response")
    status = body.get("status_code")
    if isinstance(status, bool) or not isinstance(status, int):
        return unreachable(f"HTTP {http_status}, and its answer has no OCPI status_code")
    if status == UNKNOWN_TOKEN:
        return EmspAnswer(AuthStatus.INVALID, "eMSP does not know the token (OCPI status 2004)")
    if not 200 <= http_status < 300:
        return unreachable(f"HTTP {http_status}, OCPI status {status}")
    if not 1000 <= status < 2000:
        message = _text(body.get("status_message") or "", 100)
        return unreachable(f"OCPI status {status}" + (f": {message}" if message else ""))
    data = body.get("data")
    if not isinstance(data, dict):
        return unreachable("its answer holds no AuthorizationInfo")
    allowed = data.get("allowed")
    if not isinstance(allowed, str) or allowed not in ALLOWED_STATUS:
        return unreachable(f"unknown allowed value {_text(json.dumps(allowed), 40)}")
    token = data.get("token")
    if isinstance(token, dict) and isinstance(token.get("uid"), str) and token["uid"].upper() != uid.upper():
        # uid is a CiString: compared without case
        return unreachable(f"it answered about another token ({_text(token['uid'], 40)})")
    reference = data.get("authorization_reference")
    # a reference we could not hand back in the Session and CDR is left out, not the decision
    kept = reference if isinstance(reference, str) and _REFERENCE.match(reference) else None
    return EmspAnswer(ALLOWED_STATUS[allowed], answered(allowed, kept, _info_text(data.get("info"))))


async def _location_references(db: AsyncSession, station_id: str) -> dict[str, Any] | None:
    """LocationReferences for the station: its location and its EVSEs as our Locations module
    publishes them (1.6 and 2.0.1 Authorize name no EVSE, so all of the station's). A station
    at no location: no body (the spec allows it; the eMSP may answer 2002, then no answer)."""
    location_id = (
        await db.execute(select(ChargingStation.location_id).where(ChargingStation.id == station_id))
    ).scalar_one_or_none()
    if location_id is None:
        return None
    rows = await db.execute(
        select(Evse.evse_number, Evse.evse_id)
        .where(Evse.station_id == station_id, exists().where(Connector.evse_id == Evse.id))
        .order_by(Evse.evse_number)
    )
    return {"location_id": str(location_id), "evse_uids": [evse_uid(station_id, n, e) for n, e in rows]}


async def question_for(
    db: AsyncSession, settings: Settings, station_id: str, token: Token
) -> Question | None:
    """What to ask the eMSP of `token` at this station; None when its token is not one to ask
    about (our own, whitelist ALWAYS)."""
    if token.ocpi_partner_id is None or not asks_emsp(token.whitelist):
        return None
    partner = await db.get(OcpiPartner, token.ocpi_partner_id)
    base = Question(token_id=token.id, uid=token.uid, token_type=token.type or "RFID")
    if partner is None or partner.status != PartnerStatus.REGISTERED:
        return replace(base, problem="the partner is not registered")
    endpoint = (partner.endpoints or {}).get("tokens:SENDER")
    if not endpoint:
        return replace(base, problem="it has no tokens SENDER endpoint")
    if not partner.outgoing_token:
        return replace(base, problem="we hold no token to call it with")
    return replace(
        base,
        url=f"{endpoint.rstrip('/')}/{quote(token.uid, safe='')}/authorize",
        headers=partner_headers(settings.party, partner),
        location=await _location_references(db, station_id),
    )


async def ask(settings: Settings, question: Question) -> RealTimeAnswer:
    """Ask the eMSP; at most `ocpi_authorize_timeout` seconds from first byte to last (httpx's
    own timeouts are per phase, so a trickling answer is cut here)."""
    if question.problem is not None or question.url is None:
        return RealTimeAnswer(question.token_id, unreachable(question.problem or "no URL"))
    limit = settings.ocpi_authorize_timeout
    try:
        async with asyncio.timeout(limit):
            async with (
                partner_client(settings, timeout=limit) as client,
                client.stream(
                    "POST",
                    question.url,
                    params={"type": question.token_type},
                    json=question.location,
                    headers=question.headers,
                ) as response,
            ):
                content = await _read_capped(response)
    except TimeoutError:
        return RealTimeAnswer(question.token_id, unreachable(f"no answer within {limit:g} s"))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return RealTimeAnswer(question.token_id, unreachable(_text(f"{exc.__class__.__name__}: {exc}")))
    if content is None:
        return RealTimeAnswer(question.token_id, unreachable(f"its answer is over {MAX_ANSWER // 1024} KiB"))
    return RealTimeAnswer(question.token_id, read_answer(response.status_code, content, question.uid))


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None when it is longer than any AuthorizationInfo needs to be."""
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > MAX_ANSWER:
            return None
    return bytes(content)
