"""Tariffs and their approval by the municipality (requirement 158), and the maximum price
it sets (157).

The workflow of a version: the operator saves a draft and submits it with an effective time
in the future; the proposal is priced on the reference sessions and refused if it would cost
more than the cap. Only the municipality approves (it becomes `scheduled`) or rejects it, with a
comment. At its effective time `activate_due` makes it `active` and the version before it
`superseded`. Every step is a `TariffTransition`, an audit entry and an event for the other
side (`tariff.submitted` for the municipality, `tariff.approved`/`tariff.rejected` for the
operator). Nothing prices a session before its approval and its effective time: pricing
reads approved versions by `effective_from`, not by the status flip, so a late activation
run changes nothing in any bill.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import Location
from stekker.db.models_tariffs import (
    APPROVED_STATUSES,
    OPEN_STATUSES,
    Cdr,
    CdrKind,
    TariffRecord,
    TariffTransition,
    TariffVersion,
)
from stekker.db.models_tariffs import (
    TariffVersionStatus as S,
)
from stekker.db.models_users import Role
from stekker.domain.billing import bill
from stekker.domain.money import Rounding, amount_text
from stekker.domain.price_caps import (
    PriceCapRule,
    apply_cap,
    cap_limit,
)
from stekker.domain.price_text import price_texts
from stekker.domain.pricing import price_session, with_parking_grace, with_start_grace
from stekker.domain.repricing import periods_from_cdr
from stekker.domain.tariff_approval import IN_FORCE, never_approved
from stekker.domain.tariff_scope import AUDIENCES, validate_targets
from stekker.domain.tariffs import Tariff, tariff_from_ocpi
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Invalid, Missing
from stekker.services.price_caps import (
    CAP_BOUNDS,
    REFERENCE_TIME_ZONE,
    latest_cap,
    must_be_municipality,
    price_reference,
    reference_sessions_of,
    rule_json,
)
from stekker.services.tariff_lookup import cap_at, cap_rule, parse_version, zone

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,35}$")
_PARTY = re.compile(r"^[A-Z]{2}-[A-Z0-9]{3}$")
_CONTENT_KEYS = {
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "energy_mix",
}
_MAX_CONTENT_BYTES = 64_000
_MAX_ELEMENTS = 50
_REPRICE_LIMIT = 500_000  # sessions; a month of a 5,000-station network


class TariffNotFound(Missing):
    pass


class InvalidTariff(Invalid):
    pass


class TariffConflict(Conflict):
    pass


class CapExceeded(Invalid):
    """A proposal that would cost more than the maximum price on a reference session."""

    def __init__(self, message: str, breaches: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.breaches = breaches


@dataclass(frozen=True, slots=True)
class Draft:
    """What the operator proposes: prices (an OCPI Tariff body), where, for whom and from when."""

    content: dict[str, Any]
    applies_to: list[dict[str, Any]] = field(default_factory=lambda: [{"all": True}])
    audience: str = "all"
    parties: list[str] = field(default_factory=list)
    energy_suppliers: list[str] = field(default_factory=list)
    parking_grace_minutes: int = 0
    ends_tariff: bool = False
    effective_from: datetime | None = None
    note: str | None = None


# --- validation ----------------------------------------------------------------------------------


def _check_draft(draft: Draft, record: TariffRecord) -> Tariff | None:
    """The parsed tariff of a draft, or InvalidTariff saying what is wrong."""
    unknown = set(draft.content) - _CONTENT_KEYS
    if unknown:
        raise InvalidTariff(
            f"unknown tariff fields {sorted(unknown)}; allowed: {sorted(_CONTENT_KEYS)} "
            "(id, currency, country_code and party_id come from the tariff itself)"
        )
    if len(json.dumps(draft.content, default=str)) > _MAX_CONTENT_BYTES:
        raise InvalidTariff(f"the tariff is larger than {_MAX_CONTENT_BYTES} bytes")
    if len(draft.content.get("elements") or ()) > _MAX_ELEMENTS:
        raise InvalidTariff(f"a tariff has at most {_MAX_ELEMENTS} elements")
    try:
        validate_targets(draft.applies_to)
    except ValueError as exc:
        raise InvalidTariff(str(exc)) from None
    if not draft.applies_to:
        raise InvalidTariff("applies_to is empty: name at least one target, e.g. {'all': true}")
    if draft.audience not in AUDIENCES:
        raise InvalidTariff(f"audience must be one of {list(AUDIENCES)}, got {draft.audience!r}")
    if draft.parties and draft.audience != "contract":
        raise InvalidTariff("parties can only be named for audience 'contract'")
    for party in draft.parties:
        if not _PARTY.match(party):
            raise InvalidTariff(f"a party is written like NL-ABC, got {party!r}")
    if not 0 <= draft.parking_grace_minutes <= 24 * 60:
        raise InvalidTariff("parking_grace_minutes must be 0..1440")
    if draft.ends_tariff:
        return None
    content = dict(draft.content)
    content.update(id=record.code, currency=record.currency)
    try:
        return tariff_from_ocpi(content)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidTariff(f"the tariff is not a valid OCPI 2.2.1 tariff: {exc}") from None


async def _record(db: AsyncSession, code: str) -> TariffRecord:
    record = (await db.execute(select(TariffRecord).where(TariffRecord.code == code))).scalar_one_or_none()
    if record is None:
        raise TariffNotFound(f"no tariff {code!r}")
    return record


async def _version(db: AsyncSession, record: TariffRecord, number: int) -> TariffVersion:
    row = (
        await db.execute(
            select(TariffVersion).where(TariffVersion.tariff_id == record.id, TariffVersion.version == number)
        )
    ).scalar_one_or_none()
    if row is None:
        raise TariffNotFound(f"tariff {record.code!r} has no version {number}")
    return row


async def _versions(db: AsyncSession, record: TariffRecord) -> list[TariffVersion]:
    return list(
        (
            await db.execute(
                select(TariffVersion)
                .where(TariffVersion.tariff_id == record.id)
                .order_by(TariffVersion.version)
            )
        ).scalars()
    )


def _transition(
    db: AsyncSession,
    row: TariffVersion,
    to: S,
    *,
    actor: str,
    role: str,
    at: datetime,
    comment: str | None = None,
) -> None:
    db.add(
        TariffTransition(
            tariff_id=row.tariff_id,
            version_id=row.id,
            from_status=row.status if row.id is not None and row.status != to else None,
            to_status=to.value,
            actor=actor,
            role=role,
            comment=comment,
            at=at,
        )
    )
    row.status = to.value


def _step(
    db: AsyncSession,
    record: TariffRecord,
    row: TariffVersion,
    to: S,
    *,
    actor: str,
    role: str,
    at: datetime,
    action: str,
    comment: str | None = None,
    **detail: Any,
) -> None:
    """One workflow step: the transition and its audit entry, in the caller's transaction."""
    _transition(db, row, to, actor=actor, role=role, at=at, comment=comment)
    audit(
        db,
        actor=actor,
        action=action,
        object_type="tariff",
        object_id=record.code,
        at=at,
        version=row.version,
        comment=comment,
        **detail,
    )


