"""What can be exported (requirement 169): the record types, and for each its documented columns.

A record kind is one table of history, read in primary-key order, with the columns a user gets
(name, type, description, and whether the column is personal data), the column its period
filter uses, and how the station, location and partner filters apply to it. The same
definitions drive the export, `GET /api/exports`, `stekker export columns` and the README.

Personal data: a driver is identified by the token uid the station sent (an RFID card, an app
id), the eMA contract id and the contract with their energy supplier. Those columns are
`Personal.IDENTIFIER` and get a pseudonym for roles that may not see them; a column that merely
*links* to the token (its row id) is left empty then, and text or JSON that may quote an
identifier is searched (`stekker.export.pseudonym`). Everything else (stations, times, energy,
money, statuses, the operator's staff in the audit log) is not about a driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from stekker.db.models import (
    AuditEntry,
    AuthorizationRequest,
    ChargingSession,
    ChargingStation,
    MeterValue,
    StationEvent,
    StatusHistory,
    Token,
)
from stekker.db.models_tariffs import Cdr
from stekker.services.errors import Missing


class ColumnType(StrEnum):
    """The type of a column in every format: CSV writes text, JSON lines JSON values, Parquet a
    typed column (in brackets).

    integer: a whole number (int64); text: text (string); timestamp: a UTC time, ISO 8601 with
    `Z` in CSV and JSON lines (timestamp[us, tz=UTC]); decimal: an exact amount, as a string
    in JSON lines so no digit is lost (decimal128(14, 4)); boolean: true or false (bool); json:
    a JSON object, as JSON text in CSV and Parquet (string) and as an object in JSON lines.
    """

    INTEGER = "integer"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    JSON = "json"


class Personal(StrEnum):
    """Whether a column is about a driver, and what a pseudonymised export does with it."""

    NO = "no"
    IDENTIFIER = "identifier"  # a token uid or contract id: replaced by its pseudonym
    LINK = "link"  # our row id of the token: empty (it would lead back to the uid)
    CONTAINS = "contains"  # text or JSON that may quote an identifier: each one found is replaced
    SIGNED = "signed"  # signed meter data (its signature covers the token id): empty


@dataclass(frozen=True, slots=True)
class Column:
    """One exported column: its name, type and meaning, and its SQL expression (not shown)."""

    name: str
    type: ColumnType
    description: str
    expr: Any = field(repr=False, compare=False)
    personal: Personal = Personal.NO


Filter = Callable[[Any], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class RecordKind:
    """A record type that can be exported: one table of history read in primary-key order.

    `source` is the table with the joins its columns need; `key` its primary key (the first
    column); `time` the column the period [from, to) applies to. `by_station`,
    `by_location` and `by_partner` build the WHERE clause of those filters (None: the filter
    does not apply to this kind).
    """

    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    source: FromClause
    key: InstrumentedAttribute[int]
    time: InstrumentedAttribute[Any]
    time_column: str
    by_station: Filter
    by_location: Filter
    by_partner: Filter | None = None

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def C(name: str, type: ColumnType, description: str, expr: Any, personal: Personal = Personal.NO) -> Column:
    return Column(name, type, description, expr, personal)


def _stations_at(location_id: int) -> Any:
    return select(ChargingStation.id).where(ChargingStation.location_id == location_id)


INT, T, TS, D, B, J = (
    ColumnType.INTEGER,
    ColumnType.TEXT,
    ColumnType.TIMESTAMP,
    ColumnType.DECIMAL,
    ColumnType.BOOLEAN,
    ColumnType.JSON,
)

_S, _CS, _TK = ChargingSession, ChargingStation, Token

SESSIONS = RecordKind(
    name="sessions",
    title="Charging sessions",
    description="Every charging session, from its start to its stop (running sessions too). "
    "Period: the session's start_time.",
    columns=(
        C("id", INT, "Our session id (the OCPP 1.6 transactionId we handed out).", _S.id),
        C("station_id", T, "The charging station.", _S.station_id),
        C("location_id", INT, "The location the station is at now.", _CS.location_id),
        C("evse_number", INT, "The EVSE on the station (1.6 connectorId, 2.0.1 evseId).", _S.evse_number),
        C("connector_number", INT, "The connector of that EVSE.", _S.connector_number),
        C("transaction_id", T, "The transaction id as the station knows it.", _S.transaction_id),
        C(
            "token_uid",
            T,
            "The token the driver started with (idTag / idToken).",
            _S.token_uid,
            Personal.IDENTIFIER,
        ),
        C("token_id", INT, "Our record of that token, if we know it.", _S.token_id, Personal.LINK),
        C(
            "partner_id",
            INT,
            "The OCPI partner (eMSP) whose token it was; empty: our own or unknown.",
            _TK.ocpi_partner_id,
        ),
        C("id_token_type", T, "2.0.1 idToken type (ISO14443, eMAID, Central...).", _S.id_token_type),
        C("auth_status", T, "Our decision on the token at the start (Accepted, Blocked...).", _S.auth_status),
        C("status", T, "active or completed.", _S.status),
        C("start_time", TS, "When charging started (station's time, UTC).", _S.start_time),
        C("stop_time", TS, "When it stopped; empty while running.", _S.stop_time),
        C("meter_start_wh", INT, "Energy register at the start (Wh).", _S.meter_start_wh),
        C("meter_last_wh", INT, "Latest register reading received (Wh).", _S.meter_last_wh),
        C("meter_stop_wh", INT, "Energy register at the stop (Wh).", _S.meter_stop_wh),
        C("energy_wh", INT, "Energy delivered: meter_stop_wh - meter_start_wh (Wh).", _S.energy_wh),
        C(
            "stop_reason",
            T,
            "Why it stopped, as the station said (EVDisconnected, Remote...).",
            _S.stop_reason,
        ),
        C(
            "stop_token_uid",
            T,
            "The token presented to stop, if any.",
            _S.stop_token_uid,
            Personal.IDENTIFIER,
        ),
        C(
            "charging_state",
            T,
            "2.0.1 charging state last reported (Charging, SuspendedEV...).",
            _S.charging_state,
        ),
        C("offline", B, "Whether the station ran the session while offline.", _S.offline),
        C("reservation_id", INT, "The reservation it used, if any.", _S.reservation_id),
        C("remote_start_id", INT, "The remote start that led to it, if any.", _S.remote_start_id),
        C(
            "energy_supplier",
            T,
            "The driver's energy supplier at the start, if the token named one.",
            _S.energy_supplier,
        ),
        C(
            "energy_contract_id",
            T,
            "The driver's contract with that supplier.",
            _S.energy_contract_id,
            Personal.IDENTIFIER,
        ),
        C("created_at", TS, "When we recorded it.", _S.created_at),
        C("updated_at", TS, "When we last changed it.", _S.updated_at),
    ),
    source=_S.__table__.outerjoin(_CS.__table__, _CS.id == _S.station_id).outerjoin(
        _TK.__table__, _TK.id == _S.token_id
    ),
    key=_S.id,
    time=_S.start_time,
    time_column="start_time",
    by_station=lambda station: _S.station_id == station,
    by_location=lambda location: _CS.location_id == location,
    by_partner=lambda partner: _TK.ocpi_partner_id == partner,
)

_CDR_SESSION = ChargingSession.__table__.alias("cdr_session")
CDRS = RecordKind(
    name="cdrs",
    title="Charge Detail Records",
    description="Every CDR: the bill of a finished session, and the credit CDRs and new CDRs of "
    "corrections. Period: when the CDR was made (created_at), so a correction made later is "
    "in the later period.",
    columns=(
        C("id", INT, "Our row id of the CDR.", Cdr.id),
        C("cdr_uid", T, "The CDR's id as partners see it, e.g. CDR-42-1.", Cdr.cdr_uid),
        C("session_id", INT, "The session it bills.", Cdr.session_id),
        C("sequence", INT, "1 for the session's first CDR; corrections count on.", Cdr.sequence),
        C("kind", T, "charge, or credit (cancels credits_cdr_id).", Cdr.kind),
        C("credits_cdr_id", INT, "The CDR a credit CDR cancels.", Cdr.credits_cdr_id),
        C("replaces_cdr_id", INT, "The CDR this one corrects.", Cdr.replaces_cdr_id),
        C("station_id", T, "The charging station.", Cdr.station_id),
        C("location_id", INT, "The location at the time of the session.", Cdr.location_id),
        C("evse_uid", T, "The EVSE (eMI3 id, e.g. NL*STK*E0001*1).", Cdr.evse_uid),
        C("token_uid", T, "The token that charged.", Cdr.token_uid, Personal.IDENTIFIER),
        C("party", T, "The driver's eMSP as OCPI party (NL-ABC); empty: ad hoc.", Cdr.party),
        C(
            "partner_id",
            INT,
            "The OCPI partner whose token it was; empty: our own or unknown.",
            _TK.ocpi_partner_id,
        ),
        C("tariff_version_id", INT, "The tariff version that priced it.", Cdr.tariff_version_id),
        C("price_cap_id", INT, "The municipality's maximum price that applied.", Cdr.price_cap_id),
        C("currency", T, "ISO 4217 currency of the amounts.", Cdr.currency),
        C("start_time", TS, "Start of the session.", Cdr.start_time),
        C("end_time", TS, "End of the session.", Cdr.end_time),
        C("total_energy_wh", INT, "Energy billed (Wh).", Cdr.total_energy_wh),
        C("total_time_s", INT, "Duration of the session (s).", Cdr.total_time_s),
        C("total_parking_time_s", INT, "Time connected but not charging (s).", Cdr.total_parking_time_s),
        C(
            "total_cost_excl_vat",
            D,
            "What the driver pays, excl. VAT (negative for a credit).",
            Cdr.total_cost_excl_vat,
        ),
        C("total_cost_incl_vat", D, "What the driver pays, incl. VAT.", Cdr.total_cost_incl_vat),
        C(
            "capped_by",
            T,
            "The bound that changed the total (cap.per_kwh, max_price...), if any.",
            Cdr.capped_by,
        ),
        C("energy_supplier", T, "The driver's energy supplier, if known.", Cdr.energy_supplier),
        C(
            "energy_contract_id",
            T,
            "The driver's contract with that supplier.",
            Cdr.energy_contract_id,
            Personal.IDENTIFIER,
        ),
        C("reason", T, "Why a correction or credit was made.", Cdr.reason, Personal.CONTAINS),
        C("created_by", T, "Who made it (system, or the operator who corrected).", Cdr.created_by),
        C("created_at", TS, "When it was made.", Cdr.created_at),
        C(
            "ocpi_cdr",
            J,
            "The OCPI 2.2.1 CDR object as partners got it (cdr_token pseudonymised with the rest).",
            Cdr.data,
            Personal.CONTAINS,
        ),
        C("readings", J, "The meter register readings the bill rests on.", Cdr.readings),
    ),
    source=Cdr.__table__.outerjoin(_CDR_SESSION, _CDR_SESSION.c.id == Cdr.session_id).outerjoin(
        _TK.__table__, _TK.id == _CDR_SESSION.c.token_id
    ),
    key=Cdr.id,
    time=Cdr.created_at,
    time_column="created_at",
    by_station=lambda station: Cdr.station_id == station,
    by_location=lambda location: Cdr.location_id == location,
    by_partner=lambda partner: _TK.ocpi_partner_id == partner,
)

_MV = MeterValue
METER_VALUES = RecordKind(
    name="meter_values",
    title="Meter values",
    description="Every sampled value a station reported, exactly as sent. Period: the "
    "station's timestamp of the value.",
    columns=(
        C("id", INT, "Our row id.", _MV.id),
        C("station_id", T, "The charging station.", _MV.station_id),
        C("session_id", INT, "The session it belongs to, if any.", _MV.session_id),
        C("evse_number", INT, "The EVSE (0: the station's main meter).", _MV.evse_number),
        C("connector_number", INT, "The connector.", _MV.connector_number),
        C("timestamp", TS, "When it was measured (station's time, UTC).", _MV.timestamp),
        C(
            "measurand",
            T,
            "What was measured (Energy.Active.Import.Register, Power.Active.Import...).",
            _MV.measurand,
        ),
        C("phase", T, "The phase (L1, L2-N...), if any.", _MV.phase),
        C("unit", T, "The unit (Wh, kWh, W, A, V, Percent...).", _MV.unit),
        C("context", T, "Why it was sampled (Sample.Periodic, Transaction.Begin...).", _MV.context),
        C("location", T, "Where it was measured (Outlet, Inlet, EV...).", _MV.location),
        C("format", T, "Raw, or SignedData.", _MV.format),
        C(
            "value",
            T,
            "The value as the station sent it (text). Signed data is left empty when pseudonymised: "
            "its signature covers the token id.",
            _MV.value,
            Personal.SIGNED,
        ),
    ),
    source=_MV.__table__,
    key=_MV.id,
    time=_MV.timestamp,
    time_column="timestamp",
    by_station=lambda station: _MV.station_id == station,
    by_location=lambda location: _MV.station_id.in_(_stations_at(location)),
)

_AR = AuthorizationRequest
AUTHORIZATION_REQUESTS = RecordKind(
    name="authorization_requests",
    title="Authorization requests",
    description="Every authorization decision we made: who asked (station, connector), for "
    "which token, in which message, what we answered and why. Period: requested_at.",
    columns=(
        C("id", INT, "Our row id.", _AR.id),
        C("station_id", T, "The station that asked.", _AR.station_id),
        C("connector_number", INT, "The connector, if the message named one.", _AR.connector_number),
        C("token_uid", T, "The token presented.", _AR.token_uid, Personal.IDENTIFIER),
        C("token_id", INT, "Our record of that token, if we know it.", _AR.token_id, Personal.LINK),
        C(
            "partner_id",
            INT,
            "The OCPI partner whose token it was; empty: our own or unknown.",
            _TK.ocpi_partner_id,
        ),
        C("kind", T, "The message: Authorize, StartTransaction, StopTransaction, RemoteStart...", _AR.kind),
        C("result", T, "What we answered (Accepted, Blocked, Invalid...).", _AR.result),
        C("reason", T, "Why.", _AR.reason, Personal.CONTAINS),
        C("session_id", INT, "The session it started or stopped, if any.", _AR.session_id),
        C("requested_at", TS, "When we decided.", _AR.requested_at),
    ),
    source=_AR.__table__.outerjoin(_TK.__table__, _TK.id == _AR.token_id),
    key=_AR.id,
    time=_AR.requested_at,
    time_column="requested_at",
    by_station=lambda station: _AR.station_id == station,
    by_location=lambda location: _AR.station_id.in_(_stations_at(location)),
    by_partner=lambda partner: _TK.ocpi_partner_id == partner,
)

_SH = StatusHistory
STATUS_HISTORY = RecordKind(
    name="status_history",
    title="Status changes",
    description="Every StatusNotification a station sent: the availability record of each "
    "connector. Period: the station's timestamp.",
    columns=(
        C("id", INT, "Our row id.", _SH.id),
        C("station_id", T, "The charging station.", _SH.station_id),
        C("evse_number", INT, "The EVSE (0: the station as a whole).", _SH.evse_number),
        C(
            "connector_number",
            INT,
            "The connector (0: the station or EVSE as a whole).",
            _SH.connector_number,
        ),
        C("status", T, "The status as sent (Available, Charging, Faulted...).", _SH.status),
        C("error_code", T, "The 1.6 error code (NoError, GroundFailure...).", _SH.error_code),
        C("info", T, "Free text from the station.", _SH.info),
        C("vendor_id", T, "The vendor of a vendor-specific error.", _SH.vendor_id),
        C("vendor_error_code", T, "The vendor's error code.", _SH.vendor_error_code),
        C("timestamp", TS, "When the status began (station's time, UTC).", _SH.timestamp),
        C("received_at", TS, "When we received it (differs after an offline spell).", _SH.received_at),
    ),
    source=_SH.__table__,
    key=_SH.id,
    time=_SH.timestamp,
    time_column="timestamp",
    by_station=lambda station: _SH.station_id == station,
    by_location=lambda location: _SH.station_id.in_(_stations_at(location)),
)

_SE = StationEvent
STATION_EVENTS = RecordKind(
    name="station_events",
    title="Station events",
    description="What happened to stations besides statuses and meter values: connected, "
    "disconnected, booted, firmware and diagnostics status, errors. Period: occurred_at.",
    columns=(
        C("id", INT, "Our row id.", _SE.id),
        C("station_id", T, "The charging station.", _SE.station_id),
        C("kind", T, "What happened (connected, booted, firmware_status...).", _SE.kind),
        C("detail", J, "The particulars, as a JSON object.", _SE.detail, Personal.CONTAINS),
        C("occurred_at", TS, "When it happened.", _SE.occurred_at),
    ),
    source=_SE.__table__,
    key=_SE.id,
    time=_SE.occurred_at,
    time_column="occurred_at",
    by_station=lambda station: _SE.station_id == station,
    by_location=lambda location: _SE.station_id.in_(_stations_at(location)),
)


def _about_stations_at(location: int) -> ColumnElement[bool]:
    ids = select(ChargingStation.id).where(ChargingStation.location_id == location)
    return or_(
        and_(AuditEntry.object_type == "location", AuditEntry.object_id == str(location)),
        and_(AuditEntry.object_type == "station", AuditEntry.object_id.in_(ids)),
    )


_AE = AuditEntry
AUDIT_LOG = RecordKind(
    name="audit_log",
    title="Audit entries",
    description="Every state-changing action by a person or system on the operator side: who "
    "did what to which object, when, with what result (exports included). Period: "
    "occurred_at. The station filter keeps entries about that station, the location filter "
    "entries about the location or its stations.",
    columns=(
        C("id", INT, "Our row id.", _AE.id),
        C("actor", T, "Who (user:NAME, ocpi:PARTNER, station:ID, system...).", _AE.actor),
        C("action", T, "What, as a dotted name (session.remote_stop.requested...).", _AE.action),
        C("object_type", T, "The kind of object (station, token, tariff...).", _AE.object_type),
        C("object_id", T, "Its id.", _AE.object_id),
        C("result", T, "The outcome (ok, refused, an error...).", _AE.result),
        C("detail", J, "The particulars, as a JSON object.", _AE.detail, Personal.CONTAINS),
        C("occurred_at", TS, "When.", _AE.occurred_at),
    ),
    source=_AE.__table__,
    key=_AE.id,
    time=_AE.occurred_at,
    time_column="occurred_at",
    by_station=lambda station: and_(_AE.object_type == "station", _AE.object_id == station),
    by_location=_about_stations_at,
)

#: Every kind, in the order they are listed.
KINDS: dict[str, RecordKind] = {
    kind.name: kind
    for kind in (
        SESSIONS,
        CDRS,
        METER_VALUES,
        AUTHORIZATION_REQUESTS,
        STATUS_HISTORY,
        STATION_EVENTS,
        AUDIT_LOG,
    )
}

#: The kinds the partner filter applies to (records with a token).
PARTNER_KINDS = tuple(name for name, kind in KINDS.items() if kind.by_partner is not None)


def kind_named(name: str) -> RecordKind:
    """The record kind called `name`; Missing (404) with the list of kinds if there is none."""
    kind = KINDS.get(name)
    if kind is None:
        shown = (
            name if len(name) <= 40 and name.isprintable() else name[:40].encode("unicode_escape").decode()
        )
        raise Missing(f"no export kind {shown!r}; the kinds are: {', '.join(KINDS)}")
    return kind
