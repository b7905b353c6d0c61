"""Open data: what charging at an EVSE costs right now, as data and in words (requirement 5).

Public: no authentication, no personal data (statuses of the EVSE and its connectors only).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from stekker.api.deps import get_ctx
from stekker.domain.price_text import ElementSummary, PriceSummary
from stekker.services import evse_prices
from stekker.services.context import ServiceContext
from stekker.services.tokens import ENERGY_CONTRACT_MAX, ENERGY_CONTRACT_TEXT

router = APIRouter(prefix="/opendata", tags=["open data"])

_EVSE_UID = r"^[A-Za-z0-9][A-Za-z0-9*._-]{0,47}$"
_PARTY = r"^[A-Z]{2}-[A-Z0-9]{3}$"


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


def _tariff_ref(ref: evse_prices.TariffRef) -> TariffRef:
    return TariffRef(
        code=ref.code, version=ref.version, currency=ref.currency, effective_from=ref.effective_from
    )


def _price_out(price: evse_prices.PriceOfVersion) -> PriceOut:
    return PriceOut(
        tariff=_tariff_ref(price.tariff),
        summary=_summary_out(price.summary),
        text=price.text,
        alt_text=price.alt_text,
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
    found = await evse_prices.evse_price(
        ctx, evse_uid=evse_uid, party=party, supplier=supplier, lang=lang, connector=connector
    )
    price = None if found.current is None else _price_out(found.current)
    return EvsePriceOut(
        evse_uid=found.evse_uid,
        station_online=found.station_online,
        evse_status=found.evse_status,
        connectors=[
            ConnectorStatus(
                connector_number=c.connector_number,
                standard=c.standard,
                power_type=c.power_type,
                max_electric_power=c.max_electric_power,
                status=c.status,
                tariff=None if c.tariff is None else _tariff_ref(c.tariff),
            )
            for c in found.connectors
        ],
        for_="party" if party else "adhoc",
        party=party,
        at=found.at,
        tariff=None if price is None else price.tariff,
        summary=None if price is None else price.summary,
        text=found.text,
        alt_text=found.alt_text,
        upcoming=None if found.upcoming is None else _price_out(found.upcoming),
    )
