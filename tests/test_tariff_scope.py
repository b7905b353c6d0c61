"""Which tariff applies where, for whom and when (pure rules of stekker.domain.tariff_scope)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stekker.domain.tariff_scope import Customer, Place, ScopedVersion, choose, in_effect, validate_targets

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HERE = Place(location_id=7, evse_uid="NL*STK*E0001*1", connector=2)
ADHOC = Customer(None)
ABC = Customer("NL-ABC")


def version(
    version_id: int,
    *targets: Mapping[str, Any],
    tariff_id: int | None = None,
    audience: str = "all",
    parties: tuple[str, ...] = (),
    suppliers: tuple[str, ...] = (),
    since: timedelta = timedelta(days=-1),
    ends: bool = False,
) -> ScopedVersion:
    return ScopedVersion(
        version_id=version_id,
        tariff_id=version_id if tariff_id is None else tariff_id,
        effective_from=T + since,
        ends_tariff=ends,
        applies_to=targets or ({"all": True},),
        audience=audience,
        parties=frozenset(parties),
        energy_suppliers=frozenset(suppliers),
    )


def chosen(versions: list[ScopedVersion], customer: Customer = ADHOC, place: Place = HERE) -> int | None:
    found = choose(versions, place, customer, T)
    return None if found is None else found.version_id


def test_the_most_specific_place_wins() -> None:
    network = version(1)
    location = version(2, {"location_id": 7})
    evse = version(3, {"evse_uid": "NL*STK*E0001*1"})
    connector = version(4, {"evse_uid": "NL*STK*E0001*1", "connector": 2})
    assert chosen([network, location, evse, connector]) == 4
    assert chosen([network, location, evse]) == 3
    assert chosen([network, location]) == 2
    assert chosen([network]) == 1
    elsewhere = Place(location_id=8, evse_uid="NL*STK*E0009*1", connector=1)
    assert chosen([location, evse, connector], place=elsewhere) is None
    other_connector = Place(location_id=7, evse_uid="NL*STK*E0001*1", connector=1)
    assert chosen([location, evse, connector], place=other_connector) == 3


def test_the_customer_decides_among_equally_specific_places() -> None:
    everyone = version(1)
    adhoc = version(2, audience="adhoc")
    contracts = version(3, audience="contract")
    abc_only = version(4, audience="contract", parties=("NL-ABC",))
    all_four = [everyone, adhoc, contracts, abc_only]
    assert chosen(all_four, ADHOC) == 2
    assert chosen(all_four, ABC) == 4
    assert chosen(all_four, Customer("DE-XYZ")) == 3
    assert chosen([everyone, abc_only], Customer("DE-XYZ")) == 1
    assert chosen([adhoc], ABC) is None  # an ad-hoc tariff is not for contract drivers
    assert chosen([contracts], ADHOC) is None


def test_place_comes_before_customer() -> None:
    """A location's ad-hoc price beats the network-wide contract price of the driver's eMSP."""
    network_abc = version(1, audience="contract", parties=("NL-ABC",))
    location_everyone = version(2, {"location_id": 7})
    assert chosen([network_abc, location_everyone], ABC) == 2


def test_energy_supplier_tariffs_apply_only_to_that_suppliers_drivers() -> None:
    green = version(1, suppliers=("Groene Stroom",))
    everyone = version(2)
    assert chosen([green, everyone], Customer("NL-ABC", "Groene Stroom")) == 1
    assert chosen([green, everyone], Customer("NL-ABC", "Grijs")) == 2
    assert chosen([green], Customer("NL-ABC", None)) is None


def test_versions_take_effect_in_time_and_retirement_ends_a_tariff() -> None:
    v1 = version(1, tariff_id=10, since=timedelta(days=-10))
    v2 = version(2, tariff_id=10, since=timedelta(days=-1))
    v3_future = version(3, tariff_id=10, since=timedelta(seconds=1))
    assert [v.version_id for v in in_effect([v1, v2, v3_future], T)] == [2]
    assert chosen([v3_future, v1]) == 1
    exactly_now = version(4, tariff_id=10, since=timedelta(0))
    assert chosen([v1, exactly_now]) == 4  # effective_from is inclusive
    retired = version(5, tariff_id=10, since=timedelta(hours=-1), ends=True)
    assert chosen([v1, v2, retired]) is None
    fallback = version(6, tariff_id=20, since=timedelta(days=-30))
    assert chosen([v1, v2, retired, fallback]) == 6


def test_ties_are_broken_by_the_later_effective_time_then_the_tariff() -> None:
    older = version(1, since=timedelta(days=-5))
    newer = version(2, since=timedelta(days=-2))
    assert chosen([older, newer]) == 2
    assert chosen([newer, older]) == 2
    same_a = version(3, tariff_id=30, since=timedelta(days=-1))
    same_b = version(4, tariff_id=31, since=timedelta(days=-1))
    assert chosen([same_b, same_a]) == chosen([same_a, same_b]) == 4


@pytest.mark.parametrize(
    "target",
    [
        {},
        {"all": False},
        {"all": "yes"},
        {"location_id": "7"},
        {"location_id": True},
        {"location_id": 0},
        {"evse_uid": ""},
        {"evse_uid": "X", "connector": -1},
        {"connector": 1},
        {"location_id": 1, "evse_uid": "X"},
    ],
)
def test_malformed_targets_are_refused(target: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="a target is"):
        validate_targets([target])
