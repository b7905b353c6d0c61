"""The one derived station status (stekker.domain.station_status): the order of the rule, both
OCPP versions ending in the same words, and statuses nobody knows."""

from __future__ import annotations

import itertools

import pytest

from stekker.domain.station_status import StationStatus, evse_status, from_ocpp, station_status

S = StationStatus


@pytest.mark.parametrize(
    ("ocpp", "ours"),
    [
        ("Available", S.AVAILABLE),
        ("Preparing", S.OCCUPIED),
        ("Charging", S.CHARGING),
        ("SuspendedEV", S.OCCUPIED),
        ("SuspendedEVSE", S.OCCUPIED),
        ("Finishing", S.OCCUPIED),
        ("Occupied", S.OCCUPIED),
        ("Reserved", S.RESERVED),
        ("Unavailable", S.UNAVAILABLE),
        ("Faulted", S.FAULTED),
        (None, S.UNKNOWN),
        ("", S.UNKNOWN),
        ("charging", S.UNKNOWN),  # OCPP words are case-sensitive: not guessed
        ("VendorSpecial", S.UNKNOWN),
    ],
)
def test_ocpp_words(ocpp: str | None, ours: StationStatus) -> None:
    assert from_ocpp(ocpp) is ours


def test_a_charging_evse_is_never_shown_as_available() -> None:
    """The bug this module exists for: 1.6 connector 0 says Available while EVSE 1 charges."""
    evses = [evse_status(["Charging"]), evse_status(["Available"])]
    assert station_status(True, evses, reported="Available") is S.CHARGING


def test_201_occupied_with_a_charging_transaction_reads_like_16_charging() -> None:
    assert evse_status(["Occupied"], "Charging") is evse_status(["Charging"]) is S.CHARGING
    assert evse_status(["Occupied"], "SuspendedEV") is evse_status(["SuspendedEV"]) is S.OCCUPIED
    assert evse_status(["Occupied"], "EVConnected") is S.OCCUPIED
    assert evse_status(["Occupied"]) is S.OCCUPIED


def test_the_transaction_only_refines_what_the_connector_leaves_open() -> None:
    assert evse_status([None], "Charging") is S.CHARGING  # no StatusNotification yet
    assert evse_status([], "SuspendedEVSE") is S.OCCUPIED
    assert evse_status([None], "Idle") is S.UNKNOWN  # authorized, nothing plugged in
    assert evse_status(["Faulted"], "Charging") is S.FAULTED
    assert evse_status(["Reserved"], "Charging") is S.RESERVED
    assert evse_status(["Available"], "Charging") is S.AVAILABLE  # the station said so later


def test_an_evse_is_what_its_most_telling_connector_is() -> None:
    assert evse_status(["Unavailable", "Charging"]) is S.CHARGING  # 2.0.1 blocks the other plug
    assert evse_status(["Available", "Faulted"]) is S.FAULTED
    assert evse_status(["Available", None]) is S.AVAILABLE
    assert evse_status([None, None]) is S.UNKNOWN


def test_offline_wins_over_everything() -> None:
    for status in S:
        assert station_status(False, [status], reported="Faulted") is S.OFFLINE
    assert station_status(False, []) is S.OFFLINE


def test_one_faulted_evse_makes_the_station_faulted_even_while_another_charges() -> None:
    assert station_status(True, [S.CHARGING, S.FAULTED]) is S.FAULTED
    assert station_status(True, [S.AVAILABLE], reported="Faulted") is S.FAULTED


def test_station_reported_unavailable_hides_available_but_not_what_is_in_use() -> None:
    assert station_status(True, [S.AVAILABLE, S.RESERVED], reported="Unavailable") is S.UNAVAILABLE
    assert station_status(True, [], reported="Unavailable") is S.UNAVAILABLE
    assert station_status(True, [S.CHARGING], reported="Unavailable") is S.CHARGING
    assert station_status(True, [S.OCCUPIED], reported="Unavailable") is S.OCCUPIED
    assert station_status(True, [S.FAULTED], reported="Unavailable") is S.FAULTED


def test_the_order_below_faulted() -> None:
    assert station_status(True, [S.AVAILABLE, S.OCCUPIED, S.CHARGING]) is S.CHARGING
    assert station_status(True, [S.AVAILABLE, S.OCCUPIED, S.RESERVED]) is S.OCCUPIED
    assert station_status(True, [S.AVAILABLE, S.RESERVED]) is S.RESERVED
    assert station_status(True, [S.UNAVAILABLE, S.AVAILABLE]) is S.AVAILABLE  # one can be used
    assert station_status(True, [S.UNAVAILABLE, S.UNKNOWN]) is S.UNAVAILABLE
    assert station_status(True, [S.UNKNOWN]) is S.UNKNOWN
    assert station_status(True, []) is S.UNKNOWN
    assert station_status(True, [], reported="Available") is S.UNKNOWN  # says nothing of EVSEs


def test_the_result_does_not_depend_on_the_order_of_the_evses() -> None:
    everything = [s for s in S if s is not S.OFFLINE]
    for combo in itertools.combinations(everything, 3):
        results = {station_status(True, list(p)) for p in itertools.permutations(combo)}
        assert len(results) == 1
        assert results.pop() in combo
