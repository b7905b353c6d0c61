"""A realistic public fleet in the open-data model (`OpenLocation`, `OpenTariff`) for the DATEX II
tests and the timing script: AC and DC, several tariffs (energy, charging time, session fee,
parking, free), a location with opening hours and ones open around the clock, an EVSE in every
OCPI status, an EVSE without an eMI3 id, and names no XML writer may take literally.

The OCPI objects have the shape `stekker.ocpi.location_objects` and `tariff_objects` give them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stekker.opendata.model import OpenLocation, OpenTariff, Publisher

PUBLISHER = Publisher("NL", "STK", "Stekker Laadpalen")
NOW = datetime(2026, 3, 2, 11, 30, 15, tzinfo=UTC)
STATIC_AT = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
#: XML-hostile (markup characters, quotes) and non-ASCII, as an operator may type them.
HOSTILE_NAME = "Laadplein <Noord> & \"Zuid\" 'Oost' — Café Ünïcødé ⚡"
HOSTILE_CITY = "'s-Hertogenbosch & <Den Bosch>"
GREEN = {"is_green_energy": True, "energy_product_name": "Hollandse Wind & Zon", "supplier_name": "Groen"}
GREY = {"is_green_energy": False}


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tariffs() -> dict[str, OpenTariff]:
    """The ad-hoc tariffs: wire form as `tariff_objects.tariff_object(...).wire()` gives it."""
    base = {"country_code": "NL", "party_id": "STK", "currency": "EUR", "type": "AD_HOC_PAYMENT"}
    started = _time(STATIC_AT - timedelta(days=30))
    objects: list[dict[str, Any]] = [
        {
            **base,
            "id": "AC-DAG",
            "tariff_alt_text": [
                {
                    "language": "nl",
                    "text": "€ 0,42 per kWh (nacht € 0,30); parkeren na het laden € 1,46 per uur.",
                },
                {
                    "language": "en",
                    "text": "€0.42 per kWh (night €0.30); parking after charging €1.46 per hour.",
                },
            ],
            "elements": [
                {  # off-peak first: OCPI's first matching element wins
                    "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}],
                    "restrictions": {"start_time": "22:00", "end_time": "07:00"},
                },
                {
                    "price_components": [
                        {"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1},
                        {"type": "PARKING_TIME", "price": 1.21, "vat": 21.0, "step_size": 60},
                    ]
                },
            ],
            "start_date_time": started,
            "last_updated": started,
        },
        {
            **base,
            "id": "DC-SNEL",
            "max_price": {"excl_vat": 60.0, "incl_vat": 72.6},
            "elements": [
                {
                    "price_components": [
                        {"type": "FLAT", "price": 0.5, "vat": 21.0, "step_size": 1},
                        {"type": "ENERGY", "price": 0.59, "vat": 21.0, "step_size": 1},
                    ]
                },
                {  # a charging-time price after 45 minutes, against blocking the fast charger
                    "price_components": [{"type": "TIME", "price": 6.0, "vat": 21.0, "step_size": 60}],
                    "restrictions": {"min_duration": 2700},
                },
            ],
            "start_date_time": started,
            "last_updated": _time(STATIC_AT - timedelta(days=2)),
        },
        {
            **base,
            "id": "PARKEREN",
            "min_price": {"excl_vat": 1.0, "incl_vat": 1.21},
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 21.0, "step_size": 1}]},
                {
                    "price_components": [
                        {"type": "PARKING_TIME", "price": 2.4, "vat": 21.0, "step_size": 300}
                    ],
                    "restrictions": {
                        "start_time": "09:00",
                        "end_time": "18:00",
                        "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                        "max_power": 11.0,
                    },
                },
            ],
            "start_date_time": started,
            "end_date_time": _time(STATIC_AT + timedelta(days=60)),
            "last_updated": started,
        },
        {
            **base,
            "id": "GRATIS",
            "elements": [{"price_components": [{"type": "FLAT", "price": 0, "step_size": 1}]}],
            "start_date_time": started,
            "last_updated": started,
        },
    ]
    return {t["id"]: OpenTariff(t) for t in objects}


def connector(
    number: int,
    standard: str,
    power_type: str,
    volts: int,
    amps: int,
    tariff_ids: list[str],
    fmt: str = "SOCKET",
    watts: int | None = None,
) -> dict[str, Any]:
    phases = 3 if power_type == "AC_3_PHASE" else 1
    return {
        "id": str(number),
        "standard": standard,
        "format": fmt,
        "power_type": power_type,
        "max_voltage": volts,
        "max_amperage": amps,
        "max_electric_power": watts if watts is not None else volts * amps * phases,
        "tariff_ids": tariff_ids,
        "last_updated": _time(STATIC_AT),
    }


def evse(
    uid: str,
    status: str,
    connectors: list[dict[str, Any]],
    *,
    evse_id: str | None = None,
    seen: datetime = NOW,
) -> dict[str, Any]:
    result: dict[str, Any] = {"uid": uid}
    if evse_id is not None:
        result["evse_id"] = evse_id
    result |= {
        "status": status,
        "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
        "connectors": connectors,
        "physical_reference": uid.rpartition("*")[2],
        "parking_restrictions": [],
        "last_updated": _time(seen),
    }
    return result


def location(
    location_id: int,
    name: str | None,
    evses: list[tuple[str, dict[str, Any]]],
    *,
    address: str = "Stationsplein 12a",
    city: str = "Utrecht",
    postal_code: str | None = "3511 CE",
    latitude: str = "52.089444",
    longitude: str = "5.110278",
    opening_times: dict[str, Any] | None = None,
    energy_mix: dict[str, Any] | None = None,
    static_at: datetime = STATIC_AT,
) -> OpenLocation:
    """A location from (station id, EVSE) pairs; a station id "" leaves the EVSE out of
    `station_of` (a station the cache does not know)."""
    ocpi: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "STK",
        "id": str(location_id),
        "publish": True,
    }
    if name is not None:
        ocpi["name"] = name
    ocpi |= {
        "address": address,
        "city": city,
        "country": "NLD",
        "coordinates": {"latitude": latitude, "longitude": longitude},
        "evses": [e for _, e in evses],
        "operator": {"name": PUBLISHER.name},
        "time_zone": "Europe/Amsterdam",
        "opening_times": opening_times or {"twentyfourseven": True},
        "energy_mix": energy_mix or dict(GREY),
        "last_updated": max(e["last_updated"] for _, e in evses),
    }
    if postal_code is not None:
        ocpi["postal_code"] = postal_code
    return OpenLocation(ocpi, {e["uid"]: station for station, e in evses if station}, static_at)


AC_T2 = ("IEC_62196_T2", "AC_3_PHASE", 230, 16)


def fleet() -> list[OpenLocation]:
    """Four locations, every OCPI status once at least."""
    ac = ["AC-DAG"]
    dc = ["DC-SNEL"]
    shop_hours = {
        "twentyfourseven": False,
        "regular_hours": [
            *({"weekday": d, "period_begin": "07:00", "period_end": "19:00"} for d in range(1, 6)),
            {"weekday": 6, "period_begin": "09:00", "period_end": "17:00"},
        ],
        "exceptional_openings": [
            {"period_begin": "2026-04-05T09:00:00Z", "period_end": "2026-04-05T13:00:00Z"}
        ],
        "exceptional_closings": [
            {"period_begin": "2026-12-24T23:00:00Z", "period_end": "2026-12-25T23:00:00Z"}
        ],
    }
    return [
        location(
            1,
            HOSTILE_NAME,
            [
                (
                    "UTR-001",
                    evse(
                        "NL*STK*E10001*1", "AVAILABLE", [connector(1, *AC_T2, ac)], evse_id="NL*STK*E10001*1"
                    ),
                ),
                (
                    "UTR-001",
                    evse(
                        "NL*STK*E10001*2", "CHARGING", [connector(1, *AC_T2, ac)], evse_id="NL*STK*E10001*2"
                    ),
                ),
                (
                    "UTR-002",
                    evse(
                        "NL*STK*E10002*1", "RESERVED", [connector(1, *AC_T2, ac)], evse_id="NL*STK*E10002*1"
                    ),
                ),
                (
                    "UTR-002",
                    evse("NL*STK*E10002*2", "BLOCKED", [connector(1, *AC_T2, ac)], evse_id="NL*STK*E10002*2"),
                ),
            ],
            opening_times=shop_hours,
            energy_mix=GREEN,
        ),
        location(
            2,
            "Snellaadplein A2 Hub",
            [
                (
                    "A2-HPC-1",
                    evse(
                        "NL*STK*E20001*1",
                        "OUTOFORDER",
                        [
                            connector(1, "IEC_62196_T2_COMBO", "DC", 920, 200, dc, "CABLE", 150_000),
                            connector(2, "CHADEMO", "DC", 500, 125, dc, "CABLE", 50_000),
                        ],
                        evse_id="NL*STK*E20001*1",
                    ),
                ),
                (
                    "A2-HPC-1",
                    evse(
                        "NL*STK*E20001*2",
                        "CHARGING",
                        [connector(1, "IEC_62196_T2_COMBO", "DC", 920, 200, dc, "CABLE", 150_000)],
                        evse_id="NL*STK*E20001*2",
                    ),
                ),
                (
                    "A2-HPC-2",
                    evse(
                        "NL*STK*E20002*1",
                        "INOPERATIVE",
                        [connector(1, "IEC_62196_T2_COMBO", "DC", 920, 400, dc, "CABLE", 350_000)],
                        evse_id="NL*STK*E20002*1",
                    ),
                ),
            ],
            address="Snelweg 1",
            city=HOSTILE_CITY,
            postal_code="5211 AB",
            latitude="51.697816",
            longitude="5.303675",
        ),
        location(
            3,
            "Buurtpaal Kerkstraat",
            [
                (
                    "CP-3",
                    evse(
                        "CP-3*1",  # no eMI3 id yet: the uid is station*number
                        "UNKNOWN",
                        [
                            connector(1, "DOMESTIC_F", "AC_1_PHASE", 230, 16, ["PARKEREN"]),
                            connector(2, "IEC_62196_T2", "AC_1_PHASE", 230, 32, ["GRATIS", "PARKEREN"]),
                        ],
                    ),
                ),
                (
                    "CP-3",
                    evse(
                        "NL*STK*E30003*2",
                        "REMOVED",
                        [connector(1, "IEC_62196_T2", "AC_3_PHASE", 230, 32, [], "CABLE")],
                        evse_id="NL*STK*E30003*2",
                    ),
                ),
            ],
            address="Kerkstraat",
            postal_code=None,
        ),
        location(
            4,
            None,  # OCPI name is optional
            [
                ("", evse("NL*STK*E40001*1", "AVAILABLE", [connector(1, *AC_T2, ["AC-DAG", "ONBEKEND"])])),
            ],
            address="Laan 1940-1945 3",
            city="Amersfoort",
        ),
    ]


def big_fleet(locations: int = 2500, evses_per_location: int = 4) -> list[OpenLocation]:
    """A fleet of `locations` x `evses_per_location` EVSEs (two per station), for timing."""
    statuses = ("AVAILABLE", "CHARGING", "AVAILABLE", "UNKNOWN", "OUTOFORDER")
    hours = {
        "twentyfourseven": False,
        "regular_hours": [
            {"weekday": d, "period_begin": "08:00", "period_end": "20:00"} for d in range(1, 8)
        ],
    }
    result = []
    for n in range(1, locations + 1):
        items = []
        for k in range(evses_per_location):
            station = f"ST{n:05d}-{k // 2}"
            uid = f"NL*STK*E{n:05d}{k // 2}*{k % 2 + 1}"
            dc = n % 5 == 0
            conn = (
                connector(1, "IEC_62196_T2_COMBO", "DC", 920, 200, ["DC-SNEL"], "CABLE", 150_000)
                if dc
                else connector(1, *AC_T2, ["AC-DAG"])
            )
            items.append((station, evse(uid, statuses[(n + k) % len(statuses)], [conn], evse_id=uid)))
        result.append(
            location(
                n,
                f"Locatie {n} <&>",
                items,
                address=f"Dorpsstraat {n}",
                latitude=f"{52 + n / 100000:.6f}",
                longitude=f"{5 + n / 100000:.6f}",
                opening_times=None if n % 3 else hours,
            )
        )
    return result