def _apply_draft(row: TariffVersion, draft: Draft) -> None:
    row.content = draft.content
    row.applies_to = draft.applies_to
    row.audience = draft.audience
    row.parties = sorted(set(draft.parties))
    row.energy_suppliers = sorted(set(draft.energy_suppliers))
    row.parking_grace_minutes = draft.parking_grace_minutes
    row.ends_tariff = draft.ends_tariff
    row.effective_from = draft.effective_from
    row.note = draft.note


# --- operator side -------------------------------------------------------------------------------


async def create_tariff(
    ctx: ServiceContext, *, actor: str, code: str, name: str, currency: str, draft: Draft
) -> dict[str, Any]:
    """A new tariff with its first version as a draft (nothing prices with it yet)."""
    if not _CODE.match(code):
        raise InvalidTariff("a tariff code is 1-36 letters, digits, '.', '_' or '-' (it is the OCPI id)")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidTariff(f"currency must be an ISO 4217 code such as EUR, got {currency!r}")
    if not name.strip() or len(name) > 100:
        raise InvalidTariff("a tariff needs a name of 1-100 characters")
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        existing = (await db.execute(select(TariffRecord.id).where(TariffRecord.code == code))).first()
        if existing is not None:
            raise TariffConflict(f"a tariff {code!r} already exists; propose a new version of it instead")
        record = TariffRecord(
            code=code, name=name.strip(), currency=currency, created_by=actor, created_at=now
        )
        _check_draft(draft, record)
        db.add(record)
        await db.flush()
        row = TariffVersion(tariff_id=record.id, version=1, created_by=actor, created_at=now)
        _apply_draft(row, draft)
        db.add(row)
        await db.flush()
        _transition(db, row, S.DRAFT, actor=actor, role="operator", at=now)
        audit(
            db, actor=actor, action="tariff.created", object_type="tariff", object_id=code, at=now, version=1
        )
        return await _tariff_view(db, record)

    try:
        return await ctx.write(job)
    except IntegrityError:
        raise TariffConflict(f"a tariff {code!r} already exists") from None


