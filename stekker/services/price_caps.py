"""The maximum price the municipality sets (requirement 157) and the reference sessions
tariffs are judged on: setting it (a new row each time, the old ones stay as history),
reading it, and pricing a tariff on the reference sessions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models_tariffs import PriceCap, TariffRecord, TariffVersion
from stekker.db.models_tariffs import TariffVersionStatus as S
from stekker.db.models_users import Role
from stekker.domain.billing import bill
from stekker.domain.price_caps import (
    DEFAULT_REFERENCE_SESSIONS,
    CapOutcome,
    PriceCapRule,
    ReferenceSession,
    apply_cap,
    reference_periods,
    reference_session_from_json,
)
from stekker.domain.pricing import price_session, with_parking_grace
from stekker.domain.tariffs import Tariff
from stekker.domain.timeutil import HOME_TIME_ZONE
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Forbidden, Invalid
from stekker.services.tariff_lookup import cap_rule, parse_version, zone

#: The zone reference sessions are read in.
REFERENCE_TIME_ZONE = HOME_TIME_ZONE
CAP_BOUNDS = ("cap.per_kwh", "cap.per_session", "cap.parking")


class InvalidCap(Invalid):
    pass


class NotMunicipality(Forbidden):
    pass


def must_be_municipality(role: Role, what: str) -> None:
    if role is not Role.MUNICIPALITY:
        raise NotMunicipality(f"only the municipality {what}; role {role} may not")


def reference_sessions_of(cap: PriceCap | None) -> tuple[ReferenceSession, ...]:
    if cap is None or not cap.reference_sessions:
        return DEFAULT_REFERENCE_SESSIONS
    return tuple(reference_session_from_json(item) for item in cap.reference_sessions)


async def latest_cap(db: AsyncSession) -> PriceCap | None:
    return (
        await db.execute(
            select(PriceCap).order_by(PriceCap.effective_from.desc(), PriceCap.id.desc()).limit(1)
        )
    ).scalar_one_or_none()


def price_reference(
    tariff: Tariff, grace_minutes: int, ref: ReferenceSession, at: datetime, tz_name: str
) -> dict[str, Any]:
    periods = with_parking_grace(reference_periods(ref, at, zone(tz_name)), timedelta(minutes=grace_minutes))
    priced = price_session(tariff, periods, zone(tz_name))
    billed = bill(
        priced,
        CapOutcome(priced.total_excl_vat, priced.total_incl_vat, priced.capped_by, None),
        tariff.max_price,
    )
    return {  # what a driver would be billed: whole cents (stekker.domain.billing)
        "excl_vat": billed.total_excl_vat,
        "incl_vat": billed.total_incl_vat,
        "per_kwh_incl_vat": (billed.total_incl_vat / priced.total_energy_kwh).quantize(Decimal("0.0001"))
        if priced.total_energy_kwh
        else None,
        "priced": priced,
    }


async def set_cap(
    ctx: ServiceContext,
    *,
    actor: str,
    role: Role,
    currency: str,
    max_per_kwh: Decimal | None,
    max_per_session: Decimal | None,
    max_parking_per_hour: Decimal | None,
    effective_from: datetime | None,
    reference_sessions: Sequence[ReferenceSession] | None,
    comment: str | None,
) -> dict[str, Any]:
    """The municipality sets the maximum price (a new row; the old stays as history). Tariffs
    already approved that it would cap are listed in the answer: their CDRs are capped anyway."""
    must_be_municipality(role, "sets the maximum price")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidCap(f"currency must be an ISO 4217 code such as EUR, got {currency!r}")
    try:
        rule = PriceCapRule(currency, max_per_kwh, max_per_session, max_parking_per_hour)
    except ValueError as exc:
        raise InvalidCap(str(exc)) from None
    now = ctx.now()
    start = effective_from or now
    if start < now:
        raise InvalidCap("a maximum price cannot take effect in the past")

    async def job(db: AsyncSession) -> dict[str, Any]:
        row = PriceCap(
            currency=currency,
            max_per_kwh=max_per_kwh,
            max_per_session=max_per_session,
            max_parking_per_hour=max_parking_per_hour,
            reference_sessions=None
            if reference_sessions is None
            else [r.to_json() for r in reference_sessions],
            effective_from=start,
            comment=comment,
            set_by=actor,
            set_at=now,
        )
        db.add(row)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="price_cap.set",
            object_type="price_cap",
            object_id=row.id,
            at=now,
            currency=currency,
            max_per_kwh=_s(max_per_kwh),
            max_per_session=_s(max_per_session),
            max_parking_per_hour=_s(max_parking_per_hour),
            effective_from=start.isoformat(),
        )
        view = cap_view(row)
        view["affected_tariffs"] = await _tariffs_over(db, rule, reference_sessions_of(row), start)
        return view

    view = await ctx.write(job)
    await ctx.bus.publish(Event("price_cap.set", {"by": actor, "notify": "operator", "cap_id": view["id"]}))
    return view


async def _tariffs_over(
    db: AsyncSession, rule: PriceCapRule, refs: Sequence[ReferenceSession], at: datetime
) -> list[dict[str, Any]]:
    """Approved, still current versions that cost more than `rule` on a reference session."""
    out: list[dict[str, Any]] = []
    rows = (
        await db.execute(
            select(TariffVersion, TariffRecord)
            .join(TariffRecord, TariffRecord.id == TariffVersion.tariff_id)
            .where(TariffVersion.status.in_([S.ACTIVE, S.SCHEDULED]), TariffVersion.ends_tariff.is_(False))
        )
    ).all()
    for row, record in rows:
        if record.currency != rule.currency:
            continue
        tariff = parse_version(row, record)
        for ref in refs:
            result = price_reference(
                tariff, row.parking_grace_minutes, ref, max(at, row.effective_from or at), REFERENCE_TIME_ZONE
            )
            if apply_cap(result["priced"], rule).capped_by in (
                "cap.per_kwh",
                "cap.per_session",
                "cap.parking",
            ):
                out.append({"tariff": record.code, "version": row.version, "reference_session": ref.name})
                break
    return out


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def rule_json(rule: PriceCapRule) -> dict[str, Any]:
    return {
        "currency": rule.currency,
        "max_per_kwh": rule.max_per_kwh,
        "max_per_session": rule.max_per_session,
        "max_parking_per_hour": rule.max_parking_per_hour,
    }


def cap_view(row: PriceCap) -> dict[str, Any]:
    return {
        "id": row.id,
        **rule_json(cap_rule(row)),
        "effective_from": row.effective_from,
        "comment": row.comment,
        "set_by": row.set_by,
        "set_at": row.set_at,
        "reference_sessions": [r.to_json() for r in reference_sessions_of(row)],
    }


async def caps(ctx: ServiceContext) -> dict[str, Any]:
    """The cap in force now, the next one if scheduled, and every earlier one."""
    now = ctx.now()
    async with ctx.db() as db:
        rows = list(
            (
                await db.execute(
                    select(PriceCap).order_by(PriceCap.effective_from.desc(), PriceCap.id.desc())
                )
            ).scalars()
        )
    current = next((r for r in rows if r.effective_from <= now), None)
    upcoming = [r for r in rows if r.effective_from > now]
    return {
        "current": None if current is None else cap_view(current),
        "upcoming": [cap_view(r) for r in reversed(upcoming)],
        "history": [cap_view(r) for r in rows],
        "reference_sessions": [r.to_json() for r in reference_sessions_of(rows[0] if rows else None)],
    }
