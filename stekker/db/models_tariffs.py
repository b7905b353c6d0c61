"""Tables of tariffs, their approval, the municipality's price caps and CDRs."""

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
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow
from stekker.db.models import BigId

Money = Numeric(14, 4)


class TariffVersionStatus(StrEnum):
    """Where a tariff version stands in the municipality's approval (requirement 158).

    draft → submitted → scheduled (approved, waiting for its effective time) → active →
    superseded (a newer version took effect). A submitted version can be rejected; a draft,
    submitted or scheduled one can be withdrawn by the operator. Only scheduled, active and
    superseded versions ever price a session.
    """

    DRAFT = "draft"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


#: Versions the municipality approved: they price sessions from their effective time on.
APPROVED_STATUSES = (
    TariffVersionStatus.SCHEDULED,
    TariffVersionStatus.ACTIVE,
    TariffVersionStatus.SUPERSEDED,
)
#: Versions still under discussion; a tariff has at most one of these at a time.
OPEN_STATUSES = (TariffVersionStatus.DRAFT, TariffVersionStatus.SUBMITTED)


class TariffRecord(Base):
    """A tariff as a named, lasting thing ("Standard AC", "Night DC"): the identity its
    versions share. `code` is the OCPI Tariff id partners see; it never changes.
    The prices themselves live in the versions.
    """

    __tablename__ = "tariffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TariffVersion(Base):
    """One version of a tariff: its prices (an OCPI 2.2.1 Tariff body in `content`), where and
    for whom it applies, and from when. A change is a new version; an approved version is
    never edited again.

    `applies_to` lists targets: `{"all": true}`, `{"location_id": 3}`, `{"evse_uid":
    "NL*STK*E0001*1"}` or `{"evse_uid": ..., "connector": 2}`. `audience` is `all`, `adhoc`
    (drivers without a contract) or `contract` (drivers of an eMSP, optionally only the
    `parties` listed as "NL-ABC"); `energy_suppliers`, when not empty, limits it to drivers
    whose token names one of those suppliers. `ends_tariff` marks a version that retires the
    tariff from `effective_from` on (it has no prices of its own).
    """

    __tablename__ = "tariff_versions"
    __table_args__ = (
        UniqueConstraint("tariff_id", "version"),
        Index("ix_tariff_versions_status", "status", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=TariffVersionStatus.DRAFT)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    applies_to: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    audience: Mapped[str] = mapped_column(String(16), default="all")
    parties: Mapped[list[str]] = mapped_column(JSON, default=list)
    energy_suppliers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # the first minutes of every stretch of not charging are free of PARKING_TIME (idle fee grace)
    parking_grace_minutes: Mapped[int] = mapped_column(Integer, default=0)
    ends_tariff: Mapped[bool] = mapped_column(Boolean, default=False)
    effective_from: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)  # the operator's reason for the change
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TariffTransition(Base):
    """One step of a tariff version through the approval workflow: who moved it from which
    status to which, when, and with what comment. Append-only; the history the municipality's
    auditor reads."""

    __tablename__ = "tariff_transitions"
    __table_args__ = (Index("ix_tariff_transitions_tariff", "tariff_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("tariff_versions.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceCap(Base):
    """The maximum price the municipality sets (requirement 157), all amounts incl. VAT.

    `max_per_kwh` bounds what charging costs (every dimension but PARKING_TIME) per kWh
    delivered; `max_per_session` bounds a session's total; `max_parking_per_hour` bounds the
    idle fee per hour parked. An unset bound does not apply. `reference_sessions` (None: the
    built-in set) are the typical sessions every tariff proposal is checked and compared on.
    A change is a new row: the newest row with `effective_from` before a session's start caps it.
    """

    __tablename__ = "price_caps"

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    max_per_kwh: Mapped[Decimal | None] = mapped_column(Money)
    max_per_session: Mapped[Decimal | None] = mapped_column(Money)
    max_parking_per_hour: Mapped[Decimal | None] = mapped_column(Money)
    reference_sessions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    effective_from: Mapped[datetime]
    comment: Mapped[str | None] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class CdrKind(StrEnum):
    """A CDR bills a session; a credit CDR cancels an earlier CDR (negative amounts)."""

    CHARGE = "charge"
    CREDIT = "credit"


class Cdr(Base):
    """A Charge Detail Record: the immutable bill of one finished session, in OCPI 2.2.1 CDR
    form (`data`), priced by the tariff version valid at the session's start and capped by the
    municipality's maximum price.

    It is never edited: a correction adds a credit CDR (`credits_cdr_id`) and a new CDR
    (`replaces_cdr_id`). `sequence` numbers the CDRs of one session (1, 2, 3...), which makes
    building the first CDR idempotent. `capped_by` says which bound lowered or raised the
    total (`max_price`/`min_price` of the tariff, `cap.per_kwh`, `cap.per_session`,
    `cap.parking`). `readings` are the meter readings the bill rests on.
    """

    __tablename__ = "cdrs"
    __table_args__ = (
        UniqueConstraint("session_id", "sequence"),
        Index("ix_cdrs_created_at", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cdr_uid: Mapped[str] = mapped_column(String(39), unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    sequence: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(8), default=CdrKind.CHARGE)
    credits_cdr_id: Mapped[int | None] = mapped_column(ForeignKey("cdrs.id"))
    replaces_cdr_id: Mapped[int | None] = mapped_column(ForeignKey("cdrs.id"))
    station_id: Mapped[str] = mapped_column(String(48), index=True)
    location_id: Mapped[int | None] = mapped_column(Integer)
    evse_uid: Mapped[str | None] = mapped_column(String(48))
    token_uid: Mapped[str | None] = mapped_column(String(255))
    party: Mapped[str | None] = mapped_column(String(6))  # the token's eMSP, "NL-ABC"
    tariff_version_id: Mapped[int | None] = mapped_column(ForeignKey("tariff_versions.id"))
    price_cap_id: Mapped[int | None] = mapped_column(ForeignKey("price_caps.id"))
    currency: Mapped[str] = mapped_column(String(3))
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    total_energy_wh: Mapped[int] = mapped_column(BigInteger)
    total_time_s: Mapped[int] = mapped_column(BigInteger)
    total_parking_time_s: Mapped[int] = mapped_column(BigInteger)
    total_cost_excl_vat: Mapped[Decimal] = mapped_column(Money)
    total_cost_incl_vat: Mapped[Decimal] = mapped_column(Money)
    capped_by: Mapped[str | None] = mapped_column(String(20))
    energy_supplier: Mapped[str | None] = mapped_column(String(64))
    energy_contract_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)  # why a correction or credit was made
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    readings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(Cdr, "before_update")
def _cdrs_are_immutable(mapper: Any, connection: Any, target: Cdr) -> None:
    """A CDR is a bill that may already be with a partner: correct it, never edit it."""
    raise ValueError(f"CDR {target.cdr_uid} is immutable; correct it with a credit CDR and a new CDR")