async def save_draft(ctx: ServiceContext, *, actor: str, code: str, draft: Draft) -> dict[str, Any]:
    """Edit the open draft, or start version n+1 as a draft. A submitted proposal must be
    withdrawn first: the municipality reviews exactly what it was sent."""
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        record = await _record(db, code)
        _check_draft(draft, record)
        versions = await _versions(db, record)
        open_rows = [v for v in versions if v.status in OPEN_STATUSES]
        if open_rows and open_rows[-1].status == S.SUBMITTED:
            raise TariffConflict(
                f"version {open_rows[-1].version} of {code!r} is with the municipality; "
                "withdraw it before changing it"
            )
        if open_rows:
            row = open_rows[-1]
            _apply_draft(row, draft)
            action = "tariff.draft_updated"
        else:
            row = TariffVersion(
                tariff_id=record.id, version=(versions[-1].version + 1) if versions else 1, created_by=actor
            )
            row.created_at = now
            _apply_draft(row, draft)
            db.add(row)
            await db.flush()
            _transition(db, row, S.DRAFT, actor=actor, role="operator", at=now)
            action = "tariff.draft_created"
        audit(
            db, actor=actor, action=action, object_type="tariff", object_id=code, at=now, version=row.version
        )
        return await _version_view(db, record, row)

    return await ctx.write(job)


