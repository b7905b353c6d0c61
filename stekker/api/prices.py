"""Open data: what charging at an EVSE costs right now, as data and in words (requirement 5).

Public: no authentication, no personal data (statuses of the EVSE and its connectors only).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from stekker.api.deps import get_ctx
from stekker.db.models import ChargingStation, Evse
from stekker.db.models_tariffs import TariffVersion, TariffVersionStatus
from stekker.domain.price_text import (
    LANGUAGES,
    UNKNOWN_PRICE,
    ElementSummary,
    PriceSummary,
    describe,
    summarize,
)
from stekker.domain.tariff_scope import Customer, Place, ScopedVersion, choose
from stekker.services.context import ServiceContext
from stekker.services.errors import Missing
from stekker.services.tariff_lookup import ResolvedTariff, approved_versions, place_of, resolved
from stekker.services.tokens import ENERGY_CONTRACT_MAX, ENERGY_CONTRACT_TEXT

router = APIRouter(prefix="/opendata", tags=["open data"])

_EVSE_UID = r"^[A-Za-z0-9][A-Za-z0-9*._-]{0,47}$"
_PARTY = r"^[A-Z]{2}-[A-Z0-9]{3}$"
_UPCOMING_LOOKAHEAD = 20  # scheduled versions considered for "what changes next"


class ComponentOut(BaseModel):
    kind: str = Field(description="energy, charging_time, parking_time or start_fee")
    unit: str = Field(description="kWh, hour or session")
    price_excl_vat: Decimal
    price_incl_vat: Decimal
    vat_percent: Decimal | None = Field(description="null: no VAT applies")
    step_size: int = Field(description="Billing block: Wh for energy, seconds for time.")


class ElementOut(BaseModel):
    prices: list[ComponentOut]
    conditions: dict[str, object] = Field(description="The OCPI restrictions that are set.")
    when: dict[str, str] = Field(description="The restrictions in words per language; empty: always.")
    reservation: str | None = Field(description="RESERVATION or RESERVATION_EXPIRES: prices a reservation.")


class MoneyOut(BaseModel):
    excl_vat: Decimal
    incl_vat: Decimal | None


class SummaryOut(BaseModel):
    currency: str
    elements: list[ElementOut] = Field(description="In precedence order: per dimension the first that holds.")
    min_price: MoneyOut | None
    max_price: MoneyOut | None
    parking_grace_minutes: int = Field(description="Free parking after charging before the idle fee.")
    free: bool


class TariffRef(BaseModel):
    code: str
    version: int
    currency: str
    effective_from: datetime


class ConnectorStatus(BaseModel):
    connector_number: int
    standard: str
    power_type: str
    max_electric_power: int | None = Field(description="W, when known.")
    status: str | None = Field(description="OCPP status: Available, Occupied, Charging, Faulted...")
    tariff: TariffRef | None = Field(
        default=None,
        description="The tariff of this connector when it differs from the EVSE's (a connector can "
        "have its own); ask `?connector=N` for its price in full.",
    )


class PriceOut(BaseModel):
    """A price as of a moment: the tariff version, its summary and its description."""

    tariff: TariffRef
    summary: SummaryOut
    text: dict[str, str] = Field(description="The price in words per language (incl. VAT).")
    alt_text: dict[str, str] = Field(description="The tariff's own description per language (OCPI alt text).")


class EvsePriceOut(BaseModel):
    evse_uid: str
    station_online: bool
    evse_status: str | None = Field(description="Available when a connector is, else the first status known.")
    connectors: list[ConnectorStatus]
    for_: Literal["adhoc", "party"] = Field(alias="for", serialization_alias="for")
    party: str | None
    at: datetime = Field(description="The moment the price is for (now), UTC.")
    tariff: TariffRef | None = Field(description="null: no tariff applies (the text says so).")
    summary: SummaryOut | None
    text: dict[str, str]
    alt_text: dict[str, str]
    upcoming: PriceOut | None = Field(description="The next approved change of this price, if any.")

    model_config = {"populate_by_name": True}


def _summary_out(summary: PriceSummary) -> SummaryOut:
    def element(e: ElementSummary) -> ElementOut:
        return ElementOut(
            prices=[
                ComponentOut(
                    kind=p.kind,
                    unit=p.unit,
                    price_excl_vat=p.price_excl_vat,
                    price_incl_vat=p.price_incl_vat,
                    vat_percent=p.vat_percent,
                    step_size=p.step_size,
                )
                for p in e.prices
            ],
            conditions=e.conditions,
            when={k: v for k, v in e.when.items() if v},
            reservation=e.reservation,
        )

    return SummaryOut(
        currency=summary.currency,
        elements=[element(e) for e in summary.elements],
        min_price=None
        if summary.min_price is None
        else MoneyOut(excl_vat=summary.min_price.excl_vat, incl_vat=summary.min_price.incl_vat),
        max_price=None
        if summary.max_price is None
        else MoneyOut(excl_vat=summary.max_price.excl_vat, incl_vat=summary.max_price.incl_vat),
        parking_grace_minutes=summary.parking_grace_minutes,
        free=summary.free,
    )


def _languages(lang: str | None) -> tuple[Literal["nl", "en"], ...]:
    return LANGUAGES if lang is None else tuple(x for x in LANGUAGES if x == lang)


def _tariff_ref(found: ResolvedTariff) -> TariffRef:
    return TariffRef(
        code=found.code,
        version=found.version,
        currency=found.tariff.currency,
        effective_from=found.effective_from,
    )


def _price_out(found: ResolvedTariff, lang: str | None) -> PriceOut:
    summary = summarize(found.tariff, found.parking_grace)
    langs = _languages(lang)
    return PriceOut(
        tariff=_tariff_ref(found),
        summary=_summary_out(summary),
        text={x: describe(summary, x) for x in langs},
        alt_text={k: v for k, v in found.tariff.alt_text.items() if lang is None or k == lang},
    )


async def _prices(
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


@router.get("/evses/{evse_uid}/price", response_model=EvsePriceOut, response_model_by_alias=True)
async def evse_price(
    evse_uid: Annotated[
        str,
        Path(
            max_length=48,
            pattern=_EVSE_UID,
            description="The public EVSE id printed on the station, e.g. NL*STK*ECP0001*1.",
        ),
    ],
    ctx: ServiceContext = Depends(get_ctx),
    party: Annotated[
        str | None,
        Query(
            max_length=6,
            pattern=_PARTY,
            description="The driver's eMSP as COUNTRY-PARTY (NL-ABC); omit for ad hoc (no contract).",
        ),
    ] = None,
    supplier: Annotated[
        str | None,
        Query(
            max_length=ENERGY_CONTRACT_MAX,
            pattern=ENERGY_CONTRACT_TEXT,
            description="The driver's energy supplier, for supplier tariffs.",
        ),
    ] = None,
    lang: Annotated[
        Literal["nl", "en"] | None,
        Query(description="Only this language in text and alt_text; default both."),
    ] = None,
    connector: Annotated[
        int | None, Query(ge=1, le=99, description="The price at this connector (default: the EVSE's).")
    ] = None,
) -> EvsePriceOut:
    """What charging at this EVSE costs now, for an ad-hoc driver or a driver of eMSP `party`:
    the tariff version, its prices as data (incl. and excl. VAT), the price in words (Dutch and
    English, or only `lang`), the tariff's own alt text and the next approved change. Without an
    applicable tariff: `tariff` null and a text that says the price is unknown."""
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
        current, upcoming = await _prices(db, versions, place, customer, now)
        connectors = []
        for c in evse.connectors:
            own = choose(versions, replace(place, connector=c.connector_number), customer, now)
            differs = own is not None and (current is None or own.version_id != current.version_id)
            connectors.append(
                ConnectorStatus(
                    connector_number=c.connector_number,
                    standard=c.standard,
                    power_type=c.power_type,
                    max_electric_power=c.max_electric_power,
                    status=c.status,
                    tariff=_tariff_ref(await resolved(db, own.version_id))
                    if own is not None and differs
                    else None,
                )
            )
        station_id = evse.station_id
    online = ctx.commands.is_connected(station_id) if ctx.commands is not None else False
    statuses = [c.status for c in connectors if c.status]
    evse_status = "Available" if "Available" in statuses else (statuses[0] if statuses else None)
    langs = _languages(lang)
    price = None if current is None else _price_out(current, lang)
    return EvsePriceOut(
        evse_uid=evse_uid,
        station_online=online,
        evse_status=evse_status,
        connectors=connectors,
        for_="party" if party else "adhoc",
        party=party,
        at=now,
        tariff=None if price is None else price.tariff,
        summary=None if price is None else price.summary,
        text=price.text if price is not None else {x: UNKNOWN_PRICE[x] for x in langs},
        alt_text={} if price is None else price.alt_text,
        upcoming=None if upcoming is None else _price_out(upcoming, lang),
    )
