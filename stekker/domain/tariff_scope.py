"""Which tariff applies: to a place (a connector of an EVSE at a location) and a customer (an
eMSP's driver, or an ad-hoc driver without a contract), at a moment.

Pure. Each tariff has a history of approved versions; at any moment the one with the latest
``effective_from`` at or before it is in effect (unless that version retires the tariff).
Among the tariffs in effect that match, the most specific wins:

1. the place: a connector beats an EVSE, which beats a location, which beats ``all``;
2. then the customer: a tariff naming the driver's eMSP beats one for every contract driver
   (or for ad-hoc drivers), which beats one for everybody; naming the driver's energy
   supplier makes it more specific still;
3. then the latest ``effective_from``, then the highest tariff id (a stable, total order).

The place comes first because prices usually follow the hardware (a DC fast charger costs
more), and an eMSP's contract tariff is agreed per kind of place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

AUDIENCES = ("all", "adhoc", "contract")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a driver charges: the station's location, the EVSE's public id, the connector."""

    location_id: int | None
    evse_uid: str | None
    connector: int | None


@dataclass(frozen=True, slots=True)
class Customer:
    """Who charges: ``party`` is the driver's eMSP as "NL-ABC" (None: ad hoc, no contract);
    ``energy_supplier`` the supplier named on the driver's token, if any."""

    party: str | None
    energy_supplier: str | None = None


@dataclass(frozen=True, slots=True)
class ScopedVersion:
    """An approved tariff version as far as choosing it goes: when, where and for whom."""

    version_id: int
    tariff_id: int
    effective_from: datetime
    ends_tariff: bool
    applies_to: tuple[Mapping[str, Any], ...]
    audience: str
    parties: frozenset[str]
    energy_suppliers: frozenset[str]


def validate_targets(targets: Iterable[Mapping[str, Any]]) -> None:
    """ValueError unless every target has one of the four shapes ``ScopedVersion`` documents."""
    for target in targets:
        keys = set(target)
        if keys == {"all"} and target["all"] is True:
            continue
        if keys == {"location_id"} and _is_int(target["location_id"]):
            continue
        if keys == {"evse_uid"} and isinstance(target["evse_uid"], str) and target["evse_uid"]:
            continue
        if (
            keys == {"evse_uid", "connector"}
            and isinstance(target["evse_uid"], str)
            and target["evse_uid"]
            and _is_int(target["connector"])
        ):
            continue
        raise ValueError(
            f"a target is {{'all': true}}, {{'location_id': N}}, {{'evse_uid': ID}} or "
            f"{{'evse_uid': ID, 'connector': N}}; got {dict(target)!r}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def place_rank(targets: Iterable[Mapping[str, Any]], place: Place) -> int:
    """How specifically the targets name ``place``: 4 connector, 3 EVSE, 2 location, 1 all, 0 no match."""
    best = 0
    for target in targets:
        if target.get("all") is True:
            rank = 1
        elif "location_id" in target:
            rank = 2 if place.location_id is not None and target["location_id"] == place.location_id else 0
        elif "connector" in target:
            rank = (
                4
                if place.evse_uid is not None
                and target.get("evse_uid") == place.evse_uid
                and target["connector"] == place.connector
                else 0
            )
        else:
            rank = 3 if place.evse_uid is not None and target.get("evse_uid") == place.evse_uid else 0
        best = max(best, rank)
    return best


def customer_rank(version: ScopedVersion, customer: Customer) -> int:
    """How specifically the version is meant for ``customer``; 0 when it is not for them."""
    if version.energy_suppliers and customer.energy_supplier not in version.energy_suppliers:
        return 0
    supplier_bonus = 1 if version.energy_suppliers else 0
    if version.audience == "all":
        return 1 + supplier_bonus
    if version.audience == "adhoc":
        return 0 if customer.party is not None else 3 + supplier_bonus
    # contract
    if customer.party is None:
        return 0
    if version.parties:
        return 5 + supplier_bonus if customer.party in version.parties else 0
    return 3 + supplier_bonus


def in_effect(versions: Sequence[ScopedVersion], at: datetime) -> list[ScopedVersion]:
    """Per tariff, the version in effect at ``at``; tariffs retired by then are left out."""
    latest: dict[int, ScopedVersion] = {}
    for version in versions:
        if version.effective_from > at:
            continue
        current = latest.get(version.tariff_id)
        if current is None or (version.effective_from, version.version_id) > (
            current.effective_from,
            current.version_id,
        ):
            latest[version.tariff_id] = version
    return [v for v in latest.values() if not v.ends_tariff]


def choose(
    versions: Sequence[ScopedVersion], place: Place, customer: Customer, at: datetime
) -> ScopedVersion | None:
    """The version that prices a session at ``place`` for ``customer`` starting at ``at``."""
    best: tuple[tuple[int, int, datetime, int], ScopedVersion] | None = None
    for version in in_effect(versions, at):
        where = place_rank(version.applies_to, place)
        who = customer_rank(version, customer)
        if not where or not who:
            continue
        key = (where, who, version.effective_from, version.tariff_id)
        if best is None or key > best[0]:
            best = (key, version)
    return None if best is None else best[1]