Check = Callable[[AsyncSession, TariffRecord, TariffVersion, datetime], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Move:
    """One kind of workflow step: from which statuses, to which, what the other side is told."""

    action: str
    allowed_from: tuple[S, ...]
    to: S
    notify: str
    verb: str


async def _move(
    ctx: ServiceContext,
    move: _Move,
    *,
    actor: str,
    role: str,
    code: str,
    version: int,
    comment: str | None = None,
    check: Check | None = None,
) -> dict[str, Any]:
    """Take one step in one transaction (status check, `check`, transition, audit), then
    tell the other side."""
    now = ctx.now()

    async def job(db: AsyncSession) -> dict[str, Any]:
        record = await _record(db, code)
        row = await _version(db, record, version)
        if row.status not in move.allowed_from:
            allowed = " or ".join(s.value for s in move.allowed_from)
            raise TariffConflict(
                f"only a {allowed} version can be {move.verb}; version {version} is {row.status}"
            )
        if check is not None:
            await check(db, record, row, now)
        _step(db, record, row, move.to, actor=actor, role=role, at=now, action=move.action, comment=comment)
        return await _version_view(db, record, row)

    view = await ctx.write(job)
    await _announce(ctx, move.action, code, version, actor, notify=move.notify, comment=comment)
    return view


_SUBMIT = _Move("tariff.submitted", (S.DRAFT,), S.SUBMITTED, "municipality", "submitted")
_WITHDRAW = _Move(
    "tariff.withdrawn", (S.DRAFT, S.SUBMITTED, S.SCHEDULED), S.WITHDRAWN, "municipality", "withdrawn"
)
_APPROVE = _Move("tariff.approved", (S.SUBMITTED,), S.SCHEDULED, "operator", "approved")
_REJECT = _Move("tariff.rejected", (S.SUBMITTED,), S.REJECTED, "operator", "rejected")


async def _schedulable_within_cap(
    db: AsyncSession, record: TariffRecord, row: TariffVersion, now: datetime
) -> None:
    await _check_schedulable(db, record, row, now)
    await _check_cap(db, record, row)


async def _not_yet_in_effect(
    db: AsyncSession, record: TariffRecord, row: TariffVersion, now: datetime
) -> None:
    if row.status == S.SCHEDULED and row.effective_from is not None and row.effective_from <= now:
        raise TariffConflict(
            f"version {row.version} took effect at {row.effective_from.isoformat()}; "
            "propose a new version to change it"
        )


async def submit(ctx: ServiceContext, *, actor: str, code: str, version: int) -> dict[str, Any]:
    """Send a draft to the municipality; refused when its effective time is not in the future
    or when it costs more than the cap on a reference session (the message says which)."""
    return await _move(
        ctx, _SUBMIT, actor=actor, role="operator", code=code, version=version, check=_schedulable_within_cap
    )


async def withdraw(
    ctx: ServiceContext, *, actor: str, code: str, version: int, comment: str | None = None
) -> dict[str, Any]:
    """Take back a draft, a proposal or an approved version that has not taken effect yet."""
    return await _move(
        ctx,
        _WITHDRAW,
        actor=actor,
        role="operator",
        code=code,
        version=version,
        comment=comment,
        check=_not_yet_in_effect,
    )


async def _check_schedulable(
    db: AsyncSession, record: TariffRecord, row: TariffVersion, now: datetime
) -> None:
    if row.effective_from is None:
        raise InvalidTariff("set effective_from: the moment the new prices take effect (in the future)")
    if row.effective_from <= now:
        raise TariffConflict(
            f"effective_from {row.effective_from.isoformat()} is not in the future; choose a later moment"
        )
    for other in await _versions(db, record):
        if other.id == row.id or other.status not in APPROVED_STATUSES or other.effective_from is None:
            continue
        if other.effective_from >= row.effective_from:
            raise TariffConflict(
                f"version {other.version} is approved to take effect at {other.effective_from.isoformat()}, "
                f"not before this one; withdraw it or choose a later effective_from"
            )
    if row.ends_tariff and not any(v.status in APPROVED_STATUSES for v in await _versions(db, record)):
        raise TariffConflict(
            "a tariff that never took effect needs no retirement; withdraw its versions instead"
        )


# --- municipality side ---------------------------------------------------------------------------


async def approve(
    ctx: ServiceContext, *, actor: str, role: Role, code: str, version: int, comment: str | None = None
) -> dict[str, Any]:
    """The municipality approves a proposal: it takes effect at its effective_from (which
    must still be in the future, and the prices still within the cap)."""
    must_be_municipality(role, "approves tariffs")
    return await _move(
        ctx,
        _APPROVE,
        actor=actor,
        role=role.value,
        code=code,
        version=version,
        comment=comment,
        check=_schedulable_within_cap,
    )


async def reject(
    ctx: ServiceContext, *, actor: str, role: Role, code: str, version: int, comment: str
) -> dict[str, Any]:
    """The municipality rejects a proposal; the comment tells the operator why."""
    must_be_municipality(role, "rejects tariffs")
    if not comment or not comment.strip():
        raise InvalidTariff("a rejection needs a comment saying why")
    return await _move(
        ctx, _REJECT, actor=actor, role=role.value, code=code, version=version, comment=comment
    )


async def activate_due(ctx: ServiceContext) -> int:
    """Make approved versions whose time has come `active` (and their predecessors
    `superseded`); publishes `tariff.activated` or `tariff.retired` for each. Housekeeping."""
    now = ctx.now()

    async def job(db: AsyncSession) -> list[tuple[str, int, bool]]:
        due = list(
            (
                await db.execute(
                    select(TariffVersion)
                    .where(TariffVersion.status == S.SCHEDULED, TariffVersion.effective_from <= now)
                    .order_by(TariffVersion.effective_from, TariffVersion.id)
                    # run once even if two nodes' leases overlap for a moment: the second skips
                    # the rows the first is activating (SQLite: one writer, nothing to skip)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        done: list[tuple[str, int, bool]] = []
        for row in due:
            record = await db.get(TariffRecord, row.tariff_id)
            assert record is not None
            for other in await _versions(db, record):
                if other.id != row.id and other.status in (S.ACTIVE, S.SCHEDULED) and _before(other, row):
                    _transition(db, other, S.SUPERSEDED, actor="system", role="system", at=now)
            _transition(db, row, S.ACTIVE, actor="system", role="system", at=now)
            audit(
                db,
                actor="system",
                action="tariff.retired" if row.ends_tariff else "tariff.activated",
                object_type="tariff",
                object_id=record.code,
                at=now,
                version=row.version,
            )
            done.append((record.code, row.version, row.ends_tariff))
        return done

    done = await ctx.write(job)
    for code, version, ends in done:
        await _announce(
            ctx, "tariff.retired" if ends else "tariff.activated", code, version, "system", notify="all"
        )
    return len(done)


def _before(earlier: TariffVersion, later: TariffVersion) -> bool:
    if earlier.effective_from is None or later.effective_from is None:
        return False
    return earlier.effective_from <= later.effective_from


async def _announce(
    ctx: ServiceContext,
    topic: str,
    code: str,
    version: int,
    actor: str,
    *,
    notify: str,
    comment: str | None = None,
) -> None:
    """The event the other side of the workflow is told by (e-mail and webhooks hang off it)."""
    await ctx.bus.publish(
        Event(topic, {"tariff": code, "version": version, "by": actor, "notify": notify, "comment": comment})
    )


# --- the maximum price and reference sessions ----------------------------------------------------


async def _check_cap(db: AsyncSession, record: TariffRecord, row: TariffVersion) -> None:
    """CapExceeded when the version costs more than the cap in force at its effective time
    (or the newest cap, if later) on any reference session."""
    if row.ends_tariff:
        return
    assert row.effective_from is not None
    in_force = await cap_at(db, row.effective_from)
    newest = await latest_cap(db)
    rules = [] if in_force is None else [in_force[1]]
    if newest is not None and (in_force is None or newest.id != in_force[0]):
        rules.append(cap_rule(newest))  # a cap set for later binds proposals made now
    if not rules:
        return
    tariff = parse_version(row, record)
    breaches: list[dict[str, Any]] = []
    for rule in rules:
        if rule.currency != record.currency:
            raise CapExceeded(
                f"the maximum price is set in {rule.currency}; "
                f"a tariff in {record.currency} cannot be checked against it",
                [],
            )
        for ref in reference_sessions_of(newest):
            result = price_reference(
                tariff, row.parking_grace_minutes, ref, row.effective_from, REFERENCE_TIME_ZONE
            )
            limit, bound = cap_limit(result["priced"], rule)
            if bound is not None and result["incl_vat"] > limit:
                breaches.append(
                    {
                        "reference_session": ref.name,
                        "session": ref.describe(),
                        "cost_incl_vat": str(result["incl_vat"]),
                        "cap_incl_vat": str(limit),
                        "bound": bound,
                    }
                )
    if breaches:
        first = breaches[0]
        raise CapExceeded(
            f"the proposal costs more than the maximum price on {len(breaches)} reference session(s); "
            f"e.g. {first['reference_session']} ({first['session']}) would cost "
            f"{amount_text(Decimal(first['cost_incl_vat']), record.currency, 'en')} incl. VAT where the cap "
            f"allows {amount_text(Decimal(first['cap_incl_vat']), record.currency, 'en', Rounding.MAXIMUM)} "
            f"({first['bound']})",
            breaches,
        )


# --- reading -------------------------------------------------------------------------------------


async def compare(
    ctx: ServiceContext, code: str, version: int, history_days: int | None = None
) -> dict[str, Any]:
    """Old against new on every reference session: what the version in effect just before
    the proposal's effective time costs, what the proposal costs, and the cap. With
    `history_days`, also the real sessions this tariff billed in those days, repriced."""
    async with ctx.db() as db:
        record = await _record(db, code)
        row = await _version(db, record, version)
        at = row.effective_from or ctx.now()
        previous = [
            v
            for v in await _versions(db, record)
            if v.status in APPROVED_STATUSES
            and v.id != row.id
            and v.effective_from is not None
            and v.effective_from <= at
        ]
        old = max(previous, key=lambda v: (v.effective_from, v.id)) if previous else None
        cap = await cap_at(db, at) or await cap_at(db, ctx.now())
        refs = reference_sessions_of(await latest_cap(db))
        new_tariff = None if row.ends_tariff else _parsed_or_invalid(row, record)
        old_tariff = None if old is None or old.ends_tariff else parse_version(old, record)
    sessions = []
    for ref in refs:
        item: dict[str, Any] = {"reference_session": ref.to_json(), "description": ref.describe()}
        for label, tariff, grace in (
            ("old", old_tariff, 0 if old is None else old.parking_grace_minutes),
            ("new", new_tariff, row.parking_grace_minutes),
        ):
            if tariff is None:
                item[label] = None
                continue
            result = price_reference(tariff, grace, ref, at, REFERENCE_TIME_ZONE)
            outcome = apply_cap(result["priced"], None if cap is None else cap[1])
            item[label] = {
                "excl_vat": result["excl_vat"],
                "incl_vat": result["incl_vat"],
                "per_kwh_incl_vat": result["per_kwh_incl_vat"],
                "cap_limit_incl_vat": outcome.limit_incl_vat,
                "over_cap": outcome.capped_by in CAP_BOUNDS,
            }
        if item["old"] and item["new"]:
            item["difference_incl_vat"] = item["new"]["incl_vat"] - item["old"]["incl_vat"]
        sessions.append(item)
    repriced = None
    if history_days is not None and new_tariff is not None:
        repriced = await reprice_history(
            ctx,
            record.id,
            new_tariff,
            row.parking_grace_minutes,
            history_days,
            None if cap is None else cap[1],
        )
    return {
        "history": repriced,
        "tariff": code,
        "currency": record.currency,
        "version": version,
        "status": row.status,
        "effective_from": row.effective_from,
        "compared_with_version": None if old is None else old.version,
        "ends_tariff": row.ends_tariff,
        "cap": None if cap is None else {"id": cap[0], **rule_json(cap[1])},
        "parking_rule": parking_rule(ctx.settings.charge_start_grace_seconds, row.parking_grace_minutes),
        "sessions": sessions,
    }


def parking_rule(start_grace_seconds: int, grace_minutes: int) -> str:
    """When a session parks (PARKING_TIME, the idle fee), in the words the municipality reads
    next to the comparison."""
    minutes, seconds = divmod(start_grace_seconds, 60)
    start = f"{start_grace_seconds} s" if seconds else f"{minutes} min"
    free = f"; the first {grace_minutes} min of every parked stretch are free" if grace_minutes else ""
    return (
        "Parking is time connected and not charging after the car charged: the time between the "
        f"start and charging is not parking for {start}, a car that has not started charging by then "
        f"parks from then on{free}."
    )


async def reprice_history(
    ctx: ServiceContext,
    tariff_id: int,
    tariff: Tariff,
    grace_minutes: int,
    days: int,
    cap: PriceCapRule | None,
) -> dict[str, Any]:
    """The last `days` of sessions billed by any version of the tariff, priced again under
    `tariff` from their CDRs (credited CDRs left out): what the change would have meant."""
    started = time.perf_counter()
    since = ctx.now() - timedelta(days=days)
    credited = select(Cdr.credits_cdr_id).where(Cdr.credits_cdr_id.is_not(None))
    query = (
        select(Cdr.data, Cdr.total_cost_incl_vat, Cdr.location_id)
        .join(TariffVersion, TariffVersion.id == Cdr.tariff_version_id)
        .where(
            TariffVersion.tariff_id == tariff_id,
            Cdr.kind == CdrKind.CHARGE,
            Cdr.end_time >= since,
            Cdr.id.not_in(credited),
        )
        .order_by(Cdr.id)
        .limit(_REPRICE_LIMIT)
    )
    grace = timedelta(minutes=grace_minutes)
    start_grace = timedelta(seconds=ctx.settings.charge_start_grace_seconds)
    count = skipped = 0
    old_total = new_total = Decimal(0)
    zones: dict[int | None, Any] = {}
    async with ctx.db() as db:
        for location_id, name in (await db.execute(select(Location.id, Location.time_zone))).all():
            zones[location_id] = zone(name)
        result = await db.stream(query)
        async for partition in result.partitions(2000):
            for data, billed, location_id in partition:
                try:
                    periods = with_parking_grace(with_start_grace(periods_from_cdr(data), start_grace), grace)
                    priced = price_session(tariff, periods, zones.get(location_id) or zone(None))
                except (ValueError, KeyError, TypeError, ArithmeticError):
                    skipped += 1
                    continue
                count += 1
                old_total += billed
                new_total += bill(priced, apply_cap(priced, cap), tariff.max_price).total_incl_vat
    return {
        "days": days,
        "sessions": count,
        "skipped": skipped,
        "truncated": count + skipped >= _REPRICE_LIMIT,
        "old_incl_vat": old_total,
        "new_incl_vat": new_total,
        "difference_incl_vat": new_total - old_total,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _parsed_or_invalid(row: TariffVersion, record: TariffRecord) -> Tariff:
    try:
        return parse_version(row, record)
    except ValueError as exc:
        raise InvalidTariff(f"version {row.version} is not a valid tariff: {exc}") from None


async def list_tariffs(ctx: ServiceContext) -> list[dict[str, Any]]:
    async with ctx.db() as db:
        records = list((await db.execute(select(TariffRecord).order_by(TariffRecord.code))).scalars())
        return [await _tariff_view(db, record, with_versions=False) for record in records]


async def get_tariff(ctx: ServiceContext, code: str) -> dict[str, Any]:
    async with ctx.db() as db:
        return await _tariff_view(db, await _record(db, code))


async def get_version(ctx: ServiceContext, code: str, version: int) -> dict[str, Any]:
    async with ctx.db() as db:
        record = await _record(db, code)
        return await _version_view(db, record, await _version(db, record, version))


async def history(ctx: ServiceContext, code: str) -> list[dict[str, Any]]:
    """Every step of every version, oldest first: who, when, from which status to which, why."""
    async with ctx.db() as db:
        record = await _record(db, code)
        numbers = {v.id: v.version for v in await _versions(db, record)}
        rows = (
            await db.execute(
                select(TariffTransition)
                .where(TariffTransition.tariff_id == record.id)
                .order_by(TariffTransition.at, TariffTransition.id)
            )
        ).scalars()
        return [_transition_view(t, numbers.get(t.version_id)) for t in rows]


def _transition_view(t: TariffTransition, version: int | None) -> dict[str, Any]:
    return {
        "version": version,
        "from": t.from_status,
        "to": t.to_status,
        "actor": t.actor,
        "role": t.role,
        "comment": t.comment,
        "at": t.at,
    }


async def _never_approved(db: AsyncSession, rows: list[TariffVersion]) -> set[int]:
    """Ids of the versions in force without the municipality's approval (a seeded demo tariff):
    every view of a tariff says so (stekker.domain.tariff_approval)."""
    steps: dict[int, list[tuple[str | None, str]]] = {r.id: [] for r in rows if r.status in IN_FORCE}
    if not steps:
        return set()
    found = await db.execute(
        select(TariffTransition.version_id, TariffTransition.from_status, TariffTransition.to_status).where(
            TariffTransition.version_id.in_(list(steps))
        )
    )
    for version_id, before, after in found:
        steps[version_id].append((before, after))
    return {r.id for r in rows if r.id in steps and never_approved(r.status, steps[r.id])}


async def never_approved_versions(db: AsyncSession, version_ids: list[int]) -> set[int]:
    """Of these version ids, those in force without the municipality's approval (for pages
    that show which version priced a session)."""
    if not version_ids:
        return set()
    rows = list((await db.execute(select(TariffVersion).where(TariffVersion.id.in_(version_ids)))).scalars())
    return await _never_approved(db, rows)


async def _tariff_view(db: AsyncSession, record: TariffRecord, with_versions: bool = True) -> dict[str, Any]:
    versions = await _versions(db, record)
    unapproved = await _never_approved(db, versions)
    by_status = {s: [v.version for v in versions if v.status == s] for s in S}
    view: dict[str, Any] = {
        "code": record.code,
        "name": record.name,
        "currency": record.currency,
        "created_by": record.created_by,
        "created_at": record.created_at,
        "active_version": by_status[S.ACTIVE][-1] if by_status[S.ACTIVE] else None,
        "scheduled_versions": by_status[S.SCHEDULED],
        "open_version": next((v.version for v in reversed(versions) if v.status in OPEN_STATUSES), None),
        "retired": any(v.ends_tariff and v.status == S.ACTIVE for v in versions),
        "active_never_approved": any(v.status == S.ACTIVE and v.id in unapproved for v in versions),
    }
    if with_versions:
        view["versions"] = [_version_summary(v, v.id in unapproved) for v in versions]
    return view


def _version_summary(row: TariffVersion, unapproved: bool = False) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "never_approved": unapproved,
        "effective_from": row.effective_from,
        "ends_tariff": row.ends_tariff,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


async def _version_view(db: AsyncSession, record: TariffRecord, row: TariffVersion) -> dict[str, Any]:
    transitions = (
        await db.execute(
            select(TariffTransition)
            .where(TariffTransition.version_id == row.id)
            .order_by(TariffTransition.id)
        )
    ).scalars()
    return {
        "tariff": record.code,
        "name": record.name,
        "currency": record.currency,
        **_version_summary(row, row.id in await _never_approved(db, [row])),
        "content": row.content,
        "applies_to": row.applies_to,
        "audience": row.audience,
        "parties": row.parties,
        "energy_suppliers": row.energy_suppliers,
        "parking_grace_minutes": row.parking_grace_minutes,
        "transitions": [_transition_view(t, row.version) for t in transitions],
    }


# --- the demo ------------------------------------------------------------------------------------

_DEMO_PRICES: dict[str, Any] = {
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": "0.35", "vat": "21.0", "step_size": 1},
                {"type": "PARKING_TIME", "price": "1.00", "vat": "21.0", "step_size": 60},
            ]
        }
    ],
}
_DEMO_GRACE_MINUTES = 15
# its alt text is the price text itself, so it says what is billed (€ 0,4235 per kWh), not a
# hand-rounded € 0,42 (stekker.domain.money)
DEMO_TARIFF: dict[str, Any] = {
    "tariff_alt_text": [
        {"language": lang, "text": text}
        for lang, text in price_texts(
            tariff_from_ocpi({"currency": "EUR", **_DEMO_PRICES}), timedelta(minutes=_DEMO_GRACE_MINUTES)
        ).items()
    ],
    **_DEMO_PRICES,
}


async def seed_demo_tariff(ctx: ServiceContext) -> bool:
    """`stekker demo` only: an active tariff for every station when there is none, so the
    demo's sessions get priced CDRs. It skips the municipality's approval and says so in the
    history; a real installation never calls this."""
    now = ctx.now()

    async def job(db: AsyncSession) -> bool:
        if (await db.execute(select(TariffRecord.id).limit(1))).first() is not None:
            return False
        record = TariffRecord(
            code="DEMO", name="Demo tariff", currency="EUR", created_by="demo", created_at=now
        )
        db.add(record)
        await db.flush()
        row = TariffVersion(tariff_id=record.id, version=1, created_by="demo", created_at=now)
        _apply_draft(
            row, Draft(content=DEMO_TARIFF, parking_grace_minutes=_DEMO_GRACE_MINUTES, effective_from=now)
        )
        db.add(row)
        await db.flush()
        _step(
            db, record, row, S.ACTIVE, actor="demo", role="system", at=now, action="tariff.activated",
            comment=None,  # the pages say "never approved" in the reader's language (never_approved)
        )  # fmt: skip
        return True

    return await ctx.write(job)
