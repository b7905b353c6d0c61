"""Our tariffs as OCPI 2.2.1 Tariff objects (CPO, sender side).

What we publish is, per tariff, the version in effect now (approved by the municipality and
past its effective time), unless that version retires the tariff. `start_date_time` is when
that version took effect, `end_date_time` when the next approved version takes over (a new
price or the retirement), if one is scheduled. The GET handler (`stekker.ocpi.tariffs`) and
the pushes build the same objects with `published_tariffs` and `tariff_object`.

`type`: the version's own `type` when its content names one; else AD_HOC_PAYMENT for a tariff
meant for drivers without a contract, REGULAR for one meant for contract drivers, and no type
for a tariff that applies to everybody (OCPI: "when omitted, this tariff is valid for all
sessions", which is exactly what such a tariff is).

`tariff_alt_text`: the operator's own texts when the version has them, else the price in words
of `stekker.domain.price_text` (Dutch and English, money by `stekker.domain.money`): what an
eMSP shows its drivers then says what is billed, in the same words as our public page.

A contract tariff agreed with particular eMSPs (`parties`) is shown only to a partner that
speaks for one of them: a negotiated price is that partner's business, not its competitors'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models_tariffs import (
    APPROVED_STATUSES,
    TariffRecord,
    TariffTransition,
    TariffVersion,
    TariffVersionStatus,
)
from stekker.domain.price_text import price_texts
from stekker.domain.tariffs import tariff_from_ocpi
from stekker.ocpi.location_objects import OcpiDateTime

TARIFF_TYPES = ("AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR")
_TYPE_OF_AUDIENCE = {"adhoc": "AD_HOC_PAYMENT", "contract": "REGULAR"}


class OcpiTariff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country_code: str
    party_id: str
    id: str
    currency: str
    type: str | None = None
    tariff_alt_text: list[dict[str, Any]] | None = None
    tariff_alt_url: str | None = None
    min_price: dict[str, Any] | None = None
    max_price: dict[str, Any] | None = None
    elements: list[dict[str, Any]]
    start_date_time: OcpiDateTime | None = None
    end_date_time: OcpiDateTime | None = None
    energy_mix: dict[str, Any] | None = None
    last_updated: OcpiDateTime

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class PublishedTariff:
    """A tariff as partners see it now: its identity, the version in effect, the next approved
    version's start (None: none scheduled) and when the published object last changed."""

    record: TariffRecord
    version: TariffVersion
    ends_at: datetime | None
    last_updated: datetime


def numbers(value: Any) -> Any:
    """JSON numbers all the way down: a Decimal becomes an int or a float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [numbers(v) for v in value]
    return value


def tariff_type(content: Mapping[str, Any], audience: str) -> str | None:
    stated = content.get("type")
    if isinstance(stated, str) and stated in TARIFF_TYPES:
        return stated
    return _TYPE_OF_AUDIENCE.get(audience)


def visible_to(version: TariffVersion, parties: Iterable[str]) -> bool:
    """Whether a partner speaking for `parties` ("NL-ABC") may read the version."""
    if version.audience != "contract" or not version.parties:
        return True
    return bool(set(version.parties) & set(parties))


def alt_texts(content: Mapping[str, Any], currency: str, grace_minutes: int) -> list[dict[str, Any]] | None:
    """The operator's alt texts of a version, else its price in words per language."""
    given = content.get("tariff_alt_text")
    if given:
        return list(given)
    try:
        tariff = tariff_from_ocpi({**content, "currency": currency})
    except ValueError:  # a version we cannot read: say nothing rather than something wrong
        return None
    texts = price_texts(tariff, timedelta(minutes=grace_minutes))
    return [{"language": lang, "text": text} for lang, text in texts.items()]


def tariff_object(published: PublishedTariff, country_code: str, party_id: str) -> OcpiTariff:
    content = numbers(dict(published.version.content or {}))
    assert published.version.effective_from is not None
    return OcpiTariff(
        country_code=country_code,
        party_id=party_id,
        id=published.record.code,
        currency=published.record.currency,
        type=tariff_type(content, published.version.audience),
        tariff_alt_text=alt_texts(
            published.version.content or {},
            published.record.currency,
            published.version.parking_grace_minutes,
        ),
        tariff_alt_url=content.get("tariff_alt_url") or None,
        min_price=content.get("min_price") or None,
        max_price=content.get("max_price") or None,
        elements=list(content.get("elements") or ()),
        start_date_time=published.version.effective_from,
        end_date_time=published.ends_at,
        energy_mix=content.get("energy_mix") or None,
        last_updated=published.last_updated,
    )


def _utc(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def current_and_next(
    versions: Sequence[TariffVersion], at: datetime
) -> tuple[TariffVersion | None, TariffVersion | None]:
    """Of one tariff's approved versions: the one in effect at `at` and the first after it."""
    dated = sorted(
        (v for v in versions if v.effective_from is not None),
        key=lambda v: (v.effective_from, v.id),
    )
    current = None
    following = None
    for version in dated:
        assert version.effective_from is not None
        if version.effective_from <= at:
            current = version
        elif following is None:
            following = version
    return current, following


async def published_tariffs(
    db: AsyncSession, at: datetime, parties: Iterable[str] = ()
) -> list[PublishedTariff]:
    """The tariffs in effect at `at` that a partner speaking for `parties` may read, by code."""
    approved = [s.value for s in APPROVED_STATUSES]
    versions = list(
        (
            await db.execute(
                select(TariffVersion).where(
                    TariffVersion.status.in_(approved), TariffVersion.effective_from.is_not(None)
                )
            )
        ).scalars()
    )
    by_tariff: dict[int, list[TariffVersion]] = {}
    for version in versions:
        by_tariff.setdefault(version.tariff_id, []).append(version)
    # what moves the published object: a version becoming scheduled or active, and a
    # scheduled one withdrawn (end_date_time comes and goes with them)
    moved = TariffTransition.to_status.in_(
        [TariffVersionStatus.SCHEDULED.value, TariffVersionStatus.ACTIVE.value]
    )
    unscheduled = and_(
        TariffTransition.to_status == TariffVersionStatus.WITHDRAWN.value,
        TariffTransition.from_status == TariffVersionStatus.SCHEDULED.value,
    )
    transitions = await db.execute(
        select(TariffTransition.tariff_id, func.max(TariffTransition.at))
        .where(or_(moved, unscheduled), TariffTransition.at <= at)
        .group_by(TariffTransition.tariff_id)
    )
    touched: dict[int, datetime | None] = {tariff_id: moment for tariff_id, moment in transitions}
    records = {r.id: r for r in (await db.execute(select(TariffRecord))).scalars()}
    wanted = list(parties)
    result: list[PublishedTariff] = []
    for tariff_id, rows in by_tariff.items():
        current, following = current_and_next(rows, at)
        record = records.get(tariff_id)
        if current is None or current.ends_tariff or record is None or not visible_to(current, wanted):
            continue
        assert current.effective_from is not None
        moments = [_utc(current.effective_from)]
        moved_at = touched.get(tariff_id)
        if moved_at is not None:
            moments.append(_utc(moved_at))
        result.append(
            PublishedTariff(
                record=record,
                version=current,
                ends_at=None if following is None else following.effective_from,
                last_updated=min(max(moments), _utc(at)),
            )
        )
    result.sort(key=lambda p: p.record.code)
    return result
