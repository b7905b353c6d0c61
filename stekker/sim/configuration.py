"""OCPP configuration keys of a simulated station: their typed values, defaults and validation."""

from __future__ import annotations

from dataclasses import dataclass

from stekker.sim.metering import SUPPORTED_MEASURANDS

__all__ = [
    "SUPPORTED_MEASURANDS",
    "ConfigValue",
    "config_bool",
    "config_int",
    "config_list",
    "default_configuration",
    "valid_config_value",
]


@dataclass
class ConfigValue:
    """One OCPP configuration key: its value (always a string on the wire), whether it is read-only and its
    kind, used to validate ChangeConfiguration ("bool", "int", "csl" = comma separated list, "str",
    "secret" = write-only, never reported by GetConfiguration)."""

    value: str
    readonly: bool = False
    kind: str = "str"


def default_configuration(
    connectors: int, heartbeat_interval: int, meter_interval: int
) -> dict[str, ConfigValue]:
    """The configuration keys of the Core, LocalAuthListManagement, Reservation and SmartCharging profiles
    with values a typical AC charger ships with."""
    c = ConfigValue
    return {
        "AllowOfflineTxForUnknownId": c("false", kind="bool"),
        "AuthorizationCacheEnabled": c("true", kind="bool"),
        "AuthorizeRemoteTxRequests": c("false", kind="bool"),
        "ClockAlignedDataInterval": c("0", kind="int"),
        "ConnectionTimeOut": c("60", kind="int"),
        "ConnectorPhaseRotation": c(",".join(f"{i}.RST" for i in range(connectors + 1)), kind="csl"),
        "GetConfigurationMaxKeys": c("64", readonly=True, kind="int"),
        "HeartbeatInterval": c(str(heartbeat_interval), kind="int"),
        "LocalAuthorizeOffline": c("true", kind="bool"),
        "LocalPreAuthorize": c("false", kind="bool"),
        "MeterValuesAlignedData": c("Energy.Active.Import.Register", kind="csl"),
        "MeterValuesAlignedDataMaxLength": c("8", readonly=True, kind="int"),
        "MeterValuesSampledData": c(
            "Energy.Active.Import.Register,Power.Active.Import,Current.Import", kind="csl"
        ),
        "MeterValuesSampledDataMaxLength": c("8", readonly=True, kind="int"),
        "MeterValueSampleInterval": c(str(meter_interval), kind="int"),
        "MinimumStatusDuration": c("0", kind="int"),
        "NumberOfConnectors": c(str(connectors), readonly=True, kind="int"),
        "ResetRetries": c("3", kind="int"),
        "StopTransactionOnEVSideDisconnect": c("true", kind="bool"),
        "StopTransactionOnInvalidId": c("true", kind="bool"),
        "StopTxnAlignedData": c("", kind="csl"),
        "StopTxnAlignedDataMaxLength": c("8", readonly=True, kind="int"),
        "StopTxnSampledData": c("Energy.Active.Import.Register", kind="csl"),
        "StopTxnSampledDataMaxLength": c("8", readonly=True, kind="int"),
        "SupportedFeatureProfiles": c(
            "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
            readonly=True,
            kind="csl",
        ),
        "TransactionMessageAttempts": c("3", kind="int"),
        "TransactionMessageRetryInterval": c("60", kind="int"),
        "UnlockConnectorOnEVSideDisconnect": c("true", kind="bool"),
        "WebSocketPingInterval": c("60", kind="int"),
        # LocalAuthListManagement
        "LocalAuthListEnabled": c("true", kind="bool"),
        "LocalAuthListMaxLength": c("1000", readonly=True, kind="int"),
        "SendLocalListMaxLength": c("250", readonly=True, kind="int"),
        # Reservation
        "ReserveConnectorZeroSupported": c("false", readonly=True, kind="bool"),
        # SmartCharging
        "ChargeProfileMaxStackLevel": c("10", readonly=True, kind="int"),
        "ChargingScheduleAllowedChargingRateUnit": c("Current,Power", readonly=True, kind="csl"),
        "ChargingScheduleMaxPeriods": c("24", readonly=True, kind="int"),
        "ConnectorSwitch3to1PhaseSupported": c("false", readonly=True, kind="bool"),
        "MaxChargingProfilesInstalled": c("16", readonly=True, kind="int"),
        # Security whitepaper (profile 1: HTTP Basic auth)
        "AuthorizationKey": c("", kind="secret"),
        "SecurityProfile": c("0", readonly=True, kind="int"),
    }


def config_bool(configuration: dict[str, ConfigValue], key: str) -> bool:
    """The value of a boolean key (anything but ``true``, in any case, is false)."""
    return configuration[key].value.strip().lower() == "true"


def config_int(configuration: dict[str, ConfigValue], key: str, default: int = 0) -> int:
    """The value of an integer key, ``default`` when the key is unknown or not a number."""
    try:
        return int(configuration[key].value)
    except (KeyError, ValueError):
        return default


def config_list(configuration: dict[str, ConfigValue], key: str) -> list[str]:
    """The non-empty items of a comma separated list key."""
    return [v.strip() for v in configuration[key].value.split(",") if v.strip()]


def valid_config_value(key: str, entry: ConfigValue, value: str) -> bool:
    """Whether ``value`` is acceptable for ``key`` in a ChangeConfiguration request."""
    if entry.kind == "bool":
        return value.strip().lower() in ("true", "false")
    if entry.kind == "int":
        try:
            return int(value) >= 0
        except ValueError:
            return False
    if key in (
        "MeterValuesSampledData",
        "MeterValuesAlignedData",
        "StopTxnSampledData",
        "StopTxnAlignedData",
    ):
        items = [v.strip() for v in value.split(",") if v.strip()]
        return len(items) <= 8 and all(v in SUPPORTED_MEASURANDS for v in items)
    if entry.kind == "secret":
        return 8 <= len(value) <= 40
    return len(value) <= 500
