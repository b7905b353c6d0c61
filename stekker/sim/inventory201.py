"""What the simulated OCPP 2.0.1 station's device model holds: the standardized components and variables
of OCPP 2.0.1 Part 2 Appendices (2.2 "Standardized Components") a typical AC charger reports, with the
defaults it ships with. Values that follow the station's state (availability, power, list sizes) are read
live from it through :class:`LiveState`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Protocol

from stekker.sim.device_model import Variable
from stekker.sim.metering import SUPPORTED_MEASURANDS

__all__ = ["LiveState", "StationSpec", "standard_variables"]

MEASURANDS = ",".join(sorted(SUPPORTED_MEASURANDS))
TX_POINTS = "ParkingBayOccupancy,EVConnected,Authorized,DataSigned,PowerPathClosed,EnergyTransfer"
AVAILABILITY = "Available,Occupied,Reserved,Unavailable,Faulted"


class LiveState(Protocol):
    """The station state some variables report."""

    def availability_state(self, evse_id: int | None = None, connector_id: int | None = None) -> str: ...

    def evse_power_w(self, evse_id: int) -> float: ...

    def local_list_size(self) -> int: ...

    def installed_profile_count(self) -> int: ...


@dataclass(frozen=True)
class StationSpec:
    """The fixed facts and first settings of one station that its device model starts from."""

    station_id: str
    vendor: str
    model: str
    serial_number: str
    firmware_version: str
    evse_connectors: dict[int, int]  # EVSE id -> number of connectors
    evse_max_power_w: float
    heartbeat_interval: int
    tx_updated_interval: int
    password: str | None
    message_timeout: int


def _power_text(live: LiveState, evse_id: int) -> str:
    return f"{live.evse_power_w(evse_id):.1f}"


def _station(spec: StationSpec, live: LiveState) -> list[Variable]:
    ro = "ReadOnly"
    return [
        Variable("ChargingStation", "Model", spec.model, ro, max_limit=20),
        Variable("ChargingStation", "VendorName", spec.vendor, ro, max_limit=50),
        Variable("ChargingStation", "SerialNumber", spec.serial_number, ro),
        Variable("ChargingStation", "Available", "true", ro, "boolean"),
        Variable(
            "ChargingStation",
            "AvailabilityState",
            mutability=ro,
            data_type="OptionList",
            values_list=AVAILABILITY,
            read=live.availability_state,
        ),
        Variable("ChargingStation", "SupplyPhases", "3", ro, "integer", min_limit=0, max_limit=3),
        Variable("Controller", "FirmwareVersion", spec.firmware_version, ro),
    ]


def _evses(spec: StationSpec, live: LiveState) -> list[Variable]:
    ro = "ReadOnly"
    variables: list[Variable] = []
    for evse_id, connectors in spec.evse_connectors.items():
        variables += [
            Variable("EVSE", "Available", "true", ro, "boolean", evse_id=evse_id),
            Variable(
                "EVSE",
                "AvailabilityState",
                mutability=ro,
                data_type="OptionList",
                values_list=AVAILABILITY,
                evse_id=evse_id,
                read=partial(live.availability_state, evse_id),
            ),
            Variable(
                "EVSE",
                "Power",
                mutability=ro,
                data_type="decimal",
                unit="W",
                min_limit=0,
                max_limit=spec.evse_max_power_w,
                evse_id=evse_id,
                read=partial(_power_text, live, evse_id),
            ),
            Variable("EVSE", "SupplyPhases", "3", ro, "integer", evse_id=evse_id),
        ]
        for connector_id in range(1, connectors + 1):
            variables += [
                Variable(
                    "Connector",
                    "AvailabilityState",
                    mutability=ro,
                    data_type="OptionList",
                    values_list=AVAILABILITY,
                    evse_id=evse_id,
                    connector_id=connector_id,
                    read=partial(live.availability_state, evse_id, connector_id),
                ),
                Variable(
                    "Connector", "ConnectorType", "cType2", ro, evse_id=evse_id, connector_id=connector_id
                ),
                Variable(
                    "Connector",
                    "SupplyPhases",
                    "3",
                    ro,
                    "integer",
                    evse_id=evse_id,
                    connector_id=connector_id,
                ),
            ]
    return variables


def _authorization(live: LiveState) -> list[Variable]:
    ro, rw, b = "ReadOnly", "ReadWrite", "boolean"
    return [
        Variable("AuthCtrlr", "Enabled", "true", rw, b),
        Variable("AuthCtrlr", "AuthorizeRemoteStart", "false", rw, b),
        Variable("AuthCtrlr", "LocalAuthorizeOffline", "true", rw, b),
        Variable("AuthCtrlr", "LocalPreAuthorize", "false", rw, b),
        Variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "false", rw, b),
        Variable("AuthCacheCtrlr", "Available", "true", ro, b),
        Variable("AuthCacheCtrlr", "Enabled", "true", rw, b),
        Variable("AuthCacheCtrlr", "LifeTime", "86400", rw, "integer", unit="s", min_limit=0),
        Variable("LocalAuthListCtrlr", "Available", "true", ro, b),
        Variable("LocalAuthListCtrlr", "Enabled", "true", rw, b),
        Variable(
            "LocalAuthListCtrlr",
            "Entries",
            mutability=ro,
            data_type="integer",
            min_limit=0,
            max_limit=1000,
            read=lambda: str(live.local_list_size()),
        ),
        Variable("LocalAuthListCtrlr", "ItemsPerMessage", "250", ro, "integer", min_limit=1),
        Variable("LocalAuthListCtrlr", "BytesPerMessage", "65536", ro, "integer", min_limit=1),
    ]


def _communication(spec: StationSpec) -> list[Variable]:
    rw, i = "ReadWrite", "integer"
    return [
        Variable(
            "OCPPCommCtrlr", "HeartbeatInterval", str(spec.heartbeat_interval), rw, i, unit="s", min_limit=0
        ),
        Variable(
            "OCPPCommCtrlr",
            "MessageTimeout",
            str(spec.message_timeout),
            rw,
            i,
            unit="s",
            min_limit=1,
            instance="Default",
        ),
        Variable("OCPPCommCtrlr", "MessageAttempts", "3", rw, i, min_limit=1, instance="TransactionEvent"),
        Variable(
            "OCPPCommCtrlr",
            "MessageAttemptInterval",
            "60",
            rw,
            i,
            unit="s",
            min_limit=0,
            instance="TransactionEvent",
        ),
        # Applied when the station next connects: setting it answers RebootRequired.
        Variable(
            "OCPPCommCtrlr", "NetworkConfigurationPriority", "0", rw, "SequenceList", reboot_required=True
        ),
        Variable("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "3", rw, i, min_limit=1),
        Variable("OCPPCommCtrlr", "OfflineThreshold", "300", rw, i, unit="s", min_limit=0),
        Variable("OCPPCommCtrlr", "ResetRetries", "2", rw, i, min_limit=0),
        Variable("OCPPCommCtrlr", "WebSocketPingInterval", "60", rw, i, unit="s", min_limit=0),
        Variable("OCPPCommCtrlr", "FileTransferProtocols", "HTTPS,FTPS", "ReadOnly", "MemberList"),
    ]


def _metering_and_transactions(spec: StationSpec) -> list[Variable]:
    rw, i, m = "ReadWrite", "integer", "MemberList"
    energy = "Energy.Active.Import.Register"
    periodic = f"{energy},Power.Active.Import,Current.Import,Voltage"
    return [
        Variable("SampledDataCtrlr", "Enabled", "true", rw, "boolean"),
        Variable("SampledDataCtrlr", "TxStartedMeasurands", energy, rw, m, values_list=MEASURANDS),
        Variable("SampledDataCtrlr", "TxUpdatedMeasurands", periodic, rw, m, values_list=MEASURANDS),
        Variable(
            "SampledDataCtrlr",
            "TxUpdatedInterval",
            str(spec.tx_updated_interval),
            rw,
            i,
            unit="s",
            min_limit=0,
        ),
        Variable("SampledDataCtrlr", "TxEndedMeasurands", energy, rw, m, values_list=MEASURANDS),
        Variable("SampledDataCtrlr", "TxEndedInterval", "0", rw, i, unit="s", min_limit=0),
        Variable("TxCtrlr", "StopTxOnInvalidId", "true", rw, "boolean"),
        Variable("TxCtrlr", "StopTxOnEVSideDisconnect", "true", "ReadOnly", "boolean"),
        Variable("TxCtrlr", "TxStartPoint", "EVConnected,Authorized", rw, m, values_list=TX_POINTS),
        Variable("TxCtrlr", "TxStopPoint", "EVConnected,Authorized", rw, m, values_list=TX_POINTS),
        Variable("TxCtrlr", "EVConnectionTimeOut", "60", rw, i, unit="s", min_limit=0),
    ]


def _security_and_device_data(spec: StationSpec) -> list[Variable]:
    ro, i = "ReadOnly", "integer"
    return [
        Variable(
            "SecurityCtrlr", "SecurityProfile", "1" if spec.password else "0", ro, i, min_limit=0, max_limit=3
        ),
        Variable("SecurityCtrlr", "Identity", spec.station_id, ro, max_limit=48),
        Variable(
            "SecurityCtrlr", "BasicAuthPassword", spec.password or "", "WriteOnly", min_limit=16, max_limit=40
        ),
        Variable("SecurityCtrlr", "OrganizationName", "Stekker Simulated Charging", "ReadWrite"),
        Variable("DeviceDataCtrlr", "ItemsPerMessage", "16", ro, i, min_limit=1, instance="GetReport"),
        Variable("DeviceDataCtrlr", "ItemsPerMessage", "16", ro, i, min_limit=1, instance="GetVariables"),
        Variable("DeviceDataCtrlr", "ItemsPerMessage", "16", ro, i, min_limit=1, instance="SetVariables"),
        Variable("DeviceDataCtrlr", "BytesPerMessage", "65536", ro, i, min_limit=1, instance="GetReport"),
        Variable("DeviceDataCtrlr", "BytesPerMessage", "65536", ro, i, min_limit=1, instance="GetVariables"),
        Variable("DeviceDataCtrlr", "BytesPerMessage", "65536", ro, i, min_limit=1, instance="SetVariables"),
    ]


def _smart_charging_and_reservation(live: LiveState) -> list[Variable]:
    ro, rw, i = "ReadOnly", "ReadWrite", "integer"
    return [
        Variable("SmartChargingCtrlr", "Available", "true", ro, "boolean"),
        Variable("SmartChargingCtrlr", "Enabled", "true", rw, "boolean"),
        Variable(
            "SmartChargingCtrlr",
            "Entries",
            mutability=ro,
            data_type=i,
            min_limit=0,
            max_limit=16,
            instance="ChargingProfiles",
            read=lambda: str(live.installed_profile_count()),
        ),
        Variable(
            "SmartChargingCtrlr", "LimitChangeSignificance", "0.1", rw, "decimal", min_limit=0, max_limit=1
        ),
        Variable("SmartChargingCtrlr", "PeriodsPerSchedule", "24", ro, i, min_limit=1),
        Variable("SmartChargingCtrlr", "ProfileStackLevel", "10", ro, i, min_limit=0),
        Variable("SmartChargingCtrlr", "RateUnit", "A,W", ro, "MemberList"),
        Variable("ReservationCtrlr", "Available", "true", ro, "boolean"),
        Variable("ReservationCtrlr", "Enabled", "true", rw, "boolean"),
    ]


def standard_variables(spec: StationSpec, live: LiveState) -> list[Variable]:
    """Every variable of the simulated station, in report order."""
    return [
        *_station(spec, live),
        *_evses(spec, live),
        *_authorization(live),
        *_communication(spec),
        *_metering_and_transactions(spec),
        *_security_and_device_data(spec),
        *_smart_charging_and_reservation(live),
    ]
