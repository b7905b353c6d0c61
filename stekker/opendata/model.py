"""What the public sees of the fleet: the input every open-data feed is rendered from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes the open data: our OCPI party (country code and party id, e.g. NL and STK)
    and the operator's name drivers see. DATEX II names the publication's creator with it."""

    country_code: str
    party_id: str
    name: str

    @property
    def national_identifier(self) -> str:
        return f"{self.country_code}-{self.party_id}"


@dataclass(frozen=True, slots=True)
class OpenLocation:
    """A location as the public sees it: its OCPI 2.2.1 Location object (wire form, with the
    tariff ids an ad-hoc driver pays; no personal data) and the charging station each EVSE
    belongs to (OCPI has no station level; DATEX II does).

    `ocpi` keys: country_code, party_id, id, publish, name, address, city, postal_code,
    country, coordinates {latitude, longitude} (decimal text), evses [{uid, evse_id, status,
    capabilities, connectors [{id, standard, format, power_type, max_voltage, max_amperage,
    max_electric_power, tariff_ids, last_updated}], physical_reference, parking_restrictions,
    last_updated}], operator {name}, time_zone, opening_times (OCPI Hours), energy_mix,
    last_updated (text, UTC with Z).
    """

    ocpi: Mapping[str, Any]
    station_of: Mapping[str, str]  # EVSE uid → charging station id
    static_changed_at: datetime  # last change of anything but status: DATEX table version


@dataclass(frozen=True, slots=True)
class OpenTariff:
    """A tariff an ad-hoc driver pays, as the OCPI 2.2.1 Tariff object (wire form)."""

    ocpi: Mapping[str, Any]

    @property
    def code(self) -> str:
        return str(self.ocpi["id"])
