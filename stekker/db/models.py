"""The tables of the backoffice. Each class is one domain concept; its docstring says which."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    column,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stekker.db.base import Base, utcnow
from stekker.domain.timeutil import HOME_TIME_ZONE

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class TokenStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    RETIRED = "retired"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"


class Location(Base):
    """A place with one or more charging stations: the address a driver navigates to.

    `opening_times` follows the OCPI Hours object (None means open 24/7); coordinates are
    WGS84 decimal degrees; `time_zone` is an IANA name used to show local times. A retired
    location (`retired_at` set) is kept for history but left out of lists and selections.
    """

    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(3), default="NLD")
    latitude: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    time_zone: Mapped[str] = mapped_column(String(64), default=HOME_TIME_ZONE)
    opening_times: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    retired_at: Mapped[datetime | None]

    stations: Mapped[list[ChargingStation]] = relationship(back_populates="location")


class ChargingStation(Base):
    """A charge point: one OCPP endpoint, identified by the last segment of its WebSocket URL.

    It reports its make and firmware at boot, is online while its WebSocket is open, and
    holds one or more EVSEs. `password_hash` is the security profile 1/2 Basic-auth secret;
    `local_list_version` is the version of our local authorization list the station holds.
    """

    __tablename__ = "charging_stations"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    serial_number: Mapped[str | None] = mapped_column(String(50))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    iccid: Mapped[str | None] = mapped_column(String(20))
    imsi: Mapped[str | None] = mapped_column(String(20))
    meter_type: Mapped[str | None] = mapped_column(String(50))
    meter_serial_number: Mapped[str | None] = mapped_column(String(50))
    ocpp_version: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    registration_status: Mapped[str] = mapped_column(String(16), default="Accepted")
    status: Mapped[str | None] = mapped_column(String(32))
    status_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(50))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None]
    connected_at: Mapped[datetime | None]
    disconnected_at: Mapped[datetime | None]
    last_boot_at: Mapped[datetime | None]
    reconnect_count: Mapped[int] = mapped_column(Integer, default=0)
    local_list_version: Mapped[int | None] = mapped_column(Integer)
    # OCPP security profile the station must connect with (1: Basic auth over ws://, 2: over
    # wss://, 3: client certificate). None: whatever its credentials allow (a trial station).
    security_profile: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)  # the operator's, e.g. "key at the front desk"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A retired station is refused at connect and left out of lists and selections; its
    # sessions and history stay.
    retired_at: Mapped[datetime | None]

    location: Mapped[Location | None] = relationship(back_populates="stations")
    evses: Mapped[list[Evse]] = relationship(
        back_populates="station", order_by="Evse.evse_number", cascade="all, delete-orphan"
    )


class Evse(Base):
    """An EVSE: the part of a station that charges one vehicle at a time.

    `evse_number` is the OCPP id on the station (the 1.6 connectorId, the 2.0.1 evseId);
    `evse_id` is the public eMI3 identifier printed on the station, e.g. `NL*STK*E0001*1`.
    """

    __tablename__ = "evses"
    __table_args__ = (UniqueConstraint("station_id", "evse_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    evse_number: Mapped[int] = mapped_column(Integer)
    evse_id: Mapped[str | None] = mapped_column(String(48), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    station: Mapped[ChargingStation] = relationship(back_populates="evses")
    connectors: Mapped[list[Connector]] = relationship(
        back_populates="evse", order_by="Connector.connector_number", cascade="all, delete-orphan"
    )


class Connector(Base):
    """A plug or socket of an EVSE, with its physical capabilities and its live OCPP status.

    `standard`, `format` and `power_type` use OCPI's vocabulary (e.g. IEC_62196_T2, SOCKET,
    AC_3_PHASE). `status_at` is the station's timestamp of the status, so an older status
    that arrives late (an offline queue) never overwrites a newer one.
    """

    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("evse_id", "connector_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evse_id: Mapped[int] = mapped_column(ForeignKey("evses.id", ondelete="CASCADE"))
    connector_number: Mapped[int] = mapped_column(Integer, default=1)
    standard: Mapped[str] = mapped_column(String(32), default="IEC_62196_T2")
    format: Mapped[str] = mapped_column(String(16), default="SOCKET")
    power_type: Mapped[str] = mapped_column(String(16), default="AC_3_PHASE")
    max_voltage: Mapped[int] = mapped_column(Integer, default=230)
    max_amperage: Mapped[int] = mapped_column(Integer, default=32)
    max_electric_power: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    status_at: Mapped[datetime | None]
    # True while standard..max_electric_power are our placeholder (the connector was created
    # because the station mentioned it); False once the station reported them or an operator set them
    assumed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    evse: Mapped[Evse] = relationship(back_populates="connectors")


class Token(Base):
    """A means of identification a driver presents: an RFID card, an app user, an ad-hoc id.

    `uid` is what the station sends as idTag/idToken; `contract_id` the eMA id on the
    driver's contract; `group_id` the 1.6 parentIdTag. `list_version` is the local
    authorization list version in which this token last changed, so a differential
    SendLocalList can be computed for any station version.
    """

    __tablename__ = "tokens"
    __table_args__ = (UniqueConstraint("country_code", "party_id", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(16), default="RFID")
    contract_id: Mapped[str | None] = mapped_column(String(36))
    visual_number: Mapped[str | None] = mapped_column(String(64))
    issuer: Mapped[str | None] = mapped_column(String(64))
    country_code: Mapped[str] = mapped_column(String(2), default="NL")
    party_id: Mapped[str] = mapped_column(String(3), default="STK")
    group_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default=TokenStatus.ACTIVE)
    expires_at: Mapped[datetime | None]
    allow_concurrent: Mapped[bool] = mapped_column(Boolean, default=False)
    # the driver's own electricity supplier and contract (OCPI Token energy_contract), if any
    energy_supplier: Mapped[str | None] = mapped_column(String(64))
    energy_contract_id: Mapped[str | None] = mapped_column(String(64))
    # OCPI: a token an eMSP pushed to us (`ocpi_partner_id`), how it may be authorized
    # (whitelist ALWAYS, ALLOWED, ALLOWED_OFFLINE, NEVER; None: our own token, decided here),
    # the driver's language and the partner's last_updated (newer pushes only)
    ocpi_partner_id: Mapped[int | None] = mapped_column(ForeignKey("ocpi_partners.id"))
    whitelist: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(2))
    default_profile_type: Mapped[str | None] = mapped_column(String(16))
    ocpi_last_updated: Mapped[datetime | None]
    list_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChargingSession(Base):
    """A charging transaction: from the StartTransaction (or TransactionEvent Started) to its stop.

    `id` is the 1.6 transactionId we hand out; `transaction_id` the id as the station knows
    it (a string in 2.0.1). `start_key` makes a retransmitted start idempotent. Energy comes
    from the meter register the station reports: `meter_stop_wh - meter_start_wh`, never
    from a zero baseline. `auth_status` is our central decision on the start token.
    """

    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("station_id", "transaction_id"),
        UniqueConstraint("station_id", "start_key"),
        Index("ix_sessions_station_status", "station_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id"))
    evse_pk: Mapped[int | None] = mapped_column(ForeignKey("evses.id"))
    evse_number: Mapped[int] = mapped_column(Integer)
    connector_number: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    # token columns hold what a station sent: OCPP 2.1 idTokens reach 255 characters
    start_key: Mapped[str] = mapped_column(String(255))
    token_uid: Mapped[str | None] = mapped_column(String(255), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    auth_status: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.ACTIVE)
    start_time: Mapped[datetime]
    stop_time: Mapped[datetime | None]
    meter_start_wh: Mapped[int | None] = mapped_column(BigInteger)
    meter_last_wh: Mapped[int | None] = mapped_column(BigInteger)
    meter_stop_wh: Mapped[int | None] = mapped_column(BigInteger)
    energy_wh: Mapped[int | None] = mapped_column(BigInteger)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    stop_token_uid: Mapped[str | None] = mapped_column(String(255))
    reservation_id: Mapped[int | None] = mapped_column(Integer)
    remote_start_id: Mapped[int | None] = mapped_column(Integer)
    # 2.0.1: the idToken type (ISO14443, eMAID, Central...), the EV's charging state
    # (Charging, SuspendedEV, EVConnected...) and whether the station ran it while offline.
    id_token_type: Mapped[str | None] = mapped_column(String(20))
    charging_state: Mapped[str | None] = mapped_column(String(20))
    offline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the supplier contract of the token at the start: whose energy this session delivered
    energy_supplier: Mapped[str | None] = mapped_column(String(64))
    energy_contract_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TransactionEvent(Base):
    """One OCPP 2.0.1/2.1 TransactionEvent exactly as the station sent it, keyed by its
    (station, transactionId, seqNo). The key makes a retransmission harmless; the stored
    events let a session be rebuilt when they arrive out of order or after an offline spell.
    """

    __tablename__ = "transaction_events"
    __table_args__ = (UniqueConstraint("station_id", "transaction_id", "seq_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    transaction_id: Mapped[str] = mapped_column(String(36))
    seq_no: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(16))
    trigger_reason: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime]
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


#: What identifies one reported attribute of a station's configuration.
STATION_VARIABLE_KEY = (
    "station_id",
    "component",
    "component_instance",
    "evse_number",
    "connector_number",
    "variable",
    "variable_instance",
    "attribute_type",
)


class StationVariable(Base):
    """One attribute of one variable of a station's device model, as the station last reported
    it: a 2.0.1 component/variable (e.g. AuthCtrlr.LocalPreAuthorize, Actual) or a 1.6
    configuration key (component `OCPP16`, the key as variable).

    `evse_number`/`connector_number` are 0 when the component is not tied to an EVSE or
    connector; instances are '' when absent, so the natural key stays unique on every database.
    """

    __tablename__ = "station_variables"
    __table_args__ = (
        # the generated name is over PostgreSQL's 63 bytes
        UniqueConstraint(*STATION_VARIABLE_KEY, name="uq_station_variables_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    component: Mapped[str] = mapped_column(String(50))
    component_instance: Mapped[str] = mapped_column(String(50), default="")
    evse_number: Mapped[int] = mapped_column(Integer, default=0)
    connector_number: Mapped[int] = mapped_column(Integer, default=0)
    variable: Mapped[str] = mapped_column(String(50))
    variable_instance: Mapped[str] = mapped_column(String(50), default="")
    attribute_type: Mapped[str] = mapped_column(String(16), default="Actual")
    value: Mapped[str | None] = mapped_column(Text)
    mutability: Mapped[str | None] = mapped_column(String(16))
    data_type: Mapped[str | None] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(16))
    min_limit: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    max_limit: Mapped[Decimal | None] = mapped_column(Numeric(20, 6))
    values_list: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="report")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StationReport(Base):
    """One configuration report a station sends in parts (2.0.1 NotifyReport, seqNo 0..n).

    `seq_nos` are the parts that arrived (each once, however often retransmitted);
    `last_seq_no` is the seqNo of the part that said nothing follows (tbc false), None until
    it came. The report is complete when that part came and every seqNo before it too.
    """

    __tablename__ = "station_reports"
    __table_args__ = (UniqueConstraint("station_id", "request_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    request_id: Mapped[int] = mapped_column(Integer)
    seq_nos: Mapped[list[int]] = mapped_column(JSON, default=list)
    last_seq_no: Mapped[int | None] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RemoteStart(Base):
    """A request that a station start charging (an operator now, an eMSP later): who asked,
    for which token and EVSE, what the station answered, and the session it led to.

    Its id is the remoteStartId a 2.0.1 station echoes in its TransactionEvent. A 1.6
    station echoes nothing, so its next start for the same token (and EVSE, when one was
    named) within a few minutes is taken as the result.
    """

    __tablename__ = "remote_starts"
    __table_args__ = (Index("ix_remote_starts_station_token", "station_id", "token_uid", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id"))
    evse_number: Mapped[int | None] = mapped_column(Integer)
    token_uid: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))


class MeterValue(Base):
    """One sampled value a station reported: a measurand at a time, exactly as sent.

    `value` keeps the station's text (signed data stays intact); unit, phase, context and
    location use the OCPP names. `session_id` links it to a session, also when the station
    sent no transactionId but the connector had a session running.

    A sample is stored once: a station that sends the same MeterValues again (its
    acknowledgement was lost) adds nothing. Its identity is the connector (station, EVSE,
    connector: the session's, or the station's own values that belong to no session), the
    time, and measurand, phase, context, location and unit; the unique index
    `ux_meter_values_sample` holds it and the insert skips what is already there. The index
    reads NULL phase/context/location/unit as '' (COALESCE), because a unique index counts
    NULLs as distinct: storing '' instead of NULL would change what the API and exports show.
    """

    __tablename__ = "meter_values"
    __table_args__ = (
        Index("ix_meter_values_session_ts", "session_id", "timestamp"),
        Index(
            "ux_meter_values_sample",
            "station_id",
            "evse_number",
            "connector_number",
            "timestamp",
            "measurand",
            func.coalesce(column("phase"), ""),
            func.coalesce(column("context"), ""),
            func.coalesce(column("location"), ""),
            func.coalesce(column("unit"), ""),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # no index of its own: ux_meter_values_sample starts with it
    station_id: Mapped[str] = mapped_column(String(48))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    evse_number: Mapped[int] = mapped_column(Integer)
    connector_number: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime]
    measurand: Mapped[str] = mapped_column(String(48))
    phase: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(16))
    context: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(16))
    format: Mapped[str | None] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)


class StatusHistory(Base):
    """Every StatusNotification a station sent, in full: the availability record of an EVSE.

    connector_number 0 is the station as a whole. `timestamp` is the station's time,
    `received_at` ours; the two differ when the station was offline.
    """

    __tablename__ = "status_history"
    __table_args__ = (Index("ix_status_history_station_ts", "station_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    evse_number: Mapped[int] = mapped_column(Integer)
    connector_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    info: Mapped[str | None] = mapped_column(String(255))
    vendor_id: Mapped[str | None] = mapped_column(String(255))
    vendor_error_code: Mapped[str | None] = mapped_column(String(50))
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthorizationRequest(Base):
    """One authorization decision we made: who asked (station, connector), for which token,
    in which message (Authorize, StartTransaction, StopTransaction, RemoteStart), what we
    answered and why. This is the historical request data operators must be able to export.
    """

    __tablename__ = "authorization_requests"
    __table_args__ = (Index("ix_authorization_requests_station_ts", "station_id", "requested_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    connector_number: Mapped[int | None] = mapped_column(Integer)
    token_uid: Mapped[str] = mapped_column(String(255), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    kind: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(255))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class StationEvent(Base):
    """Something that happened to a station that is not a status or a meter value:
    connected, disconnected, booted, an error, a firmware or diagnostics status, a stop for
    a transaction we did not know. The operator's timeline of a station at 3 a.m.
    """

    __tablename__ = "station_events"
    __table_args__ = (Index("ix_station_events_station_ts", "station_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    kind: Mapped[str] = mapped_column(String(48))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """A state-changing action by a person or system on the operator side: who did what to
    which object, when, and with what result. Append-only.
    """

    __tablename__ = "audit_log"
    # the history of one object (a station's timeline, a user's changes)
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(50), default="ok")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(Base):
    """A named, monotonically increasing number (e.g. the local authorization list version)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class StationGroup(Base):
    """A named set of stations (a district, a vendor batch, a pilot): what an operator selects
    for a bulk job and keeps a desired configuration for. A station may be in several groups.
    """

    __tablename__ = "station_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StationGroupMember(Base):
    """That a station belongs to a group."""

    __tablename__ = "station_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("station_groups.id", ondelete="CASCADE"), primary_key=True
    )
    station_id: Mapped[str] = mapped_column(
        ForeignKey("charging_stations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OcppMessage(Base):
    """One OCPP-J frame as it crossed the wire, in or out, kept for a retention period: the
    evidence behind a dispute and the raw layer of a station's timeline.

    `message_type` is the OCPP-J number (2 CALL, 3 CALLRESULT, 4 CALLERROR; 5 and 6 in 2.1),
    or 0 for text that is no frame at all (not JSON, not an array): it is kept too, followed by
    the CALLERROR we answered. `action` is filled for CALLs and, where known, for the replies
    to them. `frame` is the text as sent, cut at the configured maximum: `size` is its full
    length in characters and `truncated` says whether it was cut.
    """

    __tablename__ = "ocpp_messages"
    # (station, time, id): a station's frames newest first, paged by keyset
    __table_args__ = (Index("ix_ocpp_messages_station_ts", "station_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48))
    direction: Mapped[str] = mapped_column(String(3))  # "in" (station → us) or "out"
    message_type: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    frame: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=0)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # index: the purge


# Tables of the station-management features, one module per concept (imported so that the
# metadata, the migrations and the schema test see them).
from stekker.db import (  # noqa: E402, F401
    models_cluster,
    models_diagnostics,
    models_functions,
    models_jobs,
    models_ocpi,
    models_problem_reports,
    models_secrets,
    models_tariffs,
    models_users,
)
