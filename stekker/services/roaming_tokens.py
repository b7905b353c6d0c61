"""Roaming partners' tokens: the cards and app users of other eMSPs, pushed to us so their
drivers can charge at our stations.

A partner (its eMSP) owns these tokens: it creates and replaces them, changes them in part,
and invalidates them (it never deletes). We keep them in the same token store as our own,
marked with the partner, so central authorization and the stations' local authorization
lists treat them like ours, within the partner's whitelist rule (see `Whitelist`).

A token belongs to the partner that created it, for good: reads and changes are keyed by
that partner, so another partner (even one granted the same party) finds no such token and
cannot take it over, by PUT or by PATCH.

Pushes can arrive out of order (a partner's retry queue, a hub): a push older than what we
hold (by the partner's `last_updated`) is acknowledged but not applied, so a late retry can
never bring back a state the partner has since left.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import Token, TokenStatus
from stekker.domain.authorization import Whitelist
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Invalid, Missing
from stekker.services.inventory import apply_changes
from stekker.services.tokens import energy_contract_problem, next_list_version


@dataclass(frozen=True, slots=True)
class PartnerToken:
    """A partner's token as the partner describes it: `status` active or blocked (the eMSP's
    validity), `whitelist` how we may decide on it, `last_updated` the partner's own time of
    its last change."""

    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str
    issuer: str
    status: TokenStatus
    whitelist: Whitelist
    last_updated: datetime
    visual_number: str | None = None
    group_id: str | None = None
    language: str | None = None
    default_profile_type: str | None = None
    energy_supplier: str | None = None
    energy_contract_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenKey:
    """How a partner names one of its tokens: its party, the uid and the token type."""

    country_code: str
    party_id: str
    uid: str
    type: str


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of a push: the token as we now hold it; `applied` False when the push was
    older than what we hold (then `note` says so)."""

    token: PartnerToken
    applied: bool
    note: str | None = None


class UnknownPartnerToken(Missing):
    """No token of a partner under that party, uid and type."""


class NotAPartnerToken(Conflict):
    """The party, uid and type name a token of our own, which no partner may change."""


class OtherPartnersToken(NotAPartnerToken):
    """The party and uid name a token another partner created; only that partner changes it."""


# The service fields a push sets, besides the key, the status and the partner's time.
_DATA_FIELDS = (
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "status",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_supplier",
    "energy_contract_id",
)
PATCHABLE = frozenset(_DATA_FIELDS) - {"type"}
# What a station's local list carries (or decides whether it carries a token); other changes
# need no new list version.
_ON_STATION = frozenset({"type", "group_id", "status", "whitelist"})


def _view(token: Token) -> PartnerToken:
    assert token.whitelist is not None and token.ocpi_last_updated is not None
    values = {f.name: getattr(token, f.name) for f in fields(PartnerToken) if hasattr(token, f.name)}
    values.update(
        status=TokenStatus(token.status),
        whitelist=Whitelist(token.whitelist),
        last_updated=token.ocpi_last_updated,
    )
    return PartnerToken(**values)


def _check(values: dict[str, Any]) -> None:
    for name in ("energy_supplier", "energy_contract_id"):
        problem = energy_contract_problem(name, values.get(name))
        if problem:
            raise Invalid(problem)
    if values.get("energy_contract_id") is not None and values.get("energy_supplier") is None:
        raise Invalid("an energy contract id needs the supplier's name")
    if values.get("status") not in (TokenStatus.ACTIVE, TokenStatus.BLOCKED):
        raise Invalid("a partner's token is valid (active) or not (blocked)")


async def _stored(db: AsyncSession, country_code: str, party_id: str, uid: str) -> Token | None:
    return (
        await db.execute(
            select(Token).where(
                Token.country_code == country_code, Token.party_id == party_id, Token.uid == uid
            )
        )
    ).scalar_one_or_none()


def _older(incoming: datetime, token: Token) -> bool:
    return token.ocpi_last_updated is not None and incoming < token.ocpi_last_updated


def _stale_note(token: Token) -> str:
    assert token.ocpi_last_updated is not None
    return f"not applied: we hold a newer version (last_updated {token.ocpi_last_updated.isoformat()})"


async def _record(
    db: AsyncSession,
    ctx: ServiceContext,
    token: Token,
    *,
    actor: str,
    action: str,
    changed: dict[str, list[Any]],
) -> None:
    """List version, audit entry: the bookkeeping of a change that was applied."""
    if changed.keys() & _ON_STATION:
        token.list_version = await next_list_version(db)
    await db.flush()
    audit(
        db,
        actor=actor,
        action=action,
        object_type="token",
        object_id=token.id,
        at=ctx.now(),
        uid=token.uid,
        party=f"{token.country_code}*{token.party_id}",
        partner_id=token.ocpi_partner_id,
        changes=changed,
    )


