"""What charging at one EVSE costs now, and its live status: the one lookup behind the open
data's `GET /opendata/evses/{evse_uid}/price` and the driver's public page `/p/{evse_uid}`
(edges that must not import each other, so it lives here).

For an ad-hoc driver or a driver of eMSP `party` (and their energy supplier): the tariff
version in effect now (`domain.tariff_scope.choose` over the approved versions), its summary
and its price in words (`domain.price_text`, money by `domain.money`), the tariff's own alt
text, and the next approved version that will replace it. Public data only: statuses of the
EVSE and its connectors, no session, no token.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from stekker.db.models import ChargingStation, Evse
from stekker.db.models_tariffs import TariffVersion, TariffVersionStatus
from stekker.domain.money import Lang
from stekker.domain.price_text import LANGUAGES, UNKNOWN_PRICE, PriceSummary, describe, summarize
from stekker.domain.tariff_scope import Customer, Place, ScopedVersion, choose
from stekker.services.context import ServiceContext
from stekker.services.errors import Missing
from stekker.services.tariff_lookup import ResolvedTariff, approved_versions, place_of, resolved

_UPCOMING_LOOKAHEAD = 20  # scheduled versions considered for "what changes next"


@dataclass(frozen=True, slots=True)
class TariffRef:
    """Which tariff version a price comes from."""

    code: str
    version: int
    currency: str
    effective_from: datetime


@dataclass(frozen=True, slots=True)
class PriceOfVersion:
    """A tariff version's price: its summary, in words per language, and its own alt text."""

    tariff: TariffRef
    summary: PriceSummary
    text: dict[str, str]
    alt_text: dict[str, str]


@dataclass(frozen=True, slots=True)
class ConnectorNow:
    """A connector as the public sees it; `tariff` only when it differs from the EVSE's."""

    connector_number: int
    standard: str
    power_type: str
    max_electric_power: int | None
    status: str | None
    tariff: TariffRef | None


@dataclass(frozen=True, slots=True)
class EvsePriceNow:
    """What charging at an EVSE costs now (`current`, None when no tariff applies: then `text`
    says the price is unknown), its status and connectors, and the next approved change."""

    evse_uid: str
    station_online: bool
    evse_status: str | None
    connectors: tuple[ConnectorNow, ...]
    party: str | None
    at: datetime
    current: PriceOfVersion | None
    text: dict[str, str]
    alt_text: dict[str, str]
    upcoming: PriceOfVersion | None

    @property
    def summary(self) -> PriceSummary | None:
        return None if self.current is None else self.current.summary


def languages(lang: str | None) -> tuple[Lang, ...]:
    """Both languages, or only `lang`."""
    return LANGUAGES if lang is None else tuple(x for x in LANGUAGES if x == lang)


def _ref(found: ResolvedTariff) -> TariffRef:
    return TariffRef(found.code, found.version, found.tariff.currency, found.effective_from)


def _price_of(found: ResolvedTariff, lang: str | None) -> PriceOfVersion:
    summary = summarize(found.tariff, found.parking_grace)
    return PriceOfVersion(
        tariff=_ref(found),
        summary=summary,
        text={x: describe(summary, x) for x in languages(lang)},
        alt_text={k: v for k, v in found.tariff.alt_text.items() if lang is None or k == lang},
    )


async def _current_and_next(
    db: AsyncSession, versions: list[ScopedVersion], place: Place, customer: Customer, now: datetime
) -> tuple[ResolvedTariff | None, ResolvedTariff | None]:
    """The version in effect now and the next approved one that will replace it, if any."""
    current = choose(versions, place, customer, now)
    future = (
        await db.execute(
            select(TariffVersion.effective_from)
            .where(
                TariffVersion.status == TariffVersionStatus.SCHEDULED,
                TariffVersion.effective_from > now,
            )
            .order_by(TariffVersion.effective_from)
            .limit(_UPCOMING_LOOKAHEAD)
        )
    ).scalars()
    upcoming = None
    for moment in future:
        if moment is None:
            continue
        chosen = choose(versions, place, customer, moment)
        if chosen is not None and (current is None or chosen.version_id != current.version_id):
            upcoming = chosen
            break
    return (
        None if current is None else await resolved(db, current.version_id),
        None if upcoming is None else await resolved(db, upcoming.version_id),
    )


async def evse_price(
    ctx: ServiceContext,
    *,
    evse_uid: str,
    party: str | None = None,
    supplier: str | None = None,
    lang: str | None = None,
    connector: int | None = None,
) -> EvsePriceNow:
    """The price and status of an EVSE in service now; Missing for an unknown or retired EVSE
    or a connector it does not have."""
    now = ctx.now()
    async with ctx.db() as db:
        evse = (
            await db.execute(
                select(Evse)
                .options(selectinload(Evse.connectors))
                .join(ChargingStation, ChargingStation.id == Evse.station_id)
                .where(Evse.evse_id == evse_uid, ChargingStation.retired_at.is_(None))
            )
        ).scalar_one_or_none()
        if evse is None:
            raise Missing(f"no EVSE {evse_uid!r}; use the EVSE id printed on the station")
        if connector is not None and connector not in {c.connector_number for c in evse.connectors}:
            raise Missing(f"EVSE {evse_uid!r} has no connector {connector}")
        customer = Customer(party, supplier)
        versions = await approved_versions(db)
        place = await place_of(db, evse.station_id, evse.evse_number, connector)
        current, upcoming = await _current_and_next(db, versions, place, customer, now)
        connectors = []
        for c in evse.connectors:
            own = choose(versions, replace(place, connector=c.connector_number), customer, now)
            differs = own is not None and (current is None or own.version_id != current.version_id)
            connectors.append(
                ConnectorNow(
                    connector_number=c.connector_number,
                    standard=c.standard,
                    power_type=c.power_type,
                    max_electric_power=c.max_electric_power,
                    status=c.status,
                    tariff=_ref(await resolved(db, own.version_id)) if own is not None and differs else None,
                )
            )
        station_id = evse.station_id
    online = ctx.commands.is_connected(station_id) if ctx.commands is not None else False
    statuses = [c.status for c in connectors if c.status]
    price = None if current is None else _price_of(current, lang)
    return EvsePriceNow(
        evse_uid=evse_uid,
        station_online=online,
        evse_status="Available" if "Available" in statuses else (statuses[0] if statuses else None),
        connectors=tuple(connectors),
        party=party,
        at=now,
        current=price,
        text=price.text if price is not None else {x: UNKNOWN_PRICE[x] for x in languages(lang)},
        alt_text={} if price is None else price.alt_text,
        upcoming=None if upcoming is None else _price_of(upcoming, lang),
    )