async def put_partner_token(
    ctx: ServiceContext, partner_id: int, actor: str, data: PartnerToken
) -> PushOutcome:
    """Create or replace a partner's token (keyed by its party and uid).

    A token of that party and uid with another type is replaced by this one: our store keys
    tokens by party and uid only.
    """
    values = {name: getattr(data, name) for name in _DATA_FIELDS}
    _check(values)

    async def job(db: AsyncSession) -> tuple[PushOutcome, int | None]:
        token = await _stored(db, data.country_code, data.party_id, data.uid)
        if token is not None and token.ocpi_partner_id is None:
            raise NotAPartnerToken(
                f"{data.country_code}/{data.party_id}/{data.uid} is a token of the CPO itself"
            )
        if token is not None and token.ocpi_partner_id != partner_id:
            raise OtherPartnersToken(
                f"{data.country_code}/{data.party_id}/{data.uid} is another partner's token"
            )
        if token is not None and _older(data.last_updated, token):
            return PushOutcome(_view(token), False, _stale_note(token)), None
        created = token is None
        if token is None:
            token = Token(uid=data.uid, country_code=data.country_code, party_id=data.party_id)
            db.add(token)
        changed = apply_changes(token, {**values, "ocpi_partner_id": partner_id})
        token.ocpi_last_updated = data.last_updated
        if created:
            changed = {name: [None, value] for name, (_, value) in changed.items()}
        if changed:
            await _record(
                db,
                ctx,
                token,
                actor=actor,
                action="token.created" if created else "token.updated",
                changed=changed,
            )
        return PushOutcome(_view(token), True), token.id if changed else None

    outcome, changed_id = await ctx.write(job)
    if changed_id is not None:
        await _published(ctx, changed_id, outcome.token)
    return outcome


async def patch_partner_token(
    ctx: ServiceContext,
    partner_id: int,
    actor: str,
    key: TokenKey,
    changes: dict[str, Any],
    last_updated: datetime,
) -> PushOutcome:
    """Change some fields of a partner's token (names as in `PartnerToken`, except the key
    and type). Missing token: `UnknownPartnerToken`."""
    unknown = changes.keys() - PATCHABLE
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a token")

    async def job(db: AsyncSession) -> tuple[PushOutcome, int | None]:
        token = await _stored(db, key.country_code, key.party_id, key.uid)
        if token is None or token.ocpi_partner_id != partner_id or token.type != key.type:
            raise UnknownPartnerToken(
                f"no token {key.country_code}/{key.party_id}/{key.uid} of type {key.type}"
            )
        if _older(last_updated, token):
            return PushOutcome(_view(token), False, _stale_note(token)), None
        _check({name: changes.get(name, getattr(token, name)) for name in _DATA_FIELDS})
        changed = apply_changes(token, changes)  # never its owner: see the module docstring
        token.ocpi_last_updated = last_updated
        if changed:
            await _record(db, ctx, token, actor=actor, action="token.updated", changed=changed)
        return PushOutcome(_view(token), True), token.id if changed else None

    outcome, changed_id = await ctx.write(job)
    if changed_id is not None:
        await _published(ctx, changed_id, outcome.token)
    return outcome


async def get_partner_token(ctx: ServiceContext, partner_id: int, key: TokenKey) -> PartnerToken:
    """A partner's token as we hold it. Missing (or one of our own, or another partner's):
    `UnknownPartnerToken`."""
    async with ctx.db() as db:
        token = await _stored(db, key.country_code, key.party_id, key.uid)
        if token is None or token.ocpi_partner_id != partner_id or token.type != key.type:
            raise UnknownPartnerToken(
                f"no token {key.country_code}/{key.party_id}/{key.uid} of type {key.type}"
            )
        return _view(token)


async def _published(ctx: ServiceContext, token_id: int, token: PartnerToken) -> None:
    # the local-list syncer listens: stations learn the token (or forget it) within seconds
    await ctx.bus.publish(Event("token.changed", {"token_id": token_id, "uid": token.uid}))


async def partner_connection_changed(ctx: ServiceContext, partner_id: int, actor: str) -> int:
    """After a partner is unregistered (or registered again): its tokens leave (or rejoin) the
    stations' local lists.

    Central authorization follows the partner's status by itself (`usable`); the tokens stay
    as they were, so a partner that registers again finds them in place. Returns how many.
    """

    async def job(db: AsyncSession) -> int:
        tokens = (await db.execute(select(Token).where(Token.ocpi_partner_id == partner_id))).scalars().all()
        if not tokens:
            return 0
        version = await next_list_version(db)
        for token in tokens:
            token.list_version = version
        audit(
            db,
            actor=actor,
            action="token.partner_connection_changed",
            object_type="ocpi_partner",
            object_id=partner_id,
            at=ctx.now(),
            tokens=len(tokens),
        )
        return len(tokens)

    count = await ctx.write(job)
    if count:
        await ctx.bus.publish(Event("token.changed", {"partner_id": partner_id, "tokens": count}))
    return count
